#include "cli/workflow_command.h"

#include <filesystem>
#include <iostream>

#include "cli/inference_config.h"
#include "cli/node_config.h"
#include "cli/runtime_paths.h"
#include "engine/engine.h"
#include "executor/executor.h"
#include "http/openai_client.h"
#include "nodes/model_calls.h"
#include "nodes/tracing.h"
#include "nodes/workflow.h"
#include "rlm/in_process_runner.h"
#include "rlm/rlm.h"
#include "service/document.h"
#include "base/bounded_json.h"

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

int Fail(const std::string& message, int code) {
  std::cout << json{{"success", false}, {"error", message}}.dump() << "\n";
  return code;
}

int Run(const WorkflowOptions& o) {
  auto wf = service::ReadDocument(o.file);
  if (!wf.ok()) return Fail(wf.status().message(), 2);
  json inputs = json::object();
  if (!o.inputs.empty()) {
    inputs = ParseBoundedJson(o.inputs, kRequestJsonLimits).value_or(json(json::value_t::discarded));
    if (!inputs.is_object()) return Fail("--inputs must be a JSON object", 2);
  }
  rlm::RlmOptions ro = RlmOptionsFromEnv();
  auto no = NodeOptions(o.profiles_file, o.tools_dir, ro.cell_limits.timeout);
  if (!no.ok()) return Fail(no.status().message(), 2);

  engine::EngineOptions eo;
  eo.guest_dir = o.guest_dir.empty() ? DefaultGuestDir() : std::filesystem::path(o.guest_dir);
  eo.module_cache_dir = DefaultModuleCacheDir();
  eo.memory_budget_bytes = MemoryBudgetBytes(0);
  eo.max_sandboxes = 256;
  auto engine = engine::Engine::Create(eo);
  if (!engine.ok()) return Fail(engine.status().ToString(), 70);
  executor::Executor executor(**engine, executor::Executor::Options{.warm_sandboxes = 2});

  // Without a usable model configuration, llm and agent nodes fail with a
  // clear error; everything else still runs.
  auto llm = http::NewOpenAiClient(LlmOptionsFromEnv());
  std::unique_ptr<nodes::ModelCalls> model_calls;
  if (llm.ok()) {
    model_calls = std::make_unique<nodes::ModelCalls>(
        **llm,
        [&executor](const engine::Limits& limits) {
          return std::make_unique<rlm::InProcessRunnerFactory>(executor, limits);
        },
        ro);
  }

  nodes::InitTracingFromEnv("rlmbox");
  nodes::NodeRunner node_runner(executor, std::move(*no));
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
