#include "rlm/in_process_runner.h"

namespace rlmbox::rlm {
namespace {

class InProcessRunner : public CodeRunner {
 public:
  InProcessRunner(std::unique_ptr<executor::Session> session, engine::Limits limits)
      : session_(std::move(session)), limits_(limits) {}

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

 private:
  std::unique_ptr<executor::Session> session_;
  const engine::Limits limits_;
};

}  // namespace

Result<std::unique_ptr<CodeRunner>> InProcessRunnerFactory::NewRunner() {
  ASSIGN_OR_RETURN(auto session, executor_.CreateSession());
  return std::unique_ptr<CodeRunner>(new InProcessRunner(std::move(session), limits_));
}

}  // namespace rlmbox::rlm
