#include "cli/runtime_paths.h"

#include <cstdlib>

#include "engine/memory_budget.h"

#ifndef RLMBOX_DEFAULT_GUEST_DIR
#define RLMBOX_DEFAULT_GUEST_DIR ""
#endif

namespace rlmbox::cli {
namespace {
std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}
}  // namespace

std::filesystem::path DefaultGuestDir() {
  if (auto v = Env("RLMBOX_GUEST_DIR"); !v.empty()) return v;
  return RLMBOX_DEFAULT_GUEST_DIR;
}

std::filesystem::path DefaultModuleCacheDir() {
  if (auto v = Env("RLMBOX_MODULE_CACHE"); !v.empty()) return v;
  if (auto v = Env("RLMBOX_CACHE"); !v.empty()) return std::filesystem::path(v) / "modules";
  if (auto v = Env("XDG_CACHE_HOME"); !v.empty()) {
    return std::filesystem::path(v) / "rlmbox" / "modules";
  }
  if (auto v = Env("HOME"); !v.empty()) {
    return std::filesystem::path(v) / ".cache" / "rlmbox" / "modules";
  }
  return std::filesystem::temp_directory_path() / "rlmbox-modules";
}

uint64_t MemoryBudgetBytes(double flag_mb) {
  double mb = flag_mb;
  if (mb <= 0) {
    if (auto v = Env("RLMBOX_MEMORY_BUDGET_MB"); !v.empty()) mb = std::atof(v.c_str());
  }
  if (mb > 0) return static_cast<uint64_t>(mb * (1 << 20));
  return engine::DefaultMemoryBudget();
}

}  // namespace rlmbox::cli
