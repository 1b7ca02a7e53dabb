#include "rlm/in_process_runner.h"

#include <mutex>

namespace rlmbox::rlm {
namespace {

class InProcessRunner : public CodeRunner {
 public:
  InProcessRunner(executor::Executor& executor, std::unique_ptr<executor::Session> session,
                  engine::Limits limits)
      : executor_(executor), session_(std::move(session)), limits_(limits) {}

  Status SetContext(const engine::ContextValue& context) override {
    return session_->SetContext(context, limits_);
  }
  Result<engine::ExecutionResult> Run(const std::string& code, std::chrono::milliseconds timeout,
                                      engine::HostCallHandler* handler) override {
    engine::Limits limits = limits_;
    limits.timeout = timeout;
    return session_->Execute(code, limits, handler);
  }
  Result<std::string> VariableText(const std::string& name,
                                   std::chrono::milliseconds timeout) override {
    engine::Limits limits = limits_;
    limits.timeout = std::min(limits.timeout, timeout);
    ASSIGN_OR_RETURN(nlohmann::json v, session_->GetVar(name, limits));
    if (v.contains("text") && v["text"].is_string()) return v["text"].get<std::string>();
    return NotFound("no variable named '" + name + "'");
  }
  Status Checkpoint() override {
    ASSIGN_OR_RETURN(auto checkpoint, session_->Checkpoint());
    std::lock_guard lock(mu_);
    checkpoint_ = std::move(checkpoint);
    return Status::Ok();
  }
  Result<std::unique_ptr<CodeRunner>> ForkCheckpoint() override {
    std::shared_ptr<const executor::SessionCheckpoint> checkpoint;
    {
      std::lock_guard lock(mu_);
      checkpoint = checkpoint_;
    }
    if (!checkpoint) return FailedPrecondition("the parent REPL has no checkpoint");
    ASSIGN_OR_RETURN(auto session, executor_.SessionFrom(*checkpoint));
    return std::unique_ptr<CodeRunner>(new InProcessRunner(executor_, std::move(session), limits_));
  }

 private:
  executor::Executor& executor_;
  std::unique_ptr<executor::Session> session_;
  const engine::Limits limits_;
  std::mutex mu_;  // children fork concurrently (rlm_query_batched)
  std::shared_ptr<const executor::SessionCheckpoint> checkpoint_;  // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<CodeRunner>> InProcessRunnerFactory::NewRunner() {
  ASSIGN_OR_RETURN(auto session, executor_.CreateSession());
  return std::unique_ptr<CodeRunner>(new InProcessRunner(executor_, std::move(session), limits_));
}

}  // namespace rlmbox::rlm
