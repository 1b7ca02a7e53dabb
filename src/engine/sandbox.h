// Sandbox: one guest instance (a wasmtime store + instance) holding one
// Python REPL namespace.
//
// Every call runs under Limits enforced by the engine: the wall deadline and
// CPU budget first stop the cell softly (the guest raises inside the cell and
// returns, keeping its state) and, if the guest does not return within the
// grace period, hard (a trap; the sandbox is then unusable and must be
// replaced). Memory is capped by the store limiter; output and host-door
// traffic are checked by the host.
//
// Thread-safety: none. A Sandbox is used by one thread at a time (sessions
// serialize their callers). It may move between threads between calls.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/execution_result.h"
#include "engine/host_door.h"
#include "engine/limits.h"
#include "engine/snapshot.h"

namespace rlmbox::engine {

class Engine;
struct SandboxState;
struct EngineInternals;

// The REPL's `context` variable: text (becomes a str, loaded without parsing)
// or JSON (becomes a dict / list / ...).
struct ContextValue {
  enum class Kind { kText, kJson };
  Kind kind = Kind::kText;
  std::string data;
};

// What a cell runs beyond its code: the workflow node modes and the import
// policy (docs/nodes.md). The default is a plain REPL cell.
struct CellOptions {
  enum class Mode {
    kRepl,      // echo the last expression, like a notebook
    kNode,      // value = what the code assigns to `output`, else its last expression
    kEval,      // the code is one expression; value = its result
    kTemplate,  // the code is a str.format template rendered against the variables
  };
  Mode mode = Mode::kRepl;
  // Modules the cell may import (enforced in the guest; fixed for the sandbox
  // once set). Unset = no import policy.
  std::optional<std::vector<std::string>> allowed_imports;
  // A JSON object whose keys become variables before the cell runs.
  nlohmann::json vars;
  // Called after the cell with `call_kwargs` (tool nodes: execute(**tool_args));
  // its return value is the cell's value.
  std::string call_function;
  nlohmann::json call_kwargs;
  // Host tools bound as functions in the cell's namespace (the Python
  // package's `tools=`): a call reaches the handler as HostCallKind::kTool.
  // Names must pass ValidateToolNames (engine/door_protocol.h).
  std::vector<std::string> tools;
};

class Sandbox {
 public:
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Runs `code` as one REPL cell. Never fails: how it ended is the outcome.
  // `handler` answers llm_query & co; null means such calls raise in the guest.
  ExecutionResult Execute(std::string_view code, const Limits& limits,
                          HostCallHandler* handler, const CellOptions& options = {});

  // Binds `context` in the REPL (kept across cells, restored if reassigned).
  // Errors: kInvalidArgument for invalid JSON, or when it does not fit in the
  // memory or time limit; kInternal if the guest failed.
  Status SetContext(const ContextValue& context, const Limits& limits);

  // Looks up a variable: {"value": <json-or-repr>, "text": str(value), "type"}.
  // Errors: kNotFound when it is not defined.
  Result<nlohmann::json> GetVar(std::string_view name, const Limits& limits);

  // Runs the guest's first-call work (reseeding, first-cell page faults) now,
  // so a pool can do it before the sandbox is needed. Leaves the namespace
  // empty. Errors: kInternal if the guest fails.
  Status Prime();

  // The sandbox's state between calls, for a snapshot or a fork
  // (engine/snapshot.h): the pages it has written, its memory size, the stack
  // pointer. Errors: kFailedPrecondition when a hard stop left it unusable or
  // the guest build does not export its stack pointer.
  Result<SandboxImage> Capture();

  // Draws fresh randomness for the guest's `random` module, so a sandbox
  // restored or forked from one image does not repeat its random sequence.
  // Errors: kFailedPrecondition when unusable; kInternal if the guest fails.
  Status Reseed();

  // False once a hard stop left the interpreter in an unknown state.
  bool usable() const;
  // Whether fuel is metered in this sandbox (Engine::NewSandbox(true)).
  bool fuel_metered() const;
  // Current linear memory size in bytes.
  uint64_t memory_bytes();
  // The host address and size of the linear memory (for the engine's own
  // page management; never handed to anything else).
  std::pair<uint8_t*, uint64_t> memory_span();

 private:
  friend class Engine;
  Sandbox(Engine& engine, EngineInternals& variant);
  struct Call;
  // Runs one guest op. A reply larger than `max_reply_bytes` is not copied out
  // of the guest (Call::reply_too_large).
  Call Invoke(int op, std::string_view payload, const Limits& limits, HostCallHandler* handler,
              uint64_t max_reply_bytes);
  static std::string BudgetMessage(const Call& c, Engine& engine);

  Engine& engine_;
  EngineInternals& variant_;  // the engine variant (fuel metering or not) it runs on
  std::unique_ptr<SandboxState> state_;  // outlives the store (declared first)
  struct Wasm;
  std::unique_ptr<Wasm> wasm_;
};

}  // namespace rlmbox::engine
