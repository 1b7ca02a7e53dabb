// Engine: the one wasmtime engine of a process, the compiled guest, and the
// factory for sandboxes.
//
// Create() loads the guest (guest.wasm + its stdlib zip), compiles it once and
// caches the compiled module on disk keyed by (wasmtime version, engine
// configuration, guest hash); later starts deserialize that file after
// checking its SHA-256 against the manifest written beside it. Instances come
// from a pooling allocator with copy-on-write memory images of the Wizer
// snapshot, so a new sandbox costs an mmap, not an interpreter start-up.
//
// Thread-safety: NewSandbox() may be called from any thread concurrently.
// The Engine must outlive every Sandbox it made.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/status.h"
#include "engine/memory_budget.h"
#include "engine/snapshot.h"

namespace rlmbox::engine {

class Sandbox;
struct EngineInternals;

struct EngineOptions {
  // Holds guest.wasm and lib/python313.zip (see guest/build.sh).
  std::filesystem::path guest_dir;
  // Where compiled modules are cached; created if missing.
  std::filesystem::path module_cache_dir;
  // Slots in the pooling allocator: the most sandboxes alive at once.
  uint32_t max_sandboxes = 1000;
  // Native stack the guest may use (wasm frames); exceeding it is a clean trap.
  size_t max_wasm_stack = 2u << 20;
  // After a soft stop (the cell is asked to stop at its deadline) the guest has
  // this long to return before it is stopped hard and the sandbox discarded.
  std::chrono::milliseconds hard_stop_grace{50};
  // Prefault, in each new sandbox, the pages a first cell writes (learned at
  // start-up), avoiding a TLB shootdown per page. See prefault.cc.
  bool prefault_hot_pages = true;
  // The linear memory all sandboxes together may hold (engine/memory_budget.h);
  // 0 = no process-wide budget, only each execution's own limit.
  uint64_t memory_budget_bytes = 0;
  // Called once, just before the guest is compiled because no cached module
  // fits (not called on a cache hit): lets an embedder say why the first
  // start takes seconds. Receives the cache directory.
  std::function<void(const std::filesystem::path&)> on_compile;
  // The key that seals session snapshots (engine/snapshot.h). Empty: 32
  // random bytes for this process, so only this process can open its own
  // snapshots.
  std::string snapshot_key;
};

struct EngineInfo {
  std::string wasmtime_version;
  std::string guest_sha256;
  bool module_from_cache = false;
  std::chrono::milliseconds load_time{0};
  uint64_t baseline_memory_bytes = 0;  // linear memory of a fresh sandbox
  uint64_t hot_bytes = 0;              // prefaulted per new sandbox
};

class Engine {
 public:
  // Errors: kNotFound when the guest files are missing; kInternal when the
  // guest does not compile or instantiate.
  static Result<std::unique_ptr<Engine>> Create(const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // A fresh sandbox restored from the snapshot, with its own randomness.
  // `fuel`: on the fuel-metered variant of the engine, which Limits::fuel
  // budgets need (compiled, or loaded from the cache, on first use; metering
  // costs 12-30 % of every workload, so it is not the default).
  // Errors: kResourceExhausted when every pool slot is in use; kInternal
  // when instantiation fails for another reason.
  Result<std::unique_ptr<Sandbox>> NewSandbox(bool fuel = false);

  // A new sandbox holding `image`'s state (Sandbox::Capture), on the main or
  // the fuel-metered variant. Its randomness is the image's: call Reseed()
  // for a fork. Errors: as NewSandbox, and kResourceExhausted when the memory
  // budget cannot hold the image's memory.
  Result<std::unique_ptr<Sandbox>> Restore(const SandboxImage& image, bool fuel = false);

  // Seals an image and the embedder's `host_state` with this engine's
  // snapshot key and guest build, and opens such bytes again (errors: see
  // OpenSnapshot).
  Result<std::string> Seal(const SandboxImage& image, std::string_view host_state) const;
  Result<SandboxImage> Open(std::string_view sealed, std::string_view* host_state) const;

  const EngineInfo& info() const { return info_; }
  const EngineOptions& options() const { return options_; }
  MemoryBudget& memory_budget() { return budget_; }

 private:
  explicit Engine(EngineOptions options);
  friend class Sandbox;
  // The main variant, or the fuel-metered one (made on first use).
  Result<EngineInternals*> Variant(bool fuel);
  // NewSandbox, optionally without prefaulting the hot pages (a restore
  // faults in the image's own pages instead).
  Result<std::unique_ptr<Sandbox>> Instantiate(bool fuel, bool prefault_hot);

  EngineOptions options_;
  std::string snapshot_key_;
  MemoryBudget budget_;
  EngineInfo info_;
  std::unique_ptr<EngineInternals> internals_;
  std::mutex fuel_mu_;
  std::unique_ptr<EngineInternals> fuel_internals_;  // guarded by fuel_mu_
};

}  // namespace rlmbox::engine
