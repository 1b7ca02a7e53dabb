// Bounded JSON decoding: every JSON text rlmbox did not write itself (request
// bodies, the guest's replies and host calls, answers from another plane or a
// model provider) is decoded here, with a cap on size and nesting depth checked
// before the parser builds anything. The depth check is a linear scan with no
// recursion, so a hostile text cannot exhaust the stack of the parser, of a later
// copy or of dump(). Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace rlmbox {

struct JsonLimits {
  // Arrays and objects nested deeper than this are refused.
  size_t max_depth = 256;
  // Texts longer than this are refused (0: no cap here; the caller bounds size).
  size_t max_bytes = 0;
};

// Request bodies: 256 levels (CPython's own json module refuses far less deep
// data inside the guest, so anything deeper could not be bound as a context).
inline constexpr JsonLimits kRequestJsonLimits{256, 0};
// What the guest hands back (its reply, its host calls): the runner's own
// output never nests deeper than CPython's recursion limit lets json.dumps go.
inline constexpr JsonLimits kGuestJsonLimits{1'000, 0};

// The deepest nesting of arrays/objects in `text`, scanning at most until it
// exceeds `stop_after` (strings and escapes are skipped; invalid JSON is
// scanned the same way and left to the parser).
size_t JsonNestingDepth(std::string_view text, size_t stop_after);

// Decodes `text` within `limits`. InvalidArgument names what was wrong: too
// large, nested too deep, or not JSON. `what` names the text ("the body").
Result<nlohmann::json> ParseBoundedJson(std::string_view text, const JsonLimits& limits,
                                        std::string_view what = "the JSON text");

}  // namespace rlmbox
