// Limits: what one execution may consume. Every field is enforced by the engine
// (wasmtime epochs, fuel, the store limiter, host-side checks), never by
// trusting the guest. Plain value type.
#pragma once

#include <chrono>
#include <cstdint>

namespace rlmbox::engine {

struct Limits {
  // Wall-clock deadline; time spent waiting on host calls (llm_query) counts.
  std::chrono::milliseconds timeout{30'000};
  // CPU time the executing thread may use (its CLOCK_THREAD_CPUTIME_ID, read
  // in the epoch callback, so C-level loops such as a regex or a big pow are
  // counted too); 0 = as much as the timeout. Time spent waiting on host
  // calls is not CPU time.
  std::chrono::milliseconds cpu_time{0};

  std::chrono::milliseconds cpu_budget() const {
    return cpu_time.count() > 0 ? cpu_time : timeout;
  }
  // A deterministic budget in wasmtime fuel units (~one per wasm instruction;
  // the guest burns ~7e9 per CPU-second on a 2-core x86 box), the same on
  // every machine; 0 = none. A budget runs the cell on the fuel-metered
  // engine variant (Engine::NewSandbox(true)).
  uint64_t fuel = 0;
  // Linear memory the code may allocate on top of the interpreter's own
  // baseline (the snapshot's memory). The hard cap is baseline + this.
  uint64_t memory_bytes = 256ull << 20;
  // Each of stdout and stderr is cut at this many bytes.
  uint64_t max_output_bytes = 1ull << 20;
  // Host calls (llm_query & co) per execution, and bytes per call each way.
  uint32_t max_host_calls = 1'000;
  uint64_t max_host_call_bytes = 16ull << 20;
};

// Ceilings on what a request may ask for; requests above them are refused.
struct LimitCeilings {
  std::chrono::milliseconds timeout{600'000};
  std::chrono::milliseconds cpu_time{600'000};
  uint64_t fuel = 10'000'000'000'000;
  uint64_t memory_bytes = 3ull << 30;
  uint64_t max_output_bytes = 64ull << 20;
};

}  // namespace rlmbox::engine
