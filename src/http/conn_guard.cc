// The connection guard (conn_guard.h). This file defines accept, recv, send,
// poll and close for the whole executable: the dynamic linker binds
// cpp-httplib's calls (and ours) to these, and each passes through to the C
// library's own (dlsym RTLD_NEXT) for any socket the guard did not accept, or
// while the guard is off.
#include "http/conn_guard.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace rlmbox::http {
namespace {

using AcceptFn = int (*)(int, sockaddr*, socklen_t*);
using Accept4Fn = int (*)(int, sockaddr*, socklen_t*, int);
using RecvFn = ssize_t (*)(int, void*, size_t, int);
using SendFn = ssize_t (*)(int, const void*, size_t, int);
using PollFn = int (*)(pollfd*, nfds_t, int);
using CloseFn = int (*)(int);

template <typename Fn>
Fn Real(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}
AcceptFn RealAccept() { static const AcceptFn f = Real<AcceptFn>("accept"); return f; }
Accept4Fn RealAccept4() { static const Accept4Fn f = Real<Accept4Fn>("accept4"); return f; }
RecvFn RealRecv() { static const RecvFn f = Real<RecvFn>("recv"); return f; }
SendFn RealSend() { static const SendFn f = Real<SendFn>("send"); return f; }
PollFn RealPoll() { static const PollFn f = Real<PollFn>("poll"); return f; }
CloseFn RealClose() { static const CloseFn f = Real<CloseFn>("close"); return f; }

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

// A client's address without its port: the unit of the per-client cap.
std::string ClientKey(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss).sin_addr;
    return std::string("4") + std::string(reinterpret_cast<const char*>(&a), sizeof a);
  }
  if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr;
    return std::string("6") + std::string(reinterpret_cast<const char*>(&a), sizeof a);
  }
  return "?";
}

enum class Phase : uint8_t { kHead, kBody, kIdle };

// One served connection. Touched by the thread serving it (recv/send/poll)
// and by close; `tracked` publishes the rest.
struct Conn {
  std::atomic<bool> tracked{false};
  Phase phase = Phase::kHead;
  uint8_t tail_len = 0;
  char tail[3] = {};
  int64_t start_ms = 0;  // first byte of the current request
  int64_t idle_ms = 0;   // when the last response was sent
  std::string client;
};

thread_local int t_current_fd = -1;  // the connection this thread last read from

constexpr int kMaxTrackedFd = 1 << 16;
Conn* Conns() {
  static auto* conns = new Conn[kMaxTrackedFd];  // never freed: wrappers may run at exit
  return conns;
}
Conn* Tracked(int fd) {
  if (fd < 0 || fd >= kMaxTrackedFd) return nullptr;
  Conn* c = &Conns()[fd];
  return c->tracked.load(std::memory_order_acquire) ? c : nullptr;
}

struct Shared {
  std::atomic<bool> on{false};
  std::atomic<int64_t> header_ms{10'000};
  std::atomic<int64_t> body_ms{60'000};
  std::atomic<size_t> max_per_client{64};
  std::atomic<size_t> max_pending{1024};
  std::atomic<int64_t> threads{0};
  std::atomic<int64_t> active{0};
  std::atomic<int64_t> pending{0};
  std::atomic<uint64_t> refused{0}, head_timeouts{0}, read_timeouts{0}, idle_closed{0};
  std::mutex mu;  // guards clients and gates
  std::map<std::string, size_t> clients;  // open connections per client address
  std::map<int, std::shared_ptr<struct Gate>> gates;  // by listening socket
};
Shared& S() {
  static auto* s = new Shared;  // never freed: wrappers may run at exit
  return *s;
}

void ReleaseClient(const std::string& key) {
  std::lock_guard<std::mutex> lock(S().mu);
  auto it = S().clients.find(key);
  if (it != S().clients.end() && --it->second == 0) S().clients.erase(it);
}

// Answers with a short status and closes; the client may already be gone.
void Refuse(int fd, std::string_view status, std::string_view code, std::string_view message) {
  std::string body = std::string("{\"error\":\"") + std::string(message) + "\",\"code\":\"" +
                     std::string(code) + "\"}";
  std::string head = "HTTP/1.1 " + std::string(status) +
                     "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n";
  std::string all = head + body;
  (void)RealSend()(fd, all.data(), all.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  shutdown(fd, SHUT_WR);
  RealClose()(fd);
}

// Connections accepted on one listening socket, waiting for their request head.
// Used by that socket's accept thread only, except Wake() (close from anywhere).
struct Gate {
  int lfd;
  int ep = -1;
  int wake = -1;
  std::atomic<bool> closed{false};
  struct Waiting {
    int fd;
    int64_t deadline_ms;
    int64_t start_ms;
    std::string client;
    sockaddr_storage addr;
    socklen_t addr_len;
  };
  std::map<int, Waiting> waiting;
  std::deque<Waiting> ready;
  std::vector<char> peek;  // what Check() looks at, without reading it

  // Enough of a request to give it a thread: its head, and of a body with a
  // Content-Length the first kBodyPeek bytes (or all of it), so a client
  // trickling its body costs a socket too. (A head longer than kHeadPeek goes
  // on: cpp-httplib answers it 431.)
  static constexpr size_t kHeadPeek = 8192;
  static constexpr size_t kBodyPeek = 64 * 1024;
  static bool Arrived(std::string_view data) {
    const size_t end = data.find("\r\n\r\n");
    if (end == std::string_view::npos) return data.size() >= kHeadPeek;
    const size_t head = end + 4;
    size_t want = 0;
    std::string lower(data.substr(0, head));
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    // A client that waits for "100 Continue" sends its body only after that.
    if (lower.find("\r\nexpect:") != std::string::npos) return true;
    if (size_t at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
      want = std::strtoull(lower.c_str() + at + 17, nullptr, 10);
    }
    return data.size() - head >= std::min(want, kBodyPeek);
  }

  explicit Gate(int listen_fd) : lfd(listen_fd) {
    ep = epoll_create1(EPOLL_CLOEXEC);
    wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    if (ep < 0 || wake < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) closed = true;
    ev.data.fd = wake;
    epoll_ctl(ep, EPOLL_CTL_ADD, wake, &ev);
    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
  }
  ~Gate() {
    for (auto& [fd, w] : waiting) {
      RealClose()(fd);
      ReleaseClient(w.client);
      S().pending--;
    }
    for (auto& w : ready) {
      RealClose()(w.fd);
      ReleaseClient(w.client);
    }
    RealClose()(ep);
    RealClose()(wake);
  }

  void Wake() {
    closed = true;
    uint64_t one = 1;
    (void)!write(wake, &one, sizeof one);
  }

  void Drop(int fd) {
    auto it = waiting.find(fd);
    if (it == waiting.end()) return;
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    ReleaseClient(it->second.client);
    waiting.erase(it);
    S().pending--;
  }

  // Accepts what the listening socket has. Returns false when it failed for
  // good (errno set), true otherwise.
  bool AcceptAll() {
    for (;;) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      int fd = RealAccept4()(lfd, reinterpret_cast<sockaddr*>(&ss), &len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED ||
            errno == EPROTO || errno == ENETDOWN || errno == EHOSTUNREACH) {
          return true;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          return true;  // waiting connections will free descriptors
        }
        return false;
      }
      std::string client = ClientKey(ss);
      const size_t cap = S().max_per_client.load();
      bool over = false;
      {
        std::lock_guard<std::mutex> lock(S().mu);
        size_t& n = S().clients[client];
        if (cap != 0 && n >= cap) {
          over = true;
          if (n == 0) S().clients.erase(client);
        } else {
          ++n;
        }
      }
      if (over) {
        S().refused++;
        Refuse(fd, "429 Too Many Requests", "too_many_connections",
               "too many open connections from this address");
        continue;
      }
      if (fd >= kMaxTrackedFd) {  // beyond what the guard can follow: refuse
        ReleaseClient(client);
        Refuse(fd, "503 Service Unavailable", "overloaded", "too many open connections");
        continue;
      }
      if (waiting.size() >= S().max_pending.load()) {  // the oldest head waits longest
        auto oldest = std::min_element(waiting.begin(), waiting.end(), [](auto& a, auto& b) {
          return a.second.start_ms < b.second.start_ms;
        });
        int victim = oldest->first;
        Drop(victim);
        S().head_timeouts++;
        Refuse(victim, "408 Request Timeout", "request_timeout", "request head not received in time");
      }
      const int64_t now = NowMs();
      Waiting w{fd, now + S().header_ms.load(), now, std::move(client), ss, len};
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd;
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      waiting.emplace(fd, std::move(w));
      S().pending++;
    }
  }

  // A waiting connection has data: ready once its request head is complete.
  void Check(int fd) {
    auto it = waiting.find(fd);
    if (it == waiting.end()) return;
    peek.resize(kHeadPeek + kBodyPeek);
    ssize_t n = RealRecv()(fd, peek.data(), peek.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {  // gone before it asked anything
      Drop(fd);
      RealClose()(fd);
      return;
    }
    if (!Arrived(std::string_view(peek.data(), static_cast<size_t>(n)))) return;
    Waiting w = std::move(it->second);
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    waiting.erase(it);
    S().pending--;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    ready.push_back(std::move(w));
  }

  void Expire() {
    const int64_t now = NowMs();
    std::vector<int> late;
    for (auto& [fd, w] : waiting) {
      if (w.deadline_ms <= now) late.push_back(fd);
    }
    for (int fd : late) {
      Drop(fd);
      S().head_timeouts++;
      Refuse(fd, "408 Request Timeout", "request_timeout", "request head not received in time");
    }
  }

  int Next(sockaddr* addr, socklen_t* addr_len) {
    epoll_event events[64];
    for (;;) {
      if (closed) {
        errno = EBADF;
        return -1;
      }
      if (!ready.empty()) {
        Waiting w = std::move(ready.front());
        ready.pop_front();
        Conn& c = Conns()[w.fd];
        c.phase = Phase::kHead;
        c.tail_len = 0;
        c.start_ms = w.start_ms;
        c.idle_ms = 0;
        c.client = std::move(w.client);
        c.tracked.store(true, std::memory_order_release);
        S().active++;
        if (addr != nullptr && addr_len != nullptr) {
          socklen_t n = std::min(*addr_len, w.addr_len);
          std::memcpy(addr, &w.addr, n);
          *addr_len = w.addr_len;
        }
        return w.fd;
      }
      int64_t timeout = 1000;
      const int64_t now = NowMs();
      for (auto& [fd, w] : waiting) timeout = std::min(timeout, std::max<int64_t>(0, w.deadline_ms - now));
      int n = epoll_wait(ep, events, 64, static_cast<int>(timeout));
      if (n < 0 && errno != EINTR) return -1;
      if (n == 0 && fcntl(lfd, F_GETFD) == -1) {  // the listening socket went away
        errno = EBADF;
        return -1;
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == wake) continue;
        if (fd == lfd) {
          if (!AcceptAll()) return -1;
          continue;
        }
        Check(fd);
      }
      Expire();
    }
  }
};

std::shared_ptr<Gate> GateFor(int lfd) {
  std::lock_guard<std::mutex> lock(S().mu);
  auto& g = S().gates[lfd];
  if (!g) g = std::make_shared<Gate>(lfd);
  return g;
}

// Deadline (ms since the epoch of NowMs) for the current request, 0 when idle.
int64_t DeadlineOf(const Conn& c) {
  if (c.phase == Phase::kHead) return c.start_ms + S().header_ms.load();
  if (c.phase == Phase::kBody) return c.start_ms + S().header_ms.load() + S().body_ms.load();
  return 0;
}

void ScanHead(Conn& c, const char* data, size_t n) {
  // The head ends at the first blank line; keep the last 3 bytes across reads.
  char joined[3 + 64];
  size_t pre = c.tail_len;
  std::memcpy(joined, c.tail, pre);
  size_t take = std::min<size_t>(n, 64);
  std::memcpy(joined + pre, data, take);
  if (std::string_view(joined, pre + take).find("\r\n\r\n") != std::string_view::npos ||
      (n > 64 && std::string_view(data, n).find("\r\n\r\n") != std::string_view::npos)) {
    c.phase = Phase::kBody;
    return;
  }
  const size_t keep = std::min<size_t>(3, pre + n);
  char last[3];
  for (size_t i = 0; i < keep; ++i) {
    const size_t from_end = keep - i;  // 1..keep from the end of (tail + data)
    last[i] = from_end <= n ? data[n - from_end] : c.tail[pre - (from_end - n)];
  }
  std::memcpy(c.tail, last, keep);
  c.tail_len = static_cast<uint8_t>(keep);
}

}  // namespace

void GuardConnections(const ConnectionLimits& limits, size_t http_threads) {
  Shared& s = S();
  s.header_ms = std::max<int64_t>(1, limits.header_timeout.count());
  s.body_ms = std::max<int64_t>(1, limits.body_timeout.count());
  s.max_pending = std::max<size_t>(1, limits.max_pending);
  s.threads += static_cast<int64_t>(http_threads);
  s.max_per_client = limits.max_per_client != ConnectionLimits::kAuto
                         ? limits.max_per_client
                         : std::max<size_t>(4, static_cast<size_t>(s.threads.load()) / 2);
  s.on = true;
}

void ReleaseConnectionThreads(size_t http_threads) {
  S().threads -= static_cast<int64_t>(http_threads);
}

int CurrentConnection() { return Tracked(t_current_fd) != nullptr ? t_current_fd : -1; }

bool ClientGone(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLRDHUP, 0};
  if (RealPoll()(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

ConnectionStats GetConnectionStats() {
  const Shared& s = S();
  ConnectionStats st;
  st.pending = static_cast<uint64_t>(std::max<int64_t>(0, s.pending.load()));
  st.active = static_cast<uint64_t>(std::max<int64_t>(0, s.active.load()));
  st.refused_client_cap = s.refused.load();
  st.head_timeouts = s.head_timeouts.load();
  st.read_timeouts = s.read_timeouts.load();
  st.idle_closed = s.idle_closed.load();
  return st;
}

}  // namespace rlmbox::http

using rlmbox::http::Conn;
using rlmbox::http::Phase;
namespace guard = rlmbox::http;

extern "C" {

int accept(int lfd, sockaddr* addr, socklen_t* addr_len) {
  if (!guard::S().on.load(std::memory_order_relaxed)) return guard::RealAccept()(lfd, addr, addr_len);
  return guard::GateFor(lfd)->Next(addr, addr_len);
}

ssize_t recv(int fd, void* buf, size_t len, int flags) {
  Conn* c = guard::Tracked(fd);
  if (c == nullptr || (flags & MSG_PEEK) != 0) return guard::RealRecv()(fd, buf, len, flags);
  if (int64_t d = guard::DeadlineOf(*c); d != 0 && guard::NowMs() >= d) {
    guard::S().read_timeouts++;
    errno = ETIMEDOUT;
    return -1;
  }
  ssize_t n = guard::RealRecv()(fd, buf, len, flags);
  guard::t_current_fd = fd;
  if (n > 0) {
    if (c->phase == Phase::kIdle) {
      c->phase = Phase::kHead;
      c->tail_len = 0;
      c->start_ms = guard::NowMs();
    }
    if (c->phase == Phase::kHead) guard::ScanHead(*c, static_cast<const char*>(buf), static_cast<size_t>(n));
  }
  return n;
}

ssize_t send(int fd, const void* buf, size_t len, int flags) {
  ssize_t n = guard::RealSend()(fd, buf, len, flags);
  if (Conn* c = guard::Tracked(fd); c != nullptr && n > 0) {
    // "100 Continue" asks for the body of the same request.
    if (std::string_view(static_cast<const char*>(buf), static_cast<size_t>(n)).rfind("HTTP/1.1 100", 0) == 0) {
      c->phase = Phase::kBody;
    } else if (c->phase != Phase::kIdle) {
      c->phase = Phase::kIdle;
      c->idle_ms = guard::NowMs();
    }
  }
  return n;
}

// glibc declares poll's array write-only (access attribute); it is read-write.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
int poll(pollfd* fds, nfds_t nfds, int timeout) {
  if (nfds != 1 || fds == nullptr) return guard::RealPoll()(fds, nfds, timeout);
  Conn* c = guard::Tracked(fds[0].fd);
  if (c == nullptr || (fds[0].events & POLLIN) == 0) return guard::RealPoll()(fds, nfds, timeout);
  const int64_t now = guard::NowMs();
  if (c->phase == Phase::kIdle) {
    // Waiting for the next request on a kept-alive connection: give the thread
    // up when connections are waiting for one.
    guard::Shared& s = guard::S();
    if (s.active.load() > s.threads.load() && now - c->idle_ms >= 1000) {
      pollfd probe = fds[0];
      if (guard::RealPoll()(&probe, 1, 0) == 0) {  // nothing asked meanwhile
        s.idle_closed++;
        errno = ECONNRESET;
        return -1;
      }
    }
    return guard::RealPoll()(fds, nfds, timeout);
  }
  const int64_t left = guard::DeadlineOf(*c) - now;
  if (left <= 0) {
    guard::S().read_timeouts++;
    return 0;  // the caller sees its read time out
  }
  if (timeout < 0 || timeout > left) timeout = static_cast<int>(left);
  return guard::RealPoll()(fds, nfds, timeout);
}
#pragma GCC diagnostic pop

int close(int fd) {
  if (Conn* c = guard::Tracked(fd)) {
    c->tracked.store(false, std::memory_order_release);
    guard::S().active--;
    std::string client = std::move(c->client);
    c->client.clear();
    guard::ReleaseClient(client);
  } else if (guard::S().on.load(std::memory_order_relaxed)) {
    std::shared_ptr<guard::Gate> gate;
    {
      std::lock_guard<std::mutex> lock(guard::S().mu);
      auto it = guard::S().gates.find(fd);
      if (it != guard::S().gates.end()) {
        gate = it->second;
        guard::S().gates.erase(it);
      }
    }
    if (gate) gate->Wake();
  }
  return guard::RealClose()(fd);
}

}  // extern "C"
