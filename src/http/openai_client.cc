#include "http/openai_client.h"

#include <httplib.h>

#include <thread>

#include <nlohmann/json.hpp>
#include "base/bounded_json.h"

namespace rlmbox::http {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct BaseUrl {
  std::string scheme_host_port;  // "https://api.openai.com:443"
  std::string path;              // "/v1"
  bool local = false;
};

Result<BaseUrl> ParseBaseUrl(const std::string& url) {
  const bool https = url.rfind("https://", 0) == 0;
  if (!https && url.rfind("http://", 0) != 0) {
    return InvalidArgument("LLM_BASE_URL must start with http:// or https:// (got '" + url + "')");
  }
  const size_t host_start = https ? 8 : 7;
  size_t slash = url.find('/', host_start);
  BaseUrl b;
  b.scheme_host_port = url.substr(0, slash);
  b.path = slash == std::string::npos ? "" : url.substr(slash);
  while (!b.path.empty() && b.path.back() == '/') b.path.pop_back();
  std::string host = url.substr(host_start, slash == std::string::npos ? std::string::npos
                                                                        : slash - host_start);
  if (host.empty()) return InvalidArgument("LLM_BASE_URL has no host");
  b.local = host.rfind("localhost", 0) == 0 || host.rfind("127.", 0) == 0 || host.rfind("[::1]", 0) == 0;
  return b;
}

class OpenAiClient final : public rlm::LlmClient {
 public:
  OpenAiClient(OpenAiClientOptions options, BaseUrl url)
      : options_(std::move(options)), url_(std::move(url)) {}

  Result<rlm::Completion> Complete(const std::vector<rlm::Message>& messages,
                                   const std::string& model, Clock::time_point deadline) override {
    if (options_.api_key.empty() && !url_.local) {
      return FailedPrecondition("LLM_API_KEY is not set (needed for " + url_.scheme_host_port + ")");
    }
    json body = {{"model", model}, {"messages", json::array()}};
    for (const auto& m : messages) body["messages"].push_back({{"role", m.role}, {"content", m.content}});
    const std::string payload = body.dump(-1, ' ', false, json::error_handler_t::replace);

    auto backoff = options_.first_backoff;
    std::string last_error;
    for (int attempt = 0; attempt <= options_.max_retries; ++attempt) {
      const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (remaining.count() <= 0) break;
      httplib::Client cli(url_.scheme_host_port);
      const auto timeout = std::min(remaining, options_.request_timeout);
      cli.set_connection_timeout(std::chrono::duration_cast<std::chrono::seconds>(timeout).count() + 1, 0);
      cli.set_read_timeout(timeout.count() / 1000, static_cast<long>((timeout.count() % 1000) * 1000));
      cli.set_write_timeout(timeout.count() / 1000, static_cast<long>((timeout.count() % 1000) * 1000));
      cli.set_tcp_nodelay(true);
      httplib::Headers headers;
      if (!options_.api_key.empty()) headers.emplace("Authorization", "Bearer " + options_.api_key);
      auto res = cli.Post((url_.path + "/chat/completions").c_str(), headers, payload,
                          "application/json");
      std::chrono::milliseconds wait = backoff;
      if (!res) {
        last_error = "cannot reach " + url_.scheme_host_port + " (" + httplib::to_string(res.error()) + ")";
      } else if (res->status == 200) {
        return ParseCompletion(res->body, model);
      } else if (res->status == 401 || res->status == 403) {
        return FailedPrecondition("the LLM provider rejected the API key (HTTP " +
                                  std::to_string(res->status) + ")");
      } else if (res->status == 429 || res->status >= 500) {
        last_error = "HTTP " + std::to_string(res->status) + " from the LLM provider";
        if (res->has_header("Retry-After")) {
          char* end = nullptr;
          double s = std::strtod(res->get_header_value("Retry-After").c_str(), &end);
          if (end && *end == '\0' && s >= 0 && s < 600) wait = std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
        }
      } else {
        return InvalidArgument("the LLM provider refused the request (HTTP " +
                               std::to_string(res->status) + "): " + res->body.substr(0, 500));
      }
      if (attempt == options_.max_retries || Clock::now() + wait >= deadline) break;
      std::this_thread::sleep_for(wait);
      backoff *= 2;
    }
    return Unavailable("the LLM call failed after retries: " +
                       (last_error.empty() ? std::string("deadline reached") : last_error));
  }

 private:
  static Result<rlm::Completion> ParseCompletion(const std::string& text, const std::string& model) {
    json j = ParseBoundedJson(text, kGuestJsonLimits).value_or(json());
    if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() ||
        !j["choices"][0].is_object() || !j["choices"][0].contains("message") ||
        !j["choices"][0]["message"].is_object()) {
      return Unavailable("the LLM provider sent a malformed reply");
    }
    const json& msg = j["choices"][0]["message"];
    rlm::Completion c;
    c.content = msg.contains("content") && msg["content"].is_string() ? msg["content"].get<std::string>() : "";
    c.model = j.contains("model") && j["model"].is_string() ? j["model"].get<std::string>() : model;
    c.usage.calls = 1;
    if (j.contains("usage") && j["usage"].is_object()) {
      const json& u = j["usage"];
      if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_unsigned()) c.usage.input_tokens = u["prompt_tokens"];
      if (u.contains("completion_tokens") && u["completion_tokens"].is_number_unsigned()) c.usage.output_tokens = u["completion_tokens"];
    }
    return c;
  }

  const OpenAiClientOptions options_;
  const BaseUrl url_;
};

}  // namespace

Result<std::unique_ptr<rlm::LlmClient>> NewOpenAiClient(const OpenAiClientOptions& options) {
  ASSIGN_OR_RETURN(BaseUrl url, ParseBaseUrl(options.base_url));
  return std::unique_ptr<rlm::LlmClient>(new OpenAiClient(options, std::move(url)));
}

}  // namespace rlmbox::http
