#include "engine/execution_result.h"

namespace rlmbox::engine {

nlohmann::json ExecutionResult::ToJson() const {
  nlohmann::json j = {
      {"success", success},
      {"stdout", stdout_text},
      {"stderr", stderr_text},
      {"locals", locals},
      {"execution_time", execution_time_s},
      {"error", error ? nlohmann::json(*error) : nlohmann::json(nullptr)},
      {"outcome", OutcomeName(outcome)},
      {"execution_id", execution_id},
      {"cpu_time", cpu_time_s},
      {"memory_peak_bytes", memory_peak_bytes},
      {"host_calls", host_calls},
  };
  if (fuel_metered) j["fuel_used"] = fuel_used;
  if (final_answer) j["final_answer"] = *final_answer;
  if (sandbox_reset) j["sandbox_reset"] = true;
  return j;
}

}  // namespace rlmbox::engine
