#include "engine/snapshot.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>

#include <wasmtime.h>

#include "base/bounded_json.h"

namespace rlmbox::engine {
namespace {

constexpr std::string_view kMagic = "RLMBXSN1";
constexpr size_t kMacBytes = 32;
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

void Mac(std::string_view key, std::string_view data, unsigned char out[kMacBytes]) {
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
}

}  // namespace

std::string SealSnapshot(const SandboxImage& image, std::string_view host_state,
                         std::string_view key, std::string_view guest_sha256) {
  const nlohmann::json meta = {
      {"guest", guest_sha256},
      {"wasmtime", WASMTIME_VERSION},
      {"memory_bytes", image.memory_bytes},
      {"stack_pointer", image.stack_pointer},
      {"ranges", image.ranges.size()},
      {"page_bytes", image.pages.size()},
  };
  const std::string m = meta.dump();
  std::string out;
  out.reserve(kSnapshotOverheadBytes + m.size() + host_state.size() + image.ranges.size() * 8 +
              image.pages.size());
  out.append(kMagic);
  PutU32(out, static_cast<uint32_t>(m.size()));
  out.append(m);
  PutU64(out, host_state.size());
  out.append(host_state);
  for (const auto& [offset, length] : image.ranges) {
    PutU32(out, offset);
    PutU32(out, length);
  }
  out.append(image.pages);
  unsigned char mac[kMacBytes];
  Mac(key, out, mac);
  out.append(reinterpret_cast<const char*>(mac), kMacBytes);
  return out;
}

Result<SandboxImage> OpenSnapshot(std::string_view sealed, std::string_view key,
                                  std::string_view guest_sha256, std::string* host_state) {
  if (sealed.size() < kMagic.size() || sealed.substr(0, kMagic.size()) != kMagic) {
    return InvalidArgument("not an rlmbox session snapshot");
  }
  if (sealed.size() < kSnapshotOverheadBytes) {
    return InvalidArgument("the snapshot is truncated");
  }
  // Authenticity first: nothing of an unauthenticated file is interpreted.
  const std::string_view body = sealed.substr(0, sealed.size() - kMacBytes);
  unsigned char mac[kMacBytes];
  Mac(key, body, mac);
  if (CRYPTO_memcmp(mac, sealed.data() + body.size(), kMacBytes) != 0) {
    return InvalidArgument(
        "the snapshot is not authentic: it was altered or truncated, or sealed with another "
        "server's snapshot key");
  }
  size_t pos = kMagic.size();
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
  image.pages.assign(body.data() + pos, total);
  if (host_state != nullptr) host_state->assign(host);
  return image;
}

}  // namespace rlmbox::engine
