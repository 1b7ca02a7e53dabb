#include "service/session_manager.h"

#include <algorithm>
#include <random>

#include "base/bounded_json.h"

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

namespace {

constexpr int64_t kForever = int64_t{1} << 60;

nlohmann::json LimitsJson(const engine::Limits& l) {
  return {{"timeout_ms", l.timeout.count()},         {"cpu_time_ms", l.cpu_time.count()},
          {"fuel", l.fuel},                          {"memory_bytes", l.memory_bytes},
          {"max_output_bytes", l.max_output_bytes},  {"max_host_calls", l.max_host_calls},
          {"max_host_call_bytes", l.max_host_call_bytes}};
}

// The manager's part of a sealed session (authenticated with it by the engine).
struct Outer {
  std::string id, tenant, profile;
  engine::Limits limits;
  int64_t ttl_ms = 0;
  int64_t created_ms = 0;
  uint64_t executions = 0;
};

Result<Outer> ParseOuter(const std::string& text) {
  auto j = ParseBoundedJson(text, kGuestJsonLimits, "the session's saved state");
  auto bad = [] { return InvalidArgument("the session's saved state is malformed"); };
  if (!j.ok() || !j->is_object()) return bad();
  const nlohmann::json& o = *j;
  auto str = [&o](const char* k) { return o.contains(k) && o[k].is_string(); };
  auto num = [](const nlohmann::json& v, const char* k) {
    return v.contains(k) && v[k].is_number_unsigned();
  };
  if (!str("id") || !str("tenant") || !str("profile") || !num(o, "ttl_ms") ||
      !num(o, "created_ms") || !num(o, "executions") || !o.contains("limits") ||
      !o["limits"].is_object()) {
    return bad();
  }
  const nlohmann::json& l = o["limits"];
  for (const char* k : {"timeout_ms", "cpu_time_ms", "fuel", "memory_bytes", "max_output_bytes",
                        "max_host_calls", "max_host_call_bytes"}) {
    if (!num(l, k)) return bad();
  }
  Outer out;
  out.id = o["id"].get<std::string>();
  out.tenant = o["tenant"].get<std::string>();
  out.profile = o["profile"].get<std::string>();
  out.ttl_ms = static_cast<int64_t>(std::min<uint64_t>(o["ttl_ms"].get<uint64_t>(), kForever));
  out.created_ms = static_cast<int64_t>(std::min<uint64_t>(o["created_ms"].get<uint64_t>(), kForever));
  out.executions = o["executions"].get<uint64_t>();
  out.limits.timeout = std::chrono::milliseconds(std::min<uint64_t>(l["timeout_ms"].get<uint64_t>(), kForever));
  out.limits.cpu_time = std::chrono::milliseconds(std::min<uint64_t>(l["cpu_time_ms"].get<uint64_t>(), kForever));
  out.limits.fuel = l["fuel"].get<uint64_t>();
  out.limits.memory_bytes = l["memory_bytes"].get<uint64_t>();
  out.limits.max_output_bytes = l["max_output_bytes"].get<uint64_t>();
  out.limits.max_host_calls = static_cast<uint32_t>(std::min<uint64_t>(l["max_host_calls"].get<uint64_t>(), UINT32_MAX));
  out.limits.max_host_call_bytes = l["max_host_call_bytes"].get<uint64_t>();
  return out;
}

struct Restored {
  std::unique_ptr<executor::Session> session;
  Outer outer;
};

// A session and the manager's state from sealed bytes (authenticated by the engine).
Result<Restored> RestoreSealed(executor::Executor& executor, const std::string& sealed) {
  std::string outer_text;
  ASSIGN_OR_RETURN(auto session, executor.RestoreSession(sealed, &outer_text));
  ASSIGN_OR_RETURN(Outer outer, ParseOuter(outer_text));
  return Restored{std::move(session), std::move(outer)};
}

// Whether `tenant` owns the entry (by name, or by tag for one found in the
// store at start-up). The caller holds the manager's mu_.
bool Owns(const SessionEntry& e, const std::string& tenant, const std::string& tag = "") {
  if (e.tenant_known) return e.tenant == tenant;
  return e.tenant_tag == (tag.empty() ? SessionStore::TenantTag(tenant) : tag);
}

std::unique_ptr<SessionStore> MemoryStoreIfNone(SessionStore* given) {
  if (given != nullptr) return nullptr;
  StoreOptions o;
  o.max_items = 1'000;
  o.max_bytes = uint64_t{1} << 30;
  return std::move(SessionStore::Open(o)).value();
}

}  // namespace

SessionManager::SessionManager(executor::Executor& executor, size_t max_sessions,
                               std::chrono::milliseconds default_ttl)
    : SessionManager(executor, SessionManagerOptions{.max_sessions = max_sessions,
                                                     .default_ttl = default_ttl}) {}

SessionManager::SessionManager(executor::Executor& executor, SessionManagerOptions options)
    : executor_(executor),
      options_(options),
      own_store_(MemoryStoreIfNone(options.store)),
      store_(options.store != nullptr ? options.store : own_store_.get()) {
  ResumeFromStore();
  reaper_ = std::thread([this] { ReaperLoop(); });
}

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

void SessionManager::ResumeFromStore() {
  if (!store_->on_disk()) return;
  const auto now_wall = std::chrono::system_clock::now();
  for (const SessionStore::Item& item : store_->List(SessionStore::Kind::kSession)) {
    if (item.expires <= now_wall) {
      store_->Erase(SessionStore::Kind::kSession, item.id);
      continue;
    }
    auto e = std::make_shared<SessionEntry>();
    e->id = item.id;
    e->tenant_tag = item.tenant_tag;
    e->tenant_known = false;
    e->fields_known = false;
    e->asleep = true;
    e->created = now_wall;
    e->ttl = std::chrono::duration_cast<std::chrono::milliseconds>(item.expires - now_wall);
    e->last_used_ms = SteadyNowMs();
    sessions_[e->id] = std::move(e);
  }
}

Status SessionManager::ReserveLive(const SessionEntry* keep) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::vector<std::shared_ptr<SessionEntry>> idle;
    {
      std::lock_guard lock(mu_);
      if (live_ < options_.max_sessions) {
        ++live_;
        return Status::Ok();
      }
      if (store_->on_disk()) {
        for (const auto& [id, e] : sessions_) {
          if (e.get() != keep && !e->asleep.load() && e->in_use.load() == 0) idle.push_back(e);
        }
      }
    }
    std::sort(idle.begin(), idle.end(), [](const auto& a, const auto& b) {
      return a->last_used_ms.load() < b->last_used_ms.load();
    });
    bool freed = false;
    for (const auto& e : idle) {
      std::unique_lock turn(e->turn, std::try_to_lock);
      if (!turn.owns_lock() || e->in_use.load() != 0) continue;
      if (HibernateLocked(*e).ok()) {
        freed = true;
        break;
      }
    }
    if (!freed) break;
  }
  return ResourceExhausted("too many sessions (MAX_SESSIONS=" +
                           std::to_string(options_.max_sessions) +
                           "); delete one or wait for idle ones to expire");
}

void SessionManager::ReleaseLive() {
  std::lock_guard lock(mu_);
  if (live_ > 0) --live_;
}

std::string SessionManager::OuterState(const SessionEntry& e) const {
  std::string tenant;
  {
    std::lock_guard lock(mu_);
    tenant = e.tenant;
  }
  return nlohmann::json{
      {"id", e.id},
      {"tenant", tenant},
      {"profile", e.profile},
      {"ttl_ms", e.ttl.count()},
      {"created_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                         e.created.time_since_epoch())
                         .count()},
      {"executions", e.executions.load()},
      {"limits", LimitsJson(e.limits)},
  }
      .dump();
}

Status SessionManager::HibernateLocked(SessionEntry& e) {
  if (!store_->on_disk()) return FailedPrecondition("no session store");
  if (e.session == nullptr) return Status::Ok();
  ASSIGN_OR_RETURN(std::string sealed, e.session->Snapshot(OuterState(e)));
  const int64_t idle = SteadyNowMs() - e.last_used_ms.load();
  const auto expires = std::chrono::system_clock::now() +
                       std::chrono::milliseconds(std::max<int64_t>(1000, e.ttl.count() - idle));
  std::string tenant;
  {
    std::lock_guard lock(mu_);
    tenant = e.tenant;
  }
  RETURN_IF_ERROR(store_->Put(SessionStore::Kind::kSession, e.id, tenant, sealed, expires));
  bool deleted = false;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(e.id);
    deleted = it == sessions_.end() || it->second.get() != &e;
    // A deleted entry gave its live slot back when it left the map.
    if (!deleted && live_ > 0) --live_;
    e.asleep = true;
  }
  // Deleted meanwhile (DELETE, TTL): its saved state goes too.
  if (deleted) store_->Erase(SessionStore::Kind::kSession, e.id);
  e.session.reset();
  return Status::Ok();
}

Status SessionManager::Wake(SessionEntry& e) {
  if (e.session != nullptr) return Status::Ok();
  std::string tenant;
  {
    std::lock_guard lock(mu_);
    tenant = e.tenant;
  }
  auto sealed = store_->Get(SessionStore::Kind::kSession, e.id, tenant);
  if (!sealed.ok()) return NotFound("Session not found");
  RETURN_IF_ERROR(ReserveLive(&e));
  auto restored = RestoreSealed(executor_, *sealed);
  if (!restored.ok() || restored->outer.id != e.id || restored->outer.tenant != tenant) {
    ReleaseLive();
    if (!restored.ok()) return restored.status();
    return InvalidArgument("the stored state of session " + e.id + " is not this session's");
  }
  const Outer& outer = restored->outer;
  if (!e.fields_known.load()) {  // found in the store at start-up: its own fields come back
    e.profile = outer.profile;
    e.limits = outer.limits;
    e.ttl = std::chrono::milliseconds(outer.ttl_ms);
    e.created = std::chrono::system_clock::time_point(std::chrono::milliseconds(outer.created_ms));
    e.executions = outer.executions;
  }
  e.session = std::move(restored->session);
  e.last_used_ms = SteadyNowMs();
  e.fields_known = true;
  std::lock_guard lock(mu_);
  auto it = sessions_.find(e.id);
  // Deleted while it woke: the slot it took goes back now, as the map no
  // longer counts it.
  if ((it == sessions_.end() || it->second.get() != &e) && live_ > 0) --live_;
  e.asleep = false;
  return Status::Ok();
}

size_t SessionManager::HibernateIdle() {
  if (!store_->on_disk() || options_.hibernate_after.count() <= 0) return 0;
  const int64_t now = SteadyNowMs();
  std::vector<std::shared_ptr<SessionEntry>> idle;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : sessions_) {
      if (!e->asleep.load() && e->in_use.load() == 0 &&
          now - e->last_used_ms.load() > options_.hibernate_after.count()) {
        idle.push_back(e);
      }
    }
  }
  size_t n = 0;
  for (const auto& e : idle) {
    std::unique_lock turn(e->turn, std::try_to_lock);
    if (!turn.owns_lock() || e->in_use.load() != 0) continue;
    if (HibernateLocked(*e).ok()) ++n;
  }
  return n;
}

size_t SessionManager::HibernateAll() {
  if (!store_->on_disk()) return 0;
  std::vector<std::shared_ptr<SessionEntry>> live;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : sessions_) {
      if (!e->asleep.load()) live.push_back(e);
    }
  }
  size_t n = 0;
  for (const auto& e : live) {
    std::lock_guard turn(e->turn);
    if (e->session != nullptr && HibernateLocked(*e).ok()) ++n;
  }
  return n;
}

std::shared_ptr<SessionEntry> SessionManager::NewEntry(std::unique_ptr<executor::Session> session,
                                                       const std::string& profile,
                                                       const engine::Limits& limits,
                                                       std::chrono::milliseconds ttl,
                                                       const std::string& tenant) {
  auto entry = std::make_shared<SessionEntry>();
  entry->id = RandomId();
  entry->tenant = tenant;
  entry->tenant_tag = SessionStore::TenantTag(tenant);
  entry->profile = profile;
  entry->limits = limits;
  entry->ttl = ttl.count() > 0 ? ttl : options_.default_ttl;
  entry->created = std::chrono::system_clock::now();
  entry->session = std::move(session);
  entry->last_used_ms = SteadyNowMs();
  return entry;
}

void SessionManager::Insert(const std::shared_ptr<SessionEntry>& e) {
  std::lock_guard lock(mu_);
  sessions_[e->id] = e;
}

Result<std::shared_ptr<SessionEntry>> SessionManager::Create(const std::string& profile,
                                                             const engine::Limits& limits,
                                                             std::chrono::milliseconds ttl,
                                                             const std::string& tenant) {
  RETURN_IF_ERROR(ReserveLive(nullptr));
  auto session = executor_.CreateSession(/*fuel=*/limits.fuel > 0);
  if (!session.ok()) {
    ReleaseLive();
    return session.status();
  }
  auto entry = NewEntry(std::move(*session), profile, limits, ttl, tenant);
  Insert(entry);
  return entry;
}

Result<std::shared_ptr<SessionEntry>> SessionManager::Get(const std::string& id,
                                                          const std::string& tenant) {
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
      SessionEntry& e = *it->second;
      if (!Owns(e, tenant)) return NotFound("Session not found");
      if (!e.tenant_known) {
        e.tenant = tenant;  // Wake checks it against the sealed state
        e.tenant_known = true;
      }
      return it->second;
    }
  }
  // Saved by another replica on a shared store (or since start-up): a stub
  // that wakes on its first turn.
  auto item = store_->on_disk() ? store_->Find(SessionStore::Kind::kSession, id, tenant)
                                : std::nullopt;
  const auto now_wall = std::chrono::system_clock::now();
  if (!item || item->expires <= now_wall) return NotFound("Session not found");
  auto e = std::make_shared<SessionEntry>();
  e->id = id;
  e->tenant = tenant;
  e->tenant_tag = item->tenant_tag;
  e->fields_known = false;
  e->asleep = true;
  e->created = now_wall;
  e->ttl = std::chrono::duration_cast<std::chrono::milliseconds>(item->expires - now_wall);
  e->last_used_ms = SteadyNowMs();
  std::lock_guard lock(mu_);
  auto [it, inserted] = sessions_.emplace(id, e);
  return it->second;
}

Status SessionManager::Delete(const std::string& id, const std::string& tenant) {
  std::shared_ptr<SessionEntry> doomed;  // destroyed outside the lock
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end() || !Owns(*it->second, tenant)) return NotFound("Session not found");
    doomed = std::move(it->second);
    sessions_.erase(it);
    if (!doomed->asleep.load() && live_ > 0) --live_;
  }
  store_->Erase(SessionStore::Kind::kSession, id);
  return Status::Ok();
}

Result<SnapshotInfo> SessionManager::Snapshot(const std::string& id, const std::string& tenant) {
  ASSIGN_OR_RETURN(auto entry, Get(id, tenant));
  SessionUse use(entry);
  std::unique_lock turn(entry->turn, std::try_to_lock);
  if (!turn.owns_lock()) {
    return FailedPrecondition("the session is running a cell; a snapshot is taken between cells");
  }
  RETURN_IF_ERROR(Wake(*entry));
  ASSIGN_OR_RETURN(std::string sealed, entry->session->Snapshot(OuterState(*entry)));
  SnapshotInfo info{RandomId(), sealed.size()};
  RETURN_IF_ERROR(store_->Put(SessionStore::Kind::kSnapshot, info.snapshot_id, tenant, sealed));
  return info;
}

Result<std::shared_ptr<SessionEntry>> SessionManager::CreateFromSnapshot(
    const std::string& snapshot_id, std::chrono::milliseconds ttl, const std::string& tenant) {
  auto sealed = store_->Get(SessionStore::Kind::kSnapshot, snapshot_id, tenant);
  if (!sealed.ok()) return NotFound("Snapshot not found");
  RETURN_IF_ERROR(ReserveLive(nullptr));
  auto restored = RestoreSealed(executor_, *sealed);
  if (!restored.ok() || restored->outer.tenant != tenant) {
    ReleaseLive();
    return restored.ok() ? NotFound("Snapshot not found") : restored.status();
  }
  const Outer& outer = restored->outer;
  auto entry = NewEntry(std::move(restored->session), outer.profile, outer.limits,
                        ttl.count() > 0 ? ttl : std::chrono::milliseconds(outer.ttl_ms), tenant);
  entry->executions = outer.executions;
  Insert(entry);
  return entry;
}

Result<std::vector<std::shared_ptr<SessionEntry>>> SessionManager::Fork(const std::string& id,
                                                                        size_t count,
                                                                        const std::string& tenant) {
  if (count < 1 || count > options_.max_fork) {
    return InvalidArgument("count must be an integer in [1, " + std::to_string(options_.max_fork) +
                           "]");
  }
  ASSIGN_OR_RETURN(auto entry, Get(id, tenant));
  SessionUse use(entry);
  std::unique_lock turn(entry->turn, std::try_to_lock);
  if (!turn.owns_lock()) {
    return FailedPrecondition("the session is running a cell; fork it between cells");
  }
  RETURN_IF_ERROR(Wake(*entry));
  size_t reserved = 0;
  auto release = [&] {
    for (; reserved > 0; --reserved) ReleaseLive();
  };
  for (; reserved < count; ++reserved) {
    if (Status s = ReserveLive(entry.get()); !s.ok()) {
      release();
      return s;
    }
  }
  auto children = entry->session->Fork(count);
  if (!children.ok()) {
    release();
    return children.status();
  }
  std::vector<std::shared_ptr<SessionEntry>> out;
  for (auto& child : *children) {
    out.push_back(NewEntry(std::move(child), entry->profile, entry->limits, entry->ttl, tenant));
    Insert(out.back());
  }
  return out;
}

Status SessionManager::DeleteSnapshot(const std::string& snapshot_id, const std::string& tenant) {
  if (!store_->Remove(SessionStore::Kind::kSnapshot, snapshot_id, tenant).ok()) {
    return NotFound("Snapshot not found");
  }
  return Status::Ok();
}

nlohmann::json SessionManager::List(const std::string& tenant) const {
  nlohmann::json out = nlohmann::json::array();
  const int64_t now = SteadyNowMs();
  std::lock_guard lock(mu_);
  const std::string tag = SessionStore::TenantTag(tenant);
  for (const auto& [id, e] : sessions_) {
    if (!Owns(*e, tenant, tag)) continue;
    out.push_back({
        {"session_id", id},
        {"profile", e->profile},
        {"created_at", std::chrono::duration<double>(e->created.time_since_epoch()).count()},
        {"idle_seconds", static_cast<double>(now - e->last_used_ms.load()) / 1000.0},
        {"ttl_seconds", static_cast<double>(e->ttl.count()) / 1000.0},
        {"executions", e->executions.load()},
        {"busy", e->in_use.load() > 0},
        {"hibernated", e->asleep.load()},
    });
  }
  return out;
}

size_t SessionManager::size() const {
  std::lock_guard lock(mu_);
  return live_;
}

size_t SessionManager::hibernated() const {
  std::lock_guard lock(mu_);
  return sessions_.size() - std::min(live_, sessions_.size());
}

size_t SessionManager::ReapExpired() {
  std::vector<std::shared_ptr<SessionEntry>> doomed;  // destroyed outside the lock
  const int64_t now = SteadyNowMs();
  {
    std::lock_guard lock(mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      const auto& e = it->second;
      if (e->in_use.load() == 0 && now - e->last_used_ms.load() > e->ttl.count()) {
        if (!e->asleep.load() && live_ > 0) --live_;
        doomed.push_back(std::move(it->second));
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& e : doomed) store_->Erase(SessionStore::Kind::kSession, e->id);
  return doomed.size();
}

void SessionManager::ReaperLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(250));
    if (stopping_) break;
    lock.unlock();
    ReapExpired();
    HibernateIdle();
    lock.lock();
  }
}

}  // namespace rlmbox::service
