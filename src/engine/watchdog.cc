#include "engine/watchdog.h"

#include <utility>

namespace rlmbox::engine {

Watchdog::Watchdog(std::chrono::microseconds tick, std::function<void()> tick_fn)
    : tick_(tick), tick_fn_(std::move(tick_fn)), thread_([this] { Run(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::Enter() {
  bool wake;
  {
    std::lock_guard lock(mu_);
    wake = active_++ == 0;
  }
  if (wake) cv_.notify_all();
}

void Watchdog::Leave() {
  std::lock_guard lock(mu_);
  --active_;
}

void Watchdog::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (active_ == 0) {
      cv_.wait(lock, [this] { return stopping_ || active_ > 0; });
      continue;
    }
    // sleep_until keeps the tick period steady regardless of how long tick_fn_ takes.
    auto next = std::chrono::steady_clock::now() + tick_;
    lock.unlock();
    tick_fn_();
    std::this_thread::sleep_until(next);
    lock.lock();
  }
}

}  // namespace rlmbox::engine
