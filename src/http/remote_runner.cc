#include "http/remote_runner.h"

#include <httplib.h>

#include <future>
#include <mutex>
#include <utility>

#include <nlohmann/json.hpp>
#include "base/bounded_json.h"

namespace rlmbox::http {
namespace {

using nlohmann::json;

std::unique_ptr<httplib::Client> NewClient(const RemoteRunnerOptions& o) {
  auto cli = std::make_unique<httplib::Client>(o.base_url);
  cli->set_tcp_nodelay(true);
  cli->set_connection_timeout(5, 0);
  cli->set_read_timeout(900, 0);
  cli->set_keep_alive(true);
  if (!o.token.empty()) cli->set_bearer_token_auth(o.token.c_str());
  return cli;
}

// The execution plane's error message from a non-200 reply.
Status ErrorFrom(const httplib::Result& r, const std::string& what) {
  if (!r) return Unavailable("the execution plane is unreachable (" + what + ": " + to_string(r.error()) + ")");
  json j = ParseBoundedJson(r->body, kGuestJsonLimits).value_or(json());
  std::string msg = j.is_object() && j.contains("error") && j["error"].is_string()
                        ? j["error"].get<std::string>()
                        : "HTTP " + std::to_string(r->status);
  if (r->status == 404) return NotFound(msg);
  if (r->status == 400 || r->status == 413) return InvalidArgument(msg);
  return Unavailable("the execution plane refused " + what + ": " + msg);
}

engine::ExecutionResult ResultFromJson(const json& j) {
  engine::ExecutionResult r;
  r.success = j.value("success", false);
  r.stdout_text = j.value("stdout", "");
  r.stderr_text = j.value("stderr", "");
  if (j.contains("locals") && j["locals"].is_object()) r.locals = j["locals"];
  if (j.contains("error") && j["error"].is_string()) r.error = j["error"].get<std::string>();
  r.execution_time_s = j.value("execution_time", 0.0);
  r.outcome = engine::OutcomeFromName(j.value("outcome", "crashed")).value_or(engine::Outcome::kCrashed);
  r.execution_id = j.value("execution_id", "");
  r.fuel_used = j.value("fuel_used", uint64_t{0});
  r.fuel_metered = j.contains("fuel_used");
  r.cpu_time_s = j.value("cpu_time", 0.0);
  r.memory_peak_bytes = j.value("memory_peak_bytes", uint64_t{0});
  r.host_calls = j.value("host_calls", 0u);
  if (j.contains("final_answer") && j["final_answer"].is_string()) r.final_answer = j["final_answer"].get<std::string>();
  r.sandbox_reset = j.value("sandbox_reset", false);
  return r;
}

std::optional<engine::HostCallKind> KindFromName(const std::string& s) {
  if (s == "llm_query") return engine::HostCallKind::kLlmQuery;
  if (s == "llm_query_batched") return engine::HostCallKind::kLlmQueryBatched;
  if (s == "rlm_query") return engine::HostCallKind::kRlmQuery;
  if (s == "rlm_query_batched") return engine::HostCallKind::kRlmQueryBatched;
  return std::nullopt;
}

// One host_call event answered with `handler`, posted to `answer_path`.
void Answer(const RemoteRunnerOptions& options, const json& ev, engine::HostCallHandler* handler,
            std::chrono::steady_clock::time_point deadline, const std::string& answer_path) {
  auto kind = KindFromName(ev.value("kind", ""));
  json answer;
  if (handler == nullptr || !kind || !ev.contains("args") || !ev["args"].is_object()) {
    answer = {{"error", "this caller cannot answer that host call"}};
  } else {
    engine::HostCallReply reply = handler->Handle({*kind, ev["args"], deadline});
    if (auto* err = std::get_if<engine::HostCallError>(&reply)) {
      answer = {{"error", err->message}};
    } else {
      answer = {{"result", std::get<json>(reply)}};
    }
  }
  auto cli = NewClient(options);
  auto r = cli->Post(answer_path.c_str(), answer.dump(-1, ' ', false, json::error_handler_t::replace),
                     "application/json");
  (void)r;  // a refused answer (e.g. after the deadline) ends the call on its own
}

}  // namespace

Result<json> StreamWithHostCalls(const RemoteRunnerOptions& options, const std::string& path,
                                 const json& body, engine::HostCallHandler* handler,
                                 std::chrono::steady_clock::time_point deadline,
                                 const std::function<std::string(const json&)>& answer_path) {
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.set_header("Accept", "application/x-ndjson");
  req.set_header("Content-Type", "application/json");
  req.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string buffer;
  std::optional<json> result;
  // Calls are answered on their own threads, so calls that are open at once
  // (a batch, parallel workflow nodes) are answered at once.
  std::vector<std::future<void>> answers;
  auto client = NewClient(options);  // the stream holds this connection
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buffer.append(data, n);
    size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      json ev = ParseBoundedJson(std::string_view(buffer).substr(0, nl), kGuestJsonLimits)
                    .value_or(json());
      buffer.erase(0, nl + 1);
      if (!ev.is_object()) continue;
      const std::string type = ev.value("event", "");
      if (type == "result") {
        result = std::move(ev);
      } else if (type == "host_call") {
        answers.push_back(std::async(std::launch::async, Answer, std::cref(options), ev, handler,
                                     deadline, answer_path(ev)));
      }
    }
    return true;
  };
  auto r = client->send(req);
  for (auto& a : answers) a.wait();
  if (!r) return Unavailable("the execution plane is unreachable (" + to_string(r.error()) + ")");
  if (r->status != 200) return ErrorFrom(r, "the request");
  if (!result) return Unavailable("the execution plane closed the stream without a result");
  return *result;
}

namespace {

// POST /session with `body`: a new session's id and the options that reach
// the instance holding it.
Result<std::pair<RemoteRunnerOptions, std::string>> OpenSession(const RemoteRunnerOptions& options,
                                                                const json& body) {
  auto cli = NewClient(options);
  auto r = cli->Post("/session", body.dump(), "application/json");
  if (!r || r->status != 200) return ErrorFrom(r, "a new session");
  json j = ParseBoundedJson(r->body, kGuestJsonLimits).value_or(json());
  if (!j.is_object() || !j.contains("session_id") || !j["session_id"].is_string()) {
    return Internal("a malformed session reply");
  }
  // Behind a load balancer (a Kubernetes Service over several pods), the
  // instance that holds the session names its own address: every later
  // request of the session goes there directly.
  RemoteRunnerOptions session_options = options;
  if (j.contains("endpoint") && j["endpoint"].is_string()) {
    std::string endpoint = j["endpoint"].get<std::string>();
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    if (endpoint.rfind("http://", 0) == 0 || endpoint.rfind("https://", 0) == 0) {
      session_options.base_url = endpoint;
    }
  }
  return std::make_pair(std::move(session_options), j["session_id"].get<std::string>());
}

class RemoteRunner : public rlm::CodeRunner {
 public:
  RemoteRunner(RemoteRunnerOptions o, std::string session_id)
      : options_(std::move(o)), session_(std::move(session_id)), cli_(NewClient(options_)) {}

  ~RemoteRunner() override {
    (void)cli_->Delete(("/session/" + session_).c_str());
    if (!checkpoint_.empty()) (void)cli_->Delete(("/snapshots/" + checkpoint_).c_str());
  }

  // A snapshot on the execution plane (sealed, in its store); the previous
  // checkpoint is deleted.
  Status Checkpoint() override {
    auto r = cli_->Post(("/session/" + session_ + "/snapshot").c_str(), "{}", "application/json");
    if (!r || r->status != 200) return ErrorFrom(r, "a checkpoint");
    json j = ParseBoundedJson(r->body, kGuestJsonLimits).value_or(json());
    if (!j.is_object() || !j.contains("snapshot_id") || !j["snapshot_id"].is_string()) {
      return Internal("a malformed snapshot reply");
    }
    std::string previous;
    {
      std::lock_guard lock(mu_);
      previous = std::exchange(checkpoint_, j["snapshot_id"].get<std::string>());
    }
    if (!previous.empty()) (void)cli_->Delete(("/snapshots/" + previous).c_str());
    return Status::Ok();
  }

  // A session restored from the checkpoint, on the instance that holds the
  // parent (its store has the snapshot even when it is not shared).
  Result<std::unique_ptr<rlm::CodeRunner>> ForkCheckpoint() override {
    std::string checkpoint;
    {
      std::lock_guard lock(mu_);
      checkpoint = checkpoint_;
    }
    if (checkpoint.empty()) return FailedPrecondition("the parent REPL has no checkpoint");
    ASSIGN_OR_RETURN(auto opened, OpenSession(options_, {{"from_snapshot", checkpoint}}));
    return std::unique_ptr<rlm::CodeRunner>(
        new RemoteRunner(std::move(opened.first), std::move(opened.second)));
  }

  Status SetContext(const engine::ContextValue& context) override {
    const std::string path = "/session/" + session_ + "/context";
    if (context.kind == engine::ContextValue::Kind::kText) {
      auto r = cli_->Put(path.c_str(), context.data, "text/plain");
      if (!r || r->status != 200) return ErrorFrom(r, "the context");
      return Status::Ok();
    }
    json body = {{"context", ParseBoundedJson(context.data, kRequestJsonLimits).value_or(json())}};
    if (body["context"].is_discarded()) return InvalidArgument("context is not valid JSON");
    auto r = cli_->Put(path.c_str(), body.dump(), "application/json");
    if (!r || r->status != 200) return ErrorFrom(r, "the context");
    return Status::Ok();
  }

  Result<engine::ExecutionResult> Run(const std::string& code, std::chrono::milliseconds timeout,
                                      engine::HostCallHandler* handler) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    json body = {{"code", code}, {"timeout", static_cast<double>(timeout.count()) / 1000.0}};
    ASSIGN_OR_RETURN(
        json event,
        StreamWithHostCalls(options_, "/session/" + session_ + "/execute", body, handler, deadline,
                            [this](const json& ev) {
                              return "/session/" + session_ + "/calls/" + ev.value("call_id", "");
                            }));
    auto* result = &event;
    if (result->contains("code") && !result->contains("success")) {
      return Unavailable("the execution plane failed: " + result->value("error", std::string("unknown")));
    }
    return ResultFromJson(*result);
  }

  Result<std::string> VariableText(const std::string& name,
                                   std::chrono::milliseconds timeout) override {
    const std::string path = "/session/" + session_ + "/vars/" + name +
                             "?timeout=" + std::to_string(static_cast<double>(timeout.count()) / 1000.0);
    auto r = cli_->Get(path.c_str());
    if (!r || r->status != 200) return ErrorFrom(r, "the variable");
    json j = ParseBoundedJson(r->body, kGuestJsonLimits).value_or(json());
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) {
      return Internal("a malformed variable reply");
    }
    return j["text"].get<std::string>();
  }

 private:
  const RemoteRunnerOptions options_;  // reaching the instance that holds the session
  const std::string session_;
  std::unique_ptr<httplib::Client> cli_;
  std::mutex mu_;           // children fork concurrently (rlm_query_batched)
  std::string checkpoint_;  // snapshot id; guarded by mu_
};

class RemoteRunnerFactory : public rlm::CodeRunnerFactory {
 public:
  explicit RemoteRunnerFactory(RemoteRunnerOptions o) : options_(std::move(o)) {}

  Result<std::unique_ptr<rlm::CodeRunner>> NewRunner() override {
    ASSIGN_OR_RETURN(auto opened, OpenSession(options_, {{"profile", "rlm"}}));
    return std::unique_ptr<rlm::CodeRunner>(
        new RemoteRunner(std::move(opened.first), std::move(opened.second)));
  }
  std::string name() const override { return options_.backend_name; }

 private:
  const RemoteRunnerOptions options_;
};

}  // namespace

Result<std::unique_ptr<rlm::CodeRunnerFactory>> NewRemoteRunnerFactory(RemoteRunnerOptions options) {
  if (options.base_url.rfind("http://", 0) != 0 && options.base_url.rfind("https://", 0) != 0) {
    return InvalidArgument("the execution plane URL must start with http:// (got '" +
                           options.base_url + "')");
  }
  while (!options.base_url.empty() && options.base_url.back() == '/') options.base_url.pop_back();
  return std::unique_ptr<rlm::CodeRunnerFactory>(new RemoteRunnerFactory(std::move(options)));
}

bool RemoteReady(const RemoteRunnerOptions& options) {
  auto cli = NewClient(options);
  cli->set_read_timeout(2, 0);
  auto r = cli->Get("/ready");
  return r && r->status == 200;
}

}  // namespace rlmbox::http
