// The guest's reply to an execute call, decoded as the hostile input it is.
//
// Guest code can replace anything the runner would hand back (it can patch
// json.dumps or the runner itself), so the reply is bounded in size before it is
// copied out of the guest, bounded in nesting before it is parsed, validated
// field by field, and cut to the cell's output cap field by field. Nothing in it
// decides an outcome the host already knows (stops, deadlines, caps): the
// engine does that (Sandbox::Execute). Pure functions, no wasmtime: fuzzed on
// their own (tests/fuzz/fuzz_guest_reply.cc). Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace rlmbox::engine {

// The largest reply the host copies out of the guest for a cell whose output
// cap is `max_output_bytes`: stdout, stderr, error, answer and value each up to
// the cap, JSON-escaped, plus the locals summary. A bigger reply is not read.
uint64_t MaxReplyBytes(uint64_t max_output_bytes);

// Most names in a reply's locals, and the longest name.
inline constexpr size_t kMaxLocalsNames = 256;
inline constexpr size_t kMaxLocalsNameBytes = 256;

struct GuestReply {
  bool success = false;
  std::string stdout_text;
  std::string stderr_text;
  std::optional<std::string> error;
  std::string exception_type;
  nlohmann::json locals = nlohmann::json::object();
  std::optional<std::string> final_answer;
  std::optional<nlohmann::json> value;
  std::string value_type;
  // Some field was longer than the cap and was cut here (or the guest said
  // its own writer cut stdout/stderr).
  bool truncated = false;
  // The locals summary lost names to the cap (not an outcome: a summary).
  bool locals_truncated = false;
};

// Decodes an execute reply. Every byte that leaves the guest counts against
// `max_output_bytes`: stdout and stderr each, the error line, the final answer,
// the node value, and the locals (names and values together). InvalidArgument
// when the reply is not a well-formed runner reply (the sandbox then counts as
// crashed). `want_value`: the cell runs in a node mode and may carry a value.
Result<GuestReply> DecodeExecuteReply(std::string_view bytes, uint64_t max_output_bytes,
                                      bool want_value);

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence; true
// when it cut.
bool TruncateUtf8(std::string& s, uint64_t max);

}  // namespace rlmbox::engine
