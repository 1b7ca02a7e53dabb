// The host door at the wasm boundary: pointers and lengths a hostile guest can
// pass to rlmbox.host_call directly. A tiny module (not the CPython guest)
// imports the door and forwards its four arguments, so every value is reachable.
#include <gtest/gtest.h>

#include <cstring>

#include "engine/door_protocol.h"
#include "engine/internals.h"
#include "fake_host.h"

namespace rlmbox::engine {
namespace {

using namespace std::chrono_literals;

// (module (import "rlmbox" "host_call" (func (param i32 i32 i32 i32) (result i64)))
//         (memory (export "memory") 1)
//         (func (export "call") (param i32 i32 i32 i32) (result i64) ...forward...))
// Assembled once with binaryen's wasm-as; one 64 KiB page of memory.
constexpr uint8_t kDoorModule[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x09, 0x01, 0x60, 0x04, 0x7f, 0x7f,
    0x7f, 0x7f, 0x01, 0x7e, 0x02, 0x14, 0x01, 0x06, 0x72, 0x6c, 0x6d, 0x62, 0x6f, 0x78, 0x09,
    0x68, 0x6f, 0x73, 0x74, 0x5f, 0x63, 0x61, 0x6c, 0x6c, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
    0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x11, 0x02, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79,
    0x02, 0x00, 0x04, 0x63, 0x61, 0x6c, 0x6c, 0x00, 0x01, 0x0a, 0x0e, 0x01, 0x0c, 0x00, 0x20,
    0x00, 0x20, 0x01, 0x20, 0x02, 0x20, 0x03, 0x10, 0x00, 0x0b};

constexpr int64_t kBadPointer = -1;
constexpr int64_t kNoPending = -2;

class Door : public ::testing::Test {
 protected:
  Door() : linker_(engine_), store_(engine_) {
    DefineHostFunctions(linker_);
    auto module = wasmtime::Module::compile(
                      engine_, wasmtime::Span<uint8_t>(const_cast<uint8_t*>(kDoorModule),
                                                       sizeof kDoorModule))
                      .unwrap();
    store_.context().set_data(&state_);
    auto instance = linker_.instantiate(store_, module).unwrap();
    state_.memory = std::get<wasmtime::Memory>(*instance.get(store_, "memory"));
    call_ = std::get<wasmtime::Func>(*instance.get(store_, "call"));
    state_.active = true;
    state_.limits = &limits_;
    state_.handler = &fake_;
    state_.soft_deadline = std::chrono::steady_clock::now() + 10s;
  }

  int64_t Call(int64_t req, int64_t req_len, int64_t resp, int64_t resp_cap) {
    auto r = call_->call(store_, {wasmtime::Val(static_cast<int32_t>(req)),
                                  wasmtime::Val(static_cast<int32_t>(req_len)),
                                  wasmtime::Val(static_cast<int32_t>(resp)),
                                  wasmtime::Val(static_cast<int32_t>(resp_cap))});
    EXPECT_TRUE(r) << r.err().message();
    return r ? r.ok()[0].i64() : 0;
  }
  void Write(uint32_t at, std::string_view s) {
    std::memcpy(state_.memory->data(store_).data() + at, s.data(), s.size());
  }
  std::string Read(uint32_t at, size_t n) {
    return std::string(reinterpret_cast<const char*>(state_.memory->data(store_).data() + at), n);
  }
  // Writes `request` at 0 and calls with a response buffer at 8192 of `cap`.
  std::pair<int64_t, std::string> Ask(std::string_view request, uint32_t cap = 4096) {
    Write(0, request);
    int64_t n = Call(0, static_cast<int64_t>(request.size()), 8192, cap);
    return {n, n > 0 && n <= cap ? Read(8192, static_cast<size_t>(n)) : std::string()};
  }

  wasmtime::Engine engine_;
  wasmtime::Linker linker_;
  wasmtime::Store store_;
  SandboxState state_;
  Limits limits_;
  testing::FakeHostCallHandler fake_;
  std::optional<wasmtime::Func> call_;
};

TEST_F(Door, AValidCallIsAnswered) {
  auto [n, reply] = Ask(R"({"kind": "llm_query", "args": {"prompt": "hi"}})");
  ASSERT_GT(n, 0);
  EXPECT_EQ(reply, R"({"result":"echo:hi"})");
}

TEST_F(Door, OutOfRangePointersAndLengthsAreRefused) {
  const int64_t page = 65536;
  EXPECT_EQ(Call(page - 10, 100, 8192, 1024), kBadPointer);  // request runs off the end
  EXPECT_EQ(Call(0, 10, page - 10, 1024), kBadPointer);      // response runs off the end
  EXPECT_EQ(Call(0, -1, 8192, 1024), kBadPointer);           // 4 GiB request length
  EXPECT_EQ(Call(-4096, 16, 8192, 1024), kBadPointer);       // pointer near 4 GiB
  EXPECT_EQ(Call(0, 10, 8192, -1), kBadPointer);             // 4 GiB response capacity
  EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(Door, LargeRepliesArePendingUntilFetchedOnce) {
  testing::FakeHostCallHandler big([](const HostCall&) -> HostCallReply {
    return nlohmann::json(std::string(20000, 'z'));
  });
  state_.handler = &big;
  auto [n, reply] = Ask(R"({"kind": "llm_query", "args": {"prompt": "big"}})", 1024);
  ASSERT_GT(n, 1024);
  EXPECT_EQ(Call(0, 0, 8192, 100), kNoPending);               // too small: still pending
  EXPECT_EQ(Call(0, 0, 8192, n), n);                          // fetched
  EXPECT_EQ(Read(8192, 12), R"({"result":"z)");
  EXPECT_EQ(Call(0, 0, 8192, n), kNoPending);                 // only once
}

TEST_F(Door, FetchWithoutACallIsRefused) { EXPECT_EQ(Call(0, 0, 8192, 1024), kNoPending); }

TEST_F(Door, GarbageAndForgedRequestsGetErrors) {
  EXPECT_EQ(Ask("\xff\xfe\x00garbage").second, R"({"error":"malformed host call"})");
  EXPECT_EQ(Ask(R"({"kind": "llm_query", "args": {"prompt": "x")").second,
            R"({"error":"malformed host call"})");
  EXPECT_EQ(Ask(R"({"kind": "spawn", "args": {}})").second,
            R"({"error":"unknown host call kind"})");
  EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(Door, CallsOutsideAnExecutionOrAfterTheDeadlineAreRefused) {
  state_.soft_deadline = std::chrono::steady_clock::now() - 1ms;
  EXPECT_NE(Ask(R"({"kind": "llm_query", "args": {"prompt": "late"}})").second.find("deadline"),
            std::string::npos);
  state_.active = false;
  Write(0, R"({"kind": "llm_query", "args": {"prompt": "idle"}})");
  EXPECT_EQ(Call(0, 48, 8192, 1024), kBadPointer);
  EXPECT_TRUE(fake_.calls().empty());
}

TEST_F(Door, OversizedRequestsAndCallFloodsAreCut) {
  limits_.max_host_call_bytes = 100;
  EXPECT_NE(Ask(R"({"kind": "llm_query", "args": {"prompt": ")" + std::string(200, 'a') + "\"}}")
                .second.find("too large"),
            std::string::npos);
  limits_.max_host_call_bytes = 1 << 20;
  limits_.max_host_calls = 2;
  for (int i = 0; i < 2; ++i) Ask(R"({"kind": "llm_query", "args": {"prompt": "x"}})");
  EXPECT_NE(Ask(R"({"kind": "llm_query", "args": {"prompt": "x"}})").second.find("limit"),
            std::string::npos);
  EXPECT_EQ(fake_.calls().size(), 2u);
}

TEST_F(Door, ToolCallsReachTheHandlerOnlyForDeclaredNames) {
  testing::FakeHostCallHandler tools([](const HostCall& call) -> HostCallReply {
    return nlohmann::json{{"tool", call.args["name"]}, {"kwargs", call.args["kwargs"]}};
  });
  state_.handler = &tools;
  const std::string call = R"({"kind": "tool", "args": {"name": "search", "args": [],
                              "kwargs": {"q": "x"}}})";
  // No tools declared for this execution: refused before the handler.
  EXPECT_EQ(Ask(call).second, R"({"error":"no tool named 'search' is available here"})");
  const std::vector<std::string> declared = {"search"};
  state_.tools = &declared;
  EXPECT_EQ(Ask(call).second, R"({"result":{"kwargs":{"q":"x"},"tool":"search"}})");
  EXPECT_EQ(Ask(R"({"kind": "tool", "args": {"name": "rm"}})").second,
            R"({"error":"no tool named 'rm' is available here"})");
  EXPECT_EQ(Ask(R"({"kind": "tool", "args": {"name": "search", "args": {}}})").second,
            R"({"error":"tool args must be a list"})");
  EXPECT_EQ(Ask(R"({"kind": "tool", "args": {"name": 7}})").second,
            R"({"error":"a tool call needs a name"})");
  EXPECT_EQ(tools.calls().size(), 1u);
}

TEST(ToolNames, OnlyIdentifiersThatAreNotReserved) {
  EXPECT_EQ(ValidateToolNames({"search", "get_page2", "A", "__dspy_construct__"}), "");
  const std::vector<std::string> bad_names = {
      "", "__builtins__", "__name__", "_", "1a", "a-b", "llm_query", "FINAL_VAR", "context", std::string(65, 'a'),
      "caf\xc3\xa9"};
  for (const std::string& bad : bad_names) {
    EXPECT_NE(ValidateToolNames({bad}), "") << bad;
  }
  EXPECT_NE(ValidateToolNames(std::vector<std::string>(65, "t")), "");
}

}  // namespace
}  // namespace rlmbox::engine
