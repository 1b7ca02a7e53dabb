// Executor: the API the CLI and the services use to run code.
//
// Execute() runs a request on a fresh sandbox from the warm pool and throws the
// sandbox away afterwards, so nothing survives between stateless runs.
// CreateSession() hands out a Session: one long-lived sandbox whose REPL
// namespace persists across Execute() calls.
//
// Thread-safety: all methods may be called concurrently. The Executor must
// outlive its Sessions.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/engine.h"
#include "engine/execution_result.h"
#include "engine/host_door.h"
#include "engine/limits.h"
#include "engine/sandbox.h"
#include "executor/sandbox_pool.h"

namespace rlmbox::executor {

struct ExecuteRequest {
  std::string code;
  std::optional<engine::ContextValue> context;  // bound as `context` before the code runs
  engine::Limits limits;
  engine::HostCallHandler* handler = nullptr;   // answers llm_query & co; may be null
  engine::CellOptions cell;                     // node mode, import policy, variables
};

class Session;
struct SessionCheckpoint;

class Executor {
 public:
  struct Options {
    size_t warm_sandboxes = 2;
    size_t pool_threads = 1;  // background threads instantiating and priming
  };

  Executor(engine::Engine& engine, Options options);
  ~Executor();

  // Errors: kInvalidArgument for empty code or invalid JSON context;
  // kResourceExhausted when no sandbox slot is free or the context does not
  // fit; kInternal for engine faults. A Python exception, a timeout etc. are
  // results, not errors.
  Result<engine::ExecutionResult> Execute(const ExecuteRequest& request);

  // A new session with an empty namespace; `fuel`: on the fuel-metered engine
  // variant, so its cells may have Limits::fuel budgets. Errors:
  // kResourceExhausted when no sandbox slot is free.
  Result<std::unique_ptr<Session>> CreateSession(bool fuel = false);

  // A session restored from sealed snapshot bytes (Session::Snapshot), with
  // the caller's own state that was sealed with it in `outer`. Errors:
  // kInvalidArgument for bytes that are not an authentic snapshot of this
  // guest build (engine/snapshot.h); kResourceExhausted as CreateSession.
  Result<std::unique_ptr<Session>> RestoreSession(std::string_view sealed, std::string* outer);

  // A new session holding `checkpoint`'s state (Session::Checkpoint), with
  // fresh randomness. Thread-safe; one checkpoint may start many sessions.
  // Errors: kResourceExhausted when the slots or the memory budget run out.
  Result<std::unique_ptr<Session>> SessionFrom(const SessionCheckpoint& checkpoint);

  engine::Engine& engine() { return engine_; }
  SandboxPool& pool() { return pool_; }

 private:
  engine::Engine& engine_;
  SandboxPool pool_;
};

// A session's state between cells, kept in this process's memory (unsealed:
// it never leaves the process). Immutable; shared by the sessions made from it.
struct SessionCheckpoint {
  engine::SandboxImage image;
  bool fuel = false;
  std::shared_ptr<const engine::ContextValue> context;
};

// Session: one sandbox and its REPL state. Calls on a session are serialized:
// concurrent callers run one after another, never interleaved. If a cell is
// stopped hard (the sandbox had to be discarded), the session continues on a
// fresh sandbox with its context reloaded; the result says sandbox_reset.
class Session {
 public:
  ~Session();

  // Errors: kInvalidArgument for empty code; kFailedPrecondition for a fuel
  // budget in a session made without fuel; kResourceExhausted when the
  // sandbox must be replaced and no slot is free.
  Result<engine::ExecutionResult> Execute(std::string_view code, const engine::Limits& limits,
                                          engine::HostCallHandler* handler,
                                          const engine::CellOptions& cell = {});
  // Binds `context`; kept for the session's life. Errors: as Sandbox::SetContext.
  Status SetContext(engine::ContextValue context, const engine::Limits& limits);
  // Errors: kNotFound when the variable is not defined.
  Result<nlohmann::json> GetVar(std::string_view name, const engine::Limits& limits);
  // Linear memory held by the session's sandbox.
  uint64_t memory_bytes();

  // The session's state between cells, sealed (engine/snapshot.h) together
  // with `outer`, the caller's own state, and the context (so a restored
  // session reloads it after a hard stop, as this one would). Errors:
  // kFailedPrecondition when a cell is running (a snapshot is taken between
  // cells only) or the sandbox was stopped hard and not yet replaced.
  Result<std::string> Snapshot(std::string_view outer);
  // `count` new sessions with this one's state, each with fresh randomness;
  // they share nothing afterwards. Errors: as Snapshot, and
  // kResourceExhausted when the slots or the memory budget run out (no
  // session is made then).
  Result<std::vector<std::unique_ptr<Session>>> Fork(size_t count);
  // The session's state now, for Executor::SessionFrom later (a fork whose
  // children are made when they are needed). Errors: as Snapshot.
  Result<std::shared_ptr<const SessionCheckpoint>> Checkpoint();
  bool fuel() const { return fuel_; }

 private:
  friend class Executor;
  Session(Executor& executor, std::unique_ptr<engine::Sandbox> sandbox, bool fuel);
  // The sandbox's image when `lock` (a try_lock of mu_) was taken and the
  // sandbox is usable; else kFailedPrecondition (`refusal` while a cell runs).
  Result<engine::SandboxImage> CaptureBetweenCells(std::unique_lock<std::mutex>& lock,
                                                   std::string_view refusal);
  Status EnsureSandbox(const engine::Limits& limits);

  Executor& executor_;
  std::mutex mu_;
  std::unique_ptr<engine::Sandbox> sandbox_;  // guarded by mu_
  // Immutable once bound, so forks share it. Guarded by mu_.
  std::shared_ptr<const engine::ContextValue> context_;
  const bool fuel_;  // on the fuel-metered variant
};

}  // namespace rlmbox::executor
