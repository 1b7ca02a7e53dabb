#include "executor/executor.h"

namespace rlmbox::executor {

Executor::Executor(engine::Engine& engine, Options options)
    : engine_(engine), pool_(engine, options.warm_sandboxes, options.pool_threads) {}

Executor::~Executor() = default;

Result<engine::ExecutionResult> Executor::Execute(const ExecuteRequest& request) {
  if (request.code.find_first_not_of(" \t\r\n") == std::string::npos) {
    return InvalidArgument("Code is required");
  }
  // A fuel budget needs the metered engine variant, which the pool does not hold.
  ASSIGN_OR_RETURN(auto sandbox,
                   request.limits.fuel > 0 ? engine_.NewSandbox(/*fuel=*/true) : pool_.Acquire());
  if (request.context) {
    Status s = sandbox->SetContext(*request.context, request.limits);
    if (!s.ok()) {
      pool_.Retire(std::move(sandbox));
      return s;
    }
  }
  engine::ExecutionResult result = sandbox->Execute(request.code, request.limits, request.handler,
                                                      request.cell);
  result.sandbox_reset = false;  // stateless: every run starts fresh anyway
  pool_.Retire(std::move(sandbox));
  return result;
}

Result<std::unique_ptr<Session>> Executor::CreateSession(bool fuel) {
  // A session keeps its heap, so new ones are refused (429) once the budget
  // has no room left for one to grow.
  constexpr uint64_t kSessionHeadroom = 32u << 20;
  if (const engine::MemoryBudget& b = engine_.memory_budget(); b.available() < kSessionHeadroom) {
    return ResourceExhausted("the process memory budget (" + std::to_string(b.total() >> 20) +
                             " MiB, RLMBOX_MEMORY_BUDGET_MB) is spent: " +
                             std::to_string(b.available() >> 20) + " MiB left");
  }
  ASSIGN_OR_RETURN(auto sandbox, fuel ? engine_.NewSandbox(/*fuel=*/true) : pool_.Acquire());
  return std::unique_ptr<Session>(new Session(*this, std::move(sandbox), fuel));
}

Session::Session(Executor& executor, std::unique_ptr<engine::Sandbox> sandbox, bool fuel)
    : executor_(executor), sandbox_(std::move(sandbox)), fuel_(fuel) {}

Session::~Session() { executor_.pool().Retire(std::move(sandbox_)); }

Status Session::EnsureSandbox(const engine::Limits& limits) {
  if (sandbox_ && sandbox_->usable()) return Status::Ok();
  executor_.pool().Retire(std::move(sandbox_));
  ASSIGN_OR_RETURN(sandbox_, fuel_ ? executor_.engine().NewSandbox(/*fuel=*/true)
                                   : executor_.pool().Acquire());
  if (context_) return sandbox_->SetContext(*context_, limits);
  return Status::Ok();
}

Result<engine::ExecutionResult> Session::Execute(std::string_view code,
                                                 const engine::Limits& limits,
                                                 engine::HostCallHandler* handler,
                                                 const engine::CellOptions& cell) {
  if (code.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return InvalidArgument("Code is required");
  }
  if (limits.fuel > 0 && !fuel_) {
    return FailedPrecondition(
        "a fuel budget needs a session made with one (limits.fuel when the session is created)");
  }
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureSandbox(limits));
  engine::ExecutionResult result = sandbox_->Execute(code, limits, handler, cell);
  if (!sandbox_->usable()) {
    result.sandbox_reset = true;
    // Replace it now so the next call does not pay for it (best effort: a
    // failure here is retried by the next call).
    (void)EnsureSandbox(limits);
  }
  return result;
}

Status Session::SetContext(engine::ContextValue context, const engine::Limits& limits) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureSandbox(limits));
  RETURN_IF_ERROR(sandbox_->SetContext(context, limits));
  context_ = std::move(context);
  return Status::Ok();
}

Result<nlohmann::json> Session::GetVar(std::string_view name, const engine::Limits& limits) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(EnsureSandbox(limits));
  return sandbox_->GetVar(name, limits);
}

uint64_t Session::memory_bytes() {
  std::lock_guard lock(mu_);
  return sandbox_ ? sandbox_->memory_bytes() : 0;
}

}  // namespace rlmbox::executor
