// MemoryBudget: one process-wide bound on the linear memory of all sandboxes
// together (RLMBOX_MEMORY_BUDGET_MB).
//
// Every sandbox is charged what it may hold: while idle, its current linear
// memory (a session keeps its heap between cells, so its cumulative heap
// counts); while a cell runs, the cap the store limiter enforces for that
// cell. A cell's cap is what its limits ask for, or less when the budget has
// less left: the engine's limiter then stops the cell at the smaller cap and
// the result names the budget. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>

namespace rlmbox::engine {

class MemoryBudget {
 public:
  // `total` bytes; 0 means no budget (every charge is granted).
  explicit MemoryBudget(uint64_t total) : total_(total) {}

  // Moves a holder's charge from `*charged` towards `want`: all of it when the
  // budget allows, else as much as is left, but never below `floor` (memory
  // the holder already has cannot be refused). Returns the new charge.
  uint64_t Charge(uint64_t* charged, uint64_t want, uint64_t floor);
  // Gives a holder's whole charge back.
  void Release(uint64_t* charged);

  uint64_t total() const { return total_; }
  uint64_t used() const;
  // What is left (unbounded budgets report UINT64_MAX).
  uint64_t available() const;

 private:
  const uint64_t total_;
  mutable std::mutex mu_;
  uint64_t used_ = 0;  // guarded by mu_
};

// The default budget for a process: three quarters of the memory it may use,
// the smaller of its cgroup's limit (v2 memory.max or v1 limit_in_bytes) and
// physical memory.
uint64_t DefaultMemoryBudget();

}  // namespace rlmbox::engine
