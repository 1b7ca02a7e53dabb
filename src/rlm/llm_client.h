// LlmClient: what the RLM loop and llm_query use to reach a language model.
// The production implementation is http::OpenAiClient (OpenAI-compatible chat
// completions); tests point it at a scripted HTTP server, never at a fake of
// this interface. Implementations must be thread-safe (batched sub-calls run
// in parallel).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace rlmbox::rlm {

struct Message {
  std::string role;  // system | user | assistant
  std::string content;
};

struct Usage {
  uint64_t calls = 0;
  uint64_t input_tokens = 0;
  uint64_t output_tokens = 0;
};

struct Completion {
  std::string content;
  std::string model;
  Usage usage;  // calls = 1
};

class LlmClient {
 public:
  virtual ~LlmClient() = default;
  // One chat completion. Must give up by `deadline`.
  // Errors: kFailedPrecondition (no API key, or the key was rejected);
  // kInvalidArgument (the provider refused the request); kUnavailable (the
  // provider kept failing or timed out, after retries); kInternal (a reply we
  // cannot read).
  virtual Result<Completion> Complete(const std::vector<Message>& messages,
                                      const std::string& model,
                                      std::chrono::steady_clock::time_point deadline) = 0;
};

}  // namespace rlmbox::rlm
