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
//   "RLMBXSN1"                          magic and format version
//   u32 meta_len, meta                  JSON: guest SHA-256, wasmtime version,
//                                       memory size, stack pointer, counts
//   u64 host_len, host                  the embedder's own state, opaque here
//   ranges × (u32 offset, u32 length)   page-aligned, ascending, disjoint
//   page bytes                          the ranges' contents, in order
//   HMAC-SHA256(key, everything above)  32 bytes
// The MAC is checked before anything else is read; then the guest build must
// be this engine's. A tampered, truncated or foreign file is refused.
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
  std::string pages;           // their bytes, concatenated in range order
};

// Bytes of a sealed snapshot beyond the pages and the host state.
constexpr size_t kSnapshotOverheadBytes = 8 + 4 + 8 + 32;

// Seals `image` and `host_state` with HMAC-SHA256 under `key`; `guest_sha256`
// binds it to one guest build.
std::string SealSnapshot(const SandboxImage& image, std::string_view host_state,
                         std::string_view key, std::string_view guest_sha256);

// Checks and opens sealed bytes. Errors (kInvalidArgument, the message says
// which): not a snapshot, truncated, not authentic (tampered or made with
// another key), made by another guest build, or inconsistent.
Result<SandboxImage> OpenSnapshot(std::string_view sealed, std::string_view key,
                                  std::string_view guest_sha256, std::string* host_state);

}  // namespace rlmbox::engine
