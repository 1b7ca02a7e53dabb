#include "engine/snapshot.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>

#include <wasmtime.h>

#include "base/bounded_json.h"

namespace rlmbox::engine {
namespace {

constexpr std::string_view kMagic = "RLMBXSN2";
constexpr std::string_view kOlderMagic = "RLMBXSN";  // any other version
constexpr size_t kNonceBytes = 16;
constexpr size_t kMacBytes = 16;
constexpr std::string_view kKeyLabel = "rlmbox session snapshot v2";
constexpr uint64_t kWasmPage = 64u << 10;
constexpr uint64_t kMaxMemory = uint64_t{4} << 30;
constexpr size_t kMaxMetaBytes = 4096;

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// The tag of `data`, whose bytes after the magic begin with the nonce: a
// Poly1305 key derived for this nonce alone, then Poly1305 over all of it.
// False if OpenSSL cannot compute it (then nothing is sealed or opened).
bool Mac(std::string_view key, std::string_view data, unsigned char out[kMacBytes]) {
  std::string label(kKeyLabel);
  label.append(data.substr(kMagic.size(), kNonceBytes));
  unsigned char one_time[32];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(label.data()), label.size(), one_time,
           &len) == nullptr) {
    return false;
  }
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "POLY1305", nullptr);
  EVP_MAC_CTX* ctx = mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr;
  size_t written = 0;
  const bool ok = ctx != nullptr && EVP_MAC_init(ctx, one_time, sizeof one_time, nullptr) == 1 &&
                  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()),
                                 data.size()) == 1 &&
                  EVP_MAC_final(ctx, out, &written, kMacBytes) == 1 && written == kMacBytes;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  OPENSSL_cleanse(one_time, sizeof one_time);
  return ok;
}

}  // namespace

Result<std::string> SealSnapshot(const SandboxImage& image, std::string_view host_state,
                                 std::string_view key, std::string_view guest_sha256) {
  const nlohmann::json meta = {
      {"guest", guest_sha256},
      {"wasmtime", WASMTIME_VERSION},
      {"memory_bytes", image.memory_bytes},
      {"stack_pointer", image.stack_pointer},
      {"ranges", image.ranges.size()},
      {"page_bytes", image.page_bytes().size()},
  };
  const std::string m = meta.dump();
  std::string out;
  out.reserve(kSnapshotOverheadBytes + m.size() + host_state.size() + image.ranges.size() * 8 +
              image.page_bytes().size());
  out.append(kMagic);
  unsigned char nonce[kNonceBytes];
  if (RAND_bytes(nonce, sizeof nonce) != 1) return Internal("no randomness for a snapshot nonce");
  out.append(reinterpret_cast<const char*>(nonce), sizeof nonce);
  PutU32(out, static_cast<uint32_t>(m.size()));
  out.append(m);
  PutU64(out, host_state.size());
  out.append(host_state);
  for (const auto& [offset, length] : image.ranges) {
    PutU32(out, offset);
    PutU32(out, length);
  }
  out.append(image.page_bytes());
  unsigned char mac[kMacBytes];
  if (!Mac(key, out, mac)) return Internal("cannot compute the snapshot's authentication tag");
  out.append(reinterpret_cast<const char*>(mac), kMacBytes);
  return out;
}

Result<SandboxImage> OpenSnapshot(std::string_view sealed, std::string_view key,
                                  std::string_view guest_sha256, std::string_view* host_state) {
  if (sealed.size() < kMagic.size() || sealed.substr(0, kMagic.size()) != kMagic) {
    if (sealed.substr(0, kOlderMagic.size()) == kOlderMagic) {
      return InvalidArgument("the snapshot was written in another snapshot format (" +
                             std::string(sealed.substr(0, kMagic.size())) +
                             ") by another rlmbox version; this server reads " +
                             std::string(kMagic));
    }
    return InvalidArgument("not an rlmbox session snapshot");
  }
  if (sealed.size() < kSnapshotOverheadBytes) {
    return InvalidArgument("the snapshot is truncated");
  }
  // Authenticity first: nothing of an unauthenticated file is interpreted.
  const std::string_view body = sealed.substr(0, sealed.size() - kMacBytes);
  unsigned char mac[kMacBytes];
  if (!Mac(key, body, mac)) return Internal("cannot compute the snapshot's authentication tag");
  if (CRYPTO_memcmp(mac, sealed.data() + body.size(), kMacBytes) != 0) {
    return InvalidArgument(
        "the snapshot is not authentic: it was altered or truncated, or sealed with another "
        "server's snapshot key");
  }
  size_t pos = kMagic.size() + kNonceBytes;
  auto need = [&](size_t n) { return body.size() - pos >= n; };
  auto bad = [] { return InvalidArgument("the snapshot is malformed"); };
  if (!need(4)) return bad();
  const size_t meta_len = GetLe(body.data() + pos, 4);
  pos += 4;
  if (meta_len > kMaxMetaBytes || !need(meta_len)) return bad();
  auto meta = ParseBoundedJson(body.substr(pos, meta_len), kGuestJsonLimits, "the snapshot");
  pos += meta_len;
  if (!meta.ok() || !meta->is_object()) return bad();
  const nlohmann::json& j = *meta;
  auto uint_field = [&](const char* name) -> std::optional<uint64_t> {
    auto it = j.find(name);
    if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<uint64_t>();
  };
  if (!j.contains("guest") || !j["guest"].is_string()) return bad();
  if (j["guest"].get<std::string>() != guest_sha256) {
    return InvalidArgument("the snapshot was made by another guest build (" +
                           j["guest"].get<std::string>().substr(0, 16) + "…); this server runs " +
                           std::string(guest_sha256.substr(0, 16)) + "…");
  }
  const auto memory = uint_field("memory_bytes");
  const auto sp = uint_field("stack_pointer");
  const auto count = uint_field("ranges");
  const auto page_bytes = uint_field("page_bytes");
  if (!memory || !sp || !count || !page_bytes || *memory == 0 || *memory > kMaxMemory ||
      *memory % kWasmPage != 0 || *sp > 0xffffffffu) {
    return bad();
  }
  if (!need(8)) return bad();
  const uint64_t host_len = GetLe(body.data() + pos, 8);
  pos += 8;
  if (!need(host_len)) return bad();
  const std::string_view host = body.substr(pos, host_len);
  pos += host_len;
  if (*count > (body.size() - pos) / 8) return bad();
  SandboxImage image;
  image.memory_bytes = *memory;
  image.stack_pointer = static_cast<uint32_t>(*sp);
  image.ranges.reserve(*count);
  uint64_t end = 0, total = 0;
  for (uint64_t i = 0; i < *count; ++i) {
    const auto offset = static_cast<uint32_t>(GetLe(body.data() + pos, 4));
    const auto length = static_cast<uint32_t>(GetLe(body.data() + pos + 4, 4));
    pos += 8;
    // Ascending, disjoint, non-empty and inside the memory: a restore writes
    // exactly these bytes, never outside the sandbox's own memory.
    if (length == 0 || offset < end || uint64_t{offset} + length > *memory) return bad();
    end = uint64_t{offset} + length;
    total += length;
    image.ranges.emplace_back(offset, length);
  }
  if (total != *page_bytes || body.size() - pos != total) return bad();
  image.sealed_pages = body.substr(pos, total);
  if (host_state != nullptr) *host_state = host;
  return image;
}

}  // namespace rlmbox::engine
