// Session snapshots: a quiescent sandbox's state, captured, sealed into bytes
// that may be kept on storage the guest's owner can reach, and restored into
// new sandboxes.
//
// Every sandbox starts as a copy-on-write mapping of one Wizer snapshot, so a
// sandbox's whole state is (a) the linear-memory pages it has written since
// (read from /proc/self/pagemap: private anonymous pages), (b) the size its
// memory has grown to, and (c) the guest's one mutable global, the stack
// pointer (exported by guest/build.sh; between calls it is back at its entry
// value, checked on capture). Nothing else in the instance changes: the
// guest has no other mutable global and never grows or writes its tables.
// WASI state is not carried: the guest keeps no file open between cells
// except the read-only stdlib it reopens per import (a file a cell left open
// is closed in the restored sandbox).
//
// Sealed layout (integers little-endian):
//   "RLMBXSN2"                          magic and format version
//   nonce                               16 random bytes, new for each file
//   u32 meta_len, meta                  JSON: guest SHA-256, wasmtime version,
//                                       memory size, stack pointer, counts
//   u64 host_len, host                  the embedder's own state, opaque here
//   ranges × (u32 offset, u32 length)   page-aligned, ascending, disjoint
//   page bytes                          the ranges' contents, in order
//   tag                                 16 bytes: Poly1305 of everything above
// The Poly1305 key is used for this one file only: HMAC-SHA256(server key,
// label ‖ nonce). Poly1305 is a one-time authenticator and runs ~4× faster
// than HMAC-SHA256 over a megabyte here (0.17 vs 0.70 ms), which is most of a
// restore's verification. The tag is checked before anything else is read;
// then the guest build must be this engine's. A tampered, truncated or
// foreign file is refused.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace rlmbox::engine {

// A sandbox's state relative to the snapshot every sandbox starts from.
struct SandboxImage {
  uint64_t memory_bytes = 0;   // linear memory size
  uint32_t stack_pointer = 0;  // the guest's __stack_pointer between calls
  // Written pages: (offset, length) into linear memory, page-aligned, ascending.
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  // Their bytes, concatenated in range order: owned (Capture) or borrowed
  // from the sealed bytes they were opened from (OpenSnapshot), which must
  // then outlive the image. page_bytes() is whichever is set.
  std::string pages;
  std::string_view sealed_pages;
  std::string_view page_bytes() const {
    return sealed_pages.data() != nullptr ? sealed_pages : std::string_view(pages);
  }
};

// Bytes of a sealed snapshot beyond the pages and the host state.
constexpr size_t kSnapshotOverheadBytes = 8 + 16 + 4 + 8 + 16;

// Seals `image` and `host_state` under `key` (see the layout); `guest_sha256`
// binds it to one guest build.
// Errors: kInternal if the system cannot supply randomness or the MAC.
Result<std::string> SealSnapshot(const SandboxImage& image, std::string_view host_state,
                                 std::string_view key, std::string_view guest_sha256);

// Checks and opens sealed bytes without copying them: the image's pages and
// `host_state` point into `sealed`, which must outlive both. Errors
// (kInvalidArgument, the message says which): not a snapshot, truncated, not
// authentic (tampered or made with another key), made by another guest build,
// or inconsistent.
Result<SandboxImage> OpenSnapshot(std::string_view sealed, std::string_view key,
                                  std::string_view guest_sha256, std::string_view* host_state);

}  // namespace rlmbox::engine
