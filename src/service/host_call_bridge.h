// Host calls across the wire (design §5.3).
//
// A session execute streamed as NDJSON uses a StreamingHostCallHandler: each
// llm_query & co from the guest becomes a {"event":"host_call", ...} line
// written to the caller, and the guest waits until the caller answers with
// POST /session/{id}/calls/{call_id} (CallRegistry::Answer), the deadline
// passes, or the caller goes away. Call ids are 128-bit random; a call can be
// answered once; answers after it is settled are refused. While a call waits,
// a {"event":"heartbeat"} line goes out twice a second (callers ignore it):
// a failed write is how a vanished caller is noticed.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/host_door.h"

namespace rlmbox::service {

struct PendingCall {
  std::string session_id;
  engine::HostCallKind kind{};
  size_t prompt_count = 1;
  std::mutex mu;
  std::condition_variable cv;
  std::optional<engine::HostCallReply> reply;  // guarded by mu
};

class CallRegistry {
 public:
  std::string Register(std::shared_ptr<PendingCall> call);
  void Unregister(const std::string& call_id);
  // Delivers the caller's answer: {"result": ...} or {"error": "..."}.
  // Errors: kNotFound for an unknown, settled or expired call (or one of
  // another session); kFailedPrecondition when it was answered already;
  // kInvalidArgument when the answer has the wrong shape for the call.
  Status Answer(const std::string& session_id, const std::string& call_id,
                const nlohmann::json& body);
  size_t pending() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<PendingCall>> calls_;  // guarded by mu_
};

class StreamingHostCallHandler : public engine::HostCallHandler {
 public:
  // `emit` writes one event line to the caller; false means the caller is gone.
  // `on_wait` / `on_resume` bracket the wait for an answer (the service frees
  // its worker slot meanwhile: waiting is not work).
  StreamingHostCallHandler(std::string session_id, CallRegistry& registry,
                           std::function<bool(const nlohmann::json&)> emit,
                           std::function<void()> on_wait, std::function<void()> on_resume);

  engine::HostCallReply Handle(const engine::HostCall& call) override;
  bool cancelled() const override { return disconnected_; }
  bool disconnected() const { return disconnected_; }

 private:
  std::string session_id_;
  CallRegistry& registry_;
  std::function<bool(const nlohmann::json&)> emit_;
  std::function<void()> on_wait_;
  std::function<void()> on_resume_;
  std::atomic<bool> disconnected_{false};
};

}  // namespace rlmbox::service
