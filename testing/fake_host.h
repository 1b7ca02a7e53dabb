// FakeHostCallHandler: a scripted stand-in for the LLM behind llm_query.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/host_door.h"

namespace rlmbox::testing {

class FakeHostCallHandler : public engine::HostCallHandler {
 public:
  // Default reply: "echo:<prompt>" for single calls, one per prompt for batched
  // calls; prompts containing "FAIL" fail (per item when batched).
  using Responder = std::function<engine::HostCallReply(const engine::HostCall&)>;

  explicit FakeHostCallHandler(Responder r = nullptr) : responder_(std::move(r)) {}

  engine::HostCallReply Handle(const engine::HostCall& call) override {
    {
      std::lock_guard lock(mu_);
      calls_.push_back(call);
    }
    if (responder_) return responder_(call);
    auto answer = [](const std::string& p) -> nlohmann::json {
      if (p.find("FAIL") != std::string::npos) return {{"error", "scripted failure"}};
      return "echo:" + p;
    };
    if (call.args.contains("prompts")) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& p : call.args["prompts"]) out.push_back(answer(p.get<std::string>()));
      return out;
    }
    const std::string p = call.args["prompt"].get<std::string>();
    if (p.find("FAIL") != std::string::npos) return engine::HostCallError{"scripted failure"};
    return nlohmann::json(answer(p));
  }

  std::vector<engine::HostCall> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  Responder responder_;
  std::mutex mu_;
  std::vector<engine::HostCall> calls_;
};

}  // namespace rlmbox::testing
