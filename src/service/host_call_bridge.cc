#include "service/host_call_bridge.h"

#include "service/session_manager.h"

namespace rlmbox::service {

std::string CallRegistry::Register(std::shared_ptr<PendingCall> call) {
  std::string id = RandomId();
  std::lock_guard lock(mu_);
  calls_[id] = std::move(call);
  return id;
}

void CallRegistry::Unregister(const std::string& call_id) {
  std::lock_guard lock(mu_);
  calls_.erase(call_id);
}

size_t CallRegistry::pending() const {
  std::lock_guard lock(mu_);
  return calls_.size();
}

Status CallRegistry::Answer(const std::string& session_id, const std::string& call_id,
                            const nlohmann::json& body) {
  std::shared_ptr<PendingCall> call;
  {
    std::lock_guard lock(mu_);
    auto it = calls_.find(call_id);
    if (it == calls_.end() || it->second->session_id != session_id) {
      return NotFound("unknown or expired call");
    }
    call = it->second;
  }
  engine::HostCallReply reply;
  if (!body.is_object()) return InvalidArgument("the answer must be a JSON object");
  if (body.contains("error")) {
    if (!body["error"].is_string()) return InvalidArgument("error must be a string");
    reply = engine::HostCallError{body["error"].get<std::string>()};
  } else if (body.contains("result")) {
    const auto& r = body["result"];
    const bool batched = call->kind == engine::HostCallKind::kLlmQueryBatched ||
                         call->kind == engine::HostCallKind::kRlmQueryBatched;
    if (batched) {
      if (!r.is_array() || r.size() != call->prompt_count) {
        return InvalidArgument("result must be a list with one item per prompt (" +
                               std::to_string(call->prompt_count) + ")");
      }
      for (const auto& item : r) {
        if (!item.is_string() &&
            !(item.is_object() && item.contains("error") && item["error"].is_string())) {
          return InvalidArgument("each result item must be a string or {\"error\": string}");
        }
      }
    } else if (!r.is_string()) {
      return InvalidArgument("result must be a string");
    }
    reply = r;
  } else {
    return InvalidArgument("the answer needs \"result\" or \"error\"");
  }
  {
    std::lock_guard lock(call->mu);
    if (call->reply) return FailedPrecondition("this call was answered already");
    call->reply = std::move(reply);
  }
  call->cv.notify_all();
  return Status::Ok();
}

StreamingHostCallHandler::StreamingHostCallHandler(
    std::string session_id, CallRegistry& registry,
    std::function<bool(const nlohmann::json&)> emit, std::function<void()> on_wait,
    std::function<void()> on_resume)
    : session_id_(std::move(session_id)),
      registry_(registry),
      emit_(std::move(emit)),
      on_wait_(std::move(on_wait)),
      on_resume_(std::move(on_resume)) {}

engine::HostCallReply StreamingHostCallHandler::Handle(const engine::HostCall& call) {
  if (disconnected_) return engine::HostCallError{"the caller disconnected"};
  auto pending = std::make_shared<PendingCall>();
  pending->session_id = session_id_;
  pending->kind = call.kind;
  pending->prompt_count = call.args.contains("prompts") ? call.args["prompts"].size() : 1;
  const std::string id = registry_.Register(pending);
  nlohmann::json event = {{"event", "host_call"},
                          {"call_id", id},
                          {"kind", engine::HostCallKindName(call.kind)},
                          {"args", call.args}};
  if (!emit_(event)) {
    registry_.Unregister(id);
    disconnected_ = true;
    return engine::HostCallError{"the caller disconnected"};
  }
  if (on_wait_) on_wait_();
  std::optional<engine::HostCallReply> reply;
  {
    // Wake twice a second to send a heartbeat line: writing is the only way
    // to notice a caller that closed its connection while we wait.
    std::unique_lock lock(pending->mu);
    while (!pending->reply && std::chrono::steady_clock::now() < call.deadline) {
      auto wake = std::min(call.deadline,
                           std::chrono::steady_clock::now() + std::chrono::milliseconds(500));
      if (pending->cv.wait_until(lock, wake, [&] { return pending->reply.has_value(); })) break;
      if (std::chrono::steady_clock::now() >= call.deadline) break;
      lock.unlock();
      const bool alive = emit_(nlohmann::json{{"event", "heartbeat"}});
      lock.lock();
      if (!alive) {
        disconnected_ = true;
        break;
      }
    }
    reply = std::move(pending->reply);
    // Settle it: an answer arriving from now on is refused.
    if (!reply) pending->reply = engine::HostCallError{"expired"};
  }
  registry_.Unregister(id);
  if (on_resume_) on_resume_();
  if (disconnected_) return engine::HostCallError{"the caller disconnected"};
  if (!reply) return engine::HostCallError{"no answer to " + std::string(engine::HostCallKindName(call.kind)) +
                                           " before the execution's deadline"};
  return std::move(*reply);
}

}  // namespace rlmbox::service
