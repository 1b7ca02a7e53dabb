// The host door's request format, checked before any handler sees a call.
// Pure functions, no wasmtime: fuzzed on their own (tests/fuzz). Thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/host_door.h"

namespace rlmbox::engine {

// Checks a decoded host call {"kind": str, "args": {...}} and sets *kind and
// *prompt_count. Returns an error message for the guest, or "" when valid.
std::string ValidateHostCall(const nlohmann::json& call, HostCallKind* kind, size_t* prompt_count);

}  // namespace rlmbox::engine
