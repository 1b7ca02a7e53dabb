// Where the CLI finds the guest and the compiled-module cache.
//   guest:  --guest-dir, else $RLMBOX_GUEST_DIR, else the directory the build
//           was configured with (RLMBOX_DEFAULT_GUEST_DIR).
//   cache:  $RLMBOX_MODULE_CACHE, else $RLMBOX_CACHE/modules, else
//           ${XDG_CACHE_HOME:-$HOME/.cache}/rlmbox/modules.
#pragma once

#include <filesystem>
#include <string>

namespace rlmbox::cli {

std::filesystem::path DefaultGuestDir();
std::filesystem::path DefaultModuleCacheDir();

}  // namespace rlmbox::cli
