#include "cli/runtime_paths.h"

#include <cstdlib>
#include <iostream>

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
// A number from the environment, or `fallback` (with a line on stderr when the
// value is not a positive number, or not a non-negative one with `zero_ok`).
double EnvNumber(const char* name, double fallback, bool zero_ok) {
  const std::string v = Env(name);
  if (v.empty()) return fallback;
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !(d > 0 || (zero_ok && d == 0))) {
    std::cerr << "rlmbox: ignoring " << name << "=" << v << " (not a "
              << (zero_ok ? "non-negative" : "positive") << " number)\n";
    return fallback;
  }
  return d;
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

http::ConnectionLimits ConnectionLimitsFromEnv() {
  http::ConnectionLimits limits;
  auto ms = [](double seconds) { return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)); };
  limits.header_timeout = ms(EnvNumber("HEADER_TIMEOUT", 10, false));
  limits.body_timeout = ms(EnvNumber("BODY_TIMEOUT", 60, false));
  const double cap = EnvNumber("MAX_CONNECTIONS_PER_CLIENT", -1, true);
  if (cap >= 0) limits.max_per_client = static_cast<size_t>(cap);
  return limits;
}

}  // namespace rlmbox::cli
