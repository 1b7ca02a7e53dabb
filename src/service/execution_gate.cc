#include "service/execution_gate.h"

namespace rlmbox::service {

ExecutionGate::ExecutionGate(size_t workers, size_t max_queue)
    : workers_(workers == 0 ? 1 : workers), max_queue_(max_queue) {}

Status ExecutionGate::Acquire() {
  std::unique_lock lock(mu_);
  if (running_ < workers_ && waiting_ == 0) {
    ++running_;
    return Status::Ok();
  }
  if (waiting_ >= max_queue_) {
    return ResourceExhausted("the execution service is at capacity (" +
                             std::to_string(workers_) + " running, " +
                             std::to_string(waiting_) + " queued); retry shortly");
  }
  ++waiting_;
  cv_.wait(lock, [this] { return running_ < workers_; });
  --waiting_;
  ++running_;
  return Status::Ok();
}

void ExecutionGate::AcquireResume() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return running_ < workers_; });
  ++running_;
}

void ExecutionGate::Release() {
  {
    std::lock_guard lock(mu_);
    --running_;
  }
  cv_.notify_one();
}

size_t ExecutionGate::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

size_t ExecutionGate::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_;
}

}  // namespace rlmbox::service
