#include "engine/door_protocol.h"

namespace rlmbox::engine {

std::string_view HostCallKindName(HostCallKind kind) {
  switch (kind) {
    case HostCallKind::kLlmQuery: return "llm_query";
    case HostCallKind::kLlmQueryBatched: return "llm_query_batched";
    case HostCallKind::kRlmQuery: return "rlm_query";
    case HostCallKind::kRlmQueryBatched: return "rlm_query_batched";
    case HostCallKind::kTool: return "tool";
  }
  return "llm_query";
}

std::string ValidateHostCall(const nlohmann::json& call, HostCallKind* kind, size_t* prompt_count) {
  if (!call.is_object() || !call.contains("kind") || !call["kind"].is_string() ||
      !call.contains("args") || !call["args"].is_object()) {
    return "malformed host call";
  }
  const auto& k = call["kind"].get_ref<const std::string&>();
  const nlohmann::json& args = call["args"];
  if (args.contains("model") && !args["model"].is_null() && !args["model"].is_string()) {
    return "model must be a str or None";
  }
  bool batched = false;
  if (k == "tool") {
    *kind = HostCallKind::kTool;
    *prompt_count = 1;
    if (!args.contains("name") || !args["name"].is_string()) return "a tool call needs a name";
    const auto& name = args["name"].get_ref<const std::string&>();
    if (name.empty() || name.size() > kMaxToolNameBytes) return "bad tool name";
    if (args.contains("args") && !args["args"].is_array()) return "tool args must be a list";
    if (args.contains("kwargs") && !args["kwargs"].is_object()) {
      return "tool kwargs must be a dict";
    }
    return {};
  }
  if (k == "llm_query") {
    *kind = HostCallKind::kLlmQuery;
  } else if (k == "rlm_query") {
    *kind = HostCallKind::kRlmQuery;
  } else if (k == "llm_query_batched") {
    *kind = HostCallKind::kLlmQueryBatched;
    batched = true;
  } else if (k == "rlm_query_batched") {
    *kind = HostCallKind::kRlmQueryBatched;
    batched = true;
  } else {
    return "unknown host call kind";
  }
  if (batched) {
    if (!args.contains("prompts") || !args["prompts"].is_array()) return "prompts must be a list";
    for (const auto& p : args["prompts"]) {
      if (!p.is_string()) return "every prompt must be a str";
    }
    *prompt_count = args["prompts"].size();
  } else {
    if (!args.contains("prompt") || !args["prompt"].is_string()) return "prompt must be a str";
    *prompt_count = 1;
  }
  return {};
}

std::string ValidateToolNames(const std::vector<std::string>& names) {
  if (names.size() > kMaxTools) return "at most " + std::to_string(kMaxTools) + " tools";
  // The runner's own names, and the module attributes the interpreter relies on.
  static constexpr std::string_view kReserved[] = {
      "llm_query", "llm_query_batched", "rlm_query", "rlm_query_batched", "FINAL_VAR",
      "SHOW_VARS", "LLMQueryError", "ToolError", "context", "answer", "output", "_",
      "__builtins__", "__name__", "__doc__", "__spec__", "__loader__", "__package__",
      "__file__", "__cached__", "__annotations__", "__path__", "__dict__", "__import__"};
  for (const std::string& n : names) {
    bool ok = !n.empty() && n.size() <= kMaxToolNameBytes && !(n[0] >= '0' && n[0] <= '9');
    for (char ch : n) {
      ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_');
    }
    if (!ok) return "tool name '" + n.substr(0, kMaxToolNameBytes) + "' is not an identifier";
    for (std::string_view r : kReserved) {
      if (n == r) return "tool name '" + n + "' is reserved";
    }
  }
  return {};
}

}  // namespace rlmbox::engine
