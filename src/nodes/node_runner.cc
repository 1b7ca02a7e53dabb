#include "nodes/node_runner.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace rlmbox::nodes {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using engine::CellOptions;

const char* const kPolicyRefusal = "PolicyViolation: allowed_imports:";

Result<std::string> RequiredString(const json& node, const char* field, const std::string& type) {
  if (!node.contains(field) || !node[field].is_string() ||
      node[field].get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos) {
    return InvalidArgument(type + " nodes need a non-empty string '" + field + "'");
  }
  return node[field].get<std::string>();
}

void AddUsage(NodeResult& total, const engine::ExecutionResult& r) {
  total.duration_ms += r.execution_time_s * 1000.0;
  total.fuel += r.fuel_used;
  total.cpu_ms += r.cpu_time_s * 1000.0;
  total.memory_peak_bytes = std::max(total.memory_peak_bytes, r.memory_peak_bytes);
  total.stdout_text += r.stdout_text;
  total.stderr_text += r.stderr_text;
}

// A failed execution as the node's result.
NodeResult Failed(NodeResult base, const engine::ExecutionResult& r) {
  base.success = false;
  base.outcome = std::string(engine::OutcomeName(r.outcome));
  base.error = r.error.value_or(base.outcome);
  return base;
}

NodeResult FailedWith(NodeResult base, std::string outcome, std::string error) {
  base.success = false;
  base.outcome = std::move(outcome);
  base.error = std::move(error);
  return base;
}

}  // namespace

const std::vector<std::string>& NodeTypes() {
  static const std::vector<std::string> types = {"code", "condition", "loop",
                                                 "tool", "llm",       "agent"};
  return types;
}

json NodeResult::ToJson() const {
  json usage = {{"duration_ms", duration_ms}, {"cpu_ms", cpu_ms},
                {"memory_peak_bytes", memory_peak_bytes}};
  if (fuel > 0) usage["fuel"] = fuel;  // only under a fuel budget
  return {
      {"success", success},
      {"output", output},
      {"error", error ? json(*error) : json(nullptr)},
      {"outcome", outcome},
      {"usage", std::move(usage)},
      {"stdout", stdout_text},
      {"stderr", stderr_text},
  };
}

// ---------------------------------------------------------------- tools

Result<ToolRegistry> ToolRegistry::Load(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("tools directory " + dir + " does not exist");
  ToolRegistry registry;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".py") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    registry.sources_[entry.path().stem().string()] = text.str();
  }
  return registry;
}

const std::string* ToolRegistry::Find(const std::string& name) const {
  auto it = sources_.find(name);
  return it == sources_.end() ? nullptr : &it->second;
}

std::vector<std::string> ToolRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : sources_) out.push_back(name);
  return out;
}

// ---------------------------------------------------------------- runner

struct NodeRunner::Prepared {
  std::string type;
  std::string profile;
  engine::Limits limits;
  std::optional<std::vector<std::string>> allowed_imports;
  json context = json::object();
};

NodeRunner::NodeRunner(executor::Executor& executor, Options options)
    : executor_(executor), options_(std::move(options)) {}

Result<NodeRunner::Prepared> NodeRunner::Prepare(const json& node) const {
  if (!node.is_object()) return InvalidArgument("a node must be a JSON object");
  if (!node.contains("type") || !node["type"].is_string()) {
    return InvalidArgument("a node needs a 'type' (one of code, condition, loop, tool, llm, agent)");
  }
  Prepared p;
  p.type = node["type"].get<std::string>();
  const auto& types = NodeTypes();
  if (std::find(types.begin(), types.end(), p.type) == types.end()) {
    return InvalidArgument("unknown node type '" + p.type +
                           "' (one of code, condition, loop, tool, llm, agent)");
  }
  p.profile = p.type;
  if (node.contains("profile") && !node["profile"].is_null()) {
    if (!node["profile"].is_string()) return InvalidArgument("profile must be a string");
    p.profile = node["profile"].get<std::string>();
  }
  json limits_request = {{"profile", p.profile}};
  if (node.contains("limits")) limits_request["limits"] = node["limits"];
  ASSIGN_OR_RETURN(p.limits, service::ResolveLimits(limits_request, options_.profiles,
                                                    options_.ceilings));
  // The operator's lists bind: the node type's profile and the one the
  // request names (a request cannot escape its type's list by naming another
  // profile). A request's own list may only narrow them.
  std::vector<const service::Profile*> binding;
  for (const std::string& name : {p.type, p.profile}) {
    const service::Profile* prof = service::FindProfile(options_.profiles, name);
    if (prof != nullptr && prof->allowed_imports) binding.push_back(prof);
  }
  auto permitted = [&](const std::string& module) -> const service::Profile* {
    for (const service::Profile* prof : binding) {
      const auto& list = *prof->allowed_imports;
      if (std::find(list.begin(), list.end(), module) == list.end()) return prof;
    }
    return nullptr;
  };
  if (!binding.empty()) p.allowed_imports = binding.back()->allowed_imports;
  if (binding.size() == 2) {  // both bind: what both allow
    std::vector<std::string> both;
    for (const auto& m : *binding[1]->allowed_imports) {
      if (permitted(m) == nullptr) both.push_back(m);
    }
    p.allowed_imports = std::move(both);
  }
  if (node.contains("allowed_imports") && !node["allowed_imports"].is_null()) {
    const json& list = node["allowed_imports"];
    if (!list.is_array()) return InvalidArgument("allowed_imports must be a list of module names");
    std::vector<std::string> modules;
    for (const auto& item : list) {
      if (!item.is_string()) return InvalidArgument("allowed_imports must be a list of module names");
      const std::string name = item.get<std::string>();
      if (const service::Profile* refusing = permitted(name)) {
        return InvalidArgument("allowed_imports: '" + name + "' is not allowed by the '" +
                               refusing->name + "' profile");
      }
      modules.push_back(name);
    }
    p.allowed_imports = std::move(modules);
  }
  if (node.contains("context") && !node["context"].is_null()) {
    if (!node["context"].is_object()) return InvalidArgument("context must be a JSON object");
    p.context = node["context"];
  }
  return p;
}

Result<engine::ExecutionResult> NodeRunner::Execute(const std::string& code, const Prepared& p,
                                                    CellOptions cell,
                                                    engine::HostCallHandler* handler,
                                                    const Span& parent) const {
  Span span = parent.Child("sandbox.execute");
  cell.allowed_imports = p.allowed_imports;
  executor::ExecuteRequest request;
  request.code = code;
  request.limits = p.limits;
  request.handler = handler;
  request.cell = std::move(cell);
  auto result = executor_.Execute(request);
  if (!result.ok()) {
    span.Fail(result.status().message());
    return result.status();
  }
  if (result->error && result->error->rfind(kPolicyRefusal, 0) == 0) {
    span.Fail(*result->error);
    return InvalidArgument(result->error->substr(std::string("PolicyViolation: ").size()));
  }
  span.Set("rlmbox.outcome", engine::OutcomeName(result->outcome));
  span.Set("rlmbox.cpu_time", result->cpu_time_s);
  if (result->fuel_metered) span.Set("rlmbox.fuel", result->fuel_used);
  span.Set("rlmbox.memory_peak_bytes", result->memory_peak_bytes);
  span.Set("rlmbox.execution_id", result->execution_id);
  if (!result->success) span.Fail(result->error.value_or("failed"));
  return result;
}

Result<NodeResult> NodeRunner::Run(const json& node, engine::HostCallHandler* handler,
                                   const Span& parent) const {
  ASSIGN_OR_RETURN(Prepared p, Prepare(node));
  Span span = parent.Child("node " + (node.contains("id") && node["id"].is_string()
                                          ? node["id"].get<std::string>()
                                          : p.type));
  span.Set("rlmbox.node.type", p.type);
  span.Set("rlmbox.node.profile", p.profile);
  if (node.contains("id") && node["id"].is_string()) {
    span.Set("rlmbox.node.id", node["id"].get<std::string>());
  }

  NodeResult out;
  auto finish = [&](NodeResult r) -> Result<NodeResult> {
    span.Set("rlmbox.outcome", r.outcome);
    span.Set("rlmbox.cpu_ms", r.cpu_ms);
    if (r.fuel > 0) span.Set("rlmbox.fuel", r.fuel);
    span.Set("rlmbox.memory_peak_bytes", r.memory_peak_bytes);
    span.Set("rlmbox.duration_ms", r.duration_ms);
    if (!r.success) span.Fail(r.error.value_or(r.outcome));
    return r;
  };

  if (p.type == "loop" || p.type == "llm" || p.type == "agent") {
    NodeResult r = p.type == "loop" ? RunLoop(node, p, handler, span)
                                    : RunModelCall(node, p, handler, span);
    // A malformed field is the request's fault, as for the other types.
    if (r.outcome == "bad_request") return InvalidArgument(r.error.value_or("bad request"));
    return finish(std::move(r));
  }

  CellOptions cell;
  cell.vars = p.context;
  std::string code;
  if (p.type == "code") {
    ASSIGN_OR_RETURN(code, RequiredString(node, "code", p.type));
    cell.mode = CellOptions::Mode::kNode;
  } else if (p.type == "condition") {
    ASSIGN_OR_RETURN(code, RequiredString(node, "expression", p.type));
    cell.mode = CellOptions::Mode::kEval;
  } else {  // tool
    ASSIGN_OR_RETURN(std::string name, RequiredString(node, "tool", p.type));
    const std::string* source = options_.tools.Find(name);
    if (source == nullptr) return NotFound("no tool named '" + name + "'");
    if (node.contains("tool_args") && !node["tool_args"].is_null() &&
        !node["tool_args"].is_object()) {
      return InvalidArgument("tool_args must be a JSON object");
    }
    code = *source;
    cell.mode = CellOptions::Mode::kNode;
    cell.call_function = "execute";
    cell.call_kwargs = node.value("tool_args", json::object());
    if (cell.call_kwargs.is_null()) cell.call_kwargs = json::object();
  }
  ASSIGN_OR_RETURN(engine::ExecutionResult r, Execute(code, p, cell, handler, span));
  AddUsage(out, r);
  if (!r.success) return finish(Failed(out, r));
  out.success = true;
  out.outcome = "ok";
  out.output = r.value.value_or(nullptr);
  if (p.type == "condition" && r.value_type != "bool") {
    out.output = nullptr;
    return finish(FailedWith(out, "exception",
                             "TypeError: a condition must evaluate to a bool, not " +
                                 (r.value_type.empty() ? std::string("nothing") : r.value_type)));
  }
  return finish(out);
}

NodeResult NodeRunner::RunModelCall(const json& node, const Prepared& p,
                                    engine::HostCallHandler* handler, const Span& span) const {
  NodeResult out;
  const auto start = Clock::now();
  const auto deadline = start + p.limits.timeout;
  json model = node.contains("model") && node["model"].is_string() ? node["model"] : json(nullptr);
  engine::HostCall call;
  call.deadline = deadline;
  if (p.type == "llm") {
    auto prompt = RequiredString(node, "prompt", "llm");
    if (!prompt.ok()) return FailedWith(out, "bad_request", prompt.status().message());
    // The template is rendered in the sandbox, against the context.
    CellOptions cell;
    cell.mode = CellOptions::Mode::kTemplate;
    cell.vars = p.context;
    auto r = Execute(*prompt, p, cell, nullptr, span);
    if (!r.ok()) return FailedWith(out, "bad_request", r.status().message());
    AddUsage(out, *r);
    if (!r->success) return Failed(out, *r);
    if (!r->value || !r->value->is_string()) {
      return FailedWith(out, "exception", "the prompt did not render to a str");
    }
    call.kind = engine::HostCallKind::kLlmQuery;
    call.args = {{"prompt", *r->value}, {"model", model}};
  } else {
    auto query = RequiredString(node, "query", "agent");
    if (!query.ok()) return FailedWith(out, "bad_request", query.status().message());
    call.kind = engine::HostCallKind::kRlmQuery;
    // The agent profile's limits travel with the call: the RLM that answers
    // it runs its cells under them, and its whole run under the deadline.
    call.args = {{"prompt", *query},
                 {"model", model},
                 {"context", p.context},
                 {"limits",
                  {{"memory_mb", p.limits.memory_bytes >> 20},
                   {"timeout", static_cast<double>(p.limits.timeout.count()) / 1000.0}}}};
  }
  if (handler == nullptr) {
    return FailedWith(out, "exception",
                      "LLMQueryError: " + p.type +
                          " nodes need a model: run them where host calls are answered "
                          "(an NDJSON caller, the inference plane, or `rlmbox workflow run`)");
  }
  Span call_span = span.Child(p.type == "llm" ? "llm_query" : "rlm_query");
  engine::HostCallReply reply = handler->Handle(call);
  out.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (Clock::now() > deadline) {
    call_span.Fail("timeout");
    return FailedWith(out, "timeout",
                      "TimeoutError: the " + p.type + " node exceeded its time limit of " +
                          std::to_string(p.limits.timeout.count() / 1000.0).substr(0, 5) + " s");
  }
  if (auto* err = std::get_if<engine::HostCallError>(&reply)) {
    call_span.Fail(err->message);
    return FailedWith(out, "exception", "LLMQueryError: " + err->message);
  }
  out.success = true;
  out.outcome = "ok";
  out.output = std::get<json>(reply);
  return out;
}

NodeResult NodeRunner::RunLoop(const json& node, const Prepared& p,
                               engine::HostCallHandler* handler, const Span& span) const {
  NodeResult out;
  out.output = json::array();
  auto body = RequiredString(node, "body", "loop");
  if (!body.ok()) return FailedWith(out, "bad_request", body.status().message());
  const bool has_items = node.contains("items") && !node["items"].is_null();
  const bool has_while = node.contains("while") && !node["while"].is_null();
  if (has_items == has_while) {
    return FailedWith(out, "bad_request", "loop nodes need exactly one of 'items' or 'while'");
  }
  if (has_while && !node["while"].is_string()) {
    return FailedWith(out, "bad_request", "'while' must be a Python expression (a str)");
  }
  if (has_items && !node["items"].is_array() && !node["items"].is_string()) {
    return FailedWith(out, "bad_request",
                      "'items' must be a JSON array or a Python expression (a str)");
  }
  uint64_t max_iterations = 100;
  if (node.contains("max_iterations") && !node["max_iterations"].is_null()) {
    const json& m = node["max_iterations"];
    if (!m.is_number_integer() || m.get<int64_t>() <= 0) {
      return FailedWith(out, "bad_request", "max_iterations must be a positive integer");
    }
    max_iterations = static_cast<uint64_t>(m.get<int64_t>());
    if (max_iterations > options_.max_loop_iterations) {
      return FailedWith(out, "bad_request",
                        "max_iterations above the limit of " +
                            std::to_string(options_.max_loop_iterations));
    }
  }

  // One sandbox for the whole loop: the body's variables carry over between
  // iterations (a while loop's condition sees them); each iteration is its
  // own execution under the loop profile's limits.
  auto session = executor_.CreateSession(/*fuel=*/p.limits.fuel > 0);
  if (!session.ok()) return FailedWith(out, "overloaded", session.status().message());
  // The whole loop, not each iteration, gets the profile's time: iterations
  // run in what is left of it, and none starts once the caller has gone.
  const auto loop_deadline = Clock::now() + p.limits.timeout;
  auto run = [&](const std::string& code, CellOptions cell) -> Result<engine::ExecutionResult> {
    Span s = span.Child("sandbox.execute");
    cell.allowed_imports = p.allowed_imports;
    engine::Limits limits = p.limits;
    limits.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(loop_deadline - Clock::now());
    if (limits.timeout.count() <= 0 || (handler != nullptr && handler->cancelled())) {
      engine::ExecutionResult stopped;
      stopped.outcome = limits.timeout.count() <= 0 ? engine::Outcome::kTimeout : engine::Outcome::kException;
      stopped.error = limits.timeout.count() <= 0
                          ? "TimeoutError: the loop exceeded its " +
                                std::to_string(p.limits.timeout.count()) + " ms time limit"
                          : std::string("CancelledError: the caller went away and the loop was stopped");
      return stopped;
    }
    auto r = (*session)->Execute(code, limits, handler, cell);
    if (r.ok()) {
      s.Set("rlmbox.outcome", engine::OutcomeName(r->outcome));
      s.Set("rlmbox.cpu_time", r->cpu_time_s);
      if (r->fuel_metered) s.Set("rlmbox.fuel", r->fuel_used);
      s.Set("rlmbox.memory_peak_bytes", r->memory_peak_bytes);
      s.Set("rlmbox.execution_id", r->execution_id);
      if (!r->success) s.Fail(r->error.value_or("failed"));
      if (r->error && r->error->rfind(kPolicyRefusal, 0) == 0) {
        return InvalidArgument(r->error->substr(std::string("PolicyViolation: ").size()));
      }
    }
    return r;
  };
  CellOptions eval;
  eval.mode = CellOptions::Mode::kEval;
  eval.vars = p.context;

  json items;
  if (has_items && node["items"].is_array()) {
    items = node["items"];
  } else if (has_items) {
    auto r = run(node["items"].get<std::string>(), eval);
    if (!r.ok()) return FailedWith(out, "bad_request", r.status().message());
    AddUsage(out, *r);
    if (!r->success) return Failed(out, *r);
    if (!r->value || !r->value->is_array()) {
      return FailedWith(out, "exception",
                        "TypeError: 'items' must evaluate to a list or tuple, not " +
                            r->value_type);
    }
    items = *r->value;
  }
  if (has_items && items.size() > max_iterations) {
    return FailedWith(out, "exception",
                      "LoopLimitError: " + std::to_string(items.size()) +
                          " items exceed max_iterations (" + std::to_string(max_iterations) + ")");
  }

  uint64_t output_bytes = 0;
  for (uint64_t i = 0;; ++i) {
    if (has_items && i >= items.size()) break;
    if (has_while) {
      CellOptions check = eval;
      if (i > 0) check.vars = json::object();  // the context is bound once
      auto r = run(node["while"].get<std::string>(), check);
      if (!r.ok()) return FailedWith(out, "bad_request", r.status().message());
      AddUsage(out, *r);
      if (!r->success) return Failed(out, *r);
      if (r->value_type != "bool") {
        return FailedWith(out, "exception",
                          "TypeError: 'while' must evaluate to a bool, not " + r->value_type);
      }
      if (!r->value->get<bool>()) break;
      if (i >= max_iterations) {
        return FailedWith(out, "exception",
                          "LoopLimitError: the loop was still running after max_iterations (" +
                              std::to_string(max_iterations) + ")");
      }
    }
    CellOptions cell;
    cell.mode = CellOptions::Mode::kNode;
    cell.vars = {{"index", i}};
    if (i == 0) cell.vars.update(p.context);
    if (has_items) cell.vars["item"] = items[i];
    auto r = run(*body, cell);
    if (!r.ok()) return FailedWith(out, "bad_request", r.status().message());
    AddUsage(out, *r);
    if (!r->success) {
      NodeResult failed = Failed(out, *r);
      failed.error = "iteration " + std::to_string(i) + ": " + *failed.error;
      return failed;
    }
    // The outputs of all iterations together stay within the output cap.
    json value = r->value.value_or(nullptr);
    output_bytes += value.dump(-1, ' ', false, json::error_handler_t::replace).size();
    if (output_bytes > p.limits.max_output_bytes) {
      out.output = nullptr;
      return FailedWith(out, "output_truncated",
                        "OutputLimitExceeded: the loop's outputs exceeded " +
                            std::to_string(p.limits.max_output_bytes) + " bytes at iteration " +
                            std::to_string(i));
    }
    out.output.push_back(std::move(value));
  }
  out.success = true;
  out.outcome = "ok";
  return out;
}

}  // namespace rlmbox::nodes
