// Session snapshots and forks (docs/api.md):
//   POST   /session/{id}/snapshot   {}            → {"snapshot_id", "bytes"}
//   POST   /session                 {"from_snapshot": ID[, "ttl"]} → {"session_id"}
//   POST   /session/{id}/fork       {"count": N}  → {"session_ids": [...]}
//   DELETE /snapshots/{id}
// A snapshot or fork of a session whose cell is running is a 409.
#include "http/exec_server_impl.h"
#include "service/log.h"

namespace rlmbox::http {

void ExecServer::Impl::CreateFromSnapshot(const json& body, std::chrono::milliseconds ttl,
                                          const httplib::Request& req, httplib::Response& res) {
  if (!body["from_snapshot"].is_string()) {
    return ReplyError(res, InvalidArgument("from_snapshot must be a snapshot id (a string)"));
  }
  if (body.contains("context") && !body["context"].is_null()) {
    return ReplyError(res, InvalidArgument("a session from a snapshot keeps the snapshot's "
                                           "context; PUT /session/{id}/context to change it"));
  }
  auto entry = sessions.CreateFromSnapshot(body["from_snapshot"].get<std::string>(), ttl,
                                           TenantOf(req));
  if (!entry.ok()) return ReplyError(res, entry.status());
  service::LogEvent(service::LogLevel::kInfo, "session_restored",
                    {{"session_id", (*entry)->id},
                     {"snapshot_id", body["from_snapshot"].get<std::string>()}});
  Reply(res, 200, NewSessionReply((*entry)->id));
}

void ExecServer::Impl::SnapshotRoutes() {
  server.Post(R"(/session/([^/]+)/snapshot)", [this](const httplib::Request& req,
                                                    httplib::Response& res) {
    const auto t0 = std::chrono::steady_clock::now();
    auto info = sessions.Snapshot(req.matches[1].str(), TenantOf(req));
    if (!info.ok()) return ReplyError(res, info.status());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    service::LogEvent(service::LogLevel::kInfo, "session_snapshot",
                      {{"session_id", req.matches[1].str()},
                       {"snapshot_id", info->snapshot_id},
                       {"bytes", info->bytes},
                       {"ms", ms}});
    Reply(res, 200, json{{"snapshot_id", info->snapshot_id}, {"bytes", info->bytes}});
  });
  server.Post(R"(/session/([^/]+)/fork)", [this](const httplib::Request& req,
                                                httplib::Response& res) {
    auto body = ParseBody(req, true);
    if (!body.ok()) return ReplyError(res, body.status());
    size_t count = 1;
    if (body->contains("count")) {
      const json& c = (*body)["count"];
      if (!c.is_number_unsigned() || c.get<uint64_t>() > 1'000'000) {
        return ReplyError(res, InvalidArgument("count must be a positive integer"));
      }
      count = c.get<size_t>();
    }
    auto children = sessions.Fork(req.matches[1].str(), count, TenantOf(req));
    if (!children.ok()) return ReplyError(res, children.status());
    json ids = json::array();
    for (const auto& c : *children) ids.push_back(c->id);
    service::LogEvent(service::LogLevel::kInfo, "session_forked",
                      {{"session_id", req.matches[1].str()}, {"children", ids}});
    json reply = {{"session_ids", ids}};
    if (!options.advertise_url.empty()) reply["endpoint"] = options.advertise_url;
    Reply(res, 200, reply);
  });
  server.Delete(R"(/snapshots/([^/]+))", [this](const httplib::Request& req,
                                               httplib::Response& res) {
    Status s = sessions.DeleteSnapshot(req.matches[1].str(), TenantOf(req));
    if (!s.ok()) return ReplyError(res, s);
    Reply(res, 200, json{{"status", "ok"}});
  });
}

}  // namespace rlmbox::http
