#include "cli/workflow_command.h"

#include <filesystem>
#include <iostream>

#include "cli/inference_config.h"
#include "cli/runtime_paths.h"
#include "engine/engine.h"
#include "executor/executor.h"
#include "http/openai_client.h"
#include "nodes/tracing.h"
#include "nodes/workflow.h"
#include "rlm/in_process_runner.h"
#include "rlm/rlm.h"
#include "service/document.h"

namespace rlmbox::cli {
namespace {

using nlohmann::json;

struct WorkflowOptions {
  std::string file;
  std::string inputs;  // JSON object
  std::string tools_dir;
  std::string profiles_file;
  size_t parallelism = 2;
  std::string guest_dir;
};

// Answers the model calls of llm nodes (llm_query) and agent nodes
// (rlm_query: an RLM run under the agent profile's limits) with the
// configured model. Thread-safe (parallel nodes call it concurrently).
class ModelCalls : public engine::HostCallHandler {
 public:
  ModelCalls(rlm::LlmClient& llm, executor::Executor& executor, rlm::RlmOptions options)
      : llm_(llm), executor_(executor), options_(std::move(options)) {}

  engine::HostCallReply Handle(const engine::HostCall& call) override {
    const std::string model = call.args.contains("model") && call.args["model"].is_string()
                                  ? call.args["model"].get<std::string>()
                                  : options_.root_model;
    const std::string prompt = call.args.value("prompt", std::string());
    if (call.kind == engine::HostCallKind::kLlmQuery) {
      auto r = llm_.Complete({{"user", prompt}}, model, call.deadline);
      if (!r.ok()) return engine::HostCallError{r.status().message()};
      return json(r->content);
    }
    if (call.kind == engine::HostCallKind::kRlmQuery) {
      rlm::RlmOptions o = options_;
      o.root_model = model;
      const json limits = call.args.value("limits", json::object());
      if (limits.contains("memory_mb") && limits["memory_mb"].is_number()) {
        o.cell_limits.memory_bytes = limits["memory_mb"].get<uint64_t>() << 20;
      }
      o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
          call.deadline - std::chrono::steady_clock::now());
      o.cell_limits.timeout = std::min(o.cell_limits.timeout, o.timeout);
      rlm::InProcessRunnerFactory runners(executor_, o.cell_limits);
      rlm::Rlm loop(llm_, runners, o);
      const json context = call.args.value("context", json::object());
      rlm::RlmResult r = loop.Complete(
          prompt, engine::ContextValue{engine::ContextValue::Kind::kJson, context.dump()});
      if (!r.success) return engine::HostCallError{r.error};
      return json(r.answer);
    }
    return engine::HostCallError{"this host call is not available to workflow nodes"};
  }

 private:
  rlm::LlmClient& llm_;
  executor::Executor& executor_;
  const rlm::RlmOptions options_;
};

int Fail(const std::string& message, int code) {
  std::cout << json{{"success", false}, {"error", message}}.dump() << "\n";
  return code;
}

int Run(const WorkflowOptions& o) {
  auto wf = service::ReadDocument(o.file);
  if (!wf.ok()) return Fail(wf.status().message(), 2);
  json inputs = json::object();
  if (!o.inputs.empty()) {
    inputs = json::parse(o.inputs, nullptr, false);
    if (!inputs.is_object()) return Fail("--inputs must be a JSON object", 2);
  }
  rlm::RlmOptions ro = RlmOptionsFromEnv();
  nodes::NodeRunner::Options no;
  no.profiles = service::BuiltinProfiles(ro.cell_limits.timeout);
  if (!o.profiles_file.empty()) {
    auto config = service::ReadDocument(o.profiles_file);
    Status s = config.ok() ? service::ApplyProfileConfig(*config, o.profiles_file, no.profiles,
                                                         no.ceilings)
                           : config.status();
    if (!s.ok()) return Fail("profile config: " + s.message(), 2);
  }
  if (!o.tools_dir.empty()) {
    auto tools = nodes::ToolRegistry::Load(o.tools_dir);
    if (!tools.ok()) return Fail(tools.status().message(), 2);
    no.tools = std::move(*tools);
  }

  engine::EngineOptions eo;
  eo.guest_dir = o.guest_dir.empty() ? DefaultGuestDir() : std::filesystem::path(o.guest_dir);
  eo.module_cache_dir = DefaultModuleCacheDir();
  eo.max_sandboxes = 256;
  auto engine = engine::Engine::Create(eo);
  if (!engine.ok()) return Fail(engine.status().ToString(), 70);
  executor::Executor executor(**engine, executor::Executor::Options{.warm_sandboxes = 2});

  // Without a usable model configuration, llm and agent nodes fail with a
  // clear error; everything else still runs.
  auto llm = http::NewOpenAiClient(LlmOptionsFromEnv());
  std::unique_ptr<ModelCalls> model_calls;
  if (llm.ok()) model_calls = std::make_unique<ModelCalls>(**llm, executor, ro);

  nodes::InitTracingFromEnv("rlmbox");
  nodes::NodeRunner node_runner(executor, std::move(no));
  nodes::WorkflowOptions wo;
  wo.parallelism = std::max<size_t>(1, o.parallelism);
  wo.base_dir = std::filesystem::absolute(o.file).parent_path().string();
  nodes::WorkflowRunner runner(node_runner, wo);
  auto result = runner.Run(*wf, inputs, model_calls.get(), nodes::Span());
  nodes::ShutdownTracing();
  if (!result.ok()) return Fail(result.status().message(), 2);
  std::cout << result->dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  return (*result)["success"].get<bool>() ? 0 : 1;
}

}  // namespace

void AddWorkflowCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<WorkflowOptions>();
  CLI::App* wf = app.add_subcommand("workflow", "Run workflows of sandboxed nodes");
  wf->require_subcommand(1);
  CLI::App* cmd = wf->add_subcommand("run", "Run a workflow file (YAML or JSON); prints JSON");
  cmd->add_option("file", o->file, "The workflow")->required();
  cmd->add_option("--inputs", o->inputs, "Inputs as a JSON object (override the file's)");
  cmd->add_option("--tools-dir", o->tools_dir, "Directory of tool sources (NAME.py)");
  cmd->add_option("--profiles", o->profiles_file, "Profile config file (JSON or YAML)");
  cmd->add_option("--parallelism", o->parallelism, "Nodes run at once")->capture_default_str();
  cmd->add_option("--guest-dir", o->guest_dir, "Directory holding guest.wasm and lib/");
  cmd->footer(
      "Exit status: 0 when every node succeeded, 1 when a node failed, 2 for a malformed\n"
      "workflow. Environment: LLM_API_KEY, LLM_BASE_URL, LLM_MODEL (llm and agent nodes),\n"
      "OTEL_EXPORTER_OTLP_ENDPOINT (traces over OTLP/HTTP).");
  cmd->callback([o, exit_code] { *exit_code = Run(*o); });
}

}  // namespace rlmbox::cli
