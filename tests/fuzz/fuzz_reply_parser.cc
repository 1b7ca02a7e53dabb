// libFuzzer target: the RLM reply parser (model output is untrusted text).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rlm/parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto blocks = rlmbox::rlm::ParseCodeBlocks(text);
  size_t total = 0;
  for (const auto& b : blocks) total += b.size();
  if (total > size + blocks.size()) __builtin_trap();  // blocks come from the input
  auto final = rlmbox::rlm::FindFinal(text);
  if (final && final->value.size() > size) __builtin_trap();
  return 0;
}
