// ExecutionResult: everything one execution produced, as the API reports it.
// Plain value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/outcome.h"

namespace rlmbox::engine {

struct ExecutionResult {
  Outcome outcome = Outcome::kCrashed;
  bool success = false;  // true exactly when outcome == kOk
  std::string stdout_text;
  std::string stderr_text;
  nlohmann::json locals = nlohmann::json::object();
  std::optional<std::string> error;  // one line: "ZeroDivisionError: division by zero"
  double execution_time_s = 0;
  double cpu_time_s = 0;  // CPU time the executing thread used
  uint64_t fuel_used = 0;
  bool fuel_metered = false;  // ran on the fuel-metered variant (fuel_used is reported)
  uint64_t memory_peak_bytes = 0;  // linear memory at the end (it never shrinks)
  uint32_t host_calls = 0;
  std::string execution_id;
  // Set when the code marked a final answer (answer["ready"] = True or FINAL_VAR).
  std::optional<std::string> final_answer;
  // True when a hard stop forced the sandbox to be replaced: a session's
  // variables are gone (its context is reloaded).
  bool sandbox_reset = false;
  // The cell's value for non-REPL modes (CellOptions): JSON data, and the
  // Python type name it came from ("bool", "dict", ...).
  std::optional<nlohmann::json> value;
  std::string value_type;

  // The HTTP/CLI shape: success, stdout, stderr, locals, execution_time, error,
  // outcome, execution_id, cpu_time, fuel_used, memory_peak_bytes (+ extras when set).
  nlohmann::json ToJson() const;
};

}  // namespace rlmbox::engine
