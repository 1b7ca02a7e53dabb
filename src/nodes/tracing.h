// Tracing: OpenTelemetry spans for workflows, nodes and sandbox executions,
// exported over OTLP/HTTP (protobuf) when OTEL_EXPORTER_OTLP_ENDPOINT is set
// (the SDK's standard variables apply: OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_
// HEADERS, ...). Without it every call here is a cheap no-op.
//
// A thin wrapper over Debian's opentelemetry-cpp so the rest of rlmbox never
// includes its headers. Thread-safe; a Span is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace rlmbox::nodes {

class Span;
Span StartSpan(std::string_view name);

class Span {
 public:
  Span();  // inactive
  ~Span();
  Span(Span&&) noexcept;
  Span& operator=(Span&&) noexcept;

  // A span whose parent is this one (a root span when this one is inactive).
  Span Child(std::string_view name) const;

  void Set(std::string_view key, std::string_view value);
  void Set(std::string_view key, const char* value) { Set(key, std::string_view(value)); }
  void Set(std::string_view key, int64_t value);
  void Set(std::string_view key, uint64_t value) { Set(key, static_cast<int64_t>(value)); }
  void Set(std::string_view key, int value) { Set(key, static_cast<int64_t>(value)); }
  void Set(std::string_view key, bool value);
  void Set(std::string_view key, double value);
  // Marks the span failed with `message` (status ERROR).
  void Fail(std::string_view message);
  void End();

  bool active() const { return impl_ != nullptr; }

 private:
  friend Span StartSpan(std::string_view name);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Starts exporting when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT)
// is set; `service_name` is used unless OTEL_SERVICE_NAME says otherwise.
// Returns whether tracing is on. Call once, before any span.
bool InitTracingFromEnv(std::string_view service_name);
// Flushes what is buffered and stops exporting (at shutdown).
void ShutdownTracing();
// A new root span (inactive when tracing is off).
Span StartSpan(std::string_view name);

}  // namespace rlmbox::nodes
