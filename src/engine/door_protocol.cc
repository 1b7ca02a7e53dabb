#include "engine/door_protocol.h"

namespace rlmbox::engine {

std::string_view HostCallKindName(HostCallKind kind) {
  switch (kind) {
    case HostCallKind::kLlmQuery: return "llm_query";
    case HostCallKind::kLlmQueryBatched: return "llm_query_batched";
    case HostCallKind::kRlmQuery: return "rlm_query";
    case HostCallKind::kRlmQueryBatched: return "rlm_query_batched";
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

}  // namespace rlmbox::engine
