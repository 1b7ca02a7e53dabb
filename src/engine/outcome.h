// Outcome: how a guest execution ended. Exactly one per execution. Host errors
// (bad request, overload, internal faults) are not outcomes: they are Status
// values and never reach the guest.
#pragma once

#include <optional>
#include <string_view>

namespace rlmbox::engine {

enum class Outcome {
  kOk,               // the code ran to completion
  kException,        // the code raised (SyntaxError included); state up to it kept
  kTimeout,          // the wall deadline passed
  kCpuExceeded,      // the CPU-time budget ran out
  kFuelExhausted,    // the fuel budget ran out
  kMemoryExceeded,   // the code asked for more linear memory than allowed
  kOutputTruncated,  // the code wrote past its output cap and was stopped
  kCrashed,          // the guest trapped (stack overflow, fault): the host is fine
};

std::string_view OutcomeName(Outcome outcome);
std::optional<Outcome> OutcomeFromName(std::string_view name);

}  // namespace rlmbox::engine
