// Graceful stop on SIGTERM/SIGINT for the serving commands.
#pragma once

#include <signal.h>

#include <functional>

#include "base/status.h"

namespace rlmbox::cli {

// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it
// starts afterwards. Call before creating any thread.
sigset_t BlockStopSignals();

// Runs `run` (which blocks while serving) while one thread waits for the
// blocked signals and calls `stop`; logs shutting_down / stopped (or
// listen_failed) and returns the process exit code: 0, or 70 if `run` failed.
int ServeUntilStopped(const sigset_t& signals, const std::function<Status()>& run,
                      const std::function<void()>& stop);

}  // namespace rlmbox::cli
