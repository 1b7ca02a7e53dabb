#include "cli/serve_command.h"

#include <cstdlib>

#include "cli/inference_config.h"
#include "cli/node_config.h"
#include "cli/runtime_paths.h"
#include "cli/stop_signals.h"
#include "http/inference_server.h"
#include "http/remote_runner.h"
#include "nodes/tracing.h"
#include "nodes/workflow.h"
#include "rlm/in_process_runner.h"
#include "service/log.h"

namespace rlmbox::cli {
namespace {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string guest_dir;
};

int Serve(const ServeOptions& o) {
  if (const char* lvl = std::getenv("LOG_LEVEL")) service::SetLogLevel(service::ParseLogLevel(lvl));
  const sigset_t stop_signals = BlockStopSignals();

  auto llm = http::NewOpenAiClient(LlmOptionsFromEnv());
  if (!llm.ok()) {
    service::LogEvent(service::LogLevel::kError, "config_error", {{"error", llm.status().message()}});
    return 2;
  }
  http::InferenceServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.rlm = RlmOptionsFromEnv();
  if (const char* t = std::getenv("RLMBOX_TOKEN")) so.token = t;
  if (const char* d = std::getenv("RLM_TRAJECTORY_DIR")) so.trajectory_dir = d;
  so.connections = ConnectionLimitsFromEnv();
  if (const char* m = std::getenv("MAX_REQUEST_BYTES")) {
    char* end = nullptr;
    unsigned long long n = std::strtoull(m, &end, 10);
    if (end != m && *end == '\0' && n > 0) so.max_body_bytes = n;
  }
  auto backend = MakeBackend(so.rlm, o.guest_dir);
  if (!backend.ok()) {
    service::LogEvent(service::LogLevel::kError, "backend_failed", {{"error", backend.status().ToString()}});
    return 70;
  }
  so.backend_ready = (*backend)->ready;
  so.backend_name = (*backend)->name;

  // Workflows (docs/nodes.md) run where the backend runs code: in this
  // process, or on the execution plane, whose model calls come back here.
  std::unique_ptr<nodes::NodeRunner> node_runner;
  std::unique_ptr<nodes::WorkflowRunner> workflows;
  if ((*backend)->remote) {
    const http::RemoteRunnerOptions remote = *(*backend)->remote;
    const auto timeout = so.rlm.timeout;
    so.run_workflow = [remote, timeout](const nlohmann::json& wf, const nlohmann::json& inputs,
                                        engine::HostCallHandler* handler) -> Result<nlohmann::json> {
      ASSIGN_OR_RETURN(
          nlohmann::json out,
          http::StreamWithHostCalls(
              remote, "/workflows/run", {{"workflow", wf}, {"inputs", inputs}}, handler,
              std::chrono::steady_clock::now() + timeout, [](const nlohmann::json& ev) {
                return "/runs/" + ev.value("run_id", "") + "/calls/" + ev.value("call_id", "");
              }));
      if (out.contains("status")) {  // the execution plane refused the workflow
        const std::string message = out.value("error", std::string("refused"));
        return out["status"] == 400 ? Status(InvalidArgument(message)) : Unavailable(message);
      }
      out.erase("event");
      out.erase("run_id");
      return out;
    };
    // The agent's REPL sessions use the execution plane's rlm profile (the
    // URL was checked when the backend was made, so this cannot fail).
    so.agent_runners = [remote](const engine::Limits&) -> std::unique_ptr<rlm::CodeRunnerFactory> {
      auto factory = http::NewRemoteRunnerFactory(remote);
      return factory.ok() ? std::move(factory).value() : nullptr;
    };
  } else {
    auto node_options = NodeOptions("", "", so.rlm.cell_limits.timeout);
    if (!node_options.ok()) {
      service::LogEvent(service::LogLevel::kError, "config_error",
                        {{"error", node_options.status().message()}});
      return 2;
    }
    node_runner = std::make_unique<nodes::NodeRunner>(*(*backend)->executor, std::move(*node_options));
    workflows = std::make_unique<nodes::WorkflowRunner>(*node_runner, nodes::WorkflowOptions{});
    so.run_workflow = [&workflows](const nlohmann::json& wf, const nlohmann::json& inputs,
                                   engine::HostCallHandler* handler) {
      return workflows->Run(wf, inputs, handler, nodes::Span());
    };
    executor::Executor* executor = (*backend)->executor.get();
    so.agent_runners = [executor](const engine::Limits& limits) {
      return std::unique_ptr<rlm::CodeRunnerFactory>(
          new rlm::InProcessRunnerFactory(*executor, limits));
    };
  }
  nodes::InitTracingFromEnv("rlmbox");
  http::InferenceServer server(**llm, *(*backend)->runners, so);
  int rc = ServeUntilStopped(stop_signals, [&server] { return server.Run(); },
                             [&server] { server.Stop(); });
  nodes::ShutdownTracing();
  return rc;
}

}  // namespace

void AddServeCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve the inference plane over HTTP (/completion, /infer, /v1/chat/completions)");
  cmd->add_option("--host", o->host, "Address to bind (0.0.0.0 in containers)")->capture_default_str();
  cmd->add_option("--port", o->port, "Port")->capture_default_str();
  cmd->add_option("--guest-dir", o->guest_dir, "Guest directory (in-process backend)");
  cmd->footer(
      "Environment: LLM_API_KEY, LLM_BASE_URL, LLM_MODEL, LLM_RECURSIVE_MODEL, MAX_DEPTH (3),\n"
      "MAX_ITERATIONS (20), EXECUTION_TIMEOUT (30 s per code block), REQUEST_TIMEOUT (600 s),\n"
      "LLM_BATCH_PARALLELISM (8), TOKEN_BUDGET (0 = none), MAX_REQUEST_BYTES (256 MiB),\n"
      "RLM_FORK_CHILDREN (0; 1: rlm_query children start from a fork of the parent's REPL),\n"
      "RLM_TRAJECTORY_DIR, RLMBOX_TOKEN, LOG_LEVEL; RLMBOX_PROFILES, RLMBOX_TOOLS_DIR\n"
      "(workflow nodes, in-process backend); OTEL_EXPORTER_OTLP_ENDPOINT; REPL backend:\n"
      "WASM_MANAGER_SERVICE_URL (sidecar) or WASM_SERVICE_URL (remote; WASM_SERVICE_TOKEN),\n"
      "else an in-process sandbox.");
  cmd->callback([o, exit_code] { *exit_code = Serve(*o); });
}

}  // namespace rlmbox::cli
