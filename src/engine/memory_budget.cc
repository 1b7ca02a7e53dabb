#include "engine/memory_budget.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <string>

namespace rlmbox::engine {

uint64_t MemoryBudget::Charge(uint64_t* charged, uint64_t want, uint64_t floor) {
  std::lock_guard lock(mu_);
  const uint64_t others = used_ - *charged;
  uint64_t grant = want;
  if (total_ != 0) {
    const uint64_t left = total_ > others ? total_ - others : 0;
    grant = std::min(want, left);
  }
  grant = std::max(grant, floor);
  used_ = others + grant;
  *charged = grant;
  return grant;
}

void MemoryBudget::Release(uint64_t* charged) {
  std::lock_guard lock(mu_);
  used_ -= std::min(used_, *charged);
  *charged = 0;
}

uint64_t MemoryBudget::used() const {
  std::lock_guard lock(mu_);
  return used_;
}

uint64_t MemoryBudget::available() const {
  if (total_ == 0) return std::numeric_limits<uint64_t>::max();
  std::lock_guard lock(mu_);
  return total_ > used_ ? total_ - used_ : 0;
}

namespace {

uint64_t ReadLimit(const char* path) {
  std::ifstream f(path);
  std::string text;
  if (!(f >> text) || text == "max") return 0;
  try {
    return std::stoull(text);
  } catch (...) {
    return 0;
  }
}

}  // namespace

uint64_t DefaultMemoryBudget() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  uint64_t limit = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page)
                                         : (4ull << 30);
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    if (uint64_t cg = ReadLimit(path); cg > 0 && cg < limit) limit = cg;
  }
  return limit / 4 * 3;
}

}  // namespace rlmbox::engine
