// The in-process REPL backend: each runner is an executor::Session on this
// process's engine (design §1, "nothing set -> in-process sandbox").
// Thread-safe factory; each runner is used by one loop at a time.
#pragma once

#include "executor/executor.h"
#include "rlm/rlm.h"

namespace rlmbox::rlm {

class InProcessRunnerFactory : public CodeRunnerFactory {
 public:
  InProcessRunnerFactory(executor::Executor& executor, engine::Limits limits)
      : executor_(executor), limits_(limits) {}
  Result<std::unique_ptr<CodeRunner>> NewRunner() override;
  std::string name() const override { return "in_process"; }

 private:
  executor::Executor& executor_;
  const engine::Limits limits_;
};

}  // namespace rlmbox::rlm
