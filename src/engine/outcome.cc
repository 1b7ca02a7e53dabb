#include "engine/outcome.h"

#include <array>
#include <utility>

namespace rlmbox::engine {
namespace {
constexpr std::array<std::pair<Outcome, std::string_view>, 8> kNames{{
    {Outcome::kOk, "ok"},
    {Outcome::kException, "exception"},
    {Outcome::kTimeout, "timeout"},
    {Outcome::kCpuExceeded, "cpu_exceeded"},
    {Outcome::kFuelExhausted, "fuel_exhausted"},
    {Outcome::kMemoryExceeded, "memory_exceeded"},
    {Outcome::kOutputTruncated, "output_truncated"},
    {Outcome::kCrashed, "crashed"},
}};
}  // namespace

std::string_view OutcomeName(Outcome outcome) {
  for (const auto& [o, name] : kNames) {
    if (o == outcome) return name;
  }
  return "crashed";
}

std::optional<Outcome> OutcomeFromName(std::string_view name) {
  for (const auto& [o, n] : kNames) {
    if (n == name) return o;
  }
  return std::nullopt;
}

}  // namespace rlmbox::engine
