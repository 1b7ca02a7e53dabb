// ExecServer: `rlmbox serve-exec`, the execution plane's HTTP API (design §5.1,
// §5.3): /health, /ready, /metrics, /execute, /session..., streamed host calls.
//
// Only this layer includes cpp-httplib. Run() blocks serving until Stop()
// (safe from any thread, e.g. a signal-waiting thread); in-flight requests
// finish (or hit their deadline) before Run() returns.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "base/status.h"
#include "engine/limits.h"
#include "executor/executor.h"
#include "http/conn_guard.h"
#include "nodes/node_runner.h"
#include "service/profiles.h"
#include "service/session_store.h"
#include "service/tenants.h"

namespace rlmbox::http {

struct ExecServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;
  size_t max_sessions = 100;
  std::chrono::milliseconds session_ttl{3'600'000};
  std::chrono::milliseconds execution_timeout{30'000};
  std::string token;                         // empty: no auth (unless `tenants`)
  // Tenants and their tokens (RLMBOX_TOKENS_FILE); when set, `token` is unused.
  service::Tenants tenants;
  // The longest `ttl` a caller may ask for a session.
  std::chrono::milliseconds max_session_ttl{86'400'000};
  // This instance's own address (RLMBOX_ADVERTISE_URL, e.g. http://<pod IP>:8000),
  // returned with each new session so its later requests reach this instance
  // even behind a load balancer. Empty: not returned.
  std::string advertise_url;
  size_t max_body_bytes = 64ull << 20;       // 413 above this
  size_t workers = 0;                        // 0: one per core
  size_t max_queue = 64;                     // waiting executions before 429
  size_t http_threads = 64;                  // connections served at once
  ConnectionLimits connections;              // what a slow or idle client may cost
  engine::LimitCeilings ceilings;
  // Profiles (empty: the built-in ones) and the tools of `tool` nodes.
  std::vector<service::Profile> profiles;
  nodes::ToolRegistry tools;
  size_t workflow_parallelism = 2;  // nodes of one workflow run at once
  // Snapshots and hibernated sessions (service/session_store.h); null: in
  // memory, no hibernation. Not owned.
  service::SessionStore* store = nullptr;
  std::chrono::milliseconds hibernate_after{0};  // idle time before hibernating; 0: never
};

class ExecServer {
 public:
  ExecServer(executor::Executor& executor, ExecServerOptions options);
  ~ExecServer();

  // Binds and serves until Stop(). Errors: kUnavailable if the port cannot be bound.
  Status Run();
  void Stop();
  // The bound port (after Run() started listening), for tests using port 0.
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rlmbox::http
