#include "cli/inference_config.h"

#include <cstdlib>
#include <iostream>

#include "cli/runtime_paths.h"
#include "http/remote_runner.h"
#include "rlm/in_process_runner.h"

namespace rlmbox::cli {
namespace {

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

int EnvInt(const char* name, int fallback) {
  const std::string v = Env(name);
  if (v.empty()) return fallback;
  char* end = nullptr;
  long n = std::strtol(v.c_str(), &end, 10);
  if (end == v.c_str() || *end != '\0' || n < 0 || n > 1'000'000) {
    std::cerr << "rlmbox: ignoring " << name << "=" << v << " (not a count)\n";
    return fallback;
  }
  return static_cast<int>(n);
}

}  // namespace

http::OpenAiClientOptions LlmOptionsFromEnv() {
  http::OpenAiClientOptions o;
  o.base_url = Env("LLM_BASE_URL", "https://api.openai.com/v1");
  o.api_key = Env("LLM_API_KEY");
  return o;
}

rlm::RlmOptions RlmOptionsFromEnv() {
  rlm::RlmOptions o;
  o.root_model = Env("LLM_MODEL", "gpt-5");
  o.recursive_model = Env("LLM_RECURSIVE_MODEL");
  {
    std::string list = Env("LLM_ALLOWED_MODELS");
    for (size_t start = 0; start <= list.size();) {
      size_t comma = list.find(',', start);
      if (comma == std::string::npos) comma = list.size();
      std::string name = list.substr(start, comma - start);
      name.erase(0, name.find_first_not_of(" \t"));
      name.erase(name.find_last_not_of(" \t") + 1);
      if (!name.empty()) o.allowed_models.push_back(name);
      start = comma + 1;
    }
  }
  o.max_depth = EnvInt("MAX_DEPTH", 3);
  o.max_iterations = std::max(1, EnvInt("MAX_ITERATIONS", 20));
  o.cell_limits.timeout = std::chrono::seconds(std::max(1, EnvInt("EXECUTION_TIMEOUT", 30)));
  o.cell_limits.memory_bytes = 1024ull << 20;  // contexts can be large
  o.batch_parallelism = static_cast<size_t>(std::max(1, EnvInt("LLM_BATCH_PARALLELISM", 8)));
  o.timeout = std::chrono::seconds(std::max(1, EnvInt("REQUEST_TIMEOUT", 600)));
  o.token_budget = static_cast<uint64_t>(EnvInt("TOKEN_BUDGET", 0));
  o.fork_children = EnvInt("RLM_FORK_CHILDREN", 0) != 0;
  return o;
}

Result<std::unique_ptr<Backend>> MakeBackend(const rlm::RlmOptions& options,
                                             const std::string& guest_dir) {
  auto b = std::make_unique<Backend>();
  const std::string sidecar = Env("WASM_MANAGER_SERVICE_URL");
  const std::string remote = Env("WASM_SERVICE_URL");
  if (!sidecar.empty() || !remote.empty()) {
    http::RemoteRunnerOptions ro;
    ro.base_url = !sidecar.empty() ? sidecar : remote;
    ro.backend_name = !sidecar.empty() ? "sidecar" : "remote";
    ro.token = Env("WASM_SERVICE_TOKEN");
    ASSIGN_OR_RETURN(b->runners, http::NewRemoteRunnerFactory(ro));
    b->name = ro.backend_name;
    b->ready = [ro] { return http::RemoteReady(ro); };
    b->remote = ro;
    return b;
  }
  engine::EngineOptions eo;
  eo.guest_dir = guest_dir.empty() ? DefaultGuestDir() : std::filesystem::path(guest_dir);
  eo.module_cache_dir = DefaultModuleCacheDir();
  eo.memory_budget_bytes = MemoryBudgetBytes(0);
  eo.max_sandboxes = 256;
  ASSIGN_OR_RETURN(b->engine, engine::Engine::Create(eo));
  b->executor = std::make_unique<executor::Executor>(
      *b->engine, executor::Executor::Options{.warm_sandboxes = 2});
  b->runners = std::make_unique<rlm::InProcessRunnerFactory>(*b->executor, options.cell_limits);
  b->name = "in_process";
  b->ready = [] { return true; };
  return b;
}

}  // namespace rlmbox::cli
