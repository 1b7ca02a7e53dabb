// OpenAiClient: rlm::LlmClient over OpenAI-compatible chat completions
// (OpenAI, vLLM, OpenRouter, a local server), HTTP or HTTPS.
// Retries 429, 5xx and connection failures with exponential backoff (honouring
// Retry-After), never past the caller's deadline. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "rlm/llm_client.h"

namespace rlmbox::http {

struct OpenAiClientOptions {
  std::string base_url = "https://api.openai.com/v1";  // LLM_BASE_URL
  std::string api_key;                                 // LLM_API_KEY
  int max_retries = 4;
  std::chrono::milliseconds first_backoff{500};
  std::chrono::milliseconds request_timeout{120'000};
};

// Errors: kInvalidArgument for a base URL that is not http(s)://host[:port][/path].
Result<std::unique_ptr<rlm::LlmClient>> NewOpenAiClient(const OpenAiClientOptions& options);

}  // namespace rlmbox::http
