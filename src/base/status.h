// Status and Result<T>: how host-side failures travel in rlmbox.
//
// What the *guest* did (an exception, a timeout, ...) is never a Status: it is
// an ExecutionResult with an Outcome. A Status says the host could not do what
// was asked: bad input, overload, or a fault of ours. Values are immutable and
// safe to copy between threads.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace rlmbox {

enum class StatusCode {
  kOk,
  kInvalidArgument,    // the caller's request is wrong (bad JSON, empty code, ...)
  kNotFound,           // a named thing (session, variable) does not exist
  kResourceExhausted,  // a capacity limit: pool full, too many sessions, too large
  kUnavailable,        // not ready yet, or shutting down; retry later
  kFailedPrecondition, // the request is valid but the state forbids it
  kInternal,           // our own fault; never the caller's
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status ResourceExhausted(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                     // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}              // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  // The value, or `fallback` when this holds an error.
  T value_or(T fallback) && { return ok() ? std::get<T>(std::move(v_)) : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace rlmbox

#define RLMBOX_CONCAT_INNER(a, b) a##b
#define RLMBOX_CONCAT(a, b) RLMBOX_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)                 \
  do {                                        \
    ::rlmbox::Status rlmbox_status_ = (expr); \
    if (!rlmbox_status_.ok()) return rlmbox_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` binds the value or returns the Status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(RLMBOX_CONCAT(rlmbox_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
