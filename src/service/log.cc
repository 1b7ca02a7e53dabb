#include "service/log.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

namespace rlmbox::service {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_write_mu;

const char* Name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "info";
}

size_t Lines(const std::string& s) {
  if (s.empty()) return 0;
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')) + (s.back() == '\n' ? 0 : 1);
}

}  // namespace

LogLevel ParseLogLevel(std::string_view name) {
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), ::tolower);
  if (n == "debug") return LogLevel::kDebug;
  if (n == "warning" || n == "warn") return LogLevel::kWarning;
  if (n == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void LogEvent(LogLevel level, std::string_view event, nlohmann::json fields) {
  if (!LogEnabled(level)) return;
  if (!fields.is_object()) fields = nlohmann::json::object();
  fields["ts"] = std::chrono::duration<double>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  fields["level"] = Name(level);
  fields["event"] = event;
  std::string line = fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard lock(g_write_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void LogExecution(const engine::ExecutionResult& r, std::string_view kind,
                  std::string_view session_id, std::string_view code) {
  if (!LogEnabled(LogLevel::kInfo)) return;
  nlohmann::json f = {
      {"execution_id", r.execution_id},
      {"duration_ms", r.execution_time_s * 1000},
      {"success", r.success},
      {"outcome", engine::OutcomeName(r.outcome)},
      {"stdout_lines", Lines(r.stdout_text)},
      {"stderr_lines", Lines(r.stderr_text)},
      {"kind", kind},
      {"cpu_ms", r.cpu_time_s * 1000},
      {"host_calls", r.host_calls},
  };
  if (r.fuel_metered) f["fuel_used"] = r.fuel_used;
  if (!session_id.empty()) f["session_id"] = session_id;
  if (LogEnabled(LogLevel::kDebug)) f["code"] = code;
  LogEvent(LogLevel::kInfo, "execution", std::move(f));
}

}  // namespace rlmbox::service
