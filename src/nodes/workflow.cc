#include "nodes/workflow.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <set>

#include "service/document.h"

namespace rlmbox::nodes {
namespace {

using nlohmann::json;

bool IsIdentifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

struct Spec {
  std::string id;
  json node;                          // what the NodeRunner gets (minus workflow fields)
  std::vector<std::string> depends;   // includes when/unless
  std::string when, unless;
};

// Dependencies in one workflow, all nodes together.
constexpr size_t kMaxEdges = 100'000;

Result<std::vector<Spec>> Check(const json& wf, size_t max_nodes) {
  if (!wf.is_object()) return InvalidArgument("a workflow must be an object with 'nodes'");
  if (!wf.contains("nodes") || !wf["nodes"].is_array() || wf["nodes"].empty()) {
    return InvalidArgument("a workflow needs a non-empty list 'nodes'");
  }
  if (wf["nodes"].size() > max_nodes) {
    return InvalidArgument("a workflow may have at most " + std::to_string(max_nodes) + " nodes");
  }
  std::vector<Spec> specs;
  std::map<std::string, size_t> index;
  for (const auto& n : wf["nodes"]) {
    if (!n.is_object()) return InvalidArgument("each node must be an object");
    if (!n.contains("id") || !n["id"].is_string() || !IsIdentifier(n["id"].get<std::string>())) {
      return InvalidArgument("each node needs an 'id' that is a Python identifier");
    }
    Spec s;
    s.id = n["id"].get<std::string>();
    if (index.count(s.id)) return InvalidArgument("duplicate node id '" + s.id + "'");
    if (!n.contains("type") || !n["type"].is_string()) {
      return InvalidArgument("node '" + s.id + "' needs a 'type'");
    }
    const std::string type = n["type"].get<std::string>();
    const auto& types = NodeTypes();
    if (type != "workflow" && std::find(types.begin(), types.end(), type) == types.end()) {
      return InvalidArgument("node '" + s.id + "': unknown type '" + type + "'");
    }
    if (n.contains("depends_on") && !n["depends_on"].is_null()) {
      const json& d = n["depends_on"];
      if (d.is_string()) {
        s.depends.push_back(d.get<std::string>());
      } else if (d.is_array()) {
        for (const auto& x : d) {
          if (!x.is_string()) return InvalidArgument("node '" + s.id + "': depends_on must list ids");
          s.depends.push_back(x.get<std::string>());
        }
      } else {
        return InvalidArgument("node '" + s.id + "': depends_on must list ids");
      }
    }
    for (const char* key : {"when", "unless"}) {
      if (!n.contains(key) || n[key].is_null()) continue;
      if (!n[key].is_string()) return InvalidArgument("node '" + s.id + "': " + key + " must be an id");
      (std::string(key) == "when" ? s.when : s.unless) = n[key].get<std::string>();
      s.depends.push_back(n[key].get<std::string>());
    }
    s.node = n;
    for (const char* key : {"depends_on", "when", "unless"}) s.node.erase(key);
    index[s.id] = specs.size();
    specs.push_back(std::move(s));
  }
  for (const auto& s : specs) {
    for (const auto& d : s.depends) {
      if (!index.count(d)) return InvalidArgument("node '" + s.id + "' depends on unknown node '" + d + "'");
      if (d == s.id) return InvalidArgument("node '" + s.id + "' depends on itself");
    }
    for (const auto& c : {s.when, s.unless}) {
      if (!c.empty() && specs[index[c]].node["type"] != "condition") {
        return InvalidArgument("node '" + s.id + "': when/unless must name a condition node");
      }
    }
  }
  // Cycles: Kahn's algorithm must consume every node. Linear in nodes plus
  // edges (each node's own dependencies deduplicated once), so a large
  // workflow is judged in milliseconds.
  std::vector<std::vector<size_t>> dependents(specs.size());
  std::vector<size_t> indegree(specs.size(), 0);
  size_t edges = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    std::vector<size_t> deps;
    for (const auto& d : specs[i].depends) deps.push_back(index.at(d));
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    edges += deps.size();
    if (edges > kMaxEdges) {
      return InvalidArgument("a workflow may have at most " + std::to_string(kMaxEdges) +
                             " dependencies in all");
    }
    for (size_t d : deps) dependents[d].push_back(i);
    indegree[i] = deps.size();
  }
  std::vector<size_t> queue;
  for (size_t i = 0; i < specs.size(); ++i) if (indegree[i] == 0) queue.push_back(i);
  size_t seen = 0;
  while (!queue.empty()) {
    const size_t i = queue.back();
    queue.pop_back();
    ++seen;
    for (size_t k : dependents[i]) {
      if (--indegree[k] == 0) queue.push_back(k);
    }
  }
  if (seen != specs.size()) return InvalidArgument("the workflow's dependencies form a cycle");
  if (wf.contains("output") && !wf["output"].is_null() &&
      (!wf["output"].is_string() || !index.count(wf["output"].get<std::string>()))) {
    return InvalidArgument("'output' must name a node");
  }
  return specs;
}

}  // namespace

WorkflowRunner::WorkflowRunner(const NodeRunner& nodes, WorkflowOptions options)
    : nodes_(nodes), options_(std::move(options)) {}

Status WorkflowRunner::Validate(const json& workflow) const {
  auto specs = Check(workflow, options_.max_nodes);
  return specs.ok() ? Status::Ok() : specs.status();
}

Result<json> WorkflowRunner::Run(const json& workflow, const json& inputs,
                                 engine::HostCallHandler* handler, const Span& parent) const {
  return RunNested(workflow, inputs, handler, parent, options_.base_dir, 0);
}

Result<json> WorkflowRunner::Load(const json& node, const std::string& base_dir,
                                  std::string* nested_dir) const {
  *nested_dir = base_dir;
  if (node.contains("workflow") && node["workflow"].is_object()) return node["workflow"];
  if (node.contains("file") && node["file"].is_string()) {
    if (base_dir.empty()) {
      return InvalidArgument("workflow files cannot be referenced here; inline the workflow");
    }
    namespace fs = std::filesystem;
    fs::path path = fs::path(base_dir) / node["file"].get<std::string>();
    *nested_dir = path.parent_path().string();
    return service::ReadDocument(path.string());
  }
  return InvalidArgument("workflow nodes need 'workflow' (inline) or 'file'");
}

Result<json> WorkflowRunner::RunNested(const json& workflow, const json& inputs,
                                       engine::HostCallHandler* handler, const Span& parent,
                                       const std::string& base_dir, int depth) const {
  if (depth > options_.max_nesting) {
    return InvalidArgument("workflows nest deeper than " + std::to_string(options_.max_nesting));
  }
  ASSIGN_OR_RETURN(std::vector<Spec> specs, Check(workflow, options_.max_nodes));
  if (!inputs.is_null() && !inputs.is_object()) return InvalidArgument("inputs must be an object");
  json scope = workflow.value("inputs", json::object());
  if (!scope.is_object()) return InvalidArgument("the workflow's inputs must be an object");
  if (inputs.is_object()) scope.update(inputs);

  const auto start = std::chrono::steady_clock::now();
  const std::string name = workflow.value("name", std::string("workflow"));
  Span span = parent.Child("workflow " + name);
  span.Set("rlmbox.workflow.name", name);
  span.Set("rlmbox.workflow.nodes", static_cast<int64_t>(specs.size()));

  std::map<std::string, json> results;  // id -> node result with "status"
  std::string failed_node;
  auto status_of = [&](const std::string& id) {
    auto it = results.find(id);
    return it == results.end() ? std::string() : it->second["status"].get<std::string>();
  };

  while (results.size() < specs.size()) {
    std::vector<const Spec*> runnable;
    bool progressed = false;
    for (const auto& s : specs) {
      if (results.count(s.id)) continue;
      bool ready = std::all_of(s.depends.begin(), s.depends.end(),
                               [&](const std::string& d) { return results.count(d) > 0; });
      if (!ready) continue;
      progressed = true;
      std::string blocked;
      for (const auto& d : s.depends) {
        const std::string st = status_of(d);
        if (st == "failed" || st == "not_run") blocked = "not_run";
        else if (st == "skipped" && blocked.empty()) blocked = "skipped";
      }
      if (blocked.empty() && !s.when.empty() && results[s.when]["output"] != json(true)) blocked = "skipped";
      if (blocked.empty() && !s.unless.empty() && results[s.unless]["output"] != json(false)) blocked = "skipped";
      if (!blocked.empty()) {
        results[s.id] = {{"status", blocked}, {"output", nullptr}};
        continue;
      }
      runnable.push_back(&s);
    }
    if (!progressed) return Internal("the workflow made no progress");  // Check() rules this out

    // Each runnable node's request, built here: the nodes of a wave run on
    // several threads and must not touch `results` while it changes.
    std::vector<json> requests;
    for (const Spec* s : runnable) {
      json context = scope;
      for (const auto& d : s->depends) context[d] = results.at(d)["output"];
      if (s->node.contains("context") && s->node["context"].is_object()) {
        context.update(s->node["context"]);
      }
      requests.push_back(s->node);
      requests.back()["context"] = std::move(context);
    }
    auto run_one = [&](size_t index) -> json {
      const Spec* s = runnable[index];
      const json& node = requests[index];
      const json& context = node["context"];
      if (node["type"] == "workflow") {
        Span node_span = span.Child("node " + s->id);
        node_span.Set("rlmbox.node.type", "workflow");
        node_span.Set("rlmbox.node.id", s->id);
        std::string nested_dir;
        auto nested = Load(node, base_dir, &nested_dir);
        Result<json> r = nested.ok() ? RunNested(*nested, context, handler, node_span, nested_dir,
                                                 depth + 1)
                                     : Result<json>(nested.status());
        if (!r.ok()) {
          node_span.Fail(r.status().message());
          return {{"status", "failed"}, {"success", false}, {"output", nullptr},
                  {"error", r.status().message()}, {"outcome", "bad_request"}};
        }
        json out = {{"status", (*r)["success"].get<bool>() ? "ok" : "failed"},
                    {"success", (*r)["success"]}, {"output", (*r)["output"]},
                    {"error", r->value("error", json(nullptr))},
                    {"outcome", (*r)["success"].get<bool>() ? "ok" : "exception"},
                    {"nodes", (*r)["nodes"]}};
        if (!(*r)["success"].get<bool>()) node_span.Fail(out["error"].is_string() ? out["error"].get<std::string>() : "failed");
        return out;
      }
      auto r = nodes_.Run(node, handler, span);
      if (!r.ok()) {
        return {{"status", "failed"}, {"success", false}, {"output", nullptr},
                {"error", r.status().message()}, {"outcome", "bad_request"}};
      }
      json out = r->ToJson();
      out["status"] = r->success ? "ok" : "failed";
      return out;
    };

    for (size_t i = 0; i < runnable.size(); i += options_.parallelism) {
      std::vector<std::future<json>> running;
      size_t end = std::min(runnable.size(), i + std::max<size_t>(1, options_.parallelism));
      for (size_t k = i + 1; k < end; ++k) {
        running.push_back(std::async(std::launch::async, run_one, k));
      }
      json first = run_one(i);  // this thread takes one too
      results[runnable[i]->id] = std::move(first);
      for (size_t k = i + 1; k < end; ++k) results[runnable[k]->id] = running[k - i - 1].get();
    }
  }

  json nodes = json::object();
  json outputs = json::object();
  std::string error;
  for (const auto& s : specs) {  // in the workflow's order: the first failure is reported
    json& r = results[s.id];
    if (r["status"] == "ok") outputs[s.id] = r["output"];
    if (r["status"] == "failed" && failed_node.empty()) {
      failed_node = s.id;
      error = "node '" + s.id + "' failed: " +
              (r.contains("error") && r["error"].is_string() ? r["error"].get<std::string>()
                                                             : std::string("unknown error"));
    }
    nodes[s.id] = std::move(r);
  }
  json out = {
      {"success", failed_node.empty()},
      {"outputs", outputs},
      {"nodes", nodes},
      {"failed_node", failed_node.empty() ? json(nullptr) : json(failed_node)},
      {"error", failed_node.empty() ? json(nullptr) : json(error)},
      {"duration_ms", std::chrono::duration<double, std::milli>(
                          std::chrono::steady_clock::now() - start).count()},
  };
  out["output"] = workflow.contains("output") && workflow["output"].is_string()
                      ? outputs.value(workflow["output"].get<std::string>(), json(nullptr))
                      : outputs;
  span.Set("rlmbox.outcome", failed_node.empty() ? "ok" : "failed");
  if (!failed_node.empty()) {
    span.Set("rlmbox.workflow.failed_node", failed_node);
    span.Fail(error);
  }
  return out;
}

}  // namespace rlmbox::nodes
