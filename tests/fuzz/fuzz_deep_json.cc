// libFuzzer target: bounded JSON decoding of request bodies (both planes) on
// deep and malformed input. An accepted text never nests deeper than the
// limit, so copying and dumping it (recursive in nlohmann) is safe; and our
// decoder accepts exactly what nlohmann's (iterative) parser accepts, with the
// same value, whenever the depth is within the limit (and the text holds no NUL
// byte: nlohmann takes one outside a string as the end of the text, and would
// accept `{}\0anything`; we refuse it).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bounded_json.h"

namespace {

size_t Depth(const nlohmann::json& j, size_t d) {
  size_t best = d;
  if (j.is_structured()) {
    for (const auto& v : j) best = std::max(best, Depth(v, d + 1));
  }
  return best;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The input, then the same input wrapped in many levels: the fuzzer's short
  // texts reach the depth limit too.
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const rlmbox::JsonLimits limits{64, 1 << 20};
  for (size_t wrap : {size_t{0}, size_t{60}, size_t{70}}) {
    std::string s = std::string(wrap, '[') + std::string(text) + std::string(wrap, ']');
    auto r = rlmbox::ParseBoundedJson(s, limits, "input");
    if (wrap == 0 && s.find('\0') == std::string::npos) {
      nlohmann::json theirs = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
      const bool too_deep = !r.ok() && r.status().message().find("deeper") != std::string::npos;
      if (!too_deep && r.ok() == theirs.is_discarded()) __builtin_trap();
      if (r.ok() && r->dump() != theirs.dump()) __builtin_trap();
    }
    if (r.ok()) {
      if (Depth(*r, 0) > limits.max_depth) __builtin_trap();
      nlohmann::json copy = *r;
      (void)copy.dump();
    }
  }
  return 0;
}
