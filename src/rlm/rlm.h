// Rlm: the Recursive Language Model loop (design §1, §5.2).
//
// The model is asked, turn after turn, for ```repl code that runs in a REPL
// holding `context`; llm_query & co from that code come back here (a
// HostCallHandler) and are answered with the LlmClient — batched prompts in
// parallel, rlm_query as a child Rlm with its own REPL below the depth limit.
// The loop ends on an answer (answer dict, FINAL, FINAL_VAR), or after
// max_iterations with one last request for an answer.
//
// The loop sees execution only through CodeRunner and the model only through
// LlmClient. Thread-safe: Complete() may run concurrently on one Rlm.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/execution_result.h"
#include "engine/host_door.h"
#include "engine/limits.h"
#include "engine/sandbox.h"
#include "rlm/llm_client.h"

namespace rlmbox::rlm {

// One REPL the loop drives (in-process sandbox session, or a remote session).
class CodeRunner {
 public:
  virtual ~CodeRunner() = default;
  virtual Status SetContext(const engine::ContextValue& context) = 0;
  // Runs one cell within `timeout`; `handler` answers the cell's host calls.
  virtual Result<engine::ExecutionResult> Run(const std::string& code,
                                              std::chrono::milliseconds timeout,
                                              engine::HostCallHandler* handler) = 0;
  // str(variable), for FINAL_VAR. Errors: kNotFound.
  // str() of a variable, computed in the REPL within `timeout` (the
  // request's remaining time: str() is guest code).
  virtual Result<std::string> VariableText(const std::string& name,
                                           std::chrono::milliseconds timeout) = 0;
  // Remembers the REPL's state now (between cells), replacing the previous
  // checkpoint, so that child runs can start from it (RlmOptions::
  // fork_children). Errors: kFailedPrecondition when this backend cannot.
  virtual Status Checkpoint() { return FailedPrecondition("this REPL backend cannot fork"); }
  // A new REPL holding the last checkpoint's state, with fresh randomness.
  // May be called from several threads at once. Errors: kFailedPrecondition
  // without a checkpoint; as NewRunner otherwise.
  virtual Result<std::unique_ptr<CodeRunner>> ForkCheckpoint() {
    return FailedPrecondition("this REPL backend cannot fork");
  }
};

class CodeRunnerFactory {
 public:
  virtual ~CodeRunnerFactory() = default;
  virtual Result<std::unique_ptr<CodeRunner>> NewRunner() = 0;
  // Names the backend in trajectories ("in_process", "sidecar", "remote").
  virtual std::string name() const = 0;
};

struct RlmOptions {
  std::string root_model = "gpt-5";
  std::string recursive_model;       // empty: the root model
  int max_iterations = 20;
  int max_depth = 1;                 // rlm_query below this depth starts a child RLM
  std::chrono::milliseconds timeout{600'000};  // the whole request
  engine::Limits cell_limits;        // per code block
  size_t max_output_chars = 20'000;  // per block, fed back to the model (and kept in the trajectory)
  size_t max_blocks_per_reply = 32;  // ```repl blocks run from one model reply; the rest are skipped
  size_t batch_parallelism = 8;      // concurrent sub-calls of one batched call
  // Input + output tokens one request may spend, sub-calls included, as the
  // provider reports them; 0 = no budget. Checked before every model call.
  uint64_t token_budget = 0;
  // Models guest code may name in llm_query(..., model=...) besides the root
  // and recursive models (LLM_ALLOWED_MODELS). Any other name is refused in
  // the guest: the model name is never the guest's to choose freely.
  std::vector<std::string> allowed_models;
  // rlm_query children start from a fork of the parent's REPL (its variables,
  // functions and imports as they were before the cell that called
  // rlm_query), with `context` rebound to the sub-prompt, instead of an empty
  // REPL (RLM_FORK_CHILDREN). Costs a checkpoint before each cell of a run
  // that may have children; a backend that cannot fork starts children fresh.
  bool fork_children = false;
};

// The error for a guest-chosen model the options do not allow, or "" when
// `model` is allowed.
std::string CheckGuestModel(const RlmOptions& options, const std::string& model);

struct RlmResult {
  bool success = false;
  std::string answer;
  std::string error;                 // when !success: what stopped it
  int iterations = 0;
  std::map<std::string, Usage> usage;  // per model, sub-calls included
  double execution_time_s = 0;
  // Official rlm logger format: a metadata line, then one line per iteration.
  std::vector<nlohmann::json> trajectory;
  nlohmann::json UsageJson() const;
};

class Rlm {
 public:
  Rlm(LlmClient& llm, CodeRunnerFactory& runners, RlmOptions options);

  // Runs the loop for `query` over `context`. Never fails as a whole: errors
  // are in the result, with the partial trajectory.
  RlmResult Complete(const std::string& query, const engine::ContextValue& context,
                     const std::string& model = "");

  const RlmOptions& options() const { return options_; }

 private:
  friend class LoopHostCalls;
  // `parent`: the REPL of the run whose rlm_query started this one, when its
  // checkpoint is to be forked (fork_children), else null.
  RlmResult Run(const std::string& query, const engine::ContextValue& context,
                const std::string& model, int depth,
                std::chrono::steady_clock::time_point deadline, CodeRunner* parent = nullptr);

  LlmClient& llm_;
  CodeRunnerFactory& runners_;
  const RlmOptions options_;
};

// A human description of a context for the prompt: "a str of 1,234 characters".
std::string DescribeContext(const engine::ContextValue& context);

}  // namespace rlmbox::rlm
