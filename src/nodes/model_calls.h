// ModelCalls: answers the model calls of workflow nodes where the key lives
// (the inference plane, `rlmbox workflow run`): llm_query (llm nodes) with one
// chat completion, rlm_query (agent nodes) with an RLM run under the limits
// the call carries. Thread-safe: parallel nodes call it concurrently.
#pragma once

#include <functional>
#include <memory>

#include "engine/host_door.h"
#include "engine/limits.h"
#include "rlm/llm_client.h"
#include "rlm/rlm.h"

namespace rlmbox::nodes {

class ModelCalls : public engine::HostCallHandler {
 public:
  // The REPLs of an agent's RLM, for cells under `limits`.
  using RunnersFor =
      std::function<std::unique_ptr<rlm::CodeRunnerFactory>(const engine::Limits& limits)>;

  ModelCalls(rlm::LlmClient& llm, RunnersFor runners_for, rlm::RlmOptions options);

  engine::HostCallReply Handle(const engine::HostCall& call) override;

 private:
  rlm::LlmClient& llm_;
  const RunnersFor runners_for_;
  const rlm::RlmOptions options_;
};

}  // namespace rlmbox::nodes
