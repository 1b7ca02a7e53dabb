// Metrics: the execution service's counters, gauges and histograms, rendered
// in the Prometheus text format (design §6). Thread-safe; recording is a few
// atomic adds or a short lock.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "engine/execution_result.h"
#include "rlm/rlm.h"

namespace rlmbox::service {

class Histogram {
 public:
  void Observe(double value);
  void Render(std::string& out, const std::string& name, const std::string& help,
              const std::string& labels = "") const;

 private:
  static constexpr std::array<double, 14> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                                     5,      10};
  mutable std::mutex mu_;
  std::array<uint64_t, kBounds.size() + 1> counts_{};  // guarded by mu_
  double sum_ = 0;                                       // guarded by mu_
  uint64_t count_ = 0;                                   // guarded by mu_
};

class Metrics {
 public:
  // One finished execution; `kind` is "stateless" or "session".
  void ObserveExecution(const engine::ExecutionResult& r, const std::string& kind);
  // One host error answered to a caller (bad_request, overloaded, ...).
  void ObserveHostError(const std::string& code);
  void ObserveHttp(const std::string& method, int status);
  // One finished RLM request (the inference plane).
  void ObserveInference(const std::string& route, const rlm::RlmResult& r);

  // Gauges read at render time.
  void SetGauge(const std::string& name, const std::string& help, std::function<double()> read);

  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> executions_;   // "kind|outcome" -> count; guarded by mu_
  std::map<std::string, uint64_t> host_errors_;  // code -> count; guarded by mu_
  std::map<std::string, uint64_t> http_;         // "method|status" -> count; guarded by mu_
  std::map<std::string, std::pair<std::string, std::function<double()>>> gauges_;  // guarded
  Histogram duration_;
  Histogram cpu_;  // CPU time of executions
  std::atomic<uint64_t> errors_{0};
  std::map<std::string, uint64_t> inference_;  // "route|ok" -> count; guarded by mu_
  Histogram inference_duration_;
  std::atomic<uint64_t> code_blocks_{0};
  std::map<std::string, uint64_t> tokens_;  // "model|direction" -> count; guarded by mu_
};

}  // namespace rlmbox::service
