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

}  // namespace
}  // namespace rlmbox::executor
