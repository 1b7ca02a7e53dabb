// RemoteRunnerFactory: the sidecar and remote REPL backends. Each runner is a
// session on an rlmbox execution plane (serve-exec) reached over HTTP; its
// cells are streamed as NDJSON and the host calls they make (llm_query & co)
// are answered here, on the inference plane, so the LLM key never leaves it
// (design §5.3). Thread-safe factory; a runner is driven by one loop at a time.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "rlm/rlm.h"

namespace rlmbox::http {

struct RemoteRunnerOptions {
  std::string base_url;     // http://host:port of serve-exec
  std::string token;        // its RLMBOX_TOKEN, if it requires one
  std::string backend_name;  // "sidecar" or "remote", for trajectories
};

// Errors: kInvalidArgument for a URL that is not http://host:port.
Result<std::unique_ptr<rlm::CodeRunnerFactory>> NewRemoteRunnerFactory(RemoteRunnerOptions options);

// POSTs `body` to `path` on the execution plane asking for NDJSON, answers
// each host_call event with `handler` (on its own thread, at the path
// `answer_path(event)` gives) and returns the final {"event":"result"} object.
// Errors: kUnavailable when the plane is unreachable or ends the stream
// without a result; kInvalidArgument / kNotFound for its 400 / 404.
Result<nlohmann::json> StreamWithHostCalls(
    const RemoteRunnerOptions& options, const std::string& path, const nlohmann::json& body,
    engine::HostCallHandler* handler, std::chrono::steady_clock::time_point deadline,
    const std::function<std::string(const nlohmann::json&)>& answer_path);

// GET {base_url}/ready answers 200. For /ready of the inference plane.
bool RemoteReady(const RemoteRunnerOptions& options);

}  // namespace rlmbox::http
