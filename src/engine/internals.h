// Private to engine/: the wasmtime objects behind Engine and Sandbox, and the
// per-store state the host functions and the deadline callback share.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <wasmtime.h>
#include <wasmtime.hh>

#include "engine/host_door.h"
#include "engine/limits.h"
#include "engine/watchdog.h"

namespace rlmbox::engine {

// Why the host stopped a call (soft or hard).
enum class StopReason { kNone, kTimeout, kCpu, kFuel, kCancelled };

// CPU time the calling thread has used (CLOCK_THREAD_CPUTIME_ID).
std::chrono::nanoseconds ThreadCpuTime();

// Per-store state; the store's data points here. Touched only by the thread
// running the store (host functions and the deadline callback run on it).
struct SandboxState {
  // Set once per call by Sandbox::Invoke.
  bool active = false;
  std::chrono::steady_clock::time_point soft_deadline;
  // Once the soft stop is sent: the guest is stopped hard when it has used
  // hard_cpu of its thread's CPU time, or at hard_deadline (wall), whichever
  // comes first. Time the thread spends descheduled on a loaded machine does
  // not eat the guest's grace, so a busy host does not turn soft stops into
  // hard ones (and lose sessions' state).
  std::chrono::steady_clock::time_point hard_deadline;
  std::chrono::nanoseconds hard_cpu{0};
  uint64_t fuel_granted = 0;  // budget + reserve given to the store
  uint64_t fuel_budget = 0;   // soft stop once this much is used
  std::chrono::nanoseconds cpu_start{0};   // the thread's CPU time when the call began
  std::chrono::nanoseconds cpu_budget{0};  // soft stop once this much is used
  const Limits* limits = nullptr;
  HostCallHandler* handler = nullptr;
  const std::vector<std::string>* tools = nullptr;  // declared for this cell, or null
  uint32_t host_calls = 0;
  // Outcome of the stop machinery.
  StopReason reason = StopReason::kNone;
  bool interrupt_sent = false;
  bool hard_stopped = false;
  // The memory cap of this call, and whether the guest's allocator asked the
  // host-checked way for memory beyond it (rlmbox.memory_refused).
  uint64_t memory_cap = 0;
  bool grow_refused = false;
  // A host-call reply too big for the guest's first buffer, awaiting fetch.
  std::optional<std::string> pending_reply;
  // Exports, resolved once after instantiation.
  std::optional<wasmtime::Memory> memory;
  std::optional<wasmtime::Func> interrupt;
  std::optional<wasmtime::Global> stack_pointer;  // exported by newer guest builds
};

struct EngineInternals {
  EngineInternals(wasmtime::Engine e, wasmtime::Module m, wasmtime::Linker l)
      : engine(std::move(e)), module(std::move(m)), linker(std::move(l)) {}
  ~EngineInternals() {
    if (pre != nullptr) wasmtime_instance_pre_delete(pre);
  }
  wasmtime::Engine engine;
  wasmtime::Module module;
  wasmtime::Linker linker;
  wasmtime_instance_pre_t* pre = nullptr;
  std::string lib_dir;  // host directory mounted read-only at /lib
  bool fuel = false;    // compiled with fuel metering (Limits::fuel budgets)
  std::unique_ptr<Watchdog> watchdog;
  // Linear-memory ranges (offset, length) a first cell writes to; see
  // Engine::Create and PrefaultHotPages.
  std::vector<std::pair<uint64_t, uint64_t>> hot_ranges;
};

// The ranges of [base, base+size) this process has written to (private,
// anonymous pages, resident or swapped), read from /proc/self/pagemap;
// nullopt if it cannot be read.
std::optional<std::vector<std::pair<uint64_t, uint64_t>>> WrittenRanges(const uint8_t* base,
                                                                        uint64_t size);

// Write-faults `ranges` of a fresh instance's memory in one go
// (MADV_POPULATE_WRITE), before anything reads them.
void PrefaultHotPages(uint8_t* base, uint64_t size,
                      const std::vector<std::pair<uint64_t, uint64_t>>& ranges);

// Registers rlmbox.host_call and the WASI clock/poll overrides on `linker`
// (after define_wasi, with shadowing allowed).
void DefineHostFunctions(wasmtime::Linker& linker);

// The state of the store behind `cx`.
inline SandboxState& StateOf(wasmtime::Store::Context cx) {
  return *std::any_cast<SandboxState*>(cx.get_data());
}

}  // namespace rlmbox::engine
