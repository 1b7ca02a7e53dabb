// Watchdog: the thread that advances the wasmtime engine's epoch.
//
// Every running guest call holds an ActiveScope; while at least one is held
// the watchdog ticks the epoch every `tick` (1 ms), which makes each running
// store's deadline callback check its wall deadline and CPU budget. With no
// active call the thread sleeps, so an idle server costs nothing.
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace rlmbox::engine {

class Watchdog {
 public:
  // `tick_fn` is called on the watchdog thread once per tick while active.
  Watchdog(std::chrono::microseconds tick, std::function<void()> tick_fn);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  class ActiveScope {
   public:
    explicit ActiveScope(Watchdog& w) : w_(w) { w_.Enter(); }
    ~ActiveScope() { w_.Leave(); }
    ActiveScope(const ActiveScope&) = delete;
    ActiveScope& operator=(const ActiveScope&) = delete;

   private:
    Watchdog& w_;
  };

 private:
  void Enter();
  void Leave();
  void Run();

  const std::chrono::microseconds tick_;
  const std::function<void()> tick_fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;      // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace rlmbox::engine
