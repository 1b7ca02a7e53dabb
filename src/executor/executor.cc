#include "executor/executor.h"

#include "base/bounded_json.h"

namespace rlmbox::executor {
namespace {

// The session's part of a snapshot's host state:
//   u32 meta_len, meta JSON {"fuel", "context": null|"text"|"json"},
//   u64 outer_len, outer (the caller's), then the context's bytes.
std::string PackHostState(bool fuel, const engine::ContextValue* context, std::string_view outer) {
  nlohmann::json meta = {{"fuel", fuel}, {"context", nullptr}};
  if (context != nullptr) {
    meta["context"] = context->kind == engine::ContextValue::Kind::kText ? "text" : "json";
  }
  const std::string m = meta.dump();
  std::string out;
  out.reserve(12 + m.size() + outer.size() + (context ? context->data.size() : 0));
  auto put = [&out](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put(m.size(), 4);
  out.append(m);
  put(outer.size(), 8);
  out.append(outer);
  if (context != nullptr) out.append(context->data);
  return out;
}

struct HostState {
  bool fuel = false;
  std::shared_ptr<const engine::ContextValue> context;
  std::string outer;
};

Result<HostState> UnpackHostState(std::string_view in) {
  auto bad = [] { return InvalidArgument("the snapshot's session state is malformed"); };
  auto get = [&in](size_t at, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[at + i]);
    return v;
  };
  if (in.size() < 4) return bad();
  const uint64_t meta_len = get(0, 4);
  if (meta_len > 4096 || in.size() - 4 < meta_len + 8) return bad();
  auto meta = ParseBoundedJson(in.substr(4, meta_len), kGuestJsonLimits, "the snapshot");
  if (!meta.ok() || !meta->is_object() || !(*meta)["fuel"].is_boolean()) return bad();
  size_t pos = 4 + meta_len;
  const uint64_t outer_len = get(pos, 8);
  pos += 8;
  if (in.size() - pos < outer_len) return bad();
  HostState h;
  h.fuel = (*meta)["fuel"].get<bool>();
  h.outer.assign(in.substr(pos, outer_len));
  pos += outer_len;
  const nlohmann::json& kind = (*meta)["context"];
  if (kind.is_string()) {
    const bool text = kind.get<std::string>() == "text";
    if (!text && kind.get<std::string>() != "json") return bad();
    h.context = std::make_shared<const engine::ContextValue>(engine::ContextValue{
        text ? engine::ContextValue::Kind::kText : engine::ContextValue::Kind::kJson,
        std::string(in.substr(pos))});
  } else if (!kind.is_null() || pos != in.size()) {
    return bad();
  }
  return h;
}

}  // namespace

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

Result<std::unique_ptr<Session>> Executor::RestoreSession(std::string_view sealed,
                                                          std::string* outer) {
  std::string_view host;  // both point into `sealed`
  ASSIGN_OR_RETURN(engine::SandboxImage image, engine_.Open(sealed, &host));
  ASSIGN_OR_RETURN(HostState state, UnpackHostState(host));
  ASSIGN_OR_RETURN(auto sandbox, engine_.Restore(image, state.fuel));
  std::unique_ptr<Session> session(new Session(*this, std::move(sandbox), state.fuel));
  session->context_ = std::move(state.context);
  if (outer != nullptr) *outer = std::move(state.outer);
  return session;
}

Result<engine::SandboxImage> Session::CaptureBetweenCells(std::unique_lock<std::mutex>& lock,
                                                          std::string_view refusal) {
  if (!lock.owns_lock()) return FailedPrecondition(std::string(refusal));
  if (!sandbox_ || !sandbox_->usable()) {
    return FailedPrecondition("the session's sandbox was stopped; run a cell first");
  }
  return sandbox_->Capture();
}

Result<std::string> Session::Snapshot(std::string_view outer) {
  std::unique_lock lock(mu_, std::try_to_lock);
  ASSIGN_OR_RETURN(engine::SandboxImage image,
                   CaptureBetweenCells(lock, "the session is running a cell; a snapshot is "
                                             "taken between cells"));
  return executor_.engine().Seal(image, PackHostState(fuel_, context_.get(), outer));
}

Result<std::shared_ptr<const SessionCheckpoint>> Session::Checkpoint() {
  std::unique_lock lock(mu_, std::try_to_lock);
  ASSIGN_OR_RETURN(engine::SandboxImage image,
                   CaptureBetweenCells(lock, "the session is running a cell; fork it between cells"));
  return std::make_shared<const SessionCheckpoint>(
      SessionCheckpoint{std::move(image), fuel_, context_});
}

Result<std::vector<std::unique_ptr<Session>>> Session::Fork(size_t count) {
  ASSIGN_OR_RETURN(auto checkpoint, Checkpoint());
  std::vector<std::unique_ptr<Session>> forks;
  forks.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(auto s, executor_.SessionFrom(*checkpoint));
    forks.push_back(std::move(s));
  }
  return forks;
}

Result<std::unique_ptr<Session>> Executor::SessionFrom(const SessionCheckpoint& checkpoint) {
  ASSIGN_OR_RETURN(auto sandbox, engine_.Restore(checkpoint.image, checkpoint.fuel));
  RETURN_IF_ERROR(sandbox->Reseed());
  std::unique_ptr<Session> s(new Session(*this, std::move(sandbox), checkpoint.fuel));
  s->context_ = checkpoint.context;
  return s;
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
  context_ = std::make_shared<const engine::ContextValue>(std::move(context));
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
