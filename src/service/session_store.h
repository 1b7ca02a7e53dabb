// SessionStore: sealed session snapshots (executor::Session::Snapshot) kept
// on disk, or in memory when no directory is given.
//
// Two kinds of item, each named by a 32-hex id under its tenant:
//   kSession   a hibernated session (the newest saved state of a named
//              session; resumed under the same id)
//   kSnapshot  a snapshot a caller asked for (POST /session/{id}/snapshot)
// On disk: DIR/<kind>/<tenant tag>/<id>, where the tag is the first 16 hex
// digits of SHA-256(tenant), so a listing needs no file to be read. A file's
// mtime is the item's expiry time (0 for none). Writes are atomic: a temp file
// in DIR/tmp, fsync, rename, fsync of the directory, so a kill -9 leaves
// either the old file or the new one. The bytes are authenticated by the
// engine when opened, not here: the store trusts nothing it reads.
//
// Bounded: at most `max_items` items and `max_bytes` bytes together; Put
// refuses more with kResourceExhausted. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace rlmbox::service {

struct StoreOptions {
  std::string dir;  // empty: in memory (lost with the process)
  size_t max_items = 20'000;
  uint64_t max_bytes = uint64_t{16} << 30;
};

class SessionStore {
 public:
  enum class Kind { kSession, kSnapshot };
  struct Item {
    std::string id;
    std::string tenant_tag;
    uint64_t bytes = 0;
    std::chrono::system_clock::time_point expires{};  // epoch: never
  };

  // Creates DIR and its folders if missing, removes temp files a crash left,
  // and indexes what is there. Errors: kUnavailable when DIR cannot be used.
  static Result<std::unique_ptr<SessionStore>> Open(StoreOptions options);

  bool on_disk() const { return !options_.dir.empty(); }
  const std::string& dir() const { return options_.dir; }

  // Errors: kInvalidArgument for a malformed id, kResourceExhausted when the
  // store is full, kUnavailable when the write fails (nothing is changed then).
  Status Put(Kind kind, const std::string& id, const std::string& tenant, std::string_view bytes,
             std::chrono::system_clock::time_point expires = {});
  // Errors: kNotFound when absent or under another tenant.
  Result<std::string> Get(Kind kind, const std::string& id, const std::string& tenant) const;
  // The index entry, also for an item another replica wrote to a shared
  // directory since Open (looked up on disk on a miss).
  std::optional<Item> Find(Kind kind, const std::string& id, const std::string& tenant);
  // Errors: kNotFound as Get.
  Status Remove(Kind kind, const std::string& id, const std::string& tenant);
  // Removes the item whoever's it is (the owner's own clean-up: TTL, DELETE).
  void Erase(Kind kind, const std::string& id);
  std::vector<Item> List(Kind kind) const;
  size_t items() const;
  uint64_t bytes() const;

  static std::string TenantTag(const std::string& tenant);
  static bool ValidId(std::string_view id);

 private:
  explicit SessionStore(StoreOptions options) : options_(std::move(options)) {}
  std::string PathOf(Kind kind, const std::string& tag, const std::string& id) const;
  Status Index();

  const StoreOptions options_;
  mutable std::mutex mu_;
  // (kind, id) → item, and the bytes of in-memory items. Guarded by mu_.
  std::map<std::pair<Kind, std::string>, Item> index_;
  std::map<std::pair<Kind, std::string>, std::string> memory_;
  uint64_t bytes_ = 0;  // guarded by mu_
};

}  // namespace rlmbox::service
