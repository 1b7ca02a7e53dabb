#include "cli/complete_command.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>

#include "cli/inference_config.h"
#include "http/openai_client.h"
#include "rlm/rlm.h"

namespace rlmbox::cli {
namespace {

struct CompleteOptions {
  std::string query;
  std::string context;
  std::string context_file;
  bool context_json = false;
  bool json = false;
  std::string trajectory;
  std::string model;
  int max_depth = -1;
  int max_iterations = -1;
  double timeout_s = 600;
  std::string guest_dir;
};

int Fail(bool json, const std::string& message, int code) {
  if (json) {
    std::cout << nlohmann::json{{"success", false}, {"error", message}}.dump() << "\n";
  } else {
    std::cerr << "rlmbox: " << message << "\n";
  }
  return code;
}

int Complete(const CompleteOptions& o) {
  if (o.query.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Fail(o.json, "--query is required and must not be empty", 2);
  }
  engine::ContextValue context{engine::ContextValue::Kind::kText, o.context};
  if (!o.context_file.empty()) {
    std::ifstream in(o.context_file, std::ios::binary);
    if (!in) return Fail(o.json, "cannot read " + o.context_file, 2);
    context.data.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (o.context_json) context.kind = engine::ContextValue::Kind::kJson;

  auto llm = http::NewOpenAiClient(LlmOptionsFromEnv());
  if (!llm.ok()) return Fail(o.json, llm.status().message(), 2);
  rlm::RlmOptions ro = RlmOptionsFromEnv();
  if (!o.model.empty()) ro.root_model = o.model;
  if (o.max_depth >= 0) ro.max_depth = o.max_depth;
  if (o.max_iterations > 0) ro.max_iterations = o.max_iterations;
  ro.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
  auto backend = MakeBackend(ro, o.guest_dir);
  if (!backend.ok()) return Fail(o.json, backend.status().ToString(), 70);
  rlm::Rlm loop(**llm, *(*backend)->runners, ro);

  rlm::RlmResult r = loop.Complete(o.query, context);
  if (!o.trajectory.empty()) {
    std::ofstream out(o.trajectory, std::ios::trunc);
    for (const auto& line : r.trajectory) {
      out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    }
    if (!out) std::cerr << "rlmbox: cannot write the trajectory to " << o.trajectory << "\n";
  }
  if (o.json) {
    nlohmann::json j = {{"success", r.success},
                        {"answer", r.answer},
                        {"model", ro.root_model},
                        {"max_depth", ro.max_depth},
                        {"iterations", r.iterations},
                        {"usage", r.UsageJson()},
                        {"execution_time", r.execution_time_s}};
    if (!r.success) j["error"] = r.error;
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else if (r.success) {
    std::cout << r.answer << "\n";
  } else {
    std::cerr << "rlmbox: " << r.error << "\n";
  }
  return r.success ? 0 : 1;
}

}  // namespace

void AddCompleteCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<CompleteOptions>();
  CLI::App* cmd = app.add_subcommand("complete", "Run a Recursive Language Model on a query");
  cmd->add_option("-q,--query", o->query, "The question");
  cmd->add_option("--context", o->context, "The context, inline");
  cmd->add_option("--context-file", o->context_file, "A file whose content is the context");
  cmd->add_flag("--context-json", o->context_json, "Parse the context as JSON (dict/list)");
  cmd->add_flag("--json", o->json, "Print the full result as JSON");
  cmd->add_option("--trajectory", o->trajectory, "Write the trajectory (JSONL, rlm logger format)");
  cmd->add_option("--model", o->model, "Root model (default $LLM_MODEL or gpt-5)");
  cmd->add_option("--max-depth", o->max_depth, "Recursion depth (default $MAX_DEPTH or 3)");
  cmd->add_option("--max-iterations", o->max_iterations, "Turns (default $MAX_ITERATIONS or 20)");
  cmd->add_option("--timeout", o->timeout_s, "Wall-clock limit for the whole run, seconds")
      ->capture_default_str();
  cmd->add_option("--guest-dir", o->guest_dir, "Directory holding guest.wasm and lib/");
  cmd->footer(
      "Environment: LLM_API_KEY, LLM_BASE_URL (https://api.openai.com/v1), LLM_MODEL,\n"
      "LLM_RECURSIVE_MODEL, MAX_DEPTH, MAX_ITERATIONS, EXECUTION_TIMEOUT (per code block, s);\n"
      "the REPL backend: WASM_MANAGER_SERVICE_URL (sidecar), WASM_SERVICE_URL (remote), else in-process.");
  cmd->callback([o, exit_code] { *exit_code = Complete(*o); });
}

}  // namespace rlmbox::cli
