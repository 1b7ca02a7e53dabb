// libFuzzer target: the guest's reply to an execute call (hostile input: guest
// code can replace what the runner hands back). Whatever the bytes, decoding
// returns an error or a reply within the output cap, without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/guest_reply.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr uint64_t kCap = 1000;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto r = rlmbox::engine::DecodeExecuteReply(bytes, kCap, /*want_value=*/size % 2 == 0);
  if (r.ok()) {
    if (r->stdout_text.size() > kCap || r->stderr_text.size() > kCap ||
        (r->error && r->error->size() > kCap) || (r->final_answer && r->final_answer->size() > kCap) ||
        (r->value && r->value->dump().size() > kCap) || !r->locals.is_object() ||
        r->locals.size() > rlmbox::engine::kMaxLocalsNames) {
      __builtin_trap();
    }
    (void)r->locals.dump();  // as the HTTP layer will
  }
  return 0;
}
