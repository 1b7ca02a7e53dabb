// ExecutionGate: bounds how many executions run at once (`workers`, sized to
// the machine) and how many may wait for a turn (`max_queue`); beyond that a
// request is refused at once (429) rather than queued without bound.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>

#include "base/status.h"

namespace rlmbox::service {

class ExecutionGate {
 public:
  ExecutionGate(size_t workers, size_t max_queue);

  // Takes a slot, waiting in the queue if needed. Errors: kResourceExhausted
  // when the queue is full.
  Status Acquire();
  // Takes a slot, waiting however long (used to resume after a host call, so
  // an execution already under way is never refused).
  void AcquireResume();
  void Release();

  size_t running() const;
  size_t waiting() const;

 private:
  const size_t workers_;
  const size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t running_ = 0;  // guarded by mu_
  size_t waiting_ = 0;  // guarded by mu_
};

// Holds one slot for its lifetime.
class GateSlot {
 public:
  explicit GateSlot(ExecutionGate& gate) : gate_(&gate) {}
  ~GateSlot() {
    if (gate_) gate_->Release();
  }
  GateSlot(const GateSlot&) = delete;
  GateSlot& operator=(const GateSlot&) = delete;

 private:
  ExecutionGate* gate_;
};

}  // namespace rlmbox::service
