// The host door: llm_query & co through a scripted handler.
#include <gtest/gtest.h>

#include <thread>

#include "fake_host.h"
#include "test_engine.h"

namespace rlmbox::engine {
namespace {

using namespace std::chrono_literals;
using testing::FakeHostCallHandler;
using testing::RunCode;

TEST(HostDoor, LlmQueryReachesTheHandler) {
  FakeHostCallHandler fake;
  auto r = RunCode("reply = llm_query('What is 2+2?', model='small')\nprint(reply)",
                   testing::FastLimits(), &fake);
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "echo:What is 2+2?\n");
  auto calls = fake.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].kind, HostCallKind::kLlmQuery);
  EXPECT_EQ(calls[0].args["prompt"], "What is 2+2?");
  EXPECT_EQ(calls[0].args["model"], "small");
  EXPECT_EQ(r.host_calls, 1u);
}

TEST(HostDoor, BatchedKeepsOrderAndFailsPerItem) {
  FakeHostCallHandler fake;
  auto r = RunCode("print(llm_query_batched(['a', 'FAIL', 'c']))", testing::FastLimits(), &fake);
  EXPECT_EQ(r.stdout_text, "['echo:a', 'Error: scripted failure', 'echo:c']\n") << r.stderr_text;
  ASSERT_EQ(fake.calls().size(), 1u);
  EXPECT_EQ(fake.calls()[0].kind, HostCallKind::kLlmQueryBatched);
  EXPECT_EQ(r.host_calls, 3u);
}

TEST(HostDoor, RlmQueryKinds) {
  FakeHostCallHandler fake;
  auto r = RunCode("print(rlm_query('sub'), rlm_query_batched(['x', 'y']))", testing::FastLimits(),
                   &fake);
  EXPECT_EQ(r.stdout_text, "echo:sub ['echo:x', 'echo:y']\n") << r.stderr_text;
  ASSERT_EQ(fake.calls().size(), 2u);
  EXPECT_EQ(fake.calls()[0].kind, HostCallKind::kRlmQuery);
  EXPECT_EQ(fake.calls()[1].kind, HostCallKind::kRlmQueryBatched);
}

TEST(HostDoor, HandlerErrorBecomesAGuestException) {
  FakeHostCallHandler fake;
  auto r = RunCode("llm_query('please FAIL')", testing::FastLimits(), &fake);
  EXPECT_EQ(r.outcome, Outcome::kException);
  EXPECT_NE(r.error->find("LLMQueryError: scripted failure"), std::string::npos) << *r.error;
}

TEST(HostDoor, WithoutAHandlerTheGuestGetsAClearError) {
  auto r = RunCode("llm_query('hi')");
  EXPECT_EQ(r.outcome, Outcome::kException);
  EXPECT_NE(r.error->find("not available"), std::string::npos) << *r.error;
}

TEST(HostDoor, BadArgumentsAreRejectedInTheGuest) {
  FakeHostCallHandler fake;
  EXPECT_EQ(RunCode("llm_query(123)", testing::FastLimits(), &fake).outcome, Outcome::kException);
  EXPECT_EQ(RunCode("llm_query_batched('not a list')", testing::FastLimits(), &fake).outcome,
            Outcome::kException);
  // Forged requests straight through the door are validated by the host.
  auto forged = RunCode(
      "import _rlmbox, json\n"
      "print(json.loads(_rlmbox.host_call(b'{\"kind\": \"shell\", \"args\": {}}')))\n"
      "print(json.loads(_rlmbox.host_call(b'\\xff\\xfe not json')))\n",
      testing::FastLimits(), &fake);
  EXPECT_EQ(forged.outcome, Outcome::kOk) << forged.stderr_text;
  EXPECT_EQ(forged.stdout_text,
            "{'error': 'unknown host call kind'}\n{'error': 'malformed host call'}\n");
  EXPECT_TRUE(fake.calls().empty());
}

TEST(HostDoor, CallCountIsLimited) {
  FakeHostCallHandler fake;
  Limits l = testing::FastLimits();
  l.max_host_calls = 3;
  auto r = RunCode("for i in range(5):\n    llm_query(str(i))", l, &fake);
  EXPECT_EQ(r.outcome, Outcome::kException);
  EXPECT_NE(r.error->find("host call limit"), std::string::npos) << *r.error;
  EXPECT_EQ(fake.calls().size(), 3u);
}

TEST(HostDoor, LargeRepliesArrive) {
  FakeHostCallHandler fake([](const HostCall&) -> HostCallReply {
    return nlohmann::json(std::string(3u << 20, 'r'));
  });
  auto r = RunCode("len(llm_query('big'))", testing::FastLimits(), &fake);
  EXPECT_EQ(r.stdout_text, "3145728\n") << r.stderr_text;
}

TEST(HostDoor, WaitingCountsAgainstTheWallDeadline) {
  FakeHostCallHandler slow([](const HostCall& call) -> HostCallReply {
    std::this_thread::sleep_until(call.deadline + 50ms);
    return nlohmann::json("late");
  });
  Limits l = testing::FastLimits();
  l.timeout = 300ms;
  auto r = RunCode("llm_query('slow')\nwhile True: pass", l, &slow);
  EXPECT_EQ(r.outcome, Outcome::kTimeout) << OutcomeName(r.outcome) << r.stderr_text;
  EXPECT_LT(r.execution_time_s, 0.3 + 0.2);
}

}  // namespace
}  // namespace rlmbox::engine
