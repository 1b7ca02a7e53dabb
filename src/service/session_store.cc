#include "service/session_store.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "service/session_manager.h"

namespace rlmbox::service {
namespace fs = std::filesystem;
namespace {

const char* KindDir(SessionStore::Kind kind) {
  return kind == SessionStore::Kind::kSession ? "sessions" : "snapshots";
}

bool IsHex(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Writes all of `bytes` to `fd`. False on error (errno set).
bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool FsyncDir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

std::chrono::system_clock::time_point MtimeOf(const struct stat& st) {
  if (st.st_mtim.tv_sec <= 0) return {};
  return std::chrono::system_clock::time_point(std::chrono::seconds(st.st_mtim.tv_sec));
}

}  // namespace

std::string SessionStore::TenantTag(const std::string& tenant) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(tenant.data()), tenant.size(), digest);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

bool SessionStore::ValidId(std::string_view id) { return IsHex(id, 32); }

std::string SessionStore::PathOf(Kind kind, const std::string& tag, const std::string& id) const {
  return (fs::path(options_.dir) / KindDir(kind) / tag / id).string();
}

Result<std::unique_ptr<SessionStore>> SessionStore::Open(StoreOptions options) {
  std::unique_ptr<SessionStore> store(new SessionStore(std::move(options)));
  if (store->on_disk()) RETURN_IF_ERROR(store->Index());
  return store;
}

Status SessionStore::Index() {
  const fs::path root(options_.dir);
  std::error_code ec;
  for (const char* sub : {"sessions", "snapshots", "tmp"}) {
    fs::create_directories(root / sub, ec);
    if (ec) return Unavailable("the session store " + options_.dir + " cannot be used: " + ec.message());
  }
  if (::access(root.c_str(), W_OK) != 0) {
    return Unavailable(Errno("the session store " + options_.dir + " is not writable"));
  }
  // A crash mid-write leaves a temp file; the item it was replacing is intact.
  for (const auto& e : fs::directory_iterator(root / "tmp", ec)) fs::remove(e.path(), ec);
  std::lock_guard lock(mu_);
  for (Kind kind : {Kind::kSession, Kind::kSnapshot}) {
    for (const auto& tag_dir : fs::directory_iterator(root / KindDir(kind), ec)) {
      const std::string tag = tag_dir.path().filename().string();
      if (!IsHex(tag, 16) || !tag_dir.is_directory(ec)) continue;
      for (const auto& f : fs::directory_iterator(tag_dir.path(), ec)) {
        const std::string id = f.path().filename().string();
        struct stat st {};
        if (!ValidId(id) || ::lstat(f.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (index_.size() >= options_.max_items) break;
        index_[{kind, id}] = Item{id, tag, static_cast<uint64_t>(st.st_size), MtimeOf(st)};
        bytes_ += static_cast<uint64_t>(st.st_size);
      }
    }
  }
  return Status::Ok();
}

Status SessionStore::Put(Kind kind, const std::string& id, const std::string& tenant,
                         std::string_view bytes, std::chrono::system_clock::time_point expires) {
  if (!ValidId(id)) return InvalidArgument("malformed id");
  const std::string tag = TenantTag(tenant);
  std::lock_guard lock(mu_);
  auto it = index_.find({kind, id});
  const uint64_t replaced = it != index_.end() ? it->second.bytes : 0;
  if (it == index_.end() && index_.size() >= options_.max_items) {
    return ResourceExhausted("the session store is full (" + std::to_string(options_.max_items) +
                             " items)");
  }
  if (bytes_ - replaced + bytes.size() > options_.max_bytes) {
    return ResourceExhausted("the session store is full (" + std::to_string(options_.max_bytes) +
                             " bytes)");
  }
  if (on_disk()) {
    const fs::path final_path = PathOf(kind, tag, id);
    std::error_code ec;
    fs::create_directories(final_path.parent_path(), ec);
    const fs::path tmp = fs::path(options_.dir) / "tmp" / (id + "." + RandomId().substr(0, 8));
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Unavailable(Errno("cannot write to the session store"));
    bool ok = WriteAll(fd, bytes) && ::fsync(fd) == 0;
    if (ok && expires.time_since_epoch().count() > 0) {
      const auto secs = std::chrono::duration_cast<std::chrono::seconds>(expires.time_since_epoch());
      const struct timespec times[2] = {{secs.count(), 0}, {secs.count(), 0}};
      ok = ::futimens(fd, times) == 0;
    }
    const int saved = errno;
    ::close(fd);
    if (ok) ok = ::rename(tmp.c_str(), final_path.c_str()) == 0;
    if (!ok) {
      errno = errno ? errno : saved;
      const std::string msg = Errno("cannot write to the session store");
      fs::remove(tmp, ec);
      return Unavailable(msg);
    }
    (void)FsyncDir(final_path.parent_path());
  } else {
    memory_[{kind, id}] = std::string(bytes);
  }
  bytes_ = bytes_ - replaced + bytes.size();
  index_[{kind, id}] = Item{id, tag, bytes.size(), expires};
  return Status::Ok();
}

Result<std::string> SessionStore::Get(Kind kind, const std::string& id,
                                      const std::string& tenant) const {
  if (!ValidId(id)) return NotFound("not found");
  const std::string tag = TenantTag(tenant);
  std::lock_guard lock(mu_);
  auto it = index_.find({kind, id});
  if (it == index_.end() || it->second.tenant_tag != tag) return NotFound("not found");
  if (!on_disk()) return memory_.at({kind, id});
  const std::string path = PathOf(kind, tag, id);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Unavailable(Errno("cannot read from the session store"));
  struct stat st {};
  std::string out;
  // Never more than the store's own cap, whatever the file claims to be.
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<uint64_t>(st.st_size) <= options_.max_bytes) {
    out.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < out.size()) {
      const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    out.resize(got);
  }
  ::close(fd);
  return out;
}

std::optional<SessionStore::Item> SessionStore::Find(Kind kind, const std::string& id,
                                                     const std::string& tenant) {
  if (!ValidId(id)) return std::nullopt;
  const std::string tag = TenantTag(tenant);
  std::lock_guard lock(mu_);
  auto it = index_.find({kind, id});
  if (it != index_.end()) {
    if (it->second.tenant_tag != tag) return std::nullopt;
    return it->second;
  }
  if (!on_disk() || index_.size() >= options_.max_items) return std::nullopt;
  struct stat st {};
  if (::lstat(PathOf(kind, tag, id).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  Item item{id, tag, static_cast<uint64_t>(st.st_size), MtimeOf(st)};
  index_[{kind, id}] = item;
  bytes_ += item.bytes;
  return item;
}

Status SessionStore::Remove(Kind kind, const std::string& id, const std::string& tenant) {
  if (!ValidId(id)) return NotFound("not found");
  const std::string tag = TenantTag(tenant);
  std::lock_guard lock(mu_);
  auto it = index_.find({kind, id});
  if (it == index_.end() || it->second.tenant_tag != tag) return NotFound("not found");
  if (on_disk()) {
    std::error_code ec;
    fs::remove(PathOf(kind, tag, id), ec);
  } else {
    memory_.erase({kind, id});
  }
  bytes_ -= it->second.bytes;
  index_.erase(it);
  return Status::Ok();
}

void SessionStore::Erase(Kind kind, const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = index_.find({kind, id});
  if (it == index_.end()) return;
  if (on_disk()) {
    std::error_code ec;
    fs::remove(PathOf(kind, it->second.tenant_tag, id), ec);
  } else {
    memory_.erase({kind, id});
  }
  bytes_ -= it->second.bytes;
  index_.erase(it);
}

std::vector<SessionStore::Item> SessionStore::List(Kind kind) const {
  std::vector<Item> out;
  std::lock_guard lock(mu_);
  for (const auto& [key, item] : index_) {
    if (key.first == kind) out.push_back(item);
  }
  return out;
}

size_t SessionStore::items() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

uint64_t SessionStore::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace rlmbox::service
