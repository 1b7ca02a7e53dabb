// Prefaulting a fresh instance's hot pages.
//
// A new sandbox's memory is a private copy-on-write mapping of the snapshot.
// Python reads an object before it writes it (refcounts), so each page a cell
// touches is first mapped read-only and then copied on the write. Replacing a
// present read-only mapping needs a TLB shootdown: an inter-processor interrupt
// to every core running this process, which in a VM is a trap to the
// hypervisor. Under load that was half of all CPU time (docs/benchmarks.md).
// Writing the pages a first cell is known to touch *before* anything reads
// them copies them without any shootdown. The set is learned once at start-up
// from the probe sandbox (WrittenRanges).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/internals.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace rlmbox::engine {

std::optional<std::vector<std::pair<uint64_t, uint64_t>>> WrittenRanges(const uint8_t* base,
                                                                        uint64_t size) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  const uint64_t first = reinterpret_cast<uintptr_t>(base) / page;
  const uint64_t pages = size / page;
  std::vector<uint64_t> entries(pages);
  const ssize_t want = static_cast<ssize_t>(pages * sizeof(uint64_t));
  const ssize_t got = pread(fd, entries.data(), static_cast<size_t>(want),
                            static_cast<off_t>(first * sizeof(uint64_t)));
  close(fd);
  if (got != want) return std::nullopt;
  constexpr uint64_t kPresent = 1ull << 63;
  constexpr uint64_t kSwapped = 1ull << 62;  // only private (written) pages go to swap
  constexpr uint64_t kFileOrShared = 1ull << 61;
  for (uint64_t i = 0; i < pages; ++i) {
    const bool written =
        ((entries[i] & kPresent) && !(entries[i] & kFileOrShared)) || (entries[i] & kSwapped);
    if (!written) continue;
    if (!ranges.empty() && ranges.back().first + ranges.back().second == i * page) {
      ranges.back().second += page;
    } else {
      ranges.emplace_back(i * page, page);
    }
  }
  return ranges;
}

void PrefaultHotPages(uint8_t* base, uint64_t size,
                      const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  for (const auto& [offset, length] : ranges) {
    if (offset + length > size) continue;
    // Best effort: on kernels without MADV_POPULATE_WRITE (< 5.14) this fails
    // and the pages fault in as before.
    (void)madvise(base + offset, length, MADV_POPULATE_WRITE);
  }
}

}  // namespace rlmbox::engine
