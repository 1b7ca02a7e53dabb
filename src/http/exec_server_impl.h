// ExecServer::Impl: the execution plane's server state, shared by the
// route files (exec_server.cc, session_routes.cc). Private to src/http.
#pragma once

#include <httplib.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/exec_server.h"
#include "http/http_status.h"
#include "nodes/workflow.h"
#include "service/execution_gate.h"
#include "service/host_call_bridge.h"
#include "service/metrics.h"
#include "service/profiles.h"
#include "service/session_manager.h"

namespace rlmbox::http {

using nlohmann::json;

inline constexpr const char* kJson = "application/json";
inline constexpr const char* kNdjson = "application/x-ndjson";

inline std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Parses a JSON body; an empty body is `{}` when `empty_ok`.
Result<json> ParseBody(std::string_view body, bool empty_ok);
inline Result<json> ParseBody(const httplib::Request& req, bool empty_ok) {
  return ParseBody(req.body, empty_ok);
}

// The body of a route registered with a content reader (the ones that carry a
// big `context`), read into one buffer sized from Content-Length (at most
// `max_bytes`, the server's payload limit, which the reader enforces too):
// cpp-httplib's own body grows by doubling, copying and faulting in ~3x the
// bytes of a 40 MB body.
// Nothing when the body could not be read whole: longer than `max_bytes` (the
// caller answers 413) or the connection failed.
std::optional<std::string> ReadBody(const httplib::Request& req,
                                    const httplib::ContentReader& reader, size_t max_bytes);

struct ExecServer::Impl {
  Impl(executor::Executor& ex, ExecServerOptions o)
      : executor(ex),
        options(std::move(o)),
        tenants(options.tenants.auth_required() ? options.tenants
                                                : service::Tenants::Single(options.token)),
        profiles(options.profiles.empty() ? service::BuiltinProfiles(options.execution_timeout)
                                          : options.profiles),
        sessions(ex, service::SessionManagerOptions{.max_sessions = options.max_sessions,
                                                    .default_ttl = options.session_ttl,
                                                    .store = options.store,
                                                    .hibernate_after = options.hibernate_after}),
        gate(options.workers ? options.workers
                             : std::max<size_t>(1, std::thread::hardware_concurrency()),
             options.max_queue),
        node_runner(ex, {profiles, options.ceilings, options.tools}),
        workflows(node_runner, {options.workflow_parallelism, "", 8, 1'000}) {}

  void Reply(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(Dump(body), kJson);
  }

  void ReplyError(httplib::Response& res, const Status& s) {
    const std::string code(StatusCodeName(s.code()));
    metrics.ObserveHostError(code);
    Reply(res, HttpStatusFor(s), json{{"error", s.message()}, {"code", code}});
  }

  // The caller's tenant: "" when auth is off; the pre-routing handler has
  // already refused requests without a known token.
  std::string TenantOf(const httplib::Request& req) const {
    if (!tenants.auth_required()) return "";
    const std::string auth = req.get_header_value("Authorization");
    constexpr std::string_view kPrefix = "Bearer ";
    if (auth.rfind(kPrefix, 0) != 0) return "";
    return tenants.Find(std::string_view(auth).substr(kPrefix.size())).value_or("");
  }

  Result<std::shared_ptr<service::SessionEntry>> SessionFor(const httplib::Request& req) {
    ASSIGN_OR_RETURN(auto entry, sessions.Get(req.matches[1].str(), TenantOf(req)));
    if (!entry->fields_known.load()) {
      // Found in the store: its profile and limits are in its saved state.
      service::SessionUse use(entry);
      std::lock_guard turn(entry->turn);
      RETURN_IF_ERROR(sessions.Wake(*entry));
    }
    return entry;
  }

  // A session's turn and a worker slot, in that order, for one entry into its
  // guest (a request waiting for the session's turn holds no slot).
  struct Turn {
    std::unique_lock<std::mutex> session;
    std::optional<service::GateSlot> slot;
  };
  Result<std::shared_ptr<Turn>> TakeTurn(service::SessionEntry& entry) {
    auto t = std::make_shared<Turn>();
    t->session = std::unique_lock(entry.turn);
    // A hibernated session wakes on its turn, before it takes a worker slot.
    if (Status s = sessions.Wake(entry); !s.ok()) return s;
    if (Status s = gate.Acquire(); !s.ok()) return s;
    t->slot.emplace(gate);
    return t;
  }

  void Routes();
  // POST /session/{id}/snapshot, POST /session/{id}/fork, DELETE /snapshots/{id}
  // (session_routes.cc); POST /session with "from_snapshot" comes here too.
  void SnapshotRoutes();
  void CreateFromSnapshot(const json& body, std::chrono::milliseconds ttl,
                          const httplib::Request& req, httplib::Response& res);
  json NewSessionReply(const std::string& id) const {
    json reply = {{"session_id", id}};
    if (!options.advertise_url.empty()) reply["endpoint"] = options.advertise_url;
    return reply;
  }
  void Execute(const httplib::Request& req, httplib::Response& res);
  void CreateSession(const httplib::Request& req, std::string_view body, httplib::Response& res);
  void ReplyTooLarge(httplib::Response& res);
  void SessionExecute(const httplib::Request& req, httplib::Response& res);
  void StreamSessionExecute(std::shared_ptr<service::SessionEntry> entry, std::string code,
                            std::optional<engine::ContextValue> context, engine::Limits limits,
                            httplib::Response& res);
  void PutContext(const httplib::Request& req, std::string body, httplib::Response& res);
  // POST /nodes/execute and POST /workflows/run (plain JSON or NDJSON stream).
  void RunNodes(const httplib::Request& req, httplib::Response& res, bool workflow);

  executor::Executor& executor;
  ExecServerOptions options;
  service::Tenants tenants;
  std::vector<service::Profile> profiles;
  service::SessionManager sessions;
  service::ExecutionGate gate;
  service::CallRegistry calls;
  service::Metrics metrics;
  httplib::Server server;
  std::atomic<int> bound_port{0};
  nodes::NodeRunner node_runner;
  nodes::WorkflowRunner workflows;
};

}  // namespace rlmbox::http
