// SessionManager: the execution service's named sessions.
//
// Sessions get unguessable ids, expire after `ttl` idle (a reaper thread
// checks four times a second; a session in use never expires), and at most
// `max_sessions` are live (in memory). Without an on-disk store, a full
// manager refuses new sessions with kResourceExhausted (429) instead of
// evicting someone else's state. With one (service/session_store.h), a
// session idle for `hibernate_after` is saved to the store and its sandbox
// freed; so is the least recently used idle one when a live slot is needed;
// it wakes under the same id on its next turn (Wake). HibernateAll() saves
// every session (SIGTERM), and a manager opened on the same store resumes
// them. Snapshot / CreateFromSnapshot / Fork are the caller-facing copies.
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
#include "service/session_store.h"

namespace rlmbox::service {

struct SessionEntry {
  std::string id;
  // The tenant that created it (service/tenants.h); no other tenant can see
  // it. A session found in the store at start-up is known by its tenant's
  // tag only until its owner first asks for it. Guarded by the manager's mu_.
  std::string tenant;
  std::string tenant_tag;
  bool tenant_known = true;
  // One entry into the guest at a time (execute, context, variable lookups),
  // taken before a worker slot so that a request waiting for its session's
  // turn never holds a slot meanwhile.
  std::mutex turn;
  std::string profile;
  engine::Limits limits;  // the session's base limits (from its profile)
  std::chrono::milliseconds ttl{0};
  std::chrono::system_clock::time_point created;
  // Null while the session is hibernated (in the store). Guarded by `turn`.
  std::unique_ptr<executor::Session> session;
  std::atomic<bool> asleep{false};
  // False for a session found in the store (start-up, another replica) until
  // it first wakes: profile, limits, ttl and counters are the saved ones then.
  std::atomic<bool> fields_known{true};
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

struct SessionManagerOptions {
  size_t max_sessions = 100;
  std::chrono::milliseconds default_ttl{3'600'000};
  // Where snapshots and hibernated sessions go; null: snapshots in memory and
  // no hibernation.
  SessionStore* store = nullptr;
  std::chrono::milliseconds hibernate_after{0};  // 0: only when a slot is needed
  size_t max_fork = 64;                          // children per fork request
};

struct SnapshotInfo {
  std::string snapshot_id;
  uint64_t bytes = 0;
};

class SessionManager {
 public:
  SessionManager(executor::Executor& executor, size_t max_sessions,
                 std::chrono::milliseconds default_ttl);
  SessionManager(executor::Executor& executor, SessionManagerOptions options);
  ~SessionManager();

  // Errors: kResourceExhausted when max_sessions are live (and none can be
  // hibernated) or no sandbox slot is free.
  Result<std::shared_ptr<SessionEntry>> Create(const std::string& profile,
                                               const engine::Limits& limits,
                                               std::chrono::milliseconds ttl,
                                               const std::string& tenant = "");
  // Errors: kNotFound, also when the session belongs to another tenant (the
  // same answer, so a tenant cannot learn that another's id exists).
  Result<std::shared_ptr<SessionEntry>> Get(const std::string& id, const std::string& tenant = "");
  // Errors: kNotFound, as Get.
  Status Delete(const std::string& id, const std::string& tenant = "");
  // A summary of the tenant's sessions (id, profile, created, idle seconds,
  // executions, hibernated).
  nlohmann::json List(const std::string& tenant = "") const;
  // Live sessions (in memory).
  size_t size() const;
  size_t hibernated() const;
  // Removes sessions idle longer than their TTL, hibernated ones too; returns how many.
  size_t ReapExpired();

  // Brings a hibernated session back into memory; a no-op for a live one.
  // The caller holds entry.turn. Errors: kResourceExhausted when no live slot
  // can be made; kInvalidArgument when its stored state is refused (tampered,
  // another guest build, another key); kNotFound when it is gone.
  Status Wake(SessionEntry& entry);
  // Saves idle sessions (idle > hibernate_after) to the store; returns how many.
  size_t HibernateIdle();
  // Saves every live session to the on-disk store, waiting for running cells
  // to end (shutdown). Returns how many were saved.
  size_t HibernateAll();

  // Seals the session's state between cells and keeps it in the store.
  // Errors: as Get; kFailedPrecondition (409) while one of its cells runs;
  // kResourceExhausted when the store is full.
  Result<SnapshotInfo> Snapshot(const std::string& id, const std::string& tenant = "");
  // A new session (new id) from a snapshot: its variables, context, profile
  // and limits; `ttl` as Create (0: the snapshot's own).
  Result<std::shared_ptr<SessionEntry>> CreateFromSnapshot(const std::string& snapshot_id,
                                                           std::chrono::milliseconds ttl,
                                                           const std::string& tenant = "");
  // `count` new sessions with the session's state, each with its own randomness.
  // Errors: as Snapshot; kInvalidArgument for a count outside [1, max_fork].
  Result<std::vector<std::shared_ptr<SessionEntry>>> Fork(const std::string& id, size_t count,
                                                          const std::string& tenant = "");
  Status DeleteSnapshot(const std::string& snapshot_id, const std::string& tenant = "");
  SessionStore& store() { return *store_; }

 private:
  void ReaperLoop();
  // Takes a live slot, hibernating the least recently used idle session
  // (never `keep`) when all are taken and the store is on disk.
  Status ReserveLive(const SessionEntry* keep);
  void ReleaseLive();
  // The caller holds e.turn; e is live. Saves it and frees its sandbox.
  Status HibernateLocked(SessionEntry& e);
  std::string OuterState(const SessionEntry& e) const;
  std::shared_ptr<SessionEntry> NewEntry(std::unique_ptr<executor::Session> session,
                                         const std::string& profile, const engine::Limits& limits,
                                         std::chrono::milliseconds ttl, const std::string& tenant);
  void Insert(const std::shared_ptr<SessionEntry>& e);
  void ResumeFromStore();

  executor::Executor& executor_;
  const SessionManagerOptions options_;
  std::unique_ptr<SessionStore> own_store_;  // when options_.store is null
  SessionStore* store_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<SessionEntry>> sessions_;  // guarded by mu_
  size_t live_ = 0;                                                // guarded by mu_
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread reaper_;
};

// 128 random bits as 32 hex characters, from the OS's CSPRNG.
std::string RandomId();

int64_t SteadyNowMs();

}  // namespace rlmbox::service
