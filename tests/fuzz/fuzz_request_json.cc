// libFuzzer target: decoding an HTTP request body into limits (both planes use
// ResolveLimits for "timeout", "profile" and "limits").
#include <chrono>
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "service/profiles.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto profiles = rlmbox::service::BuiltinProfiles(std::chrono::seconds(30));
  static const rlmbox::engine::LimitCeilings ceilings;
  auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return 0;
  auto limits = rlmbox::service::ResolveLimits(j, profiles, ceilings);
  if (limits.ok()) {
    // Whatever was accepted stays within the operator's ceilings.
    if (limits->timeout > ceilings.timeout || limits->memory_bytes > ceilings.memory_bytes ||
        limits->fuel > ceilings.fuel || limits->max_output_bytes > ceilings.max_output_bytes ||
        limits->timeout.count() <= 0) {
      __builtin_trap();
    }
  }
  return 0;
}
