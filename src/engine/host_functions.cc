// The functions the guest may import beyond plain WASI:
//  - rlmbox.host_call: the host door for llm_query & co;
//  - rlmbox.memory_refused: the guest's allocator reports an allocation that
//    failed (the host believes it only when the size is beyond the cap), and
//    the interpreter its own out-of-memory path (size 0)
//    (so a MemoryError the code raises itself is no memory_exceeded);
//  - wasi_snapshot_preview1.clock_time_get / poll_oneoff, replaced so that a
//    guest sleep never outlasts the execution's deadline (wasmtime's own
//    poll_oneoff blocks the thread, out of reach of epoch interruption).
// Every pointer and length the guest passes is bounds-checked here; a bad one
// is an error code to the guest, never a host fault.
#include <algorithm>
#include <cstring>
#include <thread>

#include "base/bounded_json.h"
#include "engine/door_protocol.h"
#include "engine/internals.h"

namespace rlmbox::engine {
namespace {

using Clock = std::chrono::steady_clock;

// errno values of WASI preview1.
constexpr int32_t kErrnoSuccess = 0;
constexpr int32_t kErrnoFault = 21;
constexpr int32_t kErrnoInval = 28;

// host_call return codes (negative) for protocol errors.
constexpr int64_t kDoorBadPointer = -1;
constexpr int64_t kDoorNoPending = -2;

// Copies guest memory [ptr, ptr+len) if it is in bounds.
bool InBounds(wasmtime::Span<uint8_t> mem, uint32_t ptr, uint64_t len) {
  return static_cast<uint64_t>(ptr) + len <= mem.size();
}

std::string ErrorReply(std::string_view message) {
  return nlohmann::json{{"error", message}}.dump();
}

// Runs one validated call through the handler and returns the reply JSON text.
std::string Dispatch(SandboxState& st, std::string_view request) {
  const Limits& limits = *st.limits;
  if (request.size() > limits.max_host_call_bytes) {
    return ErrorReply("host call too large (limit " + std::to_string(limits.max_host_call_bytes) +
                      " bytes)");
  }
  auto decoded = ParseBoundedJson(request, kGuestJsonLimits, "the host call");
  if (!decoded.ok()) {
    const std::string& why = decoded.status().message();
    return ErrorReply(why.find("not valid JSON") != std::string::npos ? "malformed host call" : why);
  }
  nlohmann::json call = std::move(*decoded);
  HostCallKind kind{};
  size_t prompts = 0;
  if (std::string err = ValidateHostCall(call, &kind, &prompts); !err.empty()) {
    return ErrorReply(err);
  }
  if (st.host_calls + prompts > limits.max_host_calls) {
    return ErrorReply("host call limit reached (" + std::to_string(limits.max_host_calls) +
                      " per execution)");
  }
  if (kind == HostCallKind::kTool) {
    const auto& name = call["args"]["name"].get_ref<const std::string&>();
    if (st.tools == nullptr || std::find(st.tools->begin(), st.tools->end(), name) == st.tools->end()) {
      return ErrorReply("no tool named '" + name + "' is available here");
    }
  }
  st.host_calls += static_cast<uint32_t>(prompts);
  if (st.handler == nullptr) return ErrorReply(NoModelAttachedMessage(kind));
  if (Clock::now() >= st.soft_deadline) return ErrorReply("the execution's deadline has passed");

  HostCall hc{kind, std::move(call["args"]), st.soft_deadline};
  HostCallReply reply;
  try {
    reply = st.handler->Handle(hc);
  } catch (const std::exception& e) {  // a handler bug must not unwind through wasm frames
    reply = HostCallError{std::string("host call failed: ") + e.what()};
  }
  if (Clock::now() >= st.soft_deadline) return ErrorReply("the execution's deadline has passed");
  std::string text;
  if (auto* err = std::get_if<HostCallError>(&reply)) {
    text = ErrorReply(err->message);
  } else {
    text = nlohmann::json{{"result", std::get<nlohmann::json>(reply)}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  if (text.size() > limits.max_host_call_bytes) {
    return ErrorReply("host call reply too large (limit " +
                      std::to_string(limits.max_host_call_bytes) + " bytes)");
  }
  return text;
}

int64_t DoorHostCall(wasmtime::Caller caller, int32_t req_ptr, int32_t req_len, int32_t resp_ptr,
                 int32_t resp_cap) {
  SandboxState& st = StateOf(caller.context());
  if (!st.active || !st.memory) return kDoorBadPointer;
  auto mem = st.memory->data(caller.context());
  auto rp = static_cast<uint32_t>(resp_ptr);
  auto rc = static_cast<uint32_t>(resp_cap);
  if (!InBounds(mem, rp, rc)) return kDoorBadPointer;

  if (req_ptr == 0 && req_len == 0) {  // fetch a pending reply
    if (!st.pending_reply || st.pending_reply->size() > rc) return kDoorNoPending;
    std::string reply = std::move(*st.pending_reply);
    st.pending_reply.reset();
    std::memcpy(mem.data() + rp, reply.data(), reply.size());
    return static_cast<int64_t>(reply.size());
  }
  auto qp = static_cast<uint32_t>(req_ptr);
  auto ql = static_cast<uint32_t>(req_len);
  if (!InBounds(mem, qp, ql)) return kDoorBadPointer;
  std::string request(reinterpret_cast<const char*>(mem.data() + qp), ql);

  std::string reply = Dispatch(st, request);
  // The handler may have taken long, but memory cannot have moved: only the
  // guest grows it, and the guest is paused in this call. Re-read to be safe.
  mem = st.memory->data(caller.context());
  if (!InBounds(mem, rp, rc)) return kDoorBadPointer;
  if (reply.size() <= rc) {
    std::memcpy(mem.data() + rp, reply.data(), reply.size());
  } else {
    st.pending_reply = reply;
  }
  return static_cast<int64_t>(reply.size());
}

// ---- clocks: monotonic time is counted from process start (no host uptime leak).

const Clock::time_point kProcessStart = Clock::now();

uint64_t NowNanos(uint32_t clock_id) {
  if (clock_id == 0) {  // realtime
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  }
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - kProcessStart).count());
}

int32_t ClockTimeGet(wasmtime::Caller caller, int32_t clock_id, int64_t /*precision*/,
                     int32_t out_ptr) {
  SandboxState& st = StateOf(caller.context());
  if (!st.memory) return kErrnoFault;
  if (clock_id < 0 || clock_id > 3) return kErrnoInval;
  auto mem = st.memory->data(caller.context());
  if (!InBounds(mem, static_cast<uint32_t>(out_ptr), 8)) return kErrnoFault;
  uint64_t now = NowNanos(static_cast<uint32_t>(clock_id));
  std::memcpy(mem.data() + static_cast<uint32_t>(out_ptr), &now, 8);
  return kErrnoSuccess;
}

// poll_oneoff: clock subscriptions sleep (never past the deadline); fd
// subscriptions are reported ready at once (the guest has no real fds to wait on).
int32_t PollOneoff(wasmtime::Caller caller, int32_t in_ptr, int32_t out_ptr, int32_t nsubs,
                   int32_t nevents_ptr) {
  constexpr uint32_t kSubSize = 48;
  constexpr uint32_t kEventSize = 32;
  SandboxState& st = StateOf(caller.context());
  if (!st.memory) return kErrnoFault;
  if (nsubs <= 0 || nsubs > 4096) return kErrnoInval;
  auto n = static_cast<uint32_t>(nsubs);
  auto in = static_cast<uint32_t>(in_ptr);
  auto out = static_cast<uint32_t>(out_ptr);
  auto np = static_cast<uint32_t>(nevents_ptr);
  auto mem = st.memory->data(caller.context());
  if (!InBounds(mem, in, uint64_t{n} * kSubSize) || !InBounds(mem, out, uint64_t{n} * kEventSize) ||
      !InBounds(mem, np, 4)) {
    return kErrnoFault;
  }
  auto read = [&](uint32_t off, auto* v) { std::memcpy(v, mem.data() + off, sizeof(*v)); };

  bool any_fd = false;
  std::optional<Clock::time_point> wake;
  int earliest = -1;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t s = in + i * kSubSize;
    uint8_t tag = 0;
    read(s + 8, &tag);
    if (tag != 0) {
      any_fd = true;
      continue;
    }
    uint32_t id = 0;
    uint64_t timeout = 0;
    uint16_t flags = 0;
    read(s + 16, &id);
    read(s + 24, &timeout);
    read(s + 40, &flags);
    if (id > 3) return kErrnoInval;
    uint64_t delta = timeout;
    if (flags & 1) {  // absolute time on that clock
      uint64_t now = NowNanos(id);
      delta = timeout > now ? timeout - now : 0;
    }
    delta = std::min<uint64_t>(delta, uint64_t{365} * 24 * 3600 * 1'000'000'000ull);
    auto at = Clock::now() + std::chrono::nanoseconds(delta);
    if (!wake || at < *wake) {
      wake = at;
      earliest = static_cast<int>(i);
    }
  }
  if (!any_fd && wake) {
    auto until = *wake;
    // Never sleep past the deadline: the deadline callback stops the cell as
    // soon as the guest runs again.
    if (st.active && st.soft_deadline < until) until = st.soft_deadline + std::chrono::milliseconds(1);
    std::this_thread::sleep_until(until);
  }
  uint32_t events = 0;
  mem = st.memory->data(caller.context());
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t s = in + i * kSubSize;
    uint8_t tag = 0;
    read(s + 8, &tag);
    if (tag == 0 && (any_fd || static_cast<int>(i) != earliest)) continue;
    uint64_t userdata = 0;
    read(s, &userdata);
    uint32_t e = out + events * kEventSize;
    std::memset(mem.data() + e, 0, kEventSize);
    std::memcpy(mem.data() + e, &userdata, 8);
    mem.data()[e + 10] = tag;  // event type equals the subscription tag
    ++events;
  }
  std::memcpy(mem.data() + np, &events, 4);
  return kErrnoSuccess;
}

void MemoryRefused(wasmtime::Caller caller, int32_t size) {
  SandboxState& st = StateOf(caller.context());
  if (!st.active || !st.memory) return;
  // 0: the interpreter's own out-of-memory path, which Python code reaches only
  // by asking for memory (a size past the address space fails before any
  // allocation); `raise MemoryError` never reaches it.
  if (size == 0) {
    st.grow_refused = true;
    return;
  }
  const uint64_t current = st.memory->data(caller.context()).size();
  if (size > 0 && current + static_cast<uint32_t>(size) > st.memory_cap) st.grow_refused = true;
}

}  // namespace

std::string NoModelAttachedMessage(HostCallKind kind) {
  if (kind == HostCallKind::kTool) return "no tool handler is attached to this execution";
  return std::string(HostCallKindName(kind)) +
         " is not available here: no language model is attached to this execution";
}

void DefineHostFunctions(wasmtime::Linker& linker) {
  auto check = [](auto result, const char* what) {
    if (!result) throw std::runtime_error(std::string("defining ") + what + ": " +
                                          result.err().message());
  };
  check(linker.func_wrap("rlmbox", "host_call", &DoorHostCall), "rlmbox.host_call");
  check(linker.func_wrap("rlmbox", "memory_refused", &MemoryRefused), "rlmbox.memory_refused");
  check(linker.func_wrap("wasi_snapshot_preview1", "clock_time_get", &ClockTimeGet),
        "clock_time_get");
  check(linker.func_wrap("wasi_snapshot_preview1", "poll_oneoff", &PollOneoff), "poll_oneoff");
}

}  // namespace rlmbox::engine
