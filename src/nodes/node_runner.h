// NodeRunner: runs one workflow node in the sandbox (seed 004's universal
// executor). Node types: code, condition, loop, tool, llm, agent
// (docs/nodes.md). Each type runs under its profile's limits (overridable per
// request within the operator's ceilings) and import policy; nothing of a
// node is ever evaluated on the host.
//
// Calls to a model (llm nodes, agent nodes) are made by the host through the
// HostCallHandler the caller passes (llm_query and rlm_query), so the key
// stays with whoever answers them: the inference plane, the NDJSON caller of
// the execution plane, or `rlmbox workflow run`.
//
// Thread-safe: Run() may be called concurrently.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/host_door.h"
#include "engine/limits.h"
#include "engine/outcome.h"
#include "executor/executor.h"
#include "nodes/tracing.h"
#include "service/profiles.h"

namespace rlmbox::nodes {

struct NodeResult {
  bool success = false;
  nlohmann::json output;              // null unless the node produced one
  std::optional<std::string> error;   // one line
  std::string outcome = "ok";         // an engine outcome name, or "bad_request"
  double duration_ms = 0;
  uint64_t fuel = 0;
  double cpu_ms = 0;  // CPU time of the node's executions
  uint64_t memory_peak_bytes = 0;
  std::string stdout_text;
  std::string stderr_text;

  // {"success","output","error","outcome","usage":{...},"stdout","stderr"}
  nlohmann::json ToJson() const;
};

// Tools: Python sources in a directory, one per tool, `NAME.py` defining
// `execute(**kwargs)`. Loaded once at start-up.
class ToolRegistry {
 public:
  // Errors: kNotFound for a missing directory.
  static Result<ToolRegistry> Load(const std::string& dir);
  ToolRegistry() = default;
  const std::string* Find(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, std::string> sources_;
};

class NodeRunner {
 public:
  struct Options {
    std::vector<service::Profile> profiles;
    engine::LimitCeilings ceilings;
    ToolRegistry tools;
    uint32_t max_loop_iterations = 10'000;  // ceiling on a loop's max_iterations
  };
  NodeRunner(executor::Executor& executor, Options options);

  // Runs `node` ({"type", type fields, "context", "allowed_imports",
  // "limits"}). Errors: kInvalidArgument for a malformed node (unknown type,
  // missing field, limits above the ceilings, a module that cannot be
  // allowed); kResourceExhausted when no sandbox is free. What the node's code
  // did (an exception, a timeout, ...) is a NodeResult, not an error.
  Result<NodeResult> Run(const nlohmann::json& node, engine::HostCallHandler* handler,
                         const Span& parent) const;

  const Options& options() const { return options_; }

 private:
  struct Prepared;
  Result<Prepared> Prepare(const nlohmann::json& node) const;
  NodeResult RunLoop(const nlohmann::json& node, const Prepared& p,
                     engine::HostCallHandler* handler, const Span& span) const;
  NodeResult RunModelCall(const nlohmann::json& node, const Prepared& p,
                          engine::HostCallHandler* handler, const Span& span) const;
  Result<engine::ExecutionResult> Execute(const std::string& code, const Prepared& p,
                                          engine::CellOptions cell,
                                          engine::HostCallHandler* handler,
                                          const Span& parent) const;

  executor::Executor& executor_;
  const Options options_;
};

// The node types, in the order docs list them.
const std::vector<std::string>& NodeTypes();

}  // namespace rlmbox::nodes
