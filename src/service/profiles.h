// Profiles: named limit sets (design §4), and the parsing of a request's
// limits on top of a profile, bounded by operator ceilings.
// Plain functions and values; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/limits.h"

namespace rlmbox::service {

struct Profile {
  std::string name;
  engine::Limits limits;
  // Modules code under this profile may import; a request may narrow it but
  // not widen it. Unset = no import policy unless the request sets one.
  std::optional<std::vector<std::string>> allowed_imports;
};

// Applies a profile config (a parsed JSON or YAML document, see
// service/document.h) to `profiles` and `ceilings`:
//   {"profiles": {"code": {"memory_mb": 64, "timeout": 5, "fuel": 1e10,
//                          "max_output_bytes": 65536, "allowed_imports": [...]},
//                 "mine": {...}},            # new names are new profiles
//    "ceilings": {"memory_mb": 1024, "timeout": 120, "fuel": ..., "max_output_bytes": ...}}
// Errors: kInvalidArgument naming `where` (the file) and what is wrong.
Status ApplyProfileConfig(const nlohmann::json& config, const std::string& where,
                          std::vector<Profile>& profiles, engine::LimitCeilings& ceilings);

// The profile called `name`, or null.
const Profile* FindProfile(const std::vector<Profile>& profiles, std::string_view name);

// The built-in profiles: code 32 MB/10 s, tool 64 MB/5 s, agent 128 MB/30 s,
// llm 16 MB/2 s, condition 8 MB/1 s, loop 64 MB/60 s (seed 004), rlm 512 MB/
// the execution timeout (REPL sessions), and "default" (256 MB / the
// execution timeout) used when a request names none.
std::vector<Profile> BuiltinProfiles(std::chrono::milliseconds execution_timeout);

// Limits for a request: the named profile (or "default"), then the request's
// "timeout" (seconds) and "limits" {memory_mb, fuel, max_output_bytes} on top.
// Errors: kInvalidArgument for an unknown profile, a wrong type, a value out
// of range, or one above `ceilings`.
Result<engine::Limits> ResolveLimits(const nlohmann::json& request,
                                     const std::vector<Profile>& profiles,
                                     const engine::LimitCeilings& ceilings);

}  // namespace rlmbox::service
