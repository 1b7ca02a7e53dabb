// TestEngine(): the real engine on the real guest, shared by a test binary.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "engine/sandbox.h"
#include "executor/executor.h"

namespace rlmbox::testing {

inline engine::Engine& TestEngine() {
  static engine::Engine* engine = [] {
    engine::EngineOptions o;
    const char* dir = std::getenv("RLMBOX_GUEST_DIR");
    o.guest_dir = dir && *dir ? dir : RLMBOX_TEST_GUEST_DIR;
    const char* cache = std::getenv("RLMBOX_CACHE");
    o.module_cache_dir = std::string(cache && *cache ? cache : std::getenv("HOME") + std::string("/.cache/rlmbox")) + "/modules";
    o.max_sandboxes = 64;
    auto e = engine::Engine::Create(o);
    if (!e.ok()) {
      std::fprintf(stderr, "cannot create the test engine: %s\n", e.status().ToString().c_str());
      std::abort();
    }
    return std::move(e).value().release();  // lives for the whole test binary
  }();
  return *engine;
}

inline executor::Executor& TestExecutor() {
  static executor::Executor* ex =
      new executor::Executor(TestEngine(), executor::Executor::Options{.warm_sandboxes = 2});
  return *ex;
}

inline engine::Limits FastLimits() {
  engine::Limits l;
  l.timeout = std::chrono::seconds(10);
  return l;
}

// Runs `code` in a fresh sandbox and returns the result (fails the test on a host error).
inline engine::ExecutionResult RunCode(const std::string& code,
                                       engine::Limits limits = FastLimits(),
                                       engine::HostCallHandler* handler = nullptr) {
  executor::ExecuteRequest req;
  req.code = code;
  req.limits = limits;
  req.handler = handler;
  auto r = TestExecutor().Execute(req);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : engine::ExecutionResult{};
}

inline std::unique_ptr<executor::Session> NewSession() {
  auto s = TestExecutor().CreateSession();
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

inline engine::ExecutionResult RunIn(executor::Session& s, const std::string& code,
                                     engine::Limits limits = FastLimits(),
                                     engine::HostCallHandler* handler = nullptr) {
  auto r = s.Execute(code, limits, handler);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : engine::ExecutionResult{};
}

}  // namespace rlmbox::testing
