// rlmbox._native: the executor in-process, for the `rlmbox` Python package.
//
// A thin layer over executor/ (never over http/): one Engine and Executor per
// process, created on first use; Sandbox runs (a fresh sandbox per call) and
// Sessions. The package's Python code (clients/python/rlmbox/_inprocess.py)
// holds the API users see; this module only moves data across.
//
// Threads and the GIL: every guest entry runs with the GIL released, so
// Python threads run sandboxes in parallel. A host call (llm_query, a tool)
// takes the GIL back to run the package's dispatcher, which answers it within
// the execution's deadline. Values cross as JSON text, parsed with bounds on
// this side.
//
// Shutdown: shutdown() (registered with atexit by the package) closes live
// sessions and destroys the engine with the GIL released; later calls raise.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/bounded_json.h"
#include "engine/door_protocol.h"
#include "engine/engine.h"
#include "engine/sandbox.h"
#include "executor/executor.h"
#include "service/profiles.h"

namespace py = pybind11;

namespace rlmbox::python {
namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  std::string guest_dir;
  std::string module_cache_dir;
  size_t warm_sandboxes = 2;
  uint32_t max_sandboxes = 256;
  uint64_t memory_budget_bytes = 0;
  bool quiet = false;
};

// The process's engine and what the limits are resolved against.
struct Runtime {
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<executor::Executor> executor;
  std::vector<service::Profile> profiles;
  engine::LimitCeilings ceilings;
};

class NativeSession;

// Process-wide state; guarded by g_mu, which is never taken with the GIL held
// while another thread might wait for the GIL under it.
std::mutex g_mu;
Config g_config;                         // guarded by g_mu
std::shared_ptr<Runtime> g_runtime;      // guarded by g_mu
bool g_shut_down = false;                // guarded by g_mu
std::set<NativeSession*> g_sessions;     // guarded by g_mu

[[noreturn]] void Raise(const Status& s) {
  if (s.code() == StatusCode::kInvalidArgument) throw py::value_error(s.message());
  if (s.code() == StatusCode::kResourceExhausted) {
    PyErr_SetString(PyExc_RuntimeError, ("rlmbox: resource exhausted: " + s.message()).c_str());
    throw py::error_already_set();
  }
  throw std::runtime_error("rlmbox: " + s.ToString());
}

// The runtime, created on first use. Call without the GIL.
Result<std::shared_ptr<Runtime>> GetRuntime() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_shut_down) return FailedPrecondition("rlmbox has been shut down (interpreter exit)");
  if (g_runtime) return g_runtime;
  engine::EngineOptions eo;
  eo.guest_dir = g_config.guest_dir;
  eo.module_cache_dir = g_config.module_cache_dir;
  eo.max_sandboxes = g_config.max_sandboxes;
  eo.memory_budget_bytes = g_config.memory_budget_bytes;
  if (!g_config.quiet) {
    eo.on_compile = [](const std::filesystem::path& dir) {
      std::fprintf(stderr,
                   "rlmbox: compiling the sandbox for this machine, once (~10 s on 2 cores); "
                   "cached in %s\n",
                   dir.c_str());
    };
  }
  auto engine = engine::Engine::Create(eo);
  if (!engine.ok()) return engine.status();
  auto rt = std::make_shared<Runtime>();
  rt->engine = std::move(*engine);
  rt->executor = std::make_unique<executor::Executor>(
      *rt->engine, executor::Executor::Options{.warm_sandboxes = g_config.warm_sandboxes,
                                               .pool_threads = 1});
  rt->profiles = service::BuiltinProfiles(std::chrono::milliseconds(30'000));
  g_runtime = rt;
  return rt;
}

std::shared_ptr<Runtime> RuntimeOrRaise() {
  Result<std::shared_ptr<Runtime>> rt = [] {
    py::gil_scoped_release nogil;
    return GetRuntime();
  }();
  if (!rt.ok()) Raise(rt.status());
  return *rt;
}

// Answers the guest's host calls through the package's dispatcher:
// dispatch(kind: str, args_json: str, seconds_left: float) -> reply_json: str,
// where the reply is {"result": ...} or {"error": "..."}.
class PyHandler final : public engine::HostCallHandler {
 public:
  explicit PyHandler(py::object dispatch) : dispatch_(std::move(dispatch)) {}
  bool attached() const { return !dispatch_.is_none(); }

  engine::HostCallReply Handle(const engine::HostCall& call) override {
    const double left = std::chrono::duration<double>(call.deadline - Clock::now()).count();
    const std::string args =
        call.args.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::string reply;
    {
      py::gil_scoped_acquire gil;
      try {
        py::object r = dispatch_(engine::HostCallKindName(call.kind), args, left);
        reply = r.cast<std::string>();
      } catch (py::error_already_set& e) {
        return engine::HostCallError{std::string("host callback failed: ") + e.what()};
      } catch (const std::exception& e) {
        return engine::HostCallError{std::string("host callback failed: ") + e.what()};
      }
    }
    auto j = ParseBoundedJson(reply, kGuestJsonLimits, "the callback's reply");
    if (!j.ok()) return engine::HostCallError{j.status().message()};
    if (!j->is_object()) return engine::HostCallError{"the callback's reply is not an object"};
    if (auto it = j->find("error"); it != j->end()) {
      return engine::HostCallError{it->is_string() ? it->get<std::string>() : it->dump()};
    }
    if (auto it = j->find("result"); it != j->end()) return std::move(*it);
    return nlohmann::json(nullptr);
  }

 private:
  py::object dispatch_;
};

std::string ResultText(const engine::ExecutionResult& r) {
  return r.ToJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// `vars_json`: None, or a JSON object whose keys become variables before the
// cell runs (engine::CellOptions::vars).
engine::CellOptions MakeCell(std::vector<std::string> tools,
                             std::optional<std::vector<std::string>> allowed_imports,
                             const py::object& vars_json) {
  if (std::string err = engine::ValidateToolNames(tools); !err.empty()) {
    throw py::value_error(err);
  }
  engine::CellOptions cell;
  cell.tools = std::move(tools);
  cell.allowed_imports = std::move(allowed_imports);
  if (!vars_json.is_none()) {
    auto vars = ParseBoundedJson(vars_json.cast<std::string>(), kRequestJsonLimits, "variables");
    if (!vars.ok()) throw py::value_error(vars.status().message());
    if (!vars->is_object()) throw py::value_error("variables must be a dict");
    cell.vars = std::move(*vars);
  }
  return cell;
}

std::optional<engine::ContextValue> MakeContext(const py::object& text, bool is_json) {
  if (text.is_none()) return std::nullopt;
  return engine::ContextValue{is_json ? engine::ContextValue::Kind::kJson
                                      : engine::ContextValue::Kind::kText,
                              text.cast<std::string>()};
}

// Limits resolved once per Sandbox/Session: a profile, then the keyword
// arguments on top, bounded by the same ceilings as the HTTP API.
struct NativeLimits {
  engine::Limits limits;
};

NativeLimits ResolveLimits(const std::string& request_json) {
  std::shared_ptr<Runtime> rt = RuntimeOrRaise();
  auto body = ParseBoundedJson(request_json, kRequestJsonLimits, "the limits");
  if (!body.ok()) Raise(body.status());
  auto limits = service::ResolveLimits(*body, rt->profiles, rt->ceilings);
  if (!limits.ok()) Raise(limits.status());
  return NativeLimits{*limits};
}

py::str Execute(const std::string& code, const py::object& context, bool context_json,
                const NativeLimits& limits, py::object dispatch, std::vector<std::string> tools,
                std::optional<std::vector<std::string>> allowed_imports,
                const py::object& vars_json) {
  std::shared_ptr<Runtime> rt = RuntimeOrRaise();
  executor::ExecuteRequest req;
  req.code = code;
  req.context = MakeContext(context, context_json);
  req.limits = limits.limits;
  req.cell = MakeCell(std::move(tools), std::move(allowed_imports), vars_json);
  PyHandler handler(std::move(dispatch));
  req.handler = handler.attached() ? &handler : nullptr;
  Result<engine::ExecutionResult> r = [&] {
    py::gil_scoped_release nogil;
    return rt->executor->Execute(req);
  }();
  if (!r.ok()) Raise(r.status());
  return py::str(ResultText(*r));
}

// A session: one sandbox whose namespace persists. Calls are serialized by
// mu_; close() waits for a running call.
class NativeSession {
 public:
  // `fuel`: on the fuel-metered engine variant (cells with fuel budgets).
  explicit NativeSession(bool fuel) {
    std::shared_ptr<Runtime> rt = RuntimeOrRaise();
    Result<std::unique_ptr<executor::Session>> s = [&] {
      py::gil_scoped_release nogil;
      return rt->executor->CreateSession(fuel);
    }();
    if (!s.ok()) Raise(s.status());
    runtime_ = std::move(rt);
    session_ = std::move(*s);
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(g_mu);
    g_sessions.insert(this);
  }

  // A session restored from sealed bytes (Snapshot) of this process's engine.
  static std::unique_ptr<NativeSession> Restore(const py::bytes& sealed) {
    std::shared_ptr<Runtime> rt = RuntimeOrRaise();
    std::string bytes = sealed;
    Result<std::unique_ptr<executor::Session>> s = [&] {
      py::gil_scoped_release nogil;
      return rt->executor->RestoreSession(bytes, nullptr);
    }();
    if (!s.ok()) Raise(s.status());
    return std::unique_ptr<NativeSession>(new NativeSession(std::move(rt), std::move(*s)));
  }

  // The session's state between cells, sealed (engine/snapshot.h).
  py::bytes Snapshot() {
    Result<std::string> r = [&]() -> Result<std::string> {
      py::gil_scoped_release nogil;
      std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
      if (!lock.owns_lock()) {
        return FailedPrecondition("the session is running a cell; a snapshot is taken between cells");
      }
      if (!session_) return FailedPrecondition("the session is closed");
      return session_->Snapshot("");
    }();
    if (!r.ok()) Raise(r.status());
    return py::bytes(*r);
  }

  // `count` independent copies, each with its own randomness.
  py::list Fork(size_t count) {
    if (count < 1 || count > 1024) throw py::value_error("n must be in [1, 1024]");
    std::shared_ptr<Runtime> rt;
    Result<std::vector<std::unique_ptr<executor::Session>>> r =
        [&]() -> Result<std::vector<std::unique_ptr<executor::Session>>> {
      py::gil_scoped_release nogil;
      std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
      if (!lock.owns_lock()) {
        return FailedPrecondition("the session is running a cell; fork it between cells");
      }
      if (!session_) return FailedPrecondition("the session is closed");
      rt = runtime_;
      return session_->Fork(count);
    }();
    if (!r.ok()) Raise(r.status());
    py::list out;
    for (auto& child : *r) {
      out.append(py::cast(new NativeSession(rt, std::move(child)),
                          py::return_value_policy::take_ownership));
    }
    return out;
  }

  ~NativeSession() {
    py::gil_scoped_release nogil;
    Close();
    std::lock_guard<std::mutex> lock(g_mu);
    g_sessions.erase(this);
  }

  py::str Execute(const std::string& code, const NativeLimits& limits, py::object dispatch,
                  std::vector<std::string> tools,
                  std::optional<std::vector<std::string>> allowed_imports,
                  const py::object& vars_json) {
    engine::CellOptions cell = MakeCell(std::move(tools), std::move(allowed_imports), vars_json);
    PyHandler handler(std::move(dispatch));
    Result<engine::ExecutionResult> r = [&]() -> Result<engine::ExecutionResult> {
      py::gil_scoped_release nogil;
      std::lock_guard<std::mutex> lock(mu_);
      if (!session_) return FailedPrecondition("the session is closed");
      return session_->Execute(code, limits.limits, handler.attached() ? &handler : nullptr,
                               cell);
    }();
    if (!r.ok()) Raise(r.status());
    return py::str(ResultText(*r));
  }

  void SetContext(const py::object& text, bool is_json, const NativeLimits& limits) {
    std::optional<engine::ContextValue> value = MakeContext(text, is_json);
    if (!value) throw py::value_error("context must not be None");
    Status s = [&] {
      py::gil_scoped_release nogil;
      std::lock_guard<std::mutex> lock(mu_);
      if (!session_) return FailedPrecondition("the session is closed");
      return session_->SetContext(std::move(*value), limits.limits);
    }();
    if (!s.ok()) Raise(s);
  }

  // The variable as JSON text {"value", "text", "type"}; None when undefined.
  py::object GetVar(const std::string& name, const NativeLimits& limits) {
    Result<nlohmann::json> v = [&]() -> Result<nlohmann::json> {
      py::gil_scoped_release nogil;
      std::lock_guard<std::mutex> lock(mu_);
      if (!session_) return FailedPrecondition("the session is closed");
      return session_->GetVar(name, limits.limits);
    }();
    if (!v.ok()) {
      if (v.status().code() == StatusCode::kNotFound) return py::none();
      Raise(v.status());
    }
    return py::str(v->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  uint64_t MemoryBytes() {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(mu_);
    return session_ ? session_->memory_bytes() : 0;
  }

  bool closed() {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(mu_);
    return !session_;
  }

  // Call without the GIL.
  void Close() {
    std::unique_ptr<executor::Session> s;
    std::shared_ptr<Runtime> rt;
    {
      std::lock_guard<std::mutex> lock(mu_);
      s = std::move(session_);
      rt = std::move(runtime_);
    }
    s.reset();  // before the runtime it came from
  }

 private:
  NativeSession(std::shared_ptr<Runtime> rt, std::unique_ptr<executor::Session> session)
      : runtime_(std::move(rt)), session_(std::move(session)) {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(g_mu);
    g_sessions.insert(this);
  }

  std::mutex mu_;
  std::shared_ptr<Runtime> runtime_;           // guarded by mu_
  std::unique_ptr<executor::Session> session_;  // guarded by mu_
};

void Shutdown() {
  py::gil_scoped_release nogil;
  std::vector<NativeSession*> live;
  std::shared_ptr<Runtime> rt;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_shut_down = true;
    live.assign(g_sessions.begin(), g_sessions.end());
    rt = std::move(g_runtime);
  }
  for (NativeSession* s : live) s->Close();
  rt.reset();  // the last holder destroys the executor, then the engine
}

py::dict Info() {
  std::shared_ptr<Runtime> rt = RuntimeOrRaise();
  const engine::EngineInfo& i = rt->engine->info();
  py::dict d;
  d["wasmtime_version"] = i.wasmtime_version;
  d["guest_sha256"] = i.guest_sha256;
  d["module_from_cache"] = i.module_from_cache;
  d["load_seconds"] = std::chrono::duration<double>(i.load_time).count();
  d["baseline_memory_bytes"] = i.baseline_memory_bytes;
  d["warm_sandboxes"] = rt->executor->pool().ready();
  return d;
}

void Configure(const std::string& guest_dir, const std::string& module_cache_dir,
               size_t warm_sandboxes, uint32_t max_sandboxes, uint64_t memory_budget_mb,
               bool quiet) {
  bool started = false;
  {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(g_mu);
    started = g_runtime != nullptr || g_shut_down;
    if (!started) {
      g_config = Config{guest_dir, module_cache_dir, warm_sandboxes, max_sandboxes,
                        memory_budget_mb << 20, quiet};
    }
  }
  if (started) throw std::runtime_error("rlmbox.configure() must come before the first sandbox");
}

}  // namespace
}  // namespace rlmbox::python

PYBIND11_MODULE(_native, m) {
  using namespace rlmbox::python;
  m.doc() = "rlmbox's executor in-process (use the rlmbox package, not this module)";
  m.def("configure", &Configure, py::arg("guest_dir"), py::arg("module_cache_dir"),
        py::arg("warm_sandboxes"), py::arg("max_sandboxes"), py::arg("memory_budget_mb"),
        py::arg("quiet"));
  m.def("info", &Info);
  m.def("shutdown", &Shutdown);
  py::class_<NativeLimits>(m, "Limits")
      .def_property_readonly("timeout",
                             [](const NativeLimits& l) { return l.limits.timeout.count() / 1000.0; })
      .def_property_readonly("memory_mb",
                             [](const NativeLimits& l) { return l.limits.memory_bytes >> 20; })
      .def_property_readonly(
          "cpu_time", [](const NativeLimits& l) { return l.limits.cpu_budget().count() / 1000.0; })
      .def_property_readonly("fuel", [](const NativeLimits& l) { return l.limits.fuel; })
      .def_property_readonly("max_output_bytes",
                             [](const NativeLimits& l) { return l.limits.max_output_bytes; });
  m.def("resolve_limits", &ResolveLimits, py::arg("request_json"));
  m.def("execute", &Execute, py::arg("code"), py::arg("context"), py::arg("context_json"),
        py::arg("limits"), py::arg("dispatch"), py::arg("tools"), py::arg("allowed_imports"),
        py::arg("vars_json") = py::none());
  py::class_<NativeSession>(m, "Session")
      .def(py::init<bool>(), py::arg("fuel") = false)
      .def("execute", &NativeSession::Execute, py::arg("code"), py::arg("limits"),
           py::arg("dispatch"), py::arg("tools"), py::arg("allowed_imports"),
           py::arg("vars_json") = py::none())
      .def("set_context", &NativeSession::SetContext, py::arg("text"), py::arg("is_json"),
           py::arg("limits"))
      .def("get_var", &NativeSession::GetVar, py::arg("name"), py::arg("limits"))
      .def("memory_bytes", &NativeSession::MemoryBytes)
      .def("snapshot", &NativeSession::Snapshot)
      .def("fork", &NativeSession::Fork, py::arg("n"))
      .def_static("restore", &NativeSession::Restore, py::arg("sealed"))
      .def_property_readonly("closed", &NativeSession::closed)
      .def("close", [](NativeSession& s) {
        py::gil_scoped_release nogil;
        s.Close();
      });
}
