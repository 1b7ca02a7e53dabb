#include "service/metrics.h"

#include <cstdio>

namespace rlmbox::service {
namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

void Header(std::string& out, const std::string& name, const std::string& help,
            const char* type) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

void Histogram::Observe(double value) {
  std::lock_guard lock(mu_);
  size_t i = 0;
  while (i < kBounds.size() && value > kBounds[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::Render(std::string& out, const std::string& name, const std::string& help,
                       const std::string& labels) const {
  std::lock_guard lock(mu_);
  Header(out, name, help, "histogram");
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{" + labels + sep + "le=\"" + Num(kBounds[i]) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  cumulative += counts_[kBounds.size()];
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + Num(sum_) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count_) + "\n";
}

void Metrics::ObserveExecution(const engine::ExecutionResult& r, const std::string& kind) {
  duration_.Observe(r.execution_time_s);
  cpu_.Observe(r.cpu_time_s);
  if (r.outcome != engine::Outcome::kOk) ++errors_;
  std::lock_guard lock(mu_);
  ++executions_[kind + "|" + std::string(engine::OutcomeName(r.outcome))];
}

void Metrics::ObserveHostError(const std::string& code) {
  std::lock_guard lock(mu_);
  ++host_errors_[code];
}

void Metrics::ObserveHttp(const std::string& method, int status) {
  std::lock_guard lock(mu_);
  ++http_[method + "|" + std::to_string(status)];
}

void Metrics::ObserveInference(const std::string& route, const rlm::RlmResult& r) {
  inference_duration_.Observe(r.execution_time_s);
  uint64_t blocks = 0;
  for (const auto& line : r.trajectory) {
    if (line.contains("code_blocks") && line["code_blocks"].is_array()) blocks += line["code_blocks"].size();
  }
  code_blocks_ += blocks;
  std::lock_guard lock(mu_);
  ++inference_[route + "|" + (r.success ? "true" : "false")];
  for (const auto& [model, u] : r.usage) {
    tokens_[model + "|input"] += u.input_tokens;
    tokens_[model + "|output"] += u.output_tokens;
    tokens_[model + "|calls"] += u.calls;
  }
}

void Metrics::SetGauge(const std::string& name, const std::string& help,
                       std::function<double()> read) {
  std::lock_guard lock(mu_);
  gauges_[name] = {help, std::move(read)};
}

std::string Metrics::Render() const {
  std::string out;
  std::lock_guard lock(mu_);
  Header(out, "wasm_executions_total", "Executions finished, by kind and outcome.", "counter");
  for (const auto& [key, n] : executions_) {
    auto bar = key.find('|');
    out += "wasm_executions_total{kind=\"" + key.substr(0, bar) + "\",outcome=\"" +
           key.substr(bar + 1) + "\"} " + std::to_string(n) + "\n";
  }
  Header(out, "wasm_execution_errors_total",
         "Executions that did not end ok (exception, timeout, limits, crash).", "counter");
  out += "wasm_execution_errors_total " + std::to_string(errors_.load()) + "\n";
  Header(out, "wasm_host_errors_total", "Requests refused by the host, by error code.", "counter");
  for (const auto& [code, n] : host_errors_) {
    out += "wasm_host_errors_total{code=\"" + code + "\"} " + std::to_string(n) + "\n";
  }
  Header(out, "http_requests_total", "HTTP requests answered, by method and status.", "counter");
  for (const auto& [key, n] : http_) {
    auto bar = key.find('|');
    out += "http_requests_total{method=\"" + key.substr(0, bar) + "\",status=\"" +
           key.substr(bar + 1) + "\"} " + std::to_string(n) + "\n";
  }
  duration_.Render(out, "wasm_execution_duration_seconds",
                   "Wall time of executions inside the sandbox.");
  cpu_.Render(out, "wasm_execution_cpu_seconds",
              "CPU time of executions inside the sandbox (the executing thread's).");
  if (!inference_.empty()) {
    Header(out, "rlm_inference_requests_total", "RLM requests finished, by route and success.",
           "counter");
    for (const auto& [key, n] : inference_) {
      auto bar = key.find('|');
      out += "rlm_inference_requests_total{route=\"" + key.substr(0, bar) + "\",success=\"" +
             key.substr(bar + 1) + "\"} " + std::to_string(n) + "\n";
    }
    inference_duration_.Render(out, "rlm_inference_duration_seconds", "Wall time of RLM requests.");
    Header(out, "rlm_code_generated_total", "Code blocks the models wrote and the REPL ran.",
           "counter");
    out += "rlm_code_generated_total " + std::to_string(code_blocks_.load()) + "\n";
    Header(out, "rlm_llm_usage_total", "LLM calls and tokens, by model.", "counter");
    for (const auto& [key, n] : tokens_) {
      auto bar = key.find('|');
      out += "rlm_llm_usage_total{model=\"" + key.substr(0, bar) + "\",kind=\"" + key.substr(bar + 1) +
             "\"} " + std::to_string(n) + "\n";
    }
  }
  for (const auto& [name, g] : gauges_) {
    Header(out, name, g.first, "gauge");
    out += name + " " + Num(g.second()) + "\n";
  }
  return out;
}

}  // namespace rlmbox::service
