// Where the CLI finds the guest and the compiled-module cache.
//   guest:  --guest-dir, else $RLMBOX_GUEST_DIR, else the directory the build
//           was configured with (RLMBOX_DEFAULT_GUEST_DIR).
//   cache:  $RLMBOX_MODULE_CACHE, else $RLMBOX_CACHE/modules, else
//           ${XDG_CACHE_HOME:-$HOME/.cache}/rlmbox/modules.
#pragma once

#include <filesystem>
#include <cstdint>
#include <string>

#include "http/conn_guard.h"

namespace rlmbox::cli {

std::filesystem::path DefaultGuestDir();
std::filesystem::path DefaultModuleCacheDir();
// The process-wide memory budget in bytes: `flag_mb` when > 0, else
// $RLMBOX_MEMORY_BUDGET_MB, else three quarters of the cgroup limit or
// physical memory (engine/memory_budget.h).
uint64_t MemoryBudgetBytes(double flag_mb);
// What a client connection may cost (http/conn_guard.h), from HEADER_TIMEOUT,
// BODY_TIMEOUT (seconds) and MAX_CONNECTIONS_PER_CLIENT (0: no cap); a value
// that is not a number is reported on stderr and the default kept.
http::ConnectionLimits ConnectionLimitsFromEnv();

}  // namespace rlmbox::cli
