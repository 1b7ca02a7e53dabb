#include "executor/executor.h"

#include <gtest/gtest.h>

#include <thread>

#include "test_engine.h"

namespace rlmbox::executor {
namespace {

using engine::Outcome;
using testing::NewSession;
using testing::RunCode;
using testing::RunIn;

TEST(Executor, EmptyCodeIsABadRequest) {
  ExecuteRequest req;
  req.code = "  \n";
  auto r = testing::TestExecutor().Execute(req);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "Code is required");
}

TEST(Executor, StatelessRequestWithContext) {
  ExecuteRequest req;
  req.code = "len(context.split())";
  req.context = engine::ContextValue{engine::ContextValue::Kind::kText, "one two three"};
  req.limits = testing::FastLimits();
  auto r = testing::TestExecutor().Execute(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_text, "3\n");
  EXPECT_FALSE(r->execution_id.empty());
}

TEST(Executor, ConcurrentStatelessRunsFromManyThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &ok] {
      for (int i = 0; i < 10; ++i) {
        auto r = RunCode("print(" + std::to_string(t * 100 + i) + ")");
        if (r.stdout_text == std::to_string(t * 100 + i) + "\n") ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 40);
}

TEST(Executor, ConcurrentCallsOnOneSessionAreSerialized) {
  auto s = NewSession();
  RunIn(*s, "counter = 0");
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&s] {
      for (int i = 0; i < 10; ++i) {
        // A read-modify-write spread over two statements: interleaving would lose updates.
        RunIn(*s, "tmp = counter\nfor _ in range(1000): pass\ncounter = tmp + 1");
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(RunIn(*s, "counter").stdout_text, "30\n");
}

TEST(Executor, PoolRefillsInTheBackground) {
  auto& ex = testing::TestExecutor();
  for (int i = 0; i < 5; ++i) RunCode("pass");
  for (int i = 0; i < 200 && ex.pool().ready() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(ex.pool().ready(), 2u);
}

TEST(Executor, AClosedBigSessionFreesItsMemoryBudgetAtOnce) {
  // Deleting a session and then using its memory elsewhere must not race the
  // refill threads' teardown: the budget is free when the session is gone.
  const auto& budget = testing::TestEngine().memory_budget();
  auto s = NewSession();
  engine::Limits big = testing::FastLimits();
  big.memory_bytes = uint64_t{512} << 20;
  ASSERT_EQ(RunIn(*s, "x = bytearray(150 << 20)", big).outcome, Outcome::kOk);
  const uint64_t held = budget.used();
  ASSERT_GE(held, uint64_t{150} << 20);
  s.reset();
  EXPECT_LE(budget.used() + (uint64_t{150} << 20), held);
}

constexpr char kState[] =
    "import collections, json\n"
    "total = 41\n"
    "def bump(n):\n"
    "    return n + 1\n"
    "class Box:\n"
    "    def __init__(self, v): self.v = v\n"
    "box = Box([1, 2, 3])\n"
    "counts = collections.Counter('abca')\n";

constexpr char kCheck[] =
    "print(bump(total), box.v, counts['a'], json.dumps({'k': 1}), len(context.split()))";

std::unique_ptr<Session> SessionWithState() {
  auto s = NewSession();
  EXPECT_TRUE(s->SetContext({engine::ContextValue::Kind::kText, "alpha beta gamma"},
                            testing::FastLimits())
                  .ok());
  EXPECT_EQ(RunIn(*s, kState).outcome, Outcome::kOk);
  return s;
}

TEST(SessionSnapshot, RestoreKeepsVariablesFunctionsClassesImportsAndContext) {
  auto s = SessionWithState();
  auto sealed = s->Snapshot("caller state");
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  s.reset();  // the original is gone: the copy stands alone
  std::string outer;
  auto restored = testing::TestExecutor().RestoreSession(*sealed, &outer);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(outer, "caller state");
  EXPECT_EQ(RunIn(**restored, kCheck).stdout_text, "42 [1, 2, 3] 2 {\"k\": 1} 3\n");
  // And it goes on as a session: new state sticks.
  RunIn(**restored, "total = 99");
  EXPECT_EQ(RunIn(**restored, "total").stdout_text, "99\n");
}

TEST(SessionSnapshot, RestoredContextSurvivesAHardStop) {
  auto s = SessionWithState();
  auto sealed = s->Snapshot("");
  ASSERT_TRUE(sealed.ok());
  auto restored = testing::TestExecutor().RestoreSession(*sealed, nullptr);
  ASSERT_TRUE(restored.ok());
  engine::Limits tight = testing::FastLimits();
  tight.timeout = std::chrono::milliseconds(200);
  EXPECT_EQ(RunIn(**restored, "while True: pass", tight).outcome, Outcome::kTimeout);
  // A new sandbox replaces the stopped one and the context is bound again.
  EXPECT_EQ(RunIn(**restored, "len(context.split())").stdout_text, "3\n");
}

TEST(SessionSnapshot, ForksAreIsolatedFromEachOtherAndTheParent) {
  auto s = SessionWithState();
  auto forks = s->Fork(3);
  ASSERT_TRUE(forks.ok()) << forks.status().ToString();
  ASSERT_EQ(forks->size(), 3u);
  for (size_t i = 0; i < forks->size(); ++i) {
    auto& f = *(*forks)[i];
    EXPECT_EQ(RunIn(f, kCheck).stdout_text, "42 [1, 2, 3] 2 {\"k\": 1} 3\n");
    RunIn(f, "total = " + std::to_string(100 + i) + "\nbox.v.append(" + std::to_string(i) + ")");
  }
  for (size_t i = 0; i < forks->size(); ++i) {
    EXPECT_EQ(RunIn(*(*forks)[i], "print(total, box.v)").stdout_text,
              std::to_string(100 + i) + " [1, 2, 3, " + std::to_string(i) + "]\n");
  }
  EXPECT_EQ(RunIn(*s, "print(total, box.v)").stdout_text, "41 [1, 2, 3]\n");
}

TEST(SessionSnapshot, ForksDrawDifferentRandomNumbers) {
  auto s = NewSession();
  RunIn(*s, "import random");
  auto forks = s->Fork(2);
  ASSERT_TRUE(forks.ok());
  const std::string a = RunIn(*(*forks)[0], "random.getrandbits(64)").stdout_text;
  const std::string b = RunIn(*(*forks)[1], "random.getrandbits(64)").stdout_text;
  const std::string p = RunIn(*s, "random.getrandbits(64)").stdout_text;
  EXPECT_FALSE(a.empty());
  EXPECT_NE(a, b);
  EXPECT_NE(a, p);
}

TEST(SessionSnapshot, RefusedWhileACellRuns) {
  auto s = NewSession();
  RunIn(*s, "import time");
  std::thread cell([&s] { RunIn(*s, "t = time.time()\nwhile time.time() - t < 1: pass"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto sealed = s->Snapshot("");
  auto forks = s->Fork(1);
  cell.join();
  EXPECT_EQ(sealed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(forks.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(s->Snapshot("").ok());  // between cells it works
}

TEST(SessionSnapshot, TamperedOrTruncatedBytesAreRefused) {
  auto s = SessionWithState();
  auto sealed = s->Snapshot("outer");
  ASSERT_TRUE(sealed.ok());
  std::string tampered = *sealed;
  tampered[tampered.size() / 2] ^= 0x01;
  auto r1 = testing::TestExecutor().RestoreSession(tampered, nullptr);
  EXPECT_EQ(r1.status().code(), StatusCode::kInvalidArgument);
  auto r2 = testing::TestExecutor().RestoreSession(sealed->substr(0, sealed->size() - 7), nullptr);
  EXPECT_EQ(r2.status().code(), StatusCode::kInvalidArgument);
  auto r3 = testing::TestExecutor().RestoreSession("not a snapshot", nullptr);
  EXPECT_EQ(r3.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rlmbox::executor
