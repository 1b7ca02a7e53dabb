// rlmbox_http_load: a small closed-loop HTTP load generator for the benchmarks.
//
//   rlmbox_http_load --port P [--host 127.0.0.1] [--path /execute]
//                    [--body '{"code":"x=1"}'] [--concurrency N] [--seconds S]
//                    [--requests R] [--session]
//
// Each of N threads sends requests back to back on its own keep-alive
// connection (with --session, to its own session's /session/{id}/execute).
// Prints one JSON line: requests, errors, seconds, rps, p50_ms, p99_ms.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", path = "/execute", body = R"({"code":"x=1"})";
  int port = 8000, concurrency = 1;
  double seconds = 3;
  long max_requests = 0;
  bool session = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--host") host = next();
    else if (a == "--port") port = std::stoi(next());
    else if (a == "--path") path = next();
    else if (a == "--body") body = next();
    else if (a == "--concurrency") concurrency = std::stoi(next());
    else if (a == "--seconds") seconds = std::stod(next());
    else if (a == "--requests") max_requests = std::stol(next());
    else if (a == "--session") session = true;
  }
  using Clock = std::chrono::steady_clock;
  std::mutex mu;
  std::vector<double> latencies;
  std::atomic<long> errors{0}, issued{0};
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      httplib::Client cli(host, port);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);
      cli.set_read_timeout(120, 0);
      std::string target = path;
      if (session) {
        auto r = cli.Post("/session", "{}", "application/json");
        if (!r || r->status != 200) {
          ++errors;
          return;
        }
        target = "/session/" + nlohmann::json::parse(r->body)["session_id"].get<std::string>() +
                 "/execute";
      }
      std::vector<double> mine;
      while (Clock::now() < end) {
        if (max_requests > 0 && issued.fetch_add(1) >= max_requests) break;
        auto t0 = Clock::now();
        auto r = cli.Post(target.c_str(), body, "application/json");
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (!r || r->status != 200) {
          ++errors;
          continue;
        }
        mine.push_back(ms);
      }
      std::lock_guard lock(mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  for (auto& th : threads) th.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    if (latencies.empty()) return 0.0;
    return latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()))];
  };
  std::printf("%s\n", nlohmann::json{{"requests", latencies.size()},
                                     {"errors", errors.load()},
                                     {"seconds", elapsed},
                                     {"rps", static_cast<double>(latencies.size()) / elapsed},
                                     {"p50_ms", pct(0.5)},
                                     {"p99_ms", pct(0.99)}}
                          .dump()
                          .c_str());
  return 0;
}
