// Bounded JSON decoding: every JSON text rlmbox did not write itself (request
// bodies, the guest's replies and host calls, answers from another plane or a
// model provider) is decoded here, with a cap on size and on nesting depth: the
// decoder (our own, accepting exactly what nlohmann's parser accepts, with the
// same values, except a NUL byte outside a string, which nlohmann takes as the
// end of the text and we refuse) stops at the first level past the cap, so a hostile text cannot
// exhaust the stack of the decoder, of a later copy or of dump(). Strings are
// copied in runs, not byte by byte: a 40 MB string decodes in tens of ms, not
// the ~0.5 s nlohmann::json::parse takes. Pure functions; thread-safe.
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

// Decodes `text` within `limits`. InvalidArgument names what was wrong: too
// large, nested too deep, or not JSON. `what` names the text ("the body").
Result<nlohmann::json> ParseBoundedJson(std::string_view text, const JsonLimits& limits,
                                        std::string_view what = "the JSON text");

// The same checks without building a value.
Status ValidateBoundedJson(std::string_view text, const JsonLimits& limits,
                           std::string_view what = "the JSON text");

}  // namespace rlmbox
