#include "executor/sandbox_pool.h"

namespace rlmbox::executor {

SandboxPool::SandboxPool(engine::Engine& engine, size_t target, size_t threads)
    : engine_(engine), target_(target) {
  for (size_t i = 0; i < std::max<size_t>(1, threads); ++i) {
    threads_.emplace_back([this] { Run(); });
  }
}

SandboxPool::~SandboxPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  ready_.clear();
  retired_.clear();
}

Result<std::unique_ptr<engine::Sandbox>> SandboxPool::Acquire() {
  {
    std::lock_guard lock(mu_);
    if (!ready_.empty()) {
      auto sb = std::move(ready_.front());
      ready_.pop_front();
      cv_.notify_all();  // refill
      return sb;
    }
  }
  cv_.notify_all();
  auto started = std::chrono::steady_clock::now();
  auto sb = engine_.NewSandbox();
  std::lock_guard lock(mu_);
  ++stats_.created;
  stats_.start_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return sb;
}

SandboxPool::Stats SandboxPool::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void SandboxPool::Retire(std::unique_ptr<engine::Sandbox> sandbox) {
  if (!sandbox) return;
  // A sandbox holding much memory is torn down here, so the memory budget it
  // holds is free when the caller answers (a session deleted, then its memory
  // used by another at once); small ones, the /execute hot path, go to the
  // refill threads.
  if (sandbox->memory_bytes() >= kInlineTeardownBytes) {
    sandbox.reset();
    cv_.notify_all();
    return;
  }
  {
    std::lock_guard lock(mu_);
    retired_.push_back(std::move(sandbox));
  }
  cv_.notify_all();
}

size_t SandboxPool::ready() const {
  std::lock_guard lock(mu_);
  return ready_.size();
}

void SandboxPool::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] {
      return stopping_ || !retired_.empty() || ready_.size() + creating_ < target_;
    });
    if (stopping_) break;
    if (!retired_.empty()) {
      auto doomed = std::move(retired_);
      retired_.clear();
      lock.unlock();
      doomed.clear();  // slot teardown happens here, off the request path
      lock.lock();
      continue;
    }
    ++creating_;
    lock.unlock();
    auto started = std::chrono::steady_clock::now();
    auto sb = engine_.NewSandbox();
    if (sb.ok() && !(*sb)->Prime().ok()) sb = Internal("a new sandbox failed to prime");
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    lock.lock();
    --creating_;
    if (sb.ok()) {
      ++stats_.created;
      stats_.start_seconds += took;
    }
    if (!sb.ok()) {
      // Slots exhausted or a transient failure: wait for a retirement or a
      // short while, never spin.
      cv_.wait_for(lock, std::chrono::milliseconds(50),
                   [this] { return stopping_ || !retired_.empty(); });
      continue;
    }
    ready_.push_back(std::move(sb).value());
  }
}

}  // namespace rlmbox::executor
