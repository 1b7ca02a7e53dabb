#include "cli/run_command.h"

#include <unistd.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include "cli/runtime_paths.h"
#include "engine/engine.h"
#include "executor/executor.h"

namespace rlmbox::cli {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitInternal = 70;

struct RunOptions {
  std::string code;
  std::string file;
  std::string context_file;
  bool context_json = false;
  bool json = false;
  double timeout_s = 30;
  uint64_t memory_mb = 256;
  double cpu_time_s = 0;
  uint64_t fuel = engine::Limits{}.fuel;
  uint64_t max_output_bytes = engine::Limits{}.max_output_bytes;
  std::string guest_dir;
};

std::optional<std::string> ReadAll(std::istream& in) {
  std::string s(std::istreambuf_iterator<char>(in), {});
  if (in.bad()) return std::nullopt;
  return s;
}

int Fail(bool json, std::string_view kind, const std::string& message, int code) {
  if (json) {
    std::cout << nlohmann::json{{"success", false}, {"outcome", kind}, {"error", message}}.dump()
              << "\n";
  } else {
    std::cerr << "rlmbox: " << message << "\n";
  }
  return code;
}

int Run(const RunOptions& o) {
  // The code: -c, a file, or stdin.
  std::string code;
  if (!o.code.empty() && !o.file.empty()) {
    return Fail(o.json, "bad_request", "give either -c CODE or a FILE, not both", kExitUsage);
  }
  if (!o.code.empty()) {
    code = o.code;
  } else if (!o.file.empty() && o.file != "-") {
    std::ifstream in(o.file, std::ios::binary);
    auto text = in ? ReadAll(in) : std::nullopt;
    if (!text) return Fail(o.json, "bad_request", "cannot read " + o.file, kExitUsage);
    code = std::move(*text);
  } else {
    if (o.file.empty() && isatty(STDIN_FILENO)) {
      return Fail(o.json, "bad_request",
                  "no code: use -c CODE, a FILE, or pipe code on stdin (see --help)", kExitUsage);
    }
    auto text = ReadAll(std::cin);
    if (!text) return Fail(o.json, "bad_request", "cannot read stdin", kExitUsage);
    code = std::move(*text);
  }
  if (o.cpu_time_s < 0 || o.cpu_time_s > 3600) {
    return Fail(o.json, "bad_request", "--cpu-time must be between 0 and 3600 seconds", kExitUsage);
  }
  if (o.timeout_s <= 0 || o.timeout_s > 3600) {
    return Fail(o.json, "bad_request", "--timeout must be in (0, 3600] seconds", kExitUsage);
  }
  if (o.memory_mb == 0 || o.memory_mb > 3072) {
    return Fail(o.json, "bad_request", "--memory-mb must be in [1, 3072]", kExitUsage);
  }

  executor::ExecuteRequest req;
  req.code = std::move(code);
  req.limits.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
  req.limits.memory_bytes = o.memory_mb << 20;
  req.limits.fuel = o.fuel;
  req.limits.cpu_time = std::chrono::milliseconds(static_cast<int64_t>(o.cpu_time_s * 1000));
  req.limits.max_output_bytes = o.max_output_bytes;
  if (!o.context_file.empty()) {
    std::ifstream in(o.context_file, std::ios::binary);
    auto text = in ? ReadAll(in) : std::nullopt;
    if (!text) return Fail(o.json, "bad_request", "cannot read " + o.context_file, kExitUsage);
    req.context = engine::ContextValue{
        o.context_json ? engine::ContextValue::Kind::kJson : engine::ContextValue::Kind::kText,
        std::move(*text)};
  }

  engine::EngineOptions eo;
  eo.guest_dir = o.guest_dir.empty() ? DefaultGuestDir() : std::filesystem::path(o.guest_dir);
  eo.module_cache_dir = DefaultModuleCacheDir();
  eo.max_sandboxes = 8;
  auto engine = engine::Engine::Create(eo);
  if (!engine.ok()) {
    return Fail(o.json, "internal", engine.status().ToString(), kExitInternal);
  }
  executor::Executor executor(**engine, executor::Executor::Options{.warm_sandboxes = 0});
  auto result = executor.Execute(req);
  if (!result.ok()) {
    bool bad = result.status().code() == StatusCode::kInvalidArgument;
    return Fail(o.json, StatusCodeName(result.status().code()), result.status().message(),
                bad ? kExitUsage : kExitInternal);
  }
  const engine::ExecutionResult& r = *result;
  if (o.json) {
    std::cout << r.ToJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << r.stdout_text << std::flush;
    std::cerr << r.stderr_text << std::flush;
  }
  return ExitCodeForOutcome(engine::OutcomeName(r.outcome));
}

}  // namespace

int ExitCodeForOutcome(std::string_view outcome) {
  if (outcome == "ok") return 0;
  if (outcome == "exception") return 1;
  if (outcome == "timeout") return 3;
  if (outcome == "fuel_exhausted") return 4;
  if (outcome == "memory_exceeded") return 5;
  if (outcome == "output_truncated") return 6;
  if (outcome == "crashed") return 7;
  if (outcome == "cpu_exceeded") return 8;
  return kExitInternal;
}

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto opts = std::make_shared<RunOptions>();
  CLI::App* run = app.add_subcommand("run", "Run Python code in a fresh sandbox");
  run->add_option("-c,--code", opts->code, "Python code to run");
  run->add_option("file", opts->file, "A Python file to run ('-' or nothing: read stdin)");
  run->add_flag("--json", opts->json, "Print the full result as JSON");
  run->add_option("--timeout", opts->timeout_s, "Wall-clock limit in seconds")->capture_default_str();
  run->add_option("--memory-mb", opts->memory_mb, "Memory the code may allocate, MiB")
      ->capture_default_str();
  run->add_option("--cpu-time", opts->cpu_time_s,
                  "CPU-time limit in seconds (default: as much as --timeout)");
  run->add_option("--fuel", opts->fuel, "Deterministic budget in fuel units (~wasm instructions)")
      ->capture_default_str();
  run->add_option("--max-output-bytes", opts->max_output_bytes, "Cap on each of stdout/stderr")
      ->capture_default_str();
  run->add_option("--context-file", opts->context_file, "File bound to the variable `context`");
  run->add_flag("--context-json", opts->context_json, "Parse --context-file as JSON");
  run->add_option("--guest-dir", opts->guest_dir, "Directory holding guest.wasm and lib/");
  run->footer(
      "Exit codes: 0 ok, 1 exception, 2 bad usage, 3 timeout, 4 fuel_exhausted,\n"
      "5 memory_exceeded, 6 output_truncated, 7 crashed, 8 cpu_exceeded, 70 internal error.");
  run->callback([opts, exit_code] { *exit_code = Run(*opts); });
}

}  // namespace rlmbox::cli
