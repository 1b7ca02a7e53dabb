#include "cli/stop_signals.h"

#include <pthread.h>

#include <thread>

#include "service/log.h"

namespace rlmbox::cli {

sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int ServeUntilStopped(const sigset_t& signals, const std::function<Status()>& run,
                      const std::function<void()>& stop) {
  std::thread waiter([&signals, &stop] {
    int sig = 0;
    sigwait(&signals, &sig);
    service::LogEvent(service::LogLevel::kInfo, "shutting_down", {{"signal", sig}});
    stop();
  });
  Status s = run();
  // Either a signal stopped the server (the waiter is done) or it stopped on
  // its own: wake the waiter so it can be joined.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  if (!s.ok()) {
    service::LogEvent(service::LogLevel::kError, "listen_failed", {{"error", s.ToString()}});
    return 70;
  }
  service::LogEvent(service::LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace rlmbox::cli
