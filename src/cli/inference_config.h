// The inference plane's configuration from the environment, shared by
// `rlmbox complete` and `rlmbox serve`, and the REPL backend it selects:
// WASM_MANAGER_SERVICE_URL -> sidecar sessions; WASM_SERVICE_URL -> remote
// execution plane; neither -> an in-process sandbox (design §5.2).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "engine/engine.h"
#include "executor/executor.h"
#include "http/openai_client.h"
#include "http/remote_runner.h"
#include "rlm/rlm.h"

namespace rlmbox::cli {

// LLM_BASE_URL, LLM_API_KEY.
http::OpenAiClientOptions LlmOptionsFromEnv();
// LLM_MODEL, LLM_RECURSIVE_MODEL, MAX_DEPTH, MAX_ITERATIONS, EXECUTION_TIMEOUT.
rlm::RlmOptions RlmOptionsFromEnv();

struct Backend {
  std::string name;  // in_process | sidecar | remote
  std::unique_ptr<engine::Engine> engine;        // in-process only
  std::unique_ptr<executor::Executor> executor;  // in-process only
  std::unique_ptr<rlm::CodeRunnerFactory> runners;
  std::function<bool()> ready;
  std::optional<http::RemoteRunnerOptions> remote;  // sidecar / remote only
};

// Errors: those of Engine::Create (in-process) or a malformed URL.
Result<std::unique_ptr<Backend>> MakeBackend(const rlm::RlmOptions& options,
                                             const std::string& guest_dir);

}  // namespace rlmbox::cli
