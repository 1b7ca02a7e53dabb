// Connection guard: a slow or idle client costs a socket, not an HTTP thread.
//
// cpp-httplib serves each connection on a pool thread from accept() to close,
// and its only deadline is per recv(); a client trickling one header byte every
// few seconds holds a thread indefinitely, and 64 such sockets stop /health.
// The guard sits under cpp-httplib at the socket calls it makes (accept, recv,
// send, poll, close; conn_guard.cc defines them in this executable, so the
// library's calls reach them first):
//   - accept() hands cpp-httplib only connections whose request head (line and
//     headers) has fully arrived; until then they wait in one epoll set per
//     listening socket, at most `header_timeout` (then 408 and closed);
//   - a request with a body waits there too until its first 64 KiB (or all of
//     it) has arrived, within the same deadlines;
//   - at most `max_per_client` open connections per client address (the next
//     is answered 429 and closed; default half the HTTP threads) and
//     `max_pending` waiting requests in all;
//   - on a connection being served, each later request's head must arrive
//     within `header_timeout` of its first byte, and the whole request within
//     `header_timeout + body_timeout`;
//   - when more connections are open than there are HTTP threads, a connection
//     idling between requests (keep-alive) is closed, so waiting ones get a
//     thread.
// Sockets the guard did not accept (outgoing clients) pass through untouched.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace rlmbox::http {

struct ConnectionLimits {
  std::chrono::milliseconds header_timeout{10'000};  // HEADER_TIMEOUT
  std::chrono::milliseconds body_timeout{60'000};    // BODY_TIMEOUT
  // MAX_CONNECTIONS_PER_CLIENT; 0 = no cap; kAuto: half the HTTP threads, so
  // that one address cannot keep every thread busy.
  static constexpr size_t kAuto = ~size_t{0};
  size_t max_per_client = kAuto;
  size_t max_pending = 1024;                         // heads being waited for, all clients
};

// Turns the guard on for every server of this process (idempotent; the last
// limits win) and adds `http_threads` to the threads that serve connections.
void GuardConnections(const ConnectionLimits& limits, size_t http_threads);

// Removes `http_threads` again (a server stopped).
void ReleaseConnectionThreads(size_t http_threads);

// The connection the calling thread serves (the last one it read a request
// from), or -1 when it serves none the guard accepted.
int CurrentConnection();
// True once the client of connection `fd` (from CurrentConnection) has closed
// or reset it; false for -1 and while it is open. One poll(2), no read.
bool ClientGone(int fd);

struct ConnectionStats {
  uint64_t pending = 0;           // waiting for their request head
  uint64_t active = 0;            // handed to an HTTP thread, not closed yet
  uint64_t refused_client_cap = 0;
  uint64_t head_timeouts = 0;     // closed while waiting for a head (408)
  uint64_t read_timeouts = 0;     // later requests cut by the header/body deadline
  uint64_t idle_closed = 0;       // keep-alive connections closed to free a thread
};
ConnectionStats GetConnectionStats();

}  // namespace rlmbox::http
