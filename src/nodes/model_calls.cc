#include "nodes/model_calls.h"

#include <algorithm>

namespace rlmbox::nodes {

using nlohmann::json;

ModelCalls::ModelCalls(rlm::LlmClient& llm, RunnersFor runners_for, rlm::RlmOptions options)
    : llm_(llm), runners_for_(std::move(runners_for)), options_(std::move(options)) {}

engine::HostCallReply ModelCalls::Handle(const engine::HostCall& call) {
  const std::string model = call.args.contains("model") && call.args["model"].is_string()
                                ? call.args["model"].get<std::string>()
                                : options_.root_model;
  if (std::string why = rlm::CheckGuestModel(options_, model); !why.empty()) {
    return engine::HostCallError{why};
  }
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
    if (limits.contains("memory_mb") && limits["memory_mb"].is_number_unsigned()) {
      o.cell_limits.memory_bytes = limits["memory_mb"].get<uint64_t>() << 20;
    }
    o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        call.deadline - std::chrono::steady_clock::now());
    if (o.timeout.count() <= 0) return engine::HostCallError{"the agent's deadline has passed"};
    o.cell_limits.timeout = std::min(o.cell_limits.timeout, o.timeout);
    std::unique_ptr<rlm::CodeRunnerFactory> runners = runners_for_(o.cell_limits);
    if (runners == nullptr) return engine::HostCallError{"no REPL backend for the agent"};
    rlm::Rlm loop(llm_, *runners, o);
    const json context = call.args.value("context", json::object());
    rlm::RlmResult r = loop.Complete(
        prompt, engine::ContextValue{engine::ContextValue::Kind::kJson, context.dump()});
    if (!r.success) return engine::HostCallError{r.error};
    return json(r.answer);
  }
  return engine::HostCallError{"this host call is not available to workflow nodes"};
}

}  // namespace rlmbox::nodes
