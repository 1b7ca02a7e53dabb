// SandboxPool: fresh sandboxes ready before they are asked for.
//
// Background threads keep `target` instantiated and primed (Sandbox::Prime)
// sandboxes on hand and destroy retired ones, so neither instantiation nor
// teardown (resetting a memory slot) sits on a request's path. Acquire() falls back to
// instantiating inline when the pool is empty.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/status.h"
#include "engine/engine.h"
#include "engine/sandbox.h"

namespace rlmbox::executor {

class SandboxPool {
 public:
  // `threads` background threads refill and tear down in parallel.
  SandboxPool(engine::Engine& engine, size_t target, size_t threads = 1);
  ~SandboxPool();
  SandboxPool(const SandboxPool&) = delete;
  SandboxPool& operator=(const SandboxPool&) = delete;

  // A never-used sandbox. Errors: those of Engine::NewSandbox.
  Result<std::unique_ptr<engine::Sandbox>> Acquire();
  // Hands a used sandbox over for destruction off the caller's thread; one
  // whose memory has grown to kInlineTeardownBytes or more is destroyed at
  // once, so the memory budget it held is free when Retire returns.
  void Retire(std::unique_ptr<engine::Sandbox> sandbox);
  static constexpr uint64_t kInlineTeardownBytes = uint64_t{64} << 20;
  // Number of ready sandboxes (for metrics and tests).
  size_t ready() const;

  struct Stats {
    uint64_t created = 0;       // sandboxes instantiated (pool or inline)
    double start_seconds = 0;   // total time instantiating and priming them
  };
  Stats stats() const;

 private:
  void Run();

  engine::Engine& engine_;
  const size_t target_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<engine::Sandbox>> ready_;    // guarded by mu_
  std::vector<std::unique_ptr<engine::Sandbox>> retired_;  // guarded by mu_
  bool stopping_ = false;                                  // guarded by mu_
  size_t creating_ = 0;                                    // guarded by mu_
  Stats stats_;                                            // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace rlmbox::executor
