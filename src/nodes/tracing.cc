#include "nodes/tracing.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>

#include <opentelemetry/exporters/otlp/otlp_http_exporter_factory.h>
#include <opentelemetry/exporters/otlp/otlp_http_exporter_options.h>
#include <opentelemetry/sdk/resource/resource.h>
#include <opentelemetry/sdk/trace/batch_span_processor_factory.h>
#include <opentelemetry/sdk/trace/batch_span_processor_options.h>
#include <opentelemetry/sdk/trace/tracer_provider.h>
#include <opentelemetry/sdk/trace/tracer_provider_factory.h>
#include <opentelemetry/trace/tracer.h>

namespace rlmbox::nodes {
namespace {

namespace otel = opentelemetry;
namespace sdktrace = opentelemetry::sdk::trace;

struct Global {
  std::atomic<bool> on{false};  // read first: no lock on the hot path when off
  std::mutex mu;
  std::shared_ptr<sdktrace::TracerProvider> provider;
  otel::nostd::shared_ptr<otel::trace::Tracer> tracer;
};

Global& G() {
  static Global* g = new Global;  // outlives every static that might trace
  return *g;
}

otel::nostd::shared_ptr<otel::trace::Tracer> Tracer() {
  if (!G().on.load(std::memory_order_acquire)) return {};
  std::lock_guard lock(G().mu);
  return G().tracer;
}

otel::nostd::string_view View(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

struct Span::Impl {
  otel::nostd::shared_ptr<otel::trace::Tracer> tracer;
  otel::nostd::shared_ptr<otel::trace::Span> span;
  bool ended = false;
};

Span::Span() = default;
Span::~Span() { End(); }
Span::Span(Span&&) noexcept = default;
Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    End();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

Span Span::Child(std::string_view name) const {
  if (!impl_) return StartSpan(name);
  otel::trace::StartSpanOptions options;
  options.parent = impl_->span->GetContext();
  Span child;
  child.impl_ = std::make_unique<Impl>();
  child.impl_->tracer = impl_->tracer;
  child.impl_->span = impl_->tracer->StartSpan(View(name), {}, options);
  return child;
}

void Span::Set(std::string_view key, std::string_view value) {
  if (impl_) impl_->span->SetAttribute(View(key), View(value));
}
void Span::Set(std::string_view key, int64_t value) {
  if (impl_) impl_->span->SetAttribute(View(key), value);
}
void Span::Set(std::string_view key, bool value) {
  if (impl_) impl_->span->SetAttribute(View(key), value);
}
void Span::Set(std::string_view key, double value) {
  if (impl_) impl_->span->SetAttribute(View(key), value);
}
void Span::Fail(std::string_view message) {
  if (impl_) impl_->span->SetStatus(otel::trace::StatusCode::kError, View(message));
}
void Span::End() {
  if (impl_ && !impl_->ended) {
    impl_->span->End();
    impl_->ended = true;
  }
}

bool InitTracingFromEnv(std::string_view service_name) {
  const char* endpoint = std::getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
  const char* traces = std::getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  if ((endpoint == nullptr || *endpoint == '\0') && (traces == nullptr || *traces == '\0')) {
    return false;
  }
  // The options read the OTEL_EXPORTER_OTLP_* variables themselves.
  otel::exporter::otlp::OtlpHttpExporterOptions exporter_options;
  auto exporter = otel::exporter::otlp::OtlpHttpExporterFactory::Create(exporter_options);
  sdktrace::BatchSpanProcessorOptions batch;
  batch.schedule_delay_millis = std::chrono::milliseconds(200);
  auto processor = sdktrace::BatchSpanProcessorFactory::Create(std::move(exporter), batch);
  // Resource::Create adds OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES on top.
  auto resource = otel::sdk::resource::Resource::Create(
      {{"service.name", std::string(service_name)}});
  std::shared_ptr<sdktrace::TracerProvider> provider =
      sdktrace::TracerProviderFactory::Create(std::move(processor), resource);
  std::lock_guard lock(G().mu);
  G().provider = provider;
  G().tracer = provider->GetTracer("rlmbox", "0.1.0");
  G().on.store(true, std::memory_order_release);
  return true;
}

void ShutdownTracing() {
  std::shared_ptr<sdktrace::TracerProvider> provider;
  {
    std::lock_guard lock(G().mu);
    G().on.store(false, std::memory_order_release);
    provider = std::move(G().provider);
    G().tracer = nullptr;
  }
  if (provider) {
    provider->ForceFlush();
    provider->Shutdown();
  }
}

Span StartSpan(std::string_view name) {
  auto tracer = Tracer();
  Span span;
  if (!tracer) return span;
  span.impl_ = std::make_unique<Span::Impl>();
  span.impl_->tracer = tracer;
  span.impl_->span = tracer->StartSpan(View(name));
  return span;
}

}  // namespace rlmbox::nodes
