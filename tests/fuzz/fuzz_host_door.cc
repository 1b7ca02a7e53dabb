// libFuzzer target: the guest->host wire format (a host call request as the
// guest sends it through rlmbox.host_call).
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "engine/door_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto call = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  rlmbox::engine::HostCallKind kind{};
  size_t prompts = 0;
  std::string err = rlmbox::engine::ValidateHostCall(call, &kind, &prompts);
  if (err.empty()) {
    // A valid call always carries what the handlers read without checking.
    const auto& args = call["args"];
    if (args.contains("prompts")) {
      for (const auto& p : args["prompts"]) (void)p.get_ref<const std::string&>();
    } else {
      (void)args["prompt"].get_ref<const std::string&>();
    }
    (void)rlmbox::engine::HostCallKindName(kind);
  }
  return 0;
}
