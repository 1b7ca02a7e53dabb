// The host door's request format, checked before any handler sees a call.
// Pure functions, no wasmtime: fuzzed on their own (tests/fuzz). Thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/host_door.h"

namespace rlmbox::engine {

// Checks a decoded host call {"kind": str, "args": {...}} and sets *kind and
// *prompt_count. Returns an error message for the guest, or "" when valid.
std::string ValidateHostCall(const nlohmann::json& call, HostCallKind* kind, size_t* prompt_count);

inline constexpr size_t kMaxTools = 64;
inline constexpr size_t kMaxToolNameBytes = 64;

// Checks the tool names an embedder declares for a cell (CellOptions::tools):
// at most kMaxTools ASCII identifiers, none of the runner's reserved names or
// the module attributes the interpreter relies on (`__builtins__`, ...). Returns an error message, or "" when valid.
std::string ValidateToolNames(const std::vector<std::string>& names);

}  // namespace rlmbox::engine
