#pragma once
/// The HTTP/1.1 server of the node's Open API, on Boost.Beast and Asio (chosen by measurement, see
/// README "HTTP API"). Every connection is asynchronous on a few I/O threads: an idle keep-alive
/// connection holds a socket and a small buffer, no thread. Bounds: connections (beyond the limit
/// a new connection is closed at once), header and body bytes (431 / 413, then close), the time a
/// request may take to arrive once its first byte came (slowloris: then the connection closes),
/// and the idle time of a keep-alive connection. Requests go to a handler whose completion may run
/// on any thread: the response is written from the connection's strand.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "actors/http/nacos_api.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace registry::http {

struct server_limits {
  std::size_t connections_max = 16384;
  std::size_t header_bytes_max = 16 * 1024;
  std::size_t body_bytes_max = 1024 * 1024;
  std::int64_t request_timeout_ms = 10000; ///< a started request must arrive whole within this
  std::int64_t idle_timeout_ms = 60000;    ///< an idle keep-alive connection is closed after this
};

/// Serves one request; the completion is called exactly once, from any thread.
using request_handler = std::function<void(request, std::function<void(response)>)>;

class http_server {
public:
  http_server(server_limits limits, request_handler handler);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds and listens on host:port (port 0 = any free port). Returns "" or the reason.
  std::string listen(const std::string& host, std::uint16_t port);
  /// The bound port.
  std::uint16_t port() const { return port_; }
  /// Starts accepting on `threads` I/O threads.
  void start(int threads);
  /// Stops accepting and serving; joins the threads. Safe to call twice.
  void stop();
  /// The I/O context (for other sockets served by the same threads, e.g. the UDP push socket).
  boost::asio::io_context& io();
  /// Open connections right now.
  std::size_t connections() const { return connections_->load(); }

private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::shared_ptr<std::atomic<std::size_t>> connections_;
  std::uint16_t port_ = 0;
  std::vector<std::thread> threads_;
};

} // namespace registry::http
