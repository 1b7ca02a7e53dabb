#include "cli/serve_exec_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "cli/node_config.h"
#include "cli/runtime_paths.h"
#include "cli/stop_signals.h"
#include "engine/engine.h"
#include "executor/executor.h"
#include "http/exec_server.h"
#include "nodes/tracing.h"
#include "service/log.h"
#include "service/session_store.h"

namespace rlmbox::cli {
namespace {

struct ServeExecOptions {
  std::string host;
  int port = -1;
  bool sidecar = false;
  size_t warm = 4;
  size_t workers = 0;
  size_t max_queue = 64;
  std::string guest_dir;
  std::string tools_dir;
  std::string profiles_file;
  std::string tokens_file;
  double memory_budget_mb = 0;
  std::string session_store;
  double hibernate_after = 0;
  std::string snapshot_key_file;
};

// The snapshot key: the file's bytes; without one and with a store, a random
// key kept in STORE/key (0600), made on first use.
Result<std::string> SnapshotKey(const std::string& key_file, const std::string& store_dir) {
  std::string path = key_file;
  if (path.empty() && store_dir.empty()) return std::string();  // the engine picks a random one
  if (path.empty()) {
    path = (std::filesystem::path(store_dir) / "key").string();
    std::filesystem::create_directories(store_dir);
    if (!std::filesystem::exists(path)) {
      std::ifstream random("/dev/urandom", std::ios::binary);
      std::string key(32, '\0');
      random.read(key.data(), static_cast<std::streamsize>(key.size()));
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd >= 0) {
        const bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size());
        ::close(fd);
        if (!ok) return Unavailable("cannot write the snapshot key " + path);
      }
    }
  }
  std::ifstream in(path, std::ios::binary);
  std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return Unavailable("cannot read the snapshot key " + path);
  if (key.size() < 16 || key.size() > 4096) {
    return InvalidArgument("the snapshot key " + path + " must hold 16 to 4096 bytes");
  }
  return key;
}

// Reads a positive number from the environment, or `fallback`.
double EnvNumber(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  double d = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(d > 0)) {
    std::cerr << "rlmbox: ignoring " << name << "=" << v << " (not a positive number)\n";
    return fallback;
  }
  return d;
}

int Serve(const ServeExecOptions& o) {
  if (const char* lvl = std::getenv("LOG_LEVEL")) service::SetLogLevel(service::ParseLogLevel(lvl));

  http::ExecServerOptions so;
  so.port = o.port >= 0 ? o.port : (o.sidecar ? 8080 : 8000);
  so.host = !o.host.empty() ? o.host : "127.0.0.1";
  so.max_sessions = static_cast<size_t>(EnvNumber("MAX_SESSIONS", 100));
  so.session_ttl = std::chrono::milliseconds(static_cast<int64_t>(EnvNumber("SESSION_TTL", 3600) * 1000));
  so.execution_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(EnvNumber("EXECUTION_TIMEOUT", 30) * 1000));
  so.max_body_bytes = static_cast<size_t>(EnvNumber("MAX_REQUEST_BYTES", 64.0 * (1 << 20)));
  so.connections = ConnectionLimitsFromEnv();
  // A sidecar's only client is the container beside it: no per-address cap
  // unless one is set.
  if (o.sidecar && so.connections.max_per_client == http::ConnectionLimits::kAuto) {
    so.connections.max_per_client = 0;
  }
  so.workers = o.workers;
  so.max_queue = o.max_queue;
  if (const char* t = std::getenv("RLMBOX_TOKEN")) so.token = t;
  std::string tokens_file = o.tokens_file;
  if (const char* f = std::getenv("RLMBOX_TOKENS_FILE"); tokens_file.empty() && f) tokens_file = f;
  if (!tokens_file.empty()) {
    auto tenants = service::Tenants::ReadFile(tokens_file);
    if (!tenants.ok()) {
      std::cerr << "rlmbox: " << tenants.status().message() << "\n";
      return 64;
    }
    so.tenants = std::move(*tenants);
  }
  so.max_session_ttl = std::chrono::milliseconds(
      static_cast<int64_t>(EnvNumber("MAX_SESSION_TTL", 86400) * 1000));
  if (const char* a = std::getenv("RLMBOX_ADVERTISE_URL")) so.advertise_url = a;
  auto node_options = NodeOptions(o.profiles_file, o.tools_dir, so.execution_timeout);
  if (!node_options.ok()) {
    std::cerr << "rlmbox: " << node_options.status().message() << "\n";
    return 64;
  }
  so.profiles = node_options->profiles;
  so.ceilings = node_options->ceilings;
  so.tools = std::move(node_options->tools);

  std::string store_dir = o.session_store;
  if (const char* d = std::getenv("RLMBOX_SESSION_STORE"); store_dir.empty() && d) store_dir = d;
  std::string key_file = o.snapshot_key_file;
  if (const char* k = std::getenv("RLMBOX_SNAPSHOT_KEY_FILE"); key_file.empty() && k) key_file = k;
  auto snapshot_key = SnapshotKey(key_file, store_dir);
  if (!snapshot_key.ok()) {
    std::cerr << "rlmbox: " << snapshot_key.status().message() << "\n";
    return 64;
  }
  std::unique_ptr<service::SessionStore> store;
  if (!store_dir.empty()) {
    service::StoreOptions sto;
    sto.dir = store_dir;
    sto.max_items = static_cast<size_t>(EnvNumber("RLMBOX_SESSION_STORE_MAX_ITEMS", 20'000));
    sto.max_bytes = static_cast<uint64_t>(EnvNumber("RLMBOX_SESSION_STORE_MAX_MB", 16 * 1024) * (1 << 20));
    auto opened = service::SessionStore::Open(sto);
    if (!opened.ok()) {
      std::cerr << "rlmbox: " << opened.status().message() << "\n";
      return 64;
    }
    store = std::move(*opened);
    so.store = store.get();
  }
  const double hibernate_s = o.hibernate_after > 0 ? o.hibernate_after
                                                   : EnvNumber("RLMBOX_HIBERNATE_AFTER", 0);
  so.hibernate_after = std::chrono::milliseconds(static_cast<int64_t>(hibernate_s * 1000));

  // Before any thread exists: every thread inherits the blocked stop signals.
  const sigset_t stop_signals = BlockStopSignals();

  engine::EngineOptions eo;
  eo.guest_dir = o.guest_dir.empty() ? DefaultGuestDir() : std::filesystem::path(o.guest_dir);
  eo.module_cache_dir = DefaultModuleCacheDir();
  eo.memory_budget_bytes = MemoryBudgetBytes(o.memory_budget_mb);
  eo.snapshot_key = *snapshot_key;
  eo.max_sandboxes = static_cast<uint32_t>(so.max_sessions + o.warm + 64);
  auto engine = engine::Engine::Create(eo);
  if (!engine.ok()) {
    service::LogEvent(service::LogLevel::kError, "engine_failed",
                      {{"error", engine.status().ToString()}});
    return 70;
  }
  service::LogEvent(service::LogLevel::kInfo, "engine_ready",
                    {{"wasmtime", (*engine)->info().wasmtime_version},
                     {"module_from_cache", (*engine)->info().module_from_cache},
                     {"load_ms", (*engine)->info().load_time.count()},
                     {"hot_bytes", (*engine)->info().hot_bytes}});
  // One refill thread per core: fresh sandboxes are the /execute hot path.
  executor::Executor executor(
      **engine,
      executor::Executor::Options{.warm_sandboxes = o.warm,
                                  .pool_threads = std::max(1u, std::thread::hardware_concurrency())});
  http::ExecServer server(executor, so);
  nodes::InitTracingFromEnv("rlmbox-exec");

  int rc = ServeUntilStopped(stop_signals, [&server] { return server.Run(); },
                             [&server] { server.Stop(); });
  nodes::ShutdownTracing();
  return rc;
}

}  // namespace

void AddServeExecCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ServeExecOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve-exec", "Serve the execution plane over HTTP (/execute, /session, /metrics)");
  cmd->add_option("--host", o->host, "Address to bind (default 127.0.0.1; 0.0.0.0 in containers)");
  cmd->add_option("--port", o->port, "Port (default 8000; 8080 with --sidecar; 0 = any free port)");
  cmd->add_flag("--sidecar", o->sidecar, "Sidecar defaults: port 8080 on localhost");
  cmd->add_option("--warm", o->warm, "Primed sandboxes kept ready")->capture_default_str();
  cmd->add_option("--workers", o->workers, "Executions at once (default: one per core)");
  cmd->add_option("--max-queue", o->max_queue, "Executions waiting for a worker before 429")
      ->capture_default_str();
  cmd->add_option("--guest-dir", o->guest_dir, "Directory holding guest.wasm and lib/");
  cmd->add_option("--tools-dir", o->tools_dir,
                  "Directory of tool sources for tool nodes (NAME.py defining execute(**kwargs))");
  cmd->add_option("--profiles", o->profiles_file,
                  "Profile config file (JSON or YAML; docs/nodes.md)");
  cmd->add_option("--memory-budget-mb", o->memory_budget_mb,
                  "Linear memory all sandboxes together may hold (default: RLMBOX_MEMORY_BUDGET_MB, "
                  "else 3/4 of the cgroup limit or physical memory)");
  cmd->add_option("--tokens-file", o->tokens_file,
                  "Tenants: one `TENANT TOKEN` pair per line (docs/security.md)");
  cmd->add_option("--session-store", o->session_store,
                  "Directory for snapshots and hibernated sessions; sessions are saved there on "
                  "SIGTERM and resumed on restart (default: RLMBOX_SESSION_STORE; none: in memory)");
  cmd->add_option("--hibernate-after", o->hibernate_after,
                  "Seconds idle before a session is saved to the store and leaves memory "
                  "(default: RLMBOX_HIBERNATE_AFTER, else only when MAX_SESSIONS are live)");
  cmd->add_option("--snapshot-key-file", o->snapshot_key_file,
                  "Key that authenticates snapshots (16+ bytes; default: RLMBOX_SNAPSHOT_KEY_FILE, "
                  "else STORE/key, made on first use)");
  cmd->footer(
      "Environment: MAX_SESSIONS (100), SESSION_TTL seconds (3600), EXECUTION_TIMEOUT seconds\n"
      "(30), MAX_REQUEST_BYTES (64 MiB), RLMBOX_TOKEN (bearer token; unset = no auth),\n"
      "RLMBOX_TOKENS_FILE (as --tokens-file), MAX_SESSION_TTL seconds (86400),\n"
      "RLMBOX_MEMORY_BUDGET_MB (as --memory-budget-mb),\n"
      "RLMBOX_TOOLS_DIR, RLMBOX_PROFILES (as the options), OTEL_EXPORTER_OTLP_ENDPOINT\n"
      "(export traces over OTLP/HTTP), RLMBOX_ADVERTISE_URL (this instance's own URL,\n"
      "returned with new sessions so they stick to it behind a load balancer),\n"
      "RLMBOX_SESSION_STORE, RLMBOX_HIBERNATE_AFTER, RLMBOX_SNAPSHOT_KEY_FILE (as the\n"
      "options), RLMBOX_SESSION_STORE_MAX_ITEMS (20000), RLMBOX_SESSION_STORE_MAX_MB (16384),\n"
      "LOG_LEVEL (info).");
  cmd->callback([o, exit_code] { *exit_code = Serve(*o); });
}

}  // namespace rlmbox::cli
