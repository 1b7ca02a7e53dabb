// JSON log lines on stderr, one per event (design §6). The level comes from
// LOG_LEVEL (debug, info, warning, error; default info). Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/execution_result.h"

namespace rlmbox::service {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

LogLevel ParseLogLevel(std::string_view name);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// Writes {"ts","level","event", ...fields} as one line.
void LogEvent(LogLevel level, std::string_view event, nlohmann::json fields = {});

// One line per execution: execution_id, duration_ms, success, outcome,
// stdout_lines, stderr_lines, kind, session_id; the code only at debug level.
void LogExecution(const engine::ExecutionResult& r, std::string_view kind,
                  std::string_view session_id, std::string_view code);

}  // namespace rlmbox::service
