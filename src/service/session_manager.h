// SessionManager: the execution service's named sessions.
//
// Sessions get unguessable ids, expire after `ttl` idle (a reaper thread
// checks once a second; a session in use never expires), and are capped at
// `max_sessions`: when full, Create() refuses with kResourceExhausted (429)
// instead of evicting someone else's state.
//
// Entries are shared_ptr because an execute in progress must keep its
// session alive while a DELETE or the reaper removes it from the map; the
// session is destroyed when its last user lets go.
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/limits.h"
#include "executor/executor.h"

namespace rlmbox::service {

struct SessionEntry {
  std::string id;
  // The tenant that created it (service/tenants.h); no other tenant can see it.
  std::string tenant;
  // One entry into the guest at a time (execute, context, variable lookups),
  // taken before a worker slot so that a request waiting for its session's
  // turn never holds a slot meanwhile.
  std::mutex turn;
  std::string profile;
  engine::Limits limits;  // the session's base limits (from its profile)
  std::chrono::milliseconds ttl{0};
  std::chrono::system_clock::time_point created;
  std::unique_ptr<executor::Session> session;
  std::atomic<int64_t> last_used_ms{0};  // steady clock, ms
  std::atomic<int> in_use{0};
  std::atomic<uint64_t> executions{0};
};

// Marks an entry in use for a scope (the reaper skips it) and touches it.
class SessionUse {
 public:
  explicit SessionUse(std::shared_ptr<SessionEntry> e);
  ~SessionUse();
  SessionUse(const SessionUse&) = delete;
  SessionUse& operator=(const SessionUse&) = delete;
  SessionEntry* operator->() const { return entry_.get(); }

 private:
  std::shared_ptr<SessionEntry> entry_;
};

class SessionManager {
 public:
  SessionManager(executor::Executor& executor, size_t max_sessions,
                 std::chrono::milliseconds default_ttl);
  ~SessionManager();

  // Errors: kResourceExhausted when max_sessions are open or no sandbox slot
  // is free.
  Result<std::shared_ptr<SessionEntry>> Create(const std::string& profile,
                                               const engine::Limits& limits,
                                               std::chrono::milliseconds ttl,
                                               const std::string& tenant = "");
  // Errors: kNotFound, also when the session belongs to another tenant (the
  // same answer, so a tenant cannot learn that another's id exists).
  Result<std::shared_ptr<SessionEntry>> Get(const std::string& id, const std::string& tenant = "");
  // Errors: kNotFound, as Get.
  Status Delete(const std::string& id, const std::string& tenant = "");
  // A summary of the tenant's sessions (id, profile, created, idle seconds, executions).
  nlohmann::json List(const std::string& tenant = "") const;
  size_t size() const;
  // Removes sessions idle longer than their TTL; returns how many.
  size_t ReapExpired();

 private:
  void ReaperLoop();

  executor::Executor& executor_;
  const size_t max_sessions_;
  const std::chrono::milliseconds default_ttl_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<SessionEntry>> sessions_;  // guarded by mu_
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread reaper_;
};

// 128 random bits as 32 hex characters, from the OS's CSPRNG.
std::string RandomId();

int64_t SteadyNowMs();

}  // namespace rlmbox::service
