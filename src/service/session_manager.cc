#include "service/session_manager.h"

#include <fstream>
#include <random>

namespace rlmbox::service {

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string RandomId() {
  static thread_local std::random_device rd;  // getrandom(2) on Linux
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (int i = 0; i < 4; ++i) {
    uint32_t v = rd();
    for (int j = 0; j < 8; ++j) {
      out.push_back(kHex[v & 15]);
      v >>= 4;
    }
  }
  return out;
}

SessionUse::SessionUse(std::shared_ptr<SessionEntry> e) : entry_(std::move(e)) {
  ++entry_->in_use;
  entry_->last_used_ms = SteadyNowMs();
}

SessionUse::~SessionUse() {
  entry_->last_used_ms = SteadyNowMs();
  --entry_->in_use;
}

SessionManager::SessionManager(executor::Executor& executor, size_t max_sessions,
                               std::chrono::milliseconds default_ttl)
    : executor_(executor),
      max_sessions_(max_sessions),
      default_ttl_(default_ttl),
      reaper_([this] { ReaperLoop(); }) {}

SessionManager::~SessionManager() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  reaper_.join();
  std::lock_guard lock(mu_);
  sessions_.clear();
}

Result<std::shared_ptr<SessionEntry>> SessionManager::Create(const std::string& profile,
                                                             const engine::Limits& limits,
                                                             std::chrono::milliseconds ttl,
                                                             const std::string& tenant) {
  {
    std::lock_guard lock(mu_);
    if (sessions_.size() >= max_sessions_) {
      return ResourceExhausted("too many sessions (MAX_SESSIONS=" +
                               std::to_string(max_sessions_) +
                               "); delete one or wait for idle ones to expire");
    }
  }
  ASSIGN_OR_RETURN(auto session, executor_.CreateSession(/*fuel=*/limits.fuel > 0));
  auto entry = std::make_shared<SessionEntry>();
  entry->id = RandomId();
  entry->tenant = tenant;
  entry->profile = profile;
  entry->limits = limits;
  entry->ttl = ttl.count() > 0 ? ttl : default_ttl_;
  entry->created = std::chrono::system_clock::now();
  entry->session = std::move(session);
  entry->last_used_ms = SteadyNowMs();
  std::lock_guard lock(mu_);
  if (sessions_.size() >= max_sessions_) {  // lost a race with another Create
    return ResourceExhausted("too many sessions (MAX_SESSIONS=" + std::to_string(max_sessions_) +
                             ")");
  }
  sessions_[entry->id] = entry;
  return entry;
}

Result<std::shared_ptr<SessionEntry>> SessionManager::Get(const std::string& id,
                                                          const std::string& tenant) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second->tenant != tenant) return NotFound("Session not found");
  return it->second;
}

Status SessionManager::Delete(const std::string& id, const std::string& tenant) {
  std::shared_ptr<SessionEntry> doomed;  // destroyed outside the lock
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second->tenant != tenant) return NotFound("Session not found");
  doomed = std::move(it->second);
  sessions_.erase(it);
  return Status::Ok();
}

nlohmann::json SessionManager::List(const std::string& tenant) const {
  nlohmann::json out = nlohmann::json::array();
  const int64_t now = SteadyNowMs();
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : sessions_) {
    if (e->tenant != tenant) continue;
    out.push_back({
        {"session_id", id},
        {"profile", e->profile},
        {"created_at", std::chrono::duration<double>(e->created.time_since_epoch()).count()},
        {"idle_seconds", static_cast<double>(now - e->last_used_ms.load()) / 1000.0},
        {"ttl_seconds", static_cast<double>(e->ttl.count()) / 1000.0},
        {"executions", e->executions.load()},
        {"busy", e->in_use.load() > 0},
    });
  }
  return out;
}

size_t SessionManager::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

size_t SessionManager::ReapExpired() {
  std::vector<std::shared_ptr<SessionEntry>> doomed;  // destroyed outside the lock
  const int64_t now = SteadyNowMs();
  {
    std::lock_guard lock(mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      const auto& e = it->second;
      if (e->in_use.load() == 0 && now - e->last_used_ms.load() > e->ttl.count()) {
        doomed.push_back(std::move(it->second));
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  return doomed.size();
}

void SessionManager::ReaperLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(250));
    if (stopping_) break;
    lock.unlock();
    ReapExpired();
    lock.lock();
  }
}

}  // namespace rlmbox::service
