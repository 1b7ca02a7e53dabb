#include "http/exec_server.h"
#include "http/exec_server_impl.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string_view>
#include <thread>

#include "base/bounded_json.h"
#include "http/http_status.h"
#include "http/json_body.h"
#include "nodes/tracing.h"
#include "nodes/workflow.h"
#include "service/document.h"
#include "service/execution_gate.h"
#include "service/host_call_bridge.h"
#include "service/log.h"
#include "service/metrics.h"
#include "service/profiles.h"
#include "service/session_manager.h"

namespace rlmbox::http {
namespace {

// Stops an execution once its caller has closed the connection (the caller
// would never see the result; its worker slot goes to others), checked every
// 50 ms while it runs, also during pure computation. Host calls go to `inner`
// (a streamed execution's handler); without one, no model is attached.
class CallerWatch final : public engine::HostCallHandler {
 public:
  explicit CallerWatch(engine::HostCallHandler* inner = nullptr)
      : inner_(inner), fd_(CurrentConnection()) {}
  engine::HostCallReply Handle(const engine::HostCall& call) override {
    if (inner_ != nullptr) return inner_->Handle(call);
    return engine::HostCallError{engine::NoModelAttachedMessage(call.kind)};
  }
  bool cancelled() const override {
    if (inner_ != nullptr && inner_->cancelled()) return true;
    if (fd_ < 0 || gone_) return gone_;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_check_) return false;
    next_check_ = now + std::chrono::milliseconds(50);
    gone_ = ClientGone(fd_);
    return gone_;
  }
  bool gone() const { return gone_; }

 private:
  engine::HostCallHandler* const inner_;
  const int fd_;
  mutable std::chrono::steady_clock::time_point next_check_{};
  mutable bool gone_ = false;
};

using service::LogLevel;

// "context" in a request: a str is bound as text, anything else as JSON. The
// text is moved out of the body (a context can be tens of MB), leaving null.
std::optional<engine::ContextValue> TakeContext(json& body) {
  auto it = body.find("context");
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) {
    std::string text = std::move(it->get_ref<std::string&>());
    *it = nullptr;
    return engine::ContextValue{engine::ContextValue::Kind::kText, std::move(text)};
  }
  engine::ContextValue c{engine::ContextValue::Kind::kJson, Dump(*it)};
  *it = nullptr;
  return c;
}

Result<std::string> CodeFrom(const json& body) {
  if (!body.contains("code") || body["code"].is_null()) return InvalidArgument("Code is required");
  if (!body["code"].is_string()) return InvalidArgument("code must be a string");
  std::string code = body["code"].get<std::string>();
  if (code.find_first_not_of(" \t\r\n") == std::string::npos) {
    return InvalidArgument("Code is required");
  }
  return code;
}

// A span for one execution (a no-op when tracing is off): started before the
// run, finished with its outcome.
nodes::Span StartExecutionSpan(std::string_view kind, const std::string& session_id) {
  nodes::Span span = nodes::StartSpan("sandbox.execute");
  span.Set("rlmbox.execution.kind", kind);
  if (!session_id.empty()) span.Set("rlmbox.session_id", session_id);
  return span;
}

void FinishExecutionSpan(nodes::Span& span, const Result<engine::ExecutionResult>& result) {
  if (!span.active()) return;
  if (!result.ok()) {
    span.Fail(result.status().message());
  } else {
    span.Set("rlmbox.outcome", engine::OutcomeName(result->outcome));
    span.Set("rlmbox.cpu_time", result->cpu_time_s);
    if (result->fuel_metered) span.Set("rlmbox.fuel", result->fuel_used);
    span.Set("rlmbox.memory_peak_bytes", result->memory_peak_bytes);
    span.Set("rlmbox.execution_id", result->execution_id);
    span.Set("rlmbox.host_calls", static_cast<uint64_t>(result->host_calls));
    if (!result->success) span.Fail(result->error.value_or("failed"));
  }
  span.End();
}

bool WantsNdjson(const httplib::Request& req) {
  return req.get_header_value("Accept").find(kNdjson) != std::string::npos;
}


}  // namespace

Result<json> ParseBody(std::string_view body, bool empty_ok) {
  if (body.empty()) {
    if (empty_ok) return json::object();
    return InvalidArgument("a JSON body is required");
  }
  return ParseJsonBody(body);
}

std::optional<std::string> ReadBody(const httplib::Request& req,
                                    const httplib::ContentReader& reader, size_t max_bytes) {
  std::string body;
  const std::string length = req.get_header_value("Content-Length");
  uint64_t declared = 0;
  if (!length.empty() && length.size() <= 20 &&
      length.find_first_not_of("0123456789") == std::string::npos) {
    declared = std::strtoull(length.c_str(), nullptr, 10);
  }
  // A claimed length is only a hint (an address range, not touched until the
  // bytes arrive), and never more than the limit.
  body.reserve(static_cast<size_t>(std::min<uint64_t>(declared, max_bytes)));
  const bool whole = reader([&](const char* data, size_t n) {
    if (body.size() + n > max_bytes) return false;
    body.append(data, n);
    return true;
  });
  if (!whole) return std::nullopt;
  return body;
}

void ExecServer::Impl::RunNodes(const httplib::Request& req, httplib::Response& res,
                                bool workflow) {
  auto body = ParseBody(req, false);
  if (!body.ok()) return ReplyError(res, body.status());
  json wf;
  if (workflow) {
    if (!body->contains("workflow")) return ReplyError(res, InvalidArgument("'workflow' is required"));
    wf = (*body)["workflow"];
    if (wf.is_string()) {
      auto parsed = service::ParseDocument(wf.get<std::string>(), "the workflow");
      if (!parsed.ok()) return ReplyError(res, parsed.status());
      wf = *parsed;
    }
  }
  if (workflow) {
    // Judged before a worker slot is taken: a bad workflow costs no slot.
    if (Status s = workflows.Validate(wf); !s.ok()) {
      if (!WantsNdjson(req)) return ReplyError(res, s);
      // A streamed caller reads its error as the stream's result event.
      const std::string code(StatusCodeName(s.code()));
      metrics.ObserveHostError(code);
      json event = {{"event", "result"}, {"error", s.message()}, {"code", code},
                    {"status", HttpStatusFor(s)}, {"run_id", "run-" + service::RandomId()}};
      res.status = 200;
      res.set_content(Dump(event) + "\n", kNdjson);
      return;
    }
  }
  const json inputs = body->value("inputs", json(nullptr));
  // Runs the node or workflow; a request error becomes {"error","code"}.
  auto run = [this, workflow, wf, inputs, body = *body](engine::HostCallHandler* handler)
      -> std::pair<int, json> {
    Result<json> out = [&]() -> Result<json> {
      if (workflow) return workflows.Run(wf, inputs, handler, nodes::Span());
      auto r = node_runner.Run(body, handler, nodes::Span());
      if (!r.ok()) return r.status();
      return r->ToJson();
    }();
    if (!out.ok()) {
      const std::string code(StatusCodeName(out.status().code()));
      metrics.ObserveHostError(code);
      return {HttpStatusFor(out.status()), json{{"error", out.status().message()}, {"code", code}}};
    }
    return {200, *out};
  };
  if (Status s = gate.Acquire(); !s.ok()) return ReplyError(res, s);
  auto slot = std::make_shared<service::GateSlot>(gate);
  if (!WantsNdjson(req)) {
    auto [status, out] = run(nullptr);
    return Reply(res, status, out);
  }
  // Streamed: model calls (llm and agent nodes) go to the caller as host_call
  // events, answered at POST /runs/{run_id}/calls/{call_id}.
  const std::string run_id = "run-" + service::RandomId();
  res.status = 200;
  res.set_chunked_content_provider(
      kNdjson, [this, run, run_id, slot](size_t, httplib::DataSink& sink) {
        auto write_mu = std::make_shared<std::mutex>();
        auto emit = [&sink, write_mu, run_id](const json& event) {
          json e = event;
          e["run_id"] = run_id;
          std::string line = Dump(e) + "\n";
          std::lock_guard lock(*write_mu);
          return sink.is_writable() && sink.write(line.data(), line.size());
        };
        service::StreamingHostCallHandler handler(run_id, calls, emit, [] {}, [] {});
        CallerWatch watched(&handler);
        auto [status, out] = run(&watched);
        out["event"] = "result";
        if (status != 200) out["status"] = status;
        if (!handler.disconnected() && !watched.gone()) emit(out);
        sink.done();
        return true;
      });
}

void ExecServer::Impl::Execute(const httplib::Request& req, httplib::Response& res) {
  auto body = ParseBody(req, false);
  if (!body.ok()) return ReplyError(res, body.status());
  auto code = CodeFrom(*body);
  if (!code.ok()) return ReplyError(res, code.status());
  auto limits = service::ResolveLimits(*body, profiles, options.ceilings);
  if (!limits.ok()) return ReplyError(res, limits.status());
  CallerWatch caller;
  executor::ExecuteRequest request{*code, TakeContext(*body), *limits, &caller};
  if (Status s = gate.Acquire(); !s.ok()) return ReplyError(res, s);
  nodes::Span span = StartExecutionSpan("stateless", "");
  auto result = [&] {
    service::GateSlot slot(gate);
    return executor.Execute(request);
  }();
  FinishExecutionSpan(span, result);
  if (caller.gone()) service::LogEvent(LogLevel::kInfo, "caller_disconnected", {{"kind", "stateless"}});
  if (!result.ok()) return ReplyError(res, result.status());
  metrics.ObserveExecution(*result, "stateless");
  service::LogExecution(*result, "stateless", "", *code);
  Reply(res, 200, result->ToJson());
}

void ExecServer::Impl::ReplyTooLarge(httplib::Response& res) {
  metrics.ObserveHostError("too_large");
  Reply(res, 413, json{{"error", "request body too large (limit " +
                                     std::to_string(options.max_body_bytes) + " bytes)"},
                       {"code", "too_large"}});
}

void ExecServer::Impl::CreateSession(const httplib::Request& req, std::string_view raw,
                                     httplib::Response& res) {
  auto body = ParseBody(raw, true);
  if (!body.ok()) return ReplyError(res, body.status());
  json& b = *body;
  if (!b.contains("profile")) b["profile"] = "rlm";
  auto limits = service::ResolveLimits(b, profiles, options.ceilings);
  if (!limits.ok()) return ReplyError(res, limits.status());
  std::chrono::milliseconds ttl{0};
  if (b.contains("ttl") && !b["ttl"].is_null()) {
    const double max_s = static_cast<double>(options.max_session_ttl.count()) / 1000.0;
    // NaN and infinities cannot arrive as JSON; anything but a number in
    // (0, max] is refused rather than silently replaced by the default.
    if (!b["ttl"].is_number() || !(b["ttl"].get<double>() > 0) || b["ttl"].get<double>() > max_s) {
      return ReplyError(res, InvalidArgument("ttl must be a number of seconds in (0, " +
                                             std::to_string(static_cast<int64_t>(max_s)) + "]"));
    }
    ttl = std::chrono::milliseconds(std::max<int64_t>(1, static_cast<int64_t>(b["ttl"].get<double>() * 1000)));
  }
  if (b.contains("from_snapshot")) return CreateFromSnapshot(b, ttl, req, res);
  const std::string tenant = TenantOf(req);
  auto entry = sessions.Create(b["profile"].get<std::string>(), *limits, ttl, tenant);
  if (!entry.ok()) return ReplyError(res, entry.status());
  if (auto ctx = TakeContext(b)) {
    service::SessionUse use(*entry);
    auto turn = TakeTurn(**entry);
    Status s = turn.ok() ? (*entry)->session->SetContext(std::move(*ctx), (*entry)->limits)
                         : turn.status();
    if (!s.ok()) {
      (void)sessions.Delete((*entry)->id, tenant);
      return ReplyError(res, s);
    }
  }
  service::LogEvent(LogLevel::kInfo, "session_created", {{"session_id", (*entry)->id}});
  Reply(res, 200, NewSessionReply((*entry)->id));
}

void ExecServer::Impl::SessionExecute(const httplib::Request& req, httplib::Response& res) {
  auto entry = SessionFor(req);
  if (!entry.ok()) return ReplyError(res, entry.status());
  auto body = ParseBody(req, false);
  if (!body.ok()) return ReplyError(res, body.status());
  auto code = CodeFrom(*body);
  if (!code.ok()) return ReplyError(res, code.status());
  // A session's limits come from its profile; a request may still tighten or
  // loosen them within the ceilings.
  json& b = *body;
  b["profile"] = (*entry)->profile;
  auto limits = service::ResolveLimits(b, profiles, options.ceilings);
  if (!limits.ok()) return ReplyError(res, limits.status());
  // A session made with a fuel budget (the metered variant) gives it to every
  // cell that does not name its own.
  if (limits->fuel == 0) limits->fuel = (*entry)->limits.fuel;
  if (WantsNdjson(req)) return StreamSessionExecute(*entry, *code, TakeContext(b), *limits, res);

  service::SessionUse use(*entry);
  auto turn = TakeTurn(**entry);
  if (!turn.ok()) return ReplyError(res, turn.status());
  if (auto ctx = TakeContext(b)) {
    if (Status s = (*entry)->session->SetContext(std::move(*ctx), *limits); !s.ok()) {
      return ReplyError(res, s);
    }
  }
  nodes::Span span = StartExecutionSpan("session", (*entry)->id);
  CallerWatch caller;
  auto result = (*entry)->session->Execute(*code, *limits, &caller);
  turn->reset();
  if (caller.gone()) {
    service::LogEvent(LogLevel::kInfo, "caller_disconnected", {{"session_id", (*entry)->id}});
  }
  FinishExecutionSpan(span, result);
  if (!result.ok()) return ReplyError(res, result.status());
  ++(*entry)->executions;
  metrics.ObserveExecution(*result, "session");
  service::LogExecution(*result, "session", (*entry)->id, *code);
  Reply(res, 200, result->ToJson());
}

void ExecServer::Impl::StreamSessionExecute(std::shared_ptr<service::SessionEntry> entry,
                                            std::string code,
                                            std::optional<engine::ContextValue> context,
                                            engine::Limits limits, httplib::Response& res) {
  // Admission happens before the stream starts so "overloaded" is a real 429
  // (and a context the session cannot bind is a real 400).
  auto turn = TakeTurn(*entry);
  if (!turn.ok()) return ReplyError(res, turn.status());
  if (context) {
    service::SessionUse use(entry);
    if (Status s = entry->session->SetContext(std::move(*context), limits); !s.ok()) {
      return ReplyError(res, s);
    }
  }
  std::shared_ptr<Turn> slot = std::move(*turn);
  res.status = 200;
  res.set_chunked_content_provider(
      kNdjson, [this, entry, code, limits, slot](size_t, httplib::DataSink& sink) {
        auto emit = [&sink](const json& event) {
          std::string line = Dump(event) + "\n";
          return sink.is_writable() && sink.write(line.data(), line.size());
        };
        service::StreamingHostCallHandler handler(
            entry->id, calls, emit, [this] { gate.Release(); }, [this] { gate.AcquireResume(); });
        service::SessionUse use(entry);
        nodes::Span span = StartExecutionSpan("session", entry->id);
        CallerWatch watched(&handler);
        auto result = entry->session->Execute(code, limits, &watched);
        slot->slot.reset();
        FinishExecutionSpan(span, result);
        json event;
        if (result.ok()) {
          ++entry->executions;
          metrics.ObserveExecution(*result, "session");
          service::LogExecution(*result, "session", entry->id, code);
          event = result->ToJson();
        } else {
          metrics.ObserveHostError(std::string(StatusCodeName(result.status().code())));
          event = {{"error", result.status().message()},
                   {"code", StatusCodeName(result.status().code())}};
        }
        event["event"] = "result";
        // The turn ends before the caller hears the result: its next request
        // (a checkpoint, the next cell) must not find the session busy.
        slot->session.unlock();
        if (handler.disconnected() || watched.gone()) {
          service::LogEvent(LogLevel::kInfo, "caller_disconnected", {{"session_id", entry->id}});
        } else {
          emit(event);
        }
        sink.done();
        return true;
      });
}

void ExecServer::Impl::PutContext(const httplib::Request& req, std::string raw,
                                  httplib::Response& res) {
  auto entry = SessionFor(req);
  if (!entry.ok()) return ReplyError(res, entry.status());
  std::optional<engine::ContextValue> ctx;
  const std::string type = req.get_header_value("Content-Type");
  if (type.find("application/json") != std::string::npos) {
    auto body = ParseBody(raw, false);
    if (!body.ok()) return ReplyError(res, body.status());
    ctx = TakeContext(*body);
    if (!ctx) return ReplyError(res, InvalidArgument("the body needs a \"context\""));
  } else {
    ctx = engine::ContextValue{engine::ContextValue::Kind::kText, std::move(raw)};
  }
  service::SessionUse use(*entry);
  auto turn = TakeTurn(**entry);
  if (!turn.ok()) return ReplyError(res, turn.status());
  if (Status s = (*entry)->session->SetContext(std::move(*ctx), (*entry)->limits); !s.ok()) {
    return ReplyError(res, s);
  }
  Reply(res, 200, json{{"status", "ok"}});
}

void ExecServer::Impl::Routes() {
  server.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, json{{"status", "healthy"}});
  });
  server.Get("/ready", [this](const httplib::Request&, httplib::Response& res) {
    if (executor.pool().ready() > 0 || gate.running() > 0) {
      Reply(res, 200, json{{"status", "ready"}});
    } else {
      Reply(res, 503, json{{"status", "not ready"}});
    }
  });
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.Render(), "text/plain; version=0.0.4");
  });
  server.Post("/execute", [this](const httplib::Request& q, httplib::Response& r) { Execute(q, r); });
  server.Post("/session", [this](const httplib::Request& q, httplib::Response& r,
                                 const httplib::ContentReader& reader) {
    auto body = ReadBody(q, reader, options.max_body_bytes);
    if (!body) return ReplyTooLarge(r);
    CreateSession(q, *body, r);
  });
  server.Get("/sessions", [this](const httplib::Request& req, httplib::Response& res) {
    Reply(res, 200, json{{"sessions", sessions.List(TenantOf(req))}});
  });
  server.Post(R"(/session/([^/]+)/execute)",
              [this](const httplib::Request& q, httplib::Response& r) { SessionExecute(q, r); });
  server.Put(R"(/session/([^/]+)/context)",
             [this](const httplib::Request& q, httplib::Response& r,
                    const httplib::ContentReader& reader) {
               auto body = ReadBody(q, reader, options.max_body_bytes);
               if (!body) return ReplyTooLarge(r);
               PutContext(q, std::move(*body), r);
             });
  server.Get(R"(/session/([^/]+)/vars/([^/]+))", [this](const httplib::Request& req,
                                                        httplib::Response& res) {
    auto entry = SessionFor(req);
    if (!entry.ok()) return ReplyError(res, entry.status());
    service::SessionUse use(*entry);
    // str(value) is guest code: it runs under the gate and the limits.
    auto turn = TakeTurn(**entry);
    if (!turn.ok()) return ReplyError(res, turn.status());
    engine::Limits limits = (*entry)->limits;
    if (req.has_param("timeout")) {
      // A caller with its own deadline (the inference plane's FINAL_VAR) may
      // shorten, never lengthen, the lookup's time.
      char* end = nullptr;
      const std::string t = req.get_param_value("timeout");
      const double s = std::strtod(t.c_str(), &end);
      if (end == t.c_str() || *end != '\0' || !(s > 0)) {
        return ReplyError(res, InvalidArgument("timeout must be a positive number of seconds"));
      }
      limits.timeout = std::min(limits.timeout, std::chrono::milliseconds(
                                                    std::max<int64_t>(1, static_cast<int64_t>(std::min(s, 1e6) * 1000))));
    }
    auto v = (*entry)->session->GetVar(req.matches[2].str(), limits);
    turn->reset();
    if (!v.ok()) return ReplyError(res, v.status());
    json out = *v;
    out["name"] = req.matches[2].str();
    Reply(res, 200, out);
  });
  // Answers to host calls: of a session's cell, or of a node / workflow run.
  auto answer_call = [this](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[0].str().rfind("/session/", 0) == 0) {
      if (auto entry = SessionFor(req); !entry.ok()) return ReplyError(res, entry.status());
    }
    auto body = ParseBody(req, false);
    if (!body.ok()) return ReplyError(res, body.status());
    Status s = calls.Answer(req.matches[1].str(), req.matches[2].str(), *body);
    if (!s.ok()) return ReplyError(res, s);
    Reply(res, 200, json{{"status", "ok"}});
  };
  server.Post(R"(/session/([^/]+)/calls/([^/]+))", answer_call);
  server.Post(R"(/runs/([^/]+)/calls/([^/]+))", answer_call);
  server.Post("/nodes/execute",
              [this](const httplib::Request& q, httplib::Response& r) { RunNodes(q, r, false); });
  server.Post("/workflows/run",
              [this](const httplib::Request& q, httplib::Response& r) { RunNodes(q, r, true); });
  server.Delete(R"(/session/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Status s = sessions.Delete(req.matches[1].str(), TenantOf(req));
    if (!s.ok()) return ReplyError(res, s);
    service::LogEvent(LogLevel::kInfo, "session_deleted", {{"session_id", req.matches[1].str()}});
    Reply(res, 200, json{{"status", "ok"}});
  });
}

ExecServer::ExecServer(executor::Executor& executor, ExecServerOptions options)
    : impl_(std::make_unique<Impl>(executor, std::move(options))) {
  Impl& s = *impl_;
  s.metrics.SetGauge("wasm_sessions_active", "Open sessions.",
                     [&s] { return static_cast<double>(s.sessions.size()); });
  s.metrics.SetGauge("wasm_executions_running", "Executions holding a worker slot.",
                     [&s] { return static_cast<double>(s.gate.running()); });
  s.metrics.SetGauge("wasm_executions_queued", "Executions waiting for a worker slot.",
                     [&s] { return static_cast<double>(s.gate.waiting()); });
  s.metrics.SetGauge("wasm_host_calls_pending", "Host calls waiting for the caller's answer.",
                     [&s] { return static_cast<double>(s.calls.pending()); });
  s.metrics.SetGauge("wasm_memory_budget_bytes", "The process-wide memory budget (0: none).",
                     [&s] { return static_cast<double>(s.executor.engine().memory_budget().total()); });
  s.metrics.SetGauge("wasm_memory_budget_used_bytes", "Linear memory charged to the budget.",
                     [&s] { return static_cast<double>(s.executor.engine().memory_budget().used()); });
  s.metrics.SetGauge("wasm_sandboxes_warm", "Primed sandboxes ready in the pool.",
                     [&s] { return static_cast<double>(s.executor.pool().ready()); });
  s.metrics.SetGauge("wasm_sandbox_starts_total", "Sandboxes instantiated.",
                     [&s] { return static_cast<double>(s.executor.pool().stats().created); });
  s.metrics.SetGauge("wasm_sandbox_start_seconds_sum", "Time spent instantiating and priming sandboxes.",
                     [&s] { return s.executor.pool().stats().start_seconds; });

  s.metrics.SetGauge("http_connections_pending", "Connections whose request head has not arrived.",
                     [] { return static_cast<double>(GetConnectionStats().pending); });
  s.metrics.SetGauge("http_connections_active", "Connections handed to an HTTP thread.",
                     [] { return static_cast<double>(GetConnectionStats().active); });
  s.metrics.SetGauge("http_connections_refused_total", "Connections refused by the per-client cap (429).",
                     [] { return static_cast<double>(GetConnectionStats().refused_client_cap); });
  s.metrics.SetGauge("http_connections_timed_out_total",
                     "Connections closed for a request head or body not sent in time.", [] {
                       const auto st = GetConnectionStats();
                       return static_cast<double>(st.head_timeouts + st.read_timeouts);
                     });
  s.metrics.SetGauge("http_connections_idle_closed_total",
                     "Kept-alive connections closed to free a thread for waiting ones.",
                     [] { return static_cast<double>(GetConnectionStats().idle_closed); });
  const size_t threads = s.options.http_threads;
  s.server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.server.set_payload_max_length(s.options.max_body_bytes);
  s.server.set_tcp_nodelay(true);  // no 40 ms Nagle/delayed-ACK stall per response
  s.server.set_keep_alive_max_count(10'000);
  s.server.set_keep_alive_timeout(30);
  s.server.set_read_timeout(30, 0);
  s.server.set_write_timeout(30, 0);
  s.server.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) {
    if (!s.tenants.auth_required() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (auth.rfind(prefix, 0) == 0 && s.tenants.Find(std::string_view(auth).substr(prefix.size()))) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    s.metrics.ObserveHostError("unauthorized");
    res.set_header("WWW-Authenticate", "Bearer");
    s.Reply(res, 401, json{{"error", "missing or invalid bearer token"}, {"code", "unauthorized"}});
    return httplib::Server::HandlerResponse::Handled;
  });
  s.server.set_error_handler([&s](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) {
      s.ReplyTooLarge(res);
    } else if (res.status == 400 && !req.has_header("Content-Length") &&
               !req.has_header("Transfer-Encoding")) {
      s.Reply(res, 400, json{{"error", "a " + req.method +
                                           " needs a body with Content-Length (send {} for none)"},
                            {"code", "bad_request"}});
    } else if (res.status == 404) {
      s.Reply(res, 404, json{{"error", "no such route"}, {"code", "not_found"}});
    } else {
      s.Reply(res, res.status, json{{"error", "HTTP " + std::to_string(res.status)},
                                    {"code", "bad_request"}});
    }
  });
  s.server.set_exception_handler(
      [&s](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        service::LogEvent(LogLevel::kError, "internal_error", {{"what", what}});
        s.ReplyError(res, Internal("internal error"));
      });
  s.server.set_logger([&s](const httplib::Request& req, const httplib::Response& res) {
    s.metrics.ObserveHttp(req.method, res.status);
  });
  s.metrics.SetGauge("wasm_sessions_hibernated", "Sessions saved to the session store, not in memory.",
                     [&s] { return static_cast<double>(s.sessions.hibernated()); });
  s.Routes();
  s.SnapshotRoutes();
}

ExecServer::~ExecServer() = default;

Status ExecServer::Run() {
  Impl& s = *impl_;
  int port = s.options.port;
  if (port == 0) {
    port = s.server.bind_to_any_port(s.options.host);
    if (port <= 0) return Unavailable("cannot bind " + s.options.host);
  } else if (!s.server.bind_to_port(s.options.host, port)) {
    return Unavailable("cannot bind " + s.options.host + ":" + std::to_string(port));
  }
  s.bound_port = port;
  service::LogEvent(LogLevel::kInfo, "listening", {{"host", s.options.host}, {"port", port}});
  GuardConnections(s.options.connections, s.options.http_threads);
  s.server.listen_after_bind();
  ReleaseConnectionThreads(s.options.http_threads);
  // Stopping (SIGTERM): every session goes to the store, to resume on restart.
  if (s.sessions.store().on_disk()) {
    const auto t0 = std::chrono::steady_clock::now();
    const size_t saved = s.sessions.HibernateAll();
    service::LogEvent(LogLevel::kInfo, "sessions_saved",
                      {{"sessions", saved},
                       {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now() - t0)
                                  .count()}});
  }
  return Status::Ok();
}

void ExecServer::Stop() { impl_->server.stop(); }

int ExecServer::port() const { return impl_->bound_port.load(); }

}  // namespace rlmbox::http
