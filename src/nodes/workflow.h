// Workflows: a DAG of nodes (JSON or YAML), run by the NodeRunner.
//
//   name: triage                 # optional
//   inputs: {text: "..."}        # defaults; the caller's inputs override them
//   nodes:
//     - id: words                # an identifier, unique in the workflow
//       type: code               # code|condition|loop|tool|llm|agent|workflow
//       code: "output = len(text.split())"
//     - id: long
//       type: condition
//       depends_on: [words]
//       expression: "words > 3"
//     - id: summary
//       type: llm
//       when: long               # runs only if the condition node said True
//       prompt: "Summarise: {text}"
//   output: summary              # optional: the workflow's output
//
// A node's context is the workflow's inputs, then the outputs of the nodes it
// depends on (each under its id), then its own `context`. `when: X` / `unless:
// X` make the node depend on condition node X and run only if X's output is
// True / False; a node skipped that way skips its dependants too. A failed
// node stops its dependants (status "not_run"); independent nodes still run.
// Nodes whose dependencies are done run in parallel, up to `parallelism`.
// A `workflow` node runs a nested workflow (inline `workflow:` or `file:`,
// relative to the parent's file) with its context as inputs; its output is
// the nested workflow's output.
//
// Thread-safe: Run() may be called concurrently.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/host_door.h"
#include "nodes/node_runner.h"
#include "nodes/tracing.h"

namespace rlmbox::nodes {

struct WorkflowOptions {
  size_t parallelism = 2;
  // Directory that `file:` references resolve against; empty = refused
  // (workflows sent over HTTP cannot read the server's files).
  std::string base_dir;
  int max_nesting = 8;
  size_t max_nodes = 1'000;
};

class WorkflowRunner {
 public:
  WorkflowRunner(const NodeRunner& nodes, WorkflowOptions options);

  // Checks `workflow` and runs it. Errors: kInvalidArgument for a malformed
  // workflow (duplicate or invalid ids, unknown dependencies, cycles, a
  // malformed node), found before anything runs. A node that fails is in the
  // result: {"success", "output", "outputs": {id: output}, "nodes": {id:
  // {"status": ok|failed|skipped|not_run, ...node result...}}, "failed_node",
  // "error", "duration_ms"}.
  // Checks a workflow's shape and dependencies (linear in its size) without
  // running anything, so servers can refuse a bad one before it takes a
  // worker slot. Errors: kInvalidArgument, as Run.
  Status Validate(const nlohmann::json& workflow) const;
  Result<nlohmann::json> Run(const nlohmann::json& workflow, const nlohmann::json& inputs,
                             engine::HostCallHandler* handler, const Span& parent) const;

 private:
  Result<nlohmann::json> RunNested(const nlohmann::json& workflow, const nlohmann::json& inputs,
                                   engine::HostCallHandler* handler, const Span& parent,
                                   const std::string& base_dir, int depth) const;
  Result<nlohmann::json> Load(const nlohmann::json& node, const std::string& base_dir,
                              std::string* nested_dir) const;

  const NodeRunner& nodes_;
  const WorkflowOptions options_;
};

}  // namespace rlmbox::nodes
