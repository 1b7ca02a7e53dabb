#include "http/inference_server.h"

#include <httplib.h>

#include <fstream>

#include "base/bounded_json.h"
#include "http/http_status.h"
#include "http/json_body.h"
#include "nodes/tracing.h"
#include "service/document.h"
#include "service/log.h"
#include "service/metrics.h"
#include "service/session_manager.h"

namespace rlmbox::http {
namespace {

constexpr size_t kHttpThreads = 32;  // connections served at once

using nlohmann::json;
using service::LogLevel;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool TokenMatches(const std::string& auth, const std::string& token) {
  const std::string prefix = "Bearer ";
  if (auth.rfind(prefix, 0) != 0) return false;
  std::string_view given = std::string_view(auth).substr(prefix.size());
  unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) diff |= given[i] ^ token[i % token.size()];
  return diff == 0;
}

// "context" of a request: a str becomes text, anything else JSON.
engine::ContextValue ContextOf(const json& body) {
  if (!body.contains("context") || body["context"].is_null()) return {engine::ContextValue::Kind::kText, ""};
  if (body["context"].is_string()) return {engine::ContextValue::Kind::kText, body["context"].get<std::string>()};
  return {engine::ContextValue::Kind::kJson, Dump(body["context"])};
}

}  // namespace

struct InferenceServer::Impl {
  Impl(rlm::LlmClient& l, rlm::CodeRunnerFactory& r, InferenceServerOptions o)
      : llm(l), runners(r), options(std::move(o)) {}

  void Reply(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(Dump(body), "application/json");
  }
  void ReplyError(httplib::Response& res, const Status& s) {
    metrics.ObserveHostError(std::string(StatusCodeName(s.code())));
    Reply(res, HttpStatusFor(s), json{{"error", s.message()}, {"code", StatusCodeName(s.code())}});
  }

  Result<json> Body(const httplib::Request& req) {
    return ParseJsonBody(req.body);
  }

  struct Ran {
    rlm::RlmResult result;
    std::string model;
    int max_depth = 0;
  };

  // Runs one RLM. Errors: kInvalidArgument for a bad model / max_depth.
  Result<Ran> RunRlm(const std::string& route, const std::string& query,
                                const engine::ContextValue& context, const json& body,
                                std::string* trajectory_id) {
    rlm::RlmOptions o = options.rlm;
    if (body.contains("model") && !body["model"].is_null()) {
      if (!body["model"].is_string() || body["model"].get<std::string>().empty()) {
        return InvalidArgument("model must be a non-empty string");
      }
      o.root_model = body["model"];
    }
    if (body.contains("max_depth") && !body["max_depth"].is_null()) {
      if (!body["max_depth"].is_number_integer() || body["max_depth"].get<int>() < 0 ||
          body["max_depth"].get<int>() > 10) {
        return InvalidArgument("max_depth must be an integer from 0 to 10");
      }
      o.max_depth = body["max_depth"];
    }
    nodes::Span span = nodes::StartSpan("rlm " + route);
    span.Set("rlmbox.rlm.model", o.root_model);
    span.Set("rlmbox.rlm.max_depth", o.max_depth);
    rlm::Rlm loop(llm, runners, o);
    rlm::RlmResult r = loop.Complete(query, context);
    metrics.ObserveInference(route, r);
    if (span.active()) {
      span.Set("rlmbox.rlm.iterations", r.iterations);
      uint64_t calls = 0, input = 0, output = 0;
      for (const auto& [model, u] : r.usage) {
        calls += u.calls;
        input += u.input_tokens;
        output += u.output_tokens;
      }
      span.Set("rlmbox.rlm.model_calls", calls);
      span.Set("rlmbox.rlm.input_tokens", input);
      span.Set("rlmbox.rlm.output_tokens", output);
      if (!r.success) span.Fail(r.error);
      span.End();
    }
    if (!options.trajectory_dir.empty()) {
      *trajectory_id = service::RandomId();
      std::ofstream out(options.trajectory_dir + "/" + *trajectory_id + ".jsonl");
      for (const auto& line : r.trajectory) out << Dump(line) << "\n";
      if (!out) {
        service::LogEvent(LogLevel::kWarning, "trajectory_write_failed", {{"dir", options.trajectory_dir}});
        trajectory_id->clear();
      }
    }
    service::LogEvent(LogLevel::kInfo, "inference",
                      {{"route", route}, {"success", r.success}, {"iterations", r.iterations},
                       {"duration_ms", r.execution_time_s * 1000}, {"model", o.root_model},
                       {"error", r.error}});
    return Ran{std::move(r), o.root_model, o.max_depth};
  }

  void Completion(const httplib::Request& req, httplib::Response& res, const std::string& route) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    if (!(*body).contains("query") || !(*body)["query"].is_string() ||
        (*body)["query"].get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos) {
      return ReplyError(res, InvalidArgument("query is required"));
    }
    std::string trajectory_id;
    auto ran = RunRlm(route, (*body)["query"], ContextOf(*body), *body, &trajectory_id);
    if (!ran.ok()) return ReplyError(res, ran.status());
    const rlm::RlmResult& r = ran->result;
    json out = {{"success", r.success},
                {"answer", r.success ? json(r.answer) : json(nullptr)},
                {"model", ran->model},
                {"max_depth", ran->max_depth},
                {"iterations", r.iterations},
                {"usage", r.UsageJson()},
                {"execution_time", r.execution_time_s}};
    if (!trajectory_id.empty()) out["trajectory_id"] = trajectory_id;
    if (!r.success) out["error"] = r.error;
    Reply(res, 200, out);
  }

  void RunWorkflow(const httplib::Request& req, httplib::Response& res) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    if (!body->contains("workflow")) return ReplyError(res, InvalidArgument("'workflow' is required"));
    json wf = (*body)["workflow"];
    if (wf.is_string()) {
      auto parsed = service::ParseDocument(wf.get<std::string>(), "the workflow");
      if (!parsed.ok()) return ReplyError(res, parsed.status());
      wf = *parsed;
    }
    nodes::ModelCalls calls(llm, options.agent_runners, options.rlm);
    auto out = options.run_workflow(wf, body->value("inputs", json(nullptr)), &calls);
    if (!out.ok()) return ReplyError(res, out.status());
    service::LogEvent(LogLevel::kInfo, "workflow",
                      {{"success", (*out)["success"]}, {"failed_node", (*out)["failed_node"]},
                       {"duration_ms", (*out)["duration_ms"]}});
    Reply(res, 200, *out);
  }

  void ChatCompletions(const httplib::Request& req, httplib::Response& res) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    const json& b = *body;
    if (!b.contains("messages") || !b["messages"].is_array() || b["messages"].empty()) {
      return ReplyError(res, InvalidArgument("messages must be a non-empty list"));
    }
    // The last user message is the query; everything before it is the context.
    std::string query, context;
    const auto& msgs = b["messages"];
    size_t last_user = msgs.size();
    for (size_t i = msgs.size(); i-- > 0;) {
      if (msgs[i].is_object() && msgs[i].value("role", "") == "user") {
        last_user = i;
        break;
      }
    }
    if (last_user == msgs.size() || !msgs[last_user].contains("content") ||
        !msgs[last_user]["content"].is_string()) {
      return ReplyError(res, InvalidArgument("messages need a user message with string content"));
    }
    query = msgs[last_user]["content"];
    for (size_t i = 0; i < last_user; ++i) {
      if (!msgs[i].is_object() || !msgs[i].contains("content") || !msgs[i]["content"].is_string()) continue;
      context += msgs[i].value("role", "user") + ": " + msgs[i]["content"].get<std::string>() + "\n\n";
    }
    if (context.empty()) context = query;
    std::string trajectory_id;
    auto ran = RunRlm("/v1/chat/completions", query, {engine::ContextValue::Kind::kText, context},
                      b, &trajectory_id);
    if (!ran.ok()) return ReplyError(res, ran.status());
    const rlm::RlmResult& r = ran->result;
    if (!r.success) {
      return Reply(res, 502, json{{"error", {{"message", r.error}, {"type", "rlm_error"}}}});
    }
    uint64_t in = 0, out_tokens = 0;
    for (const auto& [m, u] : r.usage) {
      in += u.input_tokens;
      out_tokens += u.output_tokens;
    }
    Reply(res, 200,
          json{{"id", "chatcmpl-" + service::RandomId().substr(0, 24)},
               {"object", "chat.completion"},
               {"created", std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count()},
               {"model", ran->model},
               {"choices", json::array({{{"index", 0},
                                         {"message", {{"role", "assistant"}, {"content", r.answer}}},
                                         {"finish_reason", "stop"}}})},
               {"usage", {{"prompt_tokens", in}, {"completion_tokens", out_tokens},
                          {"total_tokens", in + out_tokens}}}});
  }

  rlm::LlmClient& llm;
  rlm::CodeRunnerFactory& runners;
  InferenceServerOptions options;
  service::Metrics metrics;
  httplib::Server server;
};

InferenceServer::InferenceServer(rlm::LlmClient& llm, rlm::CodeRunnerFactory& runners,
                                 InferenceServerOptions options)
    : impl_(std::make_unique<Impl>(llm, runners, std::move(options))) {
  Impl& s = *impl_;
  s.server.new_task_queue = [] { return new httplib::ThreadPool(kHttpThreads); };
  s.server.set_payload_max_length(s.options.max_body_bytes);
  s.server.set_tcp_nodelay(true);
  s.server.set_read_timeout(60, 0);
  s.server.set_write_timeout(60, 0);
  s.server.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) {
    if (s.options.token.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (TokenMatches(req.get_header_value("Authorization"), s.options.token)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    s.Reply(res, 401, json{{"error", "missing or invalid bearer token"}, {"code", "unauthorized"}});
    return httplib::Server::HandlerResponse::Handled;
  });
  s.server.set_error_handler([&s](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) {
      s.Reply(res, 413, json{{"error", "request body too large"}, {"code", "too_large"}});
    } else {
      s.Reply(res, res.status, json{{"error", "HTTP " + std::to_string(res.status)},
                                    {"code", res.status == 404 ? "not_found" : "bad_request"}});
    }
  });
  s.server.set_exception_handler([&s](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    s.ReplyError(res, Internal("internal error"));
  });
  s.server.Get("/health", [&s](const httplib::Request&, httplib::Response& res) {
    s.Reply(res, 200, json{{"status", "healthy"}});
  });
  s.server.Get("/ready", [&s](const httplib::Request&, httplib::Response& res) {
    const bool ok = !s.options.backend_ready || s.options.backend_ready();
    s.Reply(res, ok ? 200 : 503,
            json{{"status", ok ? "ready" : "not ready"}, {"backend", s.options.backend_name}});
  });
  s.server.Get("/metrics", [&s](const httplib::Request&, httplib::Response& res) {
    res.set_content(s.metrics.Render(), "text/plain; version=0.0.4");
  });
  s.server.Post("/completion", [&s](const httplib::Request& q, httplib::Response& r) {
    s.Completion(q, r, "/completion");
  });
  s.server.Post("/infer", [&s](const httplib::Request& q, httplib::Response& r) {
    s.Completion(q, r, "/infer");
  });
  s.server.Post("/v1/chat/completions", [&s](const httplib::Request& q, httplib::Response& r) {
    s.ChatCompletions(q, r);
  });
  if (s.options.run_workflow) {
    s.server.Post("/workflows/run", [&s](const httplib::Request& q, httplib::Response& r) {
      s.RunWorkflow(q, r);
    });
  }
}

InferenceServer::~InferenceServer() = default;

Status InferenceServer::Run() {
  Impl& s = *impl_;
  if (!s.server.bind_to_port(s.options.host, s.options.port)) {
    return Unavailable("cannot bind " + s.options.host + ":" + std::to_string(s.options.port));
  }
  service::LogEvent(LogLevel::kInfo, "listening",
                    {{"host", s.options.host}, {"port", s.options.port}, {"backend", s.options.backend_name}});
  GuardConnections(s.options.connections, kHttpThreads);
  s.server.listen_after_bind();
  ReleaseConnectionThreads(kHttpThreads);
  return Status::Ok();
}

void InferenceServer::Stop() { impl_->server.stop(); }

}  // namespace rlmbox::http
