// InferenceServer: `rlmbox serve`, the inference plane's HTTP API (design
// §5.2): POST /completion, POST /infer, POST /v1/chat/completions (OpenAI
// facade), /health, /ready, /metrics. Each request runs one RLM on the
// configured REPL backend. Run() blocks until Stop(); thread-safe Stop().
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "http/conn_guard.h"
#include "rlm/llm_client.h"
#include "nodes/model_calls.h"
#include "rlm/rlm.h"

namespace rlmbox::http {

struct InferenceServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string token;              // RLMBOX_TOKEN: bearer token for every route but /health
  size_t max_body_bytes = 256ull << 20;
  ConnectionLimits connections;   // what a slow or idle client may cost (conn_guard.h)
  std::string trajectory_dir;     // RLM_TRAJECTORY_DIR: one JSONL per request when set
  rlm::RlmOptions rlm;            // defaults; a request may pick model and max_depth
  std::function<bool()> backend_ready;  // /ready
  std::string backend_name;
  // POST /workflows/run: runs a workflow on the REPL backend; llm and agent
  // nodes are answered by `handler` here, where the key is. Unset: no route.
  std::function<Result<nlohmann::json>(const nlohmann::json& workflow, const nlohmann::json& inputs,
                                       engine::HostCallHandler* handler)>
      run_workflow;
  // The REPLs an agent node's RLM runs its cells in, under the given limits.
  nodes::ModelCalls::RunnersFor agent_runners;
};

class InferenceServer {
 public:
  InferenceServer(rlm::LlmClient& llm, rlm::CodeRunnerFactory& runners,
                  InferenceServerOptions options);
  ~InferenceServer();
  Status Run();
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rlmbox::http
