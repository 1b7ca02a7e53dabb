#include "engine/sandbox.h"

#include <cstring>
#include <ctime>

#include "base/bounded_json.h"
#include "engine/engine.h"
#include "engine/door_protocol.h"
#include "engine/guest_reply.h"
#include "engine/internals.h"

namespace rlmbox::engine {
namespace {

using Clock = std::chrono::steady_clock;

// The runner's ops (guest/rlmbox_runner.py).
constexpr int kOpExecute = 0;
constexpr int kOpContextText = 1;
constexpr int kOpContextJson = 2;
constexpr int kOpGetVar = 3;
constexpr int kOpPrime = 4;
constexpr int kOpReseed = 5;

// Fuel the store has burnt in this call (fuel-metered sandboxes only).
uint64_t FuelUsed(wasmtime::Store::Context ctx, const SandboxState& st) {
  auto fuel = ctx.get_fuel();
  return fuel && st.fuel_granted > fuel.ok() ? st.fuel_granted - fuel.ok() : 0;
}

// Fuel kept back after the soft stop so the guest can unwind and reply.
uint64_t FuelReserve(uint64_t budget) {
  return std::clamp<uint64_t>(budget / 10, 20'000'000, 500'000'000);
}

}  // namespace

std::chrono::nanoseconds ThreadCpuTime() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

namespace {

std::string NewExecutionId() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  char buf[40];
  std::snprintf(buf, sizeof buf, "ex-%08llx-%06llx",
                static_cast<unsigned long long>(salt & 0xffffffffu),
                static_cast<unsigned long long>(++counter));
  return buf;
}

std::string StopMessage(Outcome outcome, const Limits& limits) {
  if (outcome == Outcome::kException) {
    return "CancelledError: the caller went away and the execution was stopped";
  }
  if (outcome == Outcome::kTimeout) {
    return "TimeoutError: execution exceeded its " + std::to_string(limits.timeout.count()) +
           " ms time limit and was stopped";
  }
  if (outcome == Outcome::kCpuExceeded) {
    return "CPUTimeExceeded: execution used its CPU time budget of " +
           std::to_string(limits.cpu_budget().count()) + " ms and was stopped";
  }
  return "FuelExhausted: execution used its fuel budget of " + std::to_string(limits.fuel) +
         " and was stopped";
}

// Replies of the small ops (context binding, priming): a few fields.
constexpr uint64_t kSmallReplyBytes = 64u << 10;

// After a soft stop the guest gets the grace in CPU time of its own thread;
// this many graces of wall time bound it on a machine too loaded to run it.
constexpr int kHardStopWallFactor = 20;

}  // namespace

struct Sandbox::Wasm {
  explicit Wasm(wasmtime::Engine& engine) : store(engine) {}
  wasmtime::Store store;
  std::optional<wasmtime::Func> alloc;
  std::optional<wasmtime::Func> call;
  bool usable = false;
  uint64_t memory_cap_base = 0;  // baseline memory at instantiation
  uint64_t charged = 0;          // what the engine's memory budget holds for it
  uint32_t entry_stack_pointer = 0;  // the guest's stack pointer between calls
};

// What one guest call produced, before interpretation.
struct Sandbox::Call {
  bool returned = false;        // the guest returned a reply
  std::string reply;            // its bytes (UTF-8 JSON), unless too large
  bool reply_too_large = false; // the reply exceeded the caller's bound and was not read
  uint64_t reply_bytes = 0;     // the reply's size as the guest gave it
  bool trapped = false;         // the call ended in a trap or host error
  std::optional<wasmtime_trap_code_t> trap_code;
  std::string trap_message;
  bool alloc_failed = false;    // the guest could not allocate the request
  StopReason reason = StopReason::kNone;
  bool interrupted = false;     // a soft stop was sent
  uint64_t fuel_used = 0;
  uint32_t host_calls = 0;
  Clock::duration elapsed{};
  std::chrono::nanoseconds cpu_time{0};  // the executing thread's, during the call
  uint64_t memory_cap = 0;
  uint64_t memory_wanted = 0;   // the cap the limits asked for
  bool budget_limited = false;  // the memory budget granted less than that
  bool grow_refused = false;    // the allocator was refused memory beyond the cap
};

Sandbox::Sandbox(Engine& engine, EngineInternals& variant)
    : engine_(engine),
      variant_(variant),
      state_(std::make_unique<SandboxState>()),
      wasm_(std::make_unique<Wasm>(variant.engine)) {}

bool Sandbox::fuel_metered() const { return variant_.fuel; }

Sandbox::~Sandbox() { engine_.memory_budget().Release(&wasm_->charged); }

bool Sandbox::usable() const { return wasm_->usable; }

uint64_t Sandbox::memory_bytes() {
  if (!state_->memory) return 0;
  return state_->memory->data(wasm_->store.context()).size();
}

std::pair<uint8_t*, uint64_t> Sandbox::memory_span() {
  if (!state_->memory) return {nullptr, 0};
  auto span = state_->memory->data(wasm_->store.context());
  return {span.data(), span.size()};
}

Result<std::unique_ptr<Sandbox>> Engine::NewSandbox(bool fuel) {
  return Instantiate(fuel, /*prefault_hot=*/true);
}

Result<std::unique_ptr<Sandbox>> Engine::Instantiate(bool fuel, bool prefault_hot) {
  ASSIGN_OR_RETURN(EngineInternals * variant, Variant(fuel));
  std::unique_ptr<Sandbox> sb(new Sandbox(*this, *variant));
  SandboxState* st = sb->state_.get();
  wasmtime::Store& store = sb->wasm_->store;
  auto cx = store.context();
  cx.set_data(st);

  wasmtime::WasiConfig wasi;  // no args, no env, no stdio, no network
  if (!wasi.preopen_dir(variant->lib_dir, "/lib", /*fs_mutable=*/false)) {
    return Internal("cannot preopen " + variant->lib_dir);
  }
  if (auto r = cx.set_wasi(std::move(wasi)); !r) return Internal("wasi: " + r.err().message());

  const std::chrono::milliseconds grace = options_.hard_stop_grace;
  store.epoch_deadline_callback(
      [st, grace](wasmtime::Store::Context ctx,
                  uint64_t& delta) -> wasmtime::Result<wasmtime::DeadlineKind> {
        delta = 1;
        if (!st->active) return wasmtime::DeadlineKind::Continue;
        const auto now = Clock::now();
        if (st->interrupt_sent) {
          if (now >= st->hard_deadline || ThreadCpuTime() >= st->hard_cpu) {
            if (st->reason == StopReason::kNone) st->reason = StopReason::kTimeout;
            st->hard_stopped = true;
            return wasmtime::Error("rlmbox: execution stopped at its deadline");
          }
        } else {
          StopReason want = StopReason::kNone;
          if (now >= st->soft_deadline) {
            want = StopReason::kTimeout;
          } else if (ThreadCpuTime() - st->cpu_start >= st->cpu_budget) {
            want = StopReason::kCpu;
          } else if (st->fuel_budget > 0 && FuelUsed(ctx, *st) >= st->fuel_budget) {
            want = StopReason::kFuel;
          } else if (st->handler != nullptr && st->handler->cancelled()) {
            want = StopReason::kCancelled;
          }
          if (want != StopReason::kNone) {
            st->reason = want;
            st->interrupt_sent = true;  // before the call: it re-enters this callback
            st->hard_deadline = now + kHardStopWallFactor * grace;
            st->hard_cpu = ThreadCpuTime() + grace;
            // wasmtime detaches this callback while it runs, so the nested
            // call must not meet an epoch deadline of its own.
            ctx.set_epoch_deadline(uint64_t{1} << 40);
            if (st->interrupt) (void)st->interrupt->call(ctx, {});
          }
        }
        return wasmtime::DeadlineKind::Continue;
      });
  cx.set_epoch_deadline(1);
  if (variant->fuel) {
    if (auto r = cx.set_fuel(1'000'000'000); !r) return Internal("fuel: " + r.err().message());
  }

  wasmtime_instance_t raw{};
  wasm_trap_t* trap = nullptr;
  wasmtime_error_t* err =
      wasmtime_instance_pre_instantiate(variant->pre, cx.capi(), &raw, &trap);
  if (err != nullptr || trap != nullptr) {
    std::string message = err ? wasmtime::Error(err).message() : wasmtime::Trap(trap).message();
    if (message.find("concurrent") != std::string::npos ||
        message.find("limit") != std::string::npos) {
      return ResourceExhausted("no free sandbox slot: " + message);
    }
    return Internal("instantiating the guest failed: " + message);
  }
  wasmtime::Instance instance(raw);
  auto get = [&](const char* name) { return instance.get(cx, name); };
  auto memory = get("memory");
  auto call = get("rlmbox_call");
  auto alloc = get("rlmbox_alloc");
  auto interrupt = get("rlmbox_interrupt");
  if (!memory || !call || !alloc || !interrupt ||
      !std::holds_alternative<wasmtime::Memory>(*memory) ||
      !std::holds_alternative<wasmtime::Func>(*call) ||
      !std::holds_alternative<wasmtime::Func>(*alloc) ||
      !std::holds_alternative<wasmtime::Func>(*interrupt)) {
    return Internal("the guest lacks the rlmbox exports");
  }
  st->memory = std::get<wasmtime::Memory>(*memory);
  st->interrupt = std::get<wasmtime::Func>(*interrupt);
  if (auto sp = get("__stack_pointer"); sp && std::holds_alternative<wasmtime::Global>(*sp)) {
    st->stack_pointer = std::get<wasmtime::Global>(*sp);
    sb->wasm_->entry_stack_pointer = static_cast<uint32_t>(st->stack_pointer->get(cx).i32());
  }
  sb->wasm_->call = std::get<wasmtime::Func>(*call);
  sb->wasm_->alloc = std::get<wasmtime::Func>(*alloc);
  sb->wasm_->usable = true;
  sb->wasm_->memory_cap_base = sb->memory_bytes();
  {
    MemoryBudget& budget = sb->engine_.memory_budget();
    const uint64_t size = sb->memory_bytes();
    if (budget.Charge(&sb->wasm_->charged, size, 0) < size) {
      return ResourceExhausted("the process memory budget (" +
                               std::to_string(budget.total() >> 20) +
                               " MiB, RLMBOX_MEMORY_BUDGET_MB) is spent");
    }
  }
  if (prefault_hot && !variant->hot_ranges.empty()) {
    auto [base, size] = sb->memory_span();
    PrefaultHotPages(base, size, variant->hot_ranges);
  }
  return sb;
}

Result<std::unique_ptr<Sandbox>> Engine::Restore(const SandboxImage& image, bool fuel) {
  ASSIGN_OR_RETURN(auto sb, Instantiate(fuel, /*prefault_hot=*/false));
  SandboxState& st = *sb->state_;
  auto cx = sb->wasm_->store.context();
  if (!st.stack_pointer) {
    return FailedPrecondition("this guest build does not export its stack pointer (rebuild it)");
  }
  const uint64_t current = sb->memory_bytes();
  if (image.memory_bytes < current) {
    return InvalidArgument("the snapshot's memory is smaller than a fresh sandbox's");
  }
  if (image.memory_bytes > current) {
    if (budget_.Charge(&sb->wasm_->charged, image.memory_bytes, current) < image.memory_bytes) {
      return ResourceExhausted("the process memory budget (" + std::to_string(budget_.total() >> 20) +
                               " MiB, RLMBOX_MEMORY_BUDGET_MB) cannot hold the snapshot's " +
                               std::to_string(image.memory_bytes >> 20) + " MiB");
    }
    if (auto r = st.memory->grow(cx, (image.memory_bytes - current) / (64u << 10)); !r) {
      return ResourceExhausted("cannot grow the sandbox's memory to the snapshot's: " +
                               r.err().message());
    }
  }
  auto [base, size] = sb->memory_span();
  const std::string_view pages = image.page_bytes();
  uint64_t total = 0;
  for (const auto& [offset, length] : image.ranges) {
    if (uint64_t{offset} + length > size) {
      return InvalidArgument("the snapshot's pages do not fit its memory");
    }
    total += length;
  }
  if (total != pages.size()) return InvalidArgument("the snapshot's pages do not fit its memory");
  // Fault every page in at once (one call per range, not one trap per page),
  // then copy over them.
  std::vector<std::pair<uint64_t, uint64_t>> ranges(image.ranges.begin(), image.ranges.end());
  PrefaultHotPages(base, size, ranges);
  const char* src = pages.data();
  for (const auto& [offset, length] : image.ranges) {
    std::memcpy(base + offset, src, length);
    src += length;
  }
  if (auto r = st.stack_pointer->set(cx, wasmtime::Val(static_cast<int32_t>(image.stack_pointer)));
      !r) {
    return Internal("cannot set the guest's stack pointer: " + r.err().message());
  }
  sb->wasm_->entry_stack_pointer = image.stack_pointer;
  return sb;
}

Result<SandboxImage> Sandbox::Capture() {
  if (!wasm_->usable) return FailedPrecondition("the sandbox was stopped and has no state to save");
  SandboxState& st = *state_;
  if (!st.stack_pointer) {
    return FailedPrecondition("this guest build does not export its stack pointer (rebuild it)");
  }
  auto cx = wasm_->store.context();
  SandboxImage image;
  image.stack_pointer = static_cast<uint32_t>(st.stack_pointer->get(cx).i32());
  if (image.stack_pointer != wasm_->entry_stack_pointer) {
    return Internal("the guest's stack pointer is not at its entry value between calls");
  }
  auto [base, size] = memory_span();
  image.memory_bytes = size;
  // Without /proc/self/pagemap every page counts as written: larger, as correct.
  auto written = WrittenRanges(base, size)
                     .value_or(std::vector<std::pair<uint64_t, uint64_t>>{{0, size}});
  uint64_t total = 0;
  for (const auto& r : written) total += r.second;
  image.pages.reserve(total);
  constexpr uint64_t kPiece = uint64_t{1} << 30;  // lengths stay 32-bit
  for (auto [offset, length] : written) {
    while (length > 0) {
      const uint64_t n = std::min(length, kPiece);
      image.ranges.emplace_back(static_cast<uint32_t>(offset), static_cast<uint32_t>(n));
      image.pages.append(reinterpret_cast<const char*>(base + offset), n);
      offset += n;
      length -= n;
    }
  }
  return image;
}

Status Sandbox::Reseed() {
  if (!wasm_->usable) return FailedPrecondition("the sandbox is no longer usable");
  Limits limits;
  limits.timeout = std::chrono::seconds(5);
  limits.memory_bytes = 16u << 20;
  Call c = Invoke(kOpReseed, {}, limits, nullptr, kSmallReplyBytes);
  auto reply = c.returned ? ParseBoundedJson(c.reply, kGuestJsonLimits, "the guest's reply")
                          : Result<nlohmann::json>(Internal(c.trap_message));
  if (!reply.ok() || !reply->is_object() || reply->value("ok", false) != true) {
    return Internal("reseeding the sandbox failed: " +
                    (reply.ok() ? std::string("the guest refused") : reply.status().message()));
  }
  return Status::Ok();
}

Sandbox::Call Sandbox::Invoke(int op, std::string_view payload, const Limits& limits,
                              HostCallHandler* handler, uint64_t max_reply_bytes) {
  Call c;
  SandboxState& st = *state_;
  auto cx = wasm_->store.context();
  const auto start = Clock::now();

  st.soft_deadline = start + limits.timeout;
  st.hard_deadline = Clock::time_point::max();  // set with the soft stop
  // A fuel budget only on a metered sandbox (Engine::NewSandbox(true)); a
  // metered sandbox without one gets all the fuel there is.
  st.fuel_budget = variant_.fuel ? limits.fuel : 0;
  st.cpu_budget = limits.cpu_budget();
  st.cpu_start = ThreadCpuTime();
  st.fuel_granted = st.fuel_budget > 0 ? st.fuel_budget + FuelReserve(st.fuel_budget)
                                       : uint64_t{1} << 62;
  st.limits = &limits;
  st.handler = handler;
  st.host_calls = 0;
  st.reason = StopReason::kNone;
  st.interrupt_sent = false;
  st.hard_stopped = false;
  st.pending_reply.reset();
  {
    // The cap is what the limits allow, or what is left of the process-wide
    // budget; memory the sandbox already holds is never taken away.
    const uint64_t current = memory_bytes();
    c.memory_wanted = std::max(current, wasm_->memory_cap_base + limits.memory_bytes);
    c.memory_cap = engine_.memory_budget().Charge(&wasm_->charged, c.memory_wanted, current);
    c.budget_limited = c.memory_cap < c.memory_wanted;
  }
  wasm_->store.limiter(static_cast<int64_t>(c.memory_cap), -1, -1, -1, -1);
  st.memory_cap = c.memory_cap;
  st.grow_refused = false;
  if (variant_.fuel) (void)cx.set_fuel(st.fuel_granted);
  cx.set_epoch_deadline(1);

  auto fail = [&](const wasmtime::TrapError& e) {
    c.trapped = true;
    c.trap_message = e.message();
    if (auto* t = std::get_if<wasmtime::Trap>(&e.data)) c.trap_code = t->code();
  };

  {
    Watchdog::ActiveScope active(*variant_.watchdog);
    st.active = true;
    uint32_t ptr = 0;
    auto a = wasm_->alloc->call(cx, {wasmtime::Val(static_cast<int32_t>(payload.size()))});
    if (!a) {
      fail(a.err());
    } else {
      ptr = static_cast<uint32_t>(a.ok()[0].i32());
      auto mem = st.memory->data(cx);
      if (ptr == 0 || uint64_t{ptr} + payload.size() > mem.size()) {
        c.alloc_failed = true;
      } else {
        if (!payload.empty()) std::memcpy(mem.data() + ptr, payload.data(), payload.size());
        auto r = wasm_->call->call(cx, {wasmtime::Val(static_cast<int32_t>(op)),
                                        wasmtime::Val(static_cast<int32_t>(ptr)),
                                        wasmtime::Val(static_cast<int32_t>(payload.size()))});
        if (!r) {
          fail(r.err());
        } else {
          auto packed = static_cast<uint64_t>(r.ok()[0].i64());
          auto rptr = static_cast<uint32_t>(packed >> 32);
          auto rlen = static_cast<uint32_t>(packed & 0xffffffffu);
          mem = st.memory->data(cx);
          if (static_cast<int64_t>(packed) < 0 || uint64_t{rptr} + rlen > mem.size()) {
            c.trapped = true;
            c.trap_message = "the guest runner failed to produce a reply";
          } else {
            // The reply is hostile input: it is read only when its size is
            // one the caller's caps allow (a guest cannot make the host copy
            // hundreds of megabytes by printing around the runner).
            c.returned = true;
            c.reply_bytes = rlen;
            if (rlen > max_reply_bytes) {
              c.reply_too_large = true;
            } else {
              c.reply.assign(reinterpret_cast<const char*>(mem.data() + rptr), rlen);
            }
          }
        }
      }
    }
    st.active = false;
  }
  c.elapsed = Clock::now() - start;
  c.cpu_time = ThreadCpuTime() - st.cpu_start;
  if (variant_.fuel) {
    if (auto fuel = cx.get_fuel(); fuel) {
      c.fuel_used = st.fuel_granted > fuel.ok() ? st.fuel_granted - fuel.ok() : 0;
    }
  }
  c.reason = st.reason;
  c.interrupted = st.interrupt_sent;
  c.host_calls = st.host_calls;
  c.grow_refused = st.grow_refused;
  if (c.trap_code == WASMTIME_TRAP_CODE_OUT_OF_FUEL) c.reason = StopReason::kFuel;
  if (c.trapped) wasm_->usable = false;  // interpreter state unknown after a trap
  // Idle, the sandbox holds what it has grown to (a session keeps its heap).
  {
    const uint64_t now_size = memory_bytes();
    engine_.memory_budget().Charge(&wasm_->charged, now_size, now_size);
  }
  st.handler = nullptr;
  st.limits = nullptr;
  st.tools = nullptr;
  st.pending_reply.reset();
  return c;
}

namespace {

const char* ModeName(CellOptions::Mode mode) {
  switch (mode) {
    case CellOptions::Mode::kRepl: return "repl";
    case CellOptions::Mode::kNode: return "node";
    case CellOptions::Mode::kEval: return "eval";
    case CellOptions::Mode::kTemplate: return "template";
  }
  return "repl";
}

}  // namespace

std::string Sandbox::BudgetMessage(const Call& c, Engine& engine) {
  return "MemoryError: the process-wide memory budget (" +
         std::to_string(engine.memory_budget().total() >> 20) +
         " MiB, RLMBOX_MEMORY_BUDGET_MB) left this cell " + std::to_string(c.memory_cap >> 20) +
         " MiB of the " + std::to_string(c.memory_wanted >> 20) + " MiB its limits allow";
}

ExecutionResult Sandbox::Execute(std::string_view code, const Limits& limits,
                                 HostCallHandler* handler, const CellOptions& options) {
  ExecutionResult r;
  r.execution_id = NewExecutionId();
  if (!wasm_->usable) {
    r.outcome = Outcome::kCrashed;
    r.error = "the sandbox was stopped earlier and cannot run more code";
    return r;
  }
  nlohmann::json req = {{"code", code}, {"max_output_bytes", limits.max_output_bytes}};
  if (options.mode != CellOptions::Mode::kRepl) req["mode"] = ModeName(options.mode);
  if (options.allowed_imports) req["allowed_imports"] = *options.allowed_imports;
  if (options.vars.is_object() && !options.vars.empty()) req["vars"] = options.vars;
  if (!options.call_function.empty()) {
    req["call"] = {{"function", options.call_function},
                   {"kwargs", options.call_kwargs.is_object() ? options.call_kwargs
                                                              : nlohmann::json::object()}};
  }
  if (!options.tools.empty()) {
    if (std::string err = ValidateToolNames(options.tools); !err.empty()) {
      r.outcome = Outcome::kException;
      r.error = "ValueError: " + err;
      return r;
    }
    req["tools"] = options.tools;
    state_->tools = &options.tools;  // read by the host door during this call only
  }
  const auto started = Clock::now();
  Call c = Invoke(kOpExecute, req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  limits, handler, MaxReplyBytes(limits.max_output_bytes));
  r.fuel_used = c.fuel_used;
  r.fuel_metered = variant_.fuel;
  r.cpu_time_s = std::chrono::duration<double>(c.cpu_time).count();
  r.memory_peak_bytes = memory_bytes();
  r.host_calls = c.host_calls;

  // What the engine itself did: a stop it sent decides the outcome, whatever
  // the guest did after it (swallowed the stop, raised something else, forged
  // its reply).
  auto stop_outcome = [&]() -> std::optional<Outcome> {
    if (c.reason == StopReason::kTimeout) return Outcome::kTimeout;
    if (c.reason == StopReason::kCpu) return Outcome::kCpuExceeded;
    if (c.reason == StopReason::kFuel) return Outcome::kFuelExhausted;
    if (c.reason == StopReason::kCancelled) return Outcome::kException;
    return std::nullopt;
  };
  auto finish_time = [&] {
    r.execution_time_s = std::chrono::duration<double>(Clock::now() - started).count();
  };

  std::optional<GuestReply> reply;
  if (c.returned && !c.reply_too_large) {
    auto decoded = DecodeExecuteReply(c.reply, limits.max_output_bytes,
                                      options.mode != CellOptions::Mode::kRepl);
    std::string().swap(c.reply);  // the decoded copy is all that is kept
    if (decoded.ok()) {
      reply = std::move(*decoded);
    } else {
      c.returned = false;
      c.trapped = true;
      c.trap_message = decoded.status().message();
      wasm_->usable = false;  // the runner no longer behaves as the runner
    }
  }
  if (!c.returned) {
    finish_time();
    if (c.alloc_failed) {
      r.outcome = Outcome::kMemoryExceeded;
      r.error = "MemoryError: the code does not fit in the memory limit";
    } else if (auto o = stop_outcome()) {
      r.outcome = *o;
      r.error = StopMessage(*o, limits);
    } else if (r.memory_peak_bytes + (2u << 20) >= c.memory_cap) {
      r.outcome = Outcome::kMemoryExceeded;
      r.error = "MemoryError: memory limit reached (" + c.trap_message + ")";
    } else {
      r.outcome = Outcome::kCrashed;
      r.error = c.trap_code == WASMTIME_TRAP_CODE_STACK_OVERFLOW
                    ? "RecursionError: the sandbox's stack is exhausted"
                    : "SandboxCrash: " + c.trap_message;
    }
    if (r.outcome == Outcome::kMemoryExceeded && c.budget_limited) r.error = BudgetMessage(c, engine_);
    r.stderr_text = *r.error + "\n";
    r.sandbox_reset = true;
    r.success = false;
    return r;
  }

  std::string exc_type;
  bool success = false, truncated = false;
  if (c.reply_too_large) {
    // Nothing of it was read; the cell's state in the guest is intact.
    truncated = true;
    r.error = "OutputLimitExceeded: the cell's output (" + std::to_string(c.reply_bytes) +
              " bytes) exceeded what its " + std::to_string(limits.max_output_bytes) +
              "-byte output cap allows";
  } else {
    r.stdout_text = std::move(reply->stdout_text);
    r.stderr_text = std::move(reply->stderr_text);
    r.locals = std::move(reply->locals);
    r.error = std::move(reply->error);
    r.final_answer = std::move(reply->final_answer);
    if (reply->value) {
      r.value = std::move(reply->value);
      r.value_type = std::move(reply->value_type);
    }
    exc_type = std::move(reply->exception_type);
    success = reply->success;
    truncated = reply->truncated;
  }
  finish_time();
  // The host's own work on the reply counts against the deadline too.
  const bool overran =
      r.execution_time_s * 1000.0 >
      static_cast<double>((limits.timeout + engine_.options().hard_stop_grace).count());

  if (auto o = stop_outcome(); o || overran) {
    r.outcome = o.value_or(Outcome::kTimeout);
    r.error = StopMessage(r.outcome, limits);
    if (r.stderr_text.size() + r.error->size() < limits.max_output_bytes) {
      r.stderr_text += *r.error + "\n";
    }
    // A stopped cell did not complete: nothing it marked as final counts.
    r.final_answer.reset();
    r.value.reset();
  } else if (truncated) {
    r.outcome = Outcome::kOutputTruncated;
    if (!c.reply_too_large && (!r.error || exc_type == "OutputLimitExceeded")) {
      r.error = "OutputLimitExceeded: output exceeded " + std::to_string(limits.max_output_bytes) +
                " bytes";
    }
  } else if (exc_type == "MemoryError" && c.grow_refused) {
    // Only when the allocator was refused memory beyond the cap: a MemoryError
    // the code raised itself is an exception like any other.
    r.outcome = Outcome::kMemoryExceeded;
    if (c.budget_limited) {
      r.error = BudgetMessage(c, engine_);
      if (r.stderr_text.size() + r.error->size() < limits.max_output_bytes) {
        r.stderr_text += *r.error + "\n";
      }
    }
  } else if (!success) {
    r.outcome = Outcome::kException;
  } else {
    r.outcome = Outcome::kOk;
  }
  r.success = r.outcome == Outcome::kOk;
  if (!r.success && !r.error) r.error = std::string(OutcomeName(r.outcome));
  return r;
}

Status Sandbox::SetContext(const ContextValue& context, const Limits& limits) {
  if (!wasm_->usable) return FailedPrecondition("the sandbox is no longer usable");
  if (context.kind == ContextValue::Kind::kJson) {
    if (Status s = ValidateBoundedJson(context.data, kRequestJsonLimits, "context"); !s.ok()) {
      return s;
    }
  }
  Call c = Invoke(context.kind == ContextValue::Kind::kText ? kOpContextText : kOpContextJson,
                  context.data, limits, nullptr, kSmallReplyBytes);
  // A context the limits cannot hold is the request's problem (400), not an
  // overload to retry.
  if (c.alloc_failed) return InvalidArgument("context does not fit in the memory limit");
  if (!c.returned || c.reply_too_large) {
    if (c.reason == StopReason::kTimeout) return InvalidArgument("loading the context timed out");
    if (c.reason == StopReason::kFuel) return InvalidArgument("loading the context ran out of fuel");
    if (c.reason == StopReason::kCpu) {
      return InvalidArgument("loading the context used up its CPU time");
    }
    return InvalidArgument("loading the context failed: " + c.trap_message);
  }
  auto parsed = ParseBoundedJson(c.reply, kGuestJsonLimits, "the guest's reply");
  const nlohmann::json reply = parsed.ok() ? *parsed : nlohmann::json();
  if (!reply.is_object() || !reply.contains("ok") || !reply["ok"].is_boolean() ||
      !reply["ok"].get<bool>()) {
    std::string why = reply.is_object() && reply.contains("error") && reply["error"].is_string()
                          ? reply["error"].get<std::string>()
                          : "unknown";
    TruncateUtf8(why, 4096);
    if (why.find("MemoryError") != std::string::npos) {
      return InvalidArgument("context does not fit in the memory limit");
    }
    // The context is the caller's data: one the guest's decoder refuses (too
    // deep for CPython's json, say) is the request's problem, not ours.
    return InvalidArgument("the context could not be loaded: " + why);
  }
  return Status::Ok();
}

Status Sandbox::Prime() {
  if (!wasm_->usable) return FailedPrecondition("the sandbox is no longer usable");
  Limits limits;
  limits.timeout = std::chrono::seconds(5);
  limits.memory_bytes = 16u << 20;  // what priming may grow; reserved from the budget meanwhile
  Call c = Invoke(kOpPrime, {}, limits, nullptr, kSmallReplyBytes);
  if (!c.returned) return Internal("priming the sandbox failed: " + c.trap_message);
  return Status::Ok();
}

Result<nlohmann::json> Sandbox::GetVar(std::string_view name, const Limits& limits) {
  if (!wasm_->usable) return FailedPrecondition("the sandbox is no longer usable");
  Call c = Invoke(kOpGetVar, name, limits, nullptr, MaxReplyBytes(limits.max_output_bytes));
  if (c.reason == StopReason::kTimeout) {
    return InvalidArgument("reading the variable exceeded its " +
                           std::to_string(limits.timeout.count()) + " ms time limit");
  }
  if (!c.returned) return Internal("reading the variable failed: " + c.trap_message);
  if (c.reply_too_large) {
    return InvalidArgument("the variable's text is larger than the " +
                           std::to_string(limits.max_output_bytes) + "-byte output cap");
  }
  auto parsed = ParseBoundedJson(c.reply, kGuestJsonLimits, "the guest's reply");
  if (!parsed.ok() || !parsed->is_object()) return Internal("the guest returned a malformed reply");
  nlohmann::json& reply = *parsed;
  if (!reply.contains("found") || !reply["found"].is_boolean() || !reply["found"].get<bool>()) {
    return NotFound("no variable named '" + std::string(name) + "'");
  }
  // Only the fields a variable lookup has, each of the type it has.
  nlohmann::json out = nlohmann::json::object();
  if (reply.contains("value")) out["value"] = std::move(reply["value"]);
  for (const char* key : {"text", "type"}) {
    if (reply.contains(key)) {
      if (!reply[key].is_string()) return Internal("the guest returned a malformed reply");
      std::string v = std::move(reply[key].get_ref<std::string&>());
      TruncateUtf8(v, limits.max_output_bytes);
      out[key] = std::move(v);
    }
  }
  if (out.contains("value") && out["value"].dump().size() > limits.max_output_bytes) {
    out["value"] = nullptr;
  }
  return out;
}

}  // namespace rlmbox::engine
