#include "rlm/rlm.h"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <mutex>
#include <thread>

#include "rlm/parse.h"
#include "rlm/prompts.h"
#include "base/bounded_json.h"

namespace rlmbox::rlm {
namespace {

// A REPL backend that is gone (down, or the session unknown to it) took the
// REPL's state with it: the run cannot go on, and the error says so.
bool ReplLost(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kNotFound;
}
std::string LostMessage(const std::string& what) {
  return "the REPL session was lost (" + what + "): its variables are gone; retry the request";
}

using Clock = std::chrono::steady_clock;
using nlohmann::json;

std::string IsoNow() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  char out[48];
  std::snprintf(out, sizeof out, "%s.%06lld", buf, static_cast<long long>(us));
  return out;
}

std::string Thousands(size_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Cuts `s` to `max` characters with a visible marker.
std::string Truncate(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "\n... [output truncated: " + Thousands(s.size() - cut) +
         " more characters not shown]";
}

json MessagesJson(const std::vector<Message>& messages) {
  json out = json::array();
  for (const auto& m : messages) out.push_back({{"role", m.role}, {"content", m.content}});
  return out;
}

// Accumulates usage per model from several threads.
class UsageBook {
 public:
  void Add(const std::string& model, const Usage& u) {
    std::lock_guard lock(mu_);
    Usage& t = by_model_[model];
    t.calls += u.calls;
    t.input_tokens += u.input_tokens;
    t.output_tokens += u.output_tokens;
  }
  void Merge(const std::map<std::string, Usage>& other) {
    for (const auto& [m, u] : other) Add(m, u);
  }
  std::map<std::string, Usage> Get() {
    std::lock_guard lock(mu_);
    return by_model_;
  }
  uint64_t Tokens() {
    std::lock_guard lock(mu_);
    uint64_t n = 0;
    for (const auto& [m, u] : by_model_) n += u.input_tokens + u.output_tokens;
    return n;
  }

 private:
  std::mutex mu_;
  std::map<std::string, Usage> by_model_;
};

json UsageToJson(const std::map<std::string, Usage>& usage) {
  json models = json::object();
  for (const auto& [m, u] : usage) {
    models[m] = {{"total_calls", u.calls},
                 {"total_input_tokens", u.input_tokens},
                 {"total_output_tokens", u.output_tokens}};
  }
  return {{"model_usage_summaries", models}};
}

}  // namespace

json RlmResult::UsageJson() const { return UsageToJson(usage); }

std::string DescribeContext(const engine::ContextValue& context) {
  if (context.kind == engine::ContextValue::Kind::kText) {
    return "a str of " + Thousands(context.data.size()) + " characters";
  }
  json j = ParseBoundedJson(context.data, kRequestJsonLimits).value_or(json());
  if (j.is_object()) {
    return "a dict with " + Thousands(j.size()) + " keys (" + Thousands(context.data.size()) +
           " characters as JSON)";
  }
  if (j.is_array()) {
    return "a list of " + Thousands(j.size()) + " items (" + Thousands(context.data.size()) +
           " characters as JSON)";
  }
  if (j.is_string()) return "a str of " + Thousands(j.get<std::string>().size()) + " characters";
  return std::string("a ") + j.type_name();
}

std::string CheckGuestModel(const RlmOptions& o, const std::string& model) {
  if (model == o.root_model || model == o.recursive_model ||
      std::find(o.allowed_models.begin(), o.allowed_models.end(), model) != o.allowed_models.end()) {
    return "";
  }
  std::string shown = model.substr(0, 80);
  return "the model '" + shown + "' is not one this inference plane may call "
         "(allowed: the configured models and LLM_ALLOWED_MODELS)";
}

// Answers the host calls of one REPL cell of a run at `depth`.
class LoopHostCalls : public engine::HostCallHandler {
 public:
  // `fork_from`: the REPL whose checkpoint children fork, or null.
  LoopHostCalls(Rlm& rlm, int depth, Clock::time_point deadline, UsageBook& usage,
                CodeRunner* fork_from)
      : rlm_(rlm), depth_(depth), deadline_(deadline), usage_(usage), fork_from_(fork_from) {}

  engine::HostCallReply Handle(const engine::HostCall& call) override {
    const RlmOptions& o = rlm_.options();
    std::string model = o.recursive_model.empty() ? o.root_model : o.recursive_model;
    if (call.args.contains("model") && call.args["model"].is_string()) {
      model = call.args["model"];
      if (std::string why = CheckGuestModel(o, model); !why.empty()) {
        return engine::HostCallError{why};
      }
    }
    const auto deadline = std::min(deadline_, call.deadline);
    const bool recursive = call.kind == engine::HostCallKind::kRlmQuery ||
                           call.kind == engine::HostCallKind::kRlmQueryBatched;
    if (call.kind == engine::HostCallKind::kLlmQuery || call.kind == engine::HostCallKind::kRlmQuery) {
      auto r = One(call.args["prompt"].get<std::string>(), model, recursive, deadline);
      if (!r.ok()) return engine::HostCallError{r.status().message()};
      return json(*r);
    }
    const auto& prompts = call.args["prompts"];
    std::vector<json> results(prompts.size());
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t i = next++; i < prompts.size(); i = next++) {
        auto r = One(prompts[i].get<std::string>(), model, recursive, deadline);
        results[i] = r.ok() ? json(*r) : json{{"error", r.status().message()}};
      }
    };
    const size_t n = std::min(std::max<size_t>(1, o.batch_parallelism), prompts.size());
    std::vector<std::thread> threads;
    for (size_t t = 1; t < n; ++t) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    return json(results);
  }

  json SubCalls() {
    std::lock_guard lock(mu_);
    return sub_calls_;
  }

 private:
  Result<std::string> One(const std::string& prompt, const std::string& model, bool recursive,
                          Clock::time_point deadline) {
    const auto started = Clock::now();
    std::string response;
    std::map<std::string, Usage> usage;
    const uint64_t budget = rlm_.options().token_budget;
    if (budget > 0 && usage_.Tokens() >= budget) {
      return ResourceExhausted("the request's token budget (" + std::to_string(budget) +
                               ") is spent");
    }
    if (recursive && depth_ + 1 < rlm_.options().max_depth) {
      RlmResult child = rlm_.Run(prompt, {engine::ContextValue::Kind::kText, prompt}, model,
                                 depth_ + 1, deadline, fork_from_);
      usage_.Merge(child.usage);
      usage = child.usage;
      if (!child.success) return Unavailable("rlm_query failed: " + child.error);
      response = child.answer;
    } else {
      auto c = rlm_.llm_.Complete({{"user", prompt}}, model, deadline);
      if (!c.ok()) return c.status();
      usage_.Add(model, c->usage);
      usage[model] = c->usage;
      response = c->content;
    }
    std::lock_guard lock(mu_);
    sub_calls_.push_back({{"root_model", model},
                          {"prompt", prompt},
                          {"response", response},
                          {"usage_summary", UsageToJson(usage)},
                          {"execution_time",
                           std::chrono::duration<double>(Clock::now() - started).count()}});
    return response;
  }

  Rlm& rlm_;
  const int depth_;
  const Clock::time_point deadline_;
  UsageBook& usage_;
  CodeRunner* const fork_from_;
  std::mutex mu_;
  json sub_calls_ = json::array();  // guarded by mu_
};

Rlm::Rlm(LlmClient& llm, CodeRunnerFactory& runners, RlmOptions options)
    : llm_(llm), runners_(runners), options_(std::move(options)) {}

RlmResult Rlm::Complete(const std::string& query, const engine::ContextValue& context,
                        const std::string& model) {
  return Run(query, context, model, 0, Clock::now() + options_.timeout);
}

RlmResult Rlm::Run(const std::string& query, const engine::ContextValue& context,
                   const std::string& model_override, int depth, Clock::time_point deadline,
                   CodeRunner* parent) {
  const auto started = Clock::now();
  RlmResult out;
  UsageBook usage;
  auto finish = [&]() -> RlmResult {
    out.usage = usage.Get();
    out.execution_time_s = std::chrono::duration<double>(Clock::now() - started).count();
    return std::move(out);
  };
  const std::string model =
      !model_override.empty() ? model_override
      : depth == 0            ? options_.root_model
                              : (options_.recursive_model.empty() ? options_.root_model
                                                                  : options_.recursive_model);
  if (query.find_first_not_of(" \t\r\n") == std::string::npos) {
    out.error = "the query is empty";
    return finish();
  }
  out.trajectory.push_back({{"type", "metadata"},
                            {"timestamp", IsoNow()},
                            {"root_model", model},
                            {"max_depth", options_.max_depth},
                            {"max_iterations", options_.max_iterations},
                            {"backend", "openai"},
                            {"backend_kwargs", {{"model_name", model}}},
                            {"environment_type", "rlmbox_" + runners_.name()},
                            {"environment_kwargs", json::object()},
                            {"other_backends", nullptr}});
  // A forked REPL when the parent's checkpoint allows one; a fresh one else.
  Result<std::unique_ptr<CodeRunner>> runner = FailedPrecondition("no parent");
  if (parent != nullptr) {
    runner = parent->ForkCheckpoint();
    json& kwargs = out.trajectory[0]["environment_kwargs"];
    if (runner.ok()) {
      kwargs["forked_from"] = "parent";
    } else {
      kwargs["fork_error"] = runner.status().message();
    }
  }
  if (!runner.ok()) runner = runners_.NewRunner();
  if (!runner.ok()) {
    out.error = "no REPL available: " + runner.status().message();
    return finish();
  }
  if (Status s = (*runner)->SetContext(context); !s.ok()) {
    const std::string what = "cannot load the context: " + s.message();
    out.error = ReplLost(s) ? LostMessage(what) : what;
    return finish();
  }
  const std::string description = DescribeContext(context);
  const std::string max_it = std::to_string(options_.max_iterations);
  std::vector<Message> messages = {
      {"system", Render(Prompt("system"), {{"context_description", description},
                                           {"max_iterations", max_it}})},
      {"user", Render(Prompt("first_user"), {{"query", query}, {"context_description", description}})},
  };

  std::optional<std::string> answer;
  // Children fork this REPL when they may exist at all; if the backend cannot
  // checkpoint, they start fresh (and the trajectory says why).
  bool fork = options_.fork_children && depth + 1 < options_.max_depth;
  for (int it = 1; it <= options_.max_iterations && !answer; ++it) {
    if (Clock::now() >= deadline) {
      out.error = "the request's time limit was reached after " + std::to_string(it - 1) + " iterations";
      break;
    }
    if (options_.token_budget > 0 && usage.Tokens() >= options_.token_budget) {
      out.error = "the token budget (" + std::to_string(options_.token_budget) +
                  ") was spent after " + std::to_string(it - 1) + " iterations";
      break;
    }
    const auto iter_started = Clock::now();
    auto reply = llm_.Complete(messages, model, deadline);
    if (!reply.ok()) {
      out.error = "the model call failed: " + reply.status().message();
      break;
    }
    usage.Add(model, reply->usage);
    out.iterations = it;
    const auto blocks = ParseCodeBlocks(reply->content);
    json code_blocks = json::array();
    std::string outputs;
    std::string repl_lost;
    const size_t runnable = std::min(blocks.size(), std::max<size_t>(1, options_.max_blocks_per_reply));
    for (size_t k = 0; k < runnable && !answer && repl_lost.empty(); ++k) {
      if (fork) {
        if (Status s = (*runner)->Checkpoint(); !s.ok()) {
          fork = false;
          out.trajectory[0]["environment_kwargs"]["fork_error"] = s.message();
        }
      }
      LoopHostCalls calls(*this, depth, deadline, usage, fork ? runner->get() : nullptr);
      // A cell never outlives the request.
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      const auto timeout =
          std::max(std::chrono::milliseconds(1), std::min(options_.cell_limits.timeout, left));
      auto r = (*runner)->Run(blocks[k], timeout, &calls);
      std::string text;
      json result;
      if (r.ok()) {
        text = r->stdout_text + r->stderr_text;
        if (text.empty()) text = r->success ? "(no output)" : r->error.value_or("error");
        if (r->final_answer) answer = r->final_answer;
        // The trajectory keeps what the model was shown, not every byte: a
        // reply with hundreds of blocks must not pile their output up here.
        result = {{"stdout", Truncate(r->stdout_text, options_.max_output_chars)},
                  {"stderr", Truncate(r->stderr_text, options_.max_output_chars)},
                  {"locals", r->locals},
                  {"execution_time", r->execution_time_s},
                  {"rlm_calls", calls.SubCalls()},
                  {"final_answer", r->final_answer ? json(*r->final_answer) : json(nullptr)}};
      } else {
        text = "The REPL failed: " + r.status().message();
        result = {{"stdout", ""}, {"stderr", text}, {"locals", json::object()},
                  {"execution_time", 0}, {"rlm_calls", calls.SubCalls()}, {"final_answer", nullptr}};
        // The REPL itself is gone (backend down, session lost): its state is
        // lost too, so the run cannot go on meaningfully.
        if (ReplLost(r.status())) repl_lost = LostMessage(r.status().message());
      }
      code_blocks.push_back({{"code", blocks[k]}, {"result", result}});
      if (!outputs.empty()) outputs += "\n\n";
      outputs += (blocks.size() > 1 ? "REPL output (block " + std::to_string(k + 1) + "):\n"
                                    : std::string("REPL output:\n")) +
                 Truncate(text, options_.max_output_chars);
    }
    if (blocks.size() > runnable && !answer && repl_lost.empty()) {
      outputs += "\n\n(only the first " + std::to_string(runnable) + " code blocks of a reply are run; " +
                 std::to_string(blocks.size() - runnable) + " were skipped)";
    }
    // One trajectory line per iteration, in the rlm logger's shape.
    auto log_iteration = [&] {
      out.trajectory.push_back({{"type", "iteration"},
                                {"iteration", it},
                                {"timestamp", IsoNow()},
                                {"prompt", MessagesJson(messages)},
                                {"response", reply->content},
                                {"code_blocks", code_blocks},
                                {"final_answer", answer ? json(*answer) : json(nullptr)},
                                {"iteration_time",
                                 std::chrono::duration<double>(Clock::now() - iter_started).count()}});
    };
    if (!repl_lost.empty()) {
      log_iteration();
      out.error = repl_lost;
      break;
    }
    std::optional<FinalMarker> marker = answer ? std::nullopt : FindFinal(reply->content);
    if (marker && marker->kind == FinalMarker::Kind::kAnswer) {
      answer = marker->value;
    } else if (marker) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      auto v = left.count() > 0
                   ? (*runner)->VariableText(marker->value,
                                             std::min(options_.cell_limits.timeout, left))
                   : Result<std::string>(InvalidArgument("the request's deadline has passed"));
      if (!v.ok() && v.status().code() != StatusCode::kNotFound) {
        out.error = "FINAL_VAR(" + marker->value + ") failed: " + v.status().message();
        log_iteration();
        break;
      }
      if (v.ok()) {
        answer = *v;
      } else {
        outputs += (outputs.empty() ? "" : "\n\n") + std::string("FINAL_VAR(") + marker->value +
                   "): no such variable in the REPL. Define it first, then answer again.";
      }
    }
    log_iteration();
    messages.push_back({"assistant", reply->content});
    if (answer) break;
    if (blocks.empty() && !marker) {
      messages.push_back({"user", std::string(Prompt("no_code"))});
    } else {
      messages.push_back({"user", Render(Prompt("next_user"), {{"outputs", outputs},
                                                              {"iteration", std::to_string(it)},
                                                              {"max_iterations", max_it}})});
    }
  }
  const bool budget_left = options_.token_budget == 0 || usage.Tokens() < options_.token_budget;
  if (!answer && out.error.empty() && !budget_left) {
    out.error = "the token budget (" + std::to_string(options_.token_budget) + ") was spent";
  }
  if (!answer && out.error.empty() && Clock::now() < deadline) {
    // Out of turns: one last request for an answer.
    messages.push_back({"user", std::string(Prompt("final_request"))});
    auto reply = llm_.Complete(messages, model, deadline);
    if (reply.ok()) {
      usage.Add(model, reply->usage);
      auto marker = FindFinal(reply->content);
      answer = marker && marker->kind == FinalMarker::Kind::kAnswer ? marker->value : reply->content;
      out.trajectory.push_back({{"type", "iteration"},
                                {"iteration", out.iterations + 1},
                                {"timestamp", IsoNow()},
                                {"prompt", MessagesJson(messages)},
                                {"response", reply->content},
                                {"code_blocks", json::array()},
                                {"final_answer", *answer},
                                {"iteration_time", 0}});
    } else {
      out.error = "the model call failed: " + reply.status().message();
    }
  }
  if (answer) {
    out.success = true;
    out.answer = *answer;
    out.error.clear();
  } else if (out.error.empty()) {
    out.error = "the request's time limit was reached";
  }
  return finish();
}

}  // namespace rlmbox::rlm
