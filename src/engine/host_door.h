// HostCallHandler: what answers the guest's llm_query & co.
//
// The engine decodes and validates each call coming through the guest's host
// door (kind, argument shapes, sizes, count) and hands it to the handler on the
// executing thread while the guest waits. Later layers plug in here: the RLM
// loop (in-process), or the HTTP stream to a remote inference plane.
// Implementations must be safe to call from any executor thread; one execution
// calls its handler from one thread at a time.
#pragma once

#include <chrono>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

namespace rlmbox::engine {

// kTool: a named host function the embedder declared for the cell
// (CellOptions::tools); the engine refuses names that were not declared.
enum class HostCallKind { kLlmQuery, kLlmQueryBatched, kRlmQuery, kRlmQueryBatched, kTool };

std::string_view HostCallKindName(HostCallKind kind);

// What the guest is told when nothing answers its model calls.
std::string NoModelAttachedMessage(HostCallKind kind);

struct HostCall {
  HostCallKind kind;
  // llm_query / rlm_query: {"prompt": str, "model": str|null}
  // *_batched:             {"prompts": [str...], "model": str|null}
  // tool:                  {"name": str, "args": [...], "kwargs": {...}}
  nlohmann::json args;
  std::chrono::steady_clock::time_point deadline;  // the execution's wall deadline
};

// The answer to one call: a JSON value (a str for single calls; for batched
// calls an array in input order whose failed items are {"error": "..."}), or
// an error message the guest sees as an exception.
struct HostCallError {
  std::string message;
};
using HostCallReply = std::variant<nlohmann::json, HostCallError>;

class HostCallHandler {
 public:
  virtual ~HostCallHandler() = default;
  // Must return by `call.deadline`; the engine stops the guest at the deadline
  // anyway, and a reply that arrives later is discarded.
  virtual HostCallReply Handle(const HostCall& call) = 0;
  // Polled about once a millisecond while the execution runs (on the
  // executing thread); true stops the cell like a deadline does, e.g. when
  // the caller went away. Default: never.
  virtual bool cancelled() const { return false; }
};

}  // namespace rlmbox::engine
