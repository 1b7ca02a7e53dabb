#include "engine/engine.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <system_error>
#include <vector>

#include "engine/internals.h"
#include "engine/sandbox.h"

namespace rlmbox::engine {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string Hex(const unsigned char* data, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 15]);
  }
  return out;
}

std::string Sha256(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  return Hex(digest, len);
}

// One sized read (the compiled guest is ~35 MB: a char-by-char stream read
// was a quarter of the engine's start-up).
Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return NotFound("cannot read " + path.string());
  const std::streamoff size = in.tellg();
  if (size < 0) return NotFound("cannot read " + path.string());
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), size)) return NotFound("cannot read " + path.string());
  return bytes;
}

// The SHA-256 of a file, read in 1 MiB pieces: no buffer the size of the file
// (the compiled guest is ~35 MB; reading it whole cost more in page faults
// than the hashing itself).
Result<std::string> Sha256File(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path.string());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return Internal("SHA-256 unavailable");
  }
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return NotFound("cannot read " + path.string());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return Hex(digest, len);
}

Status WriteFileAtomically(const fs::path& path, std::string_view bytes) {
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return Internal("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Internal("cannot rename " + tmp.string() + ": " + ec.message());
  return Status::Ok();
}

// Every engine setting that changes generated code or its runtime contract;
// part of the compiled-module cache key. Fuel metering is its own variant.
std::string_view EngineFingerprint(bool fuel) {
  return fuel ? "cranelift-speed;epoch;fuel;pooling;cow;no-gc;v2"
              : "cranelift-speed;epoch;pooling;cow;no-gc;v2";
}

wasmtime::Config MakeConfig(const EngineOptions& options, bool fuel) {
  wasmtime::Config config;
  config.epoch_interruption(true);
  config.consume_fuel(fuel);
  config.max_wasm_stack(options.max_wasm_stack);
  config.parallel_compilation(true);
  config.cranelift_opt_level(wasmtime::OptLevel::Speed);
  config.memory_init_cow(true);
  // The GC proposal is compiled in only for the C++ header's sake (see
  // deps/wasmtime-capi/Cargo.toml); the guest does not use it.
  config.wasm_gc(false);
  wasmtime::PoolAllocationConfig pool;
  pool.total_core_instances(options.max_sandboxes);
  pool.total_memories(options.max_sandboxes);
  pool.total_tables(options.max_sandboxes);
  pool.max_memory_size(size_t{4} << 30);  // wasm32's whole address space; stores cap lower
  pool.max_core_instance_size(size_t{4} << 20);
  pool.table_elements(size_t{1} << 16);
  // No pages kept resident on slot reuse: without PAGEMAP_SCAN (not exposed
  // by the C API) wasmtime would memcpy the whole kept region from the image
  // on every teardown, and the region it keeps (the start of memory) is the
  // cold bottom of the guest's stack. With PAGEMAP_SCAN (tried through a
  // one-function addition to the C API) it keeps at most 32 dirty regions and
  // releases everything past the 32nd; a Python cell's writes are scattered
  // far wider, so fresh-sandbox throughput did not change. docs/benchmarks.md.
  pool.linear_memory_keep_resident(0);
  // The function table is written lazily on first use of each entry; keeping
  // its pages resident (reset with memset) avoids a copy-on-write fault, and
  // its TLB shootdown, per page per instance.
  pool.table_keep_resident(size_t{128} << 10);
  config.pooling_allocation_strategy(pool);
  return config;
}

// Loads the compiled guest from the cache, or compiles and caches it.
// Only files this code wrote are loaded: the cache key covers the wasmtime
// version, the engine settings and the guest's hash, and a manifest holding
// the compiled file's SHA-256 is checked before deserializing.
Result<wasmtime::Module> LoadModule(wasmtime::Engine& engine, const fs::path& wasm_path,
                                    const std::string& guest_sha, const fs::path& cache_dir,
                                    bool fuel, bool* from_cache,
                                    const std::function<void(const fs::path&)>& on_compile) {
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  const std::string key =
      Sha256(std::string(WASMTIME_VERSION) + ";" + std::string(EngineFingerprint(fuel)) + ";" +
             guest_sha)
          .substr(0, 32);
  const fs::path cwasm = cache_dir / ("guest-" + key + ".cwasm");
  const fs::path manifest = cache_dir / ("guest-" + key + ".sha256");

  auto expected = ReadFile(manifest);
  auto actual = expected.ok() ? Sha256File(cwasm) : Result<std::string>(expected.status());
  if (expected.ok() && actual.ok() && *actual == *expected) {
    auto module = wasmtime::Module::deserialize_file(engine, cwasm.string());
    if (module) {
      *from_cache = true;
      return std::move(module).ok();
    }
  }
  *from_cache = false;
  if (on_compile) on_compile(cache_dir);
  ASSIGN_OR_RETURN(std::string wasm, ReadFile(wasm_path));
  if (Sha256(wasm) != guest_sha) return Internal("the guest changed while loading");
  auto module = wasmtime::Module::compile(
      engine, wasmtime::Span<uint8_t>(reinterpret_cast<uint8_t*>(const_cast<char*>(wasm.data())),
                                      wasm.size()));
  if (!module) return Internal("compiling the guest failed: " + module.err().message());
  auto bytes = module.ok().serialize();
  if (bytes) {
    std::string_view view(reinterpret_cast<const char*>(bytes.ok().data()), bytes.ok().size());
    // A cache we cannot write only costs the next start a compile.
    if (WriteFileAtomically(cwasm, view).ok()) {
      (void)WriteFileAtomically(manifest, Sha256(view));
      // Deserializing from the file lets instances map memory images from it.
      auto mapped = wasmtime::Module::deserialize_file(engine, cwasm.string());
      if (mapped) return std::move(mapped).ok();
    }
  }
  return std::move(module).ok();
}

// The wasmtime engine, compiled guest, linker and watchdog of one variant
// (fuel metering on or off).
Result<std::unique_ptr<EngineInternals>> BuildInternals(const EngineOptions& options,
                                                        const std::string& guest_sha, bool fuel,
                                                        bool* from_cache) {
  wasmtime::Engine engine(MakeConfig(options, fuel));
  ASSIGN_OR_RETURN(wasmtime::Module module,
                   LoadModule(engine, options.guest_dir / "guest.wasm", guest_sha,
                              options.module_cache_dir, fuel, from_cache, options.on_compile));

  wasmtime::Linker linker(engine);
  if (auto r = linker.define_wasi(); !r) return Internal("define_wasi: " + r.err().message());
  linker.allow_shadowing(true);
  try {
    DefineHostFunctions(linker);
  } catch (const std::exception& e) {
    return Internal(e.what());
  }
  auto internals =
      std::make_unique<EngineInternals>(std::move(engine), std::move(module), std::move(linker));
  if (auto* err = wasmtime_linker_instantiate_pre(internals->linker.capi(),
                                                  internals->module.capi(), &internals->pre)) {
    wasmtime::Error e(err);
    return Internal("guest imports cannot be satisfied: " + e.message());
  }
  internals->lib_dir = fs::absolute(options.guest_dir / "lib").string();
  wasmtime::Engine* raw_engine = &internals->engine;
  internals->watchdog = std::make_unique<Watchdog>(std::chrono::microseconds(1000),
                                                   [raw_engine] { raw_engine->increment_epoch(); });
  internals->fuel = fuel;
  return internals;
}

}  // namespace

Engine::Engine(EngineOptions options)
    : options_(std::move(options)), budget_(options_.memory_budget_bytes) {}

Engine::~Engine() = default;

Result<EngineInternals*> Engine::Variant(bool fuel) {
  if (!fuel) return internals_.get();
  std::lock_guard lock(fuel_mu_);
  if (!fuel_internals_) {
    bool from_cache = false;
    ASSIGN_OR_RETURN(fuel_internals_,
                     BuildInternals(options_, info_.guest_sha256, /*fuel=*/true, &from_cache));
    fuel_internals_->hot_ranges = internals_->hot_ranges;  // the same guest, the same pages
  }
  return fuel_internals_.get();
}

Result<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options) {
  auto started = Clock::now();
  std::unique_ptr<Engine> self(new Engine(options));
  self->snapshot_key_ = options.snapshot_key;
  if (self->snapshot_key_.empty()) {
    self->snapshot_key_.resize(32);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(self->snapshot_key_.data()), 32) != 1) {
      return Internal("no randomness for the snapshot key");
    }
  }
  const fs::path wasm_path = options.guest_dir / "guest.wasm";
  const fs::path lib_dir = options.guest_dir / "lib";
  if (!fs::exists(lib_dir / "python313.zip")) {
    return NotFound("guest stdlib missing: " + (lib_dir / "python313.zip").string() +
                    " (build it with `make guest`)");
  }
  self->info_.wasmtime_version = WASMTIME_VERSION;
  ASSIGN_OR_RETURN(self->info_.guest_sha256, Sha256File(wasm_path));

  bool from_cache = false;
  ASSIGN_OR_RETURN(self->internals_,
                   BuildInternals(options, self->info_.guest_sha256, /*fuel=*/false, &from_cache));
  self->info_.module_from_cache = from_cache;

  // One probe instance tells the snapshot's memory size (the baseline that
  // Limits::memory_bytes comes on top of) and proves the guest instantiates.
  ASSIGN_OR_RETURN(auto probe, self->NewSandbox());
  self->info_.baseline_memory_bytes = probe->memory_bytes();
  // Learn which pages a first cell writes, so later sandboxes can prefault
  // them (see prefault.cc).
  if (options.prefault_hot_pages && probe->Prime().ok()) {
    // One small cell as well: its writes (request, reply, a few objects) are
    // the ones every execution repeats.
    Limits limits;
    limits.timeout = std::chrono::seconds(10);
    (void)probe->Execute("x = [i for i in range(10)]\nprint(len(x))\nx", limits, nullptr);
    auto [base, size] = probe->memory_span();
    self->internals_->hot_ranges = WrittenRanges(base, size).value_or(
        std::vector<std::pair<uint64_t, uint64_t>>{});
    uint64_t bytes = 0;
    for (const auto& r : self->internals_->hot_ranges) bytes += r.second;
    self->info_.hot_bytes = bytes;
  }
  self->info_.load_time =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  return self;
}

Result<std::string> Engine::Seal(const SandboxImage& image, std::string_view host_state) const {
  return SealSnapshot(image, host_state, snapshot_key_, info_.guest_sha256);
}

Result<SandboxImage> Engine::Open(std::string_view sealed, std::string_view* host_state) const {
  return OpenSnapshot(sealed, snapshot_key_, info_.guest_sha256, host_state);
}

}  // namespace rlmbox::engine
