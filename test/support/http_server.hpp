#pragma once
/// A tiny HTTP server for system tests, standing in for an address server (`members_url`).
///
/// One thread, poll()-based, on 127.0.0.1 and a port it bound itself (no race for a free port).
/// Every request gets the response set last, whatever its path: a status and a body, no answer at
/// all (to exercise the client's timeout), or a closed connection. Bounded: at most
/// `connections_max` open connections (more are closed at once) and `request_bytes_max` bytes per
/// request (a longer one is closed). It only reads up to the blank line after the headers: test
/// clients send GETs without a body.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>

namespace registry::test {

class http_test_server {
public:
  static constexpr std::size_t connections_max = 32;
  static constexpr std::size_t request_bytes_max = 8192;

  /// Binds and starts serving 200 with an empty body. Throws std::runtime_error on failure.
  http_test_server();
  /// Stops the thread and closes every connection.
  ~http_test_server();

  http_test_server(const http_test_server&) = delete;
  http_test_server& operator=(const http_test_server&) = delete;

  int port() const { return port_; }
  /// http://127.0.0.1:PORT/PATH
  std::string url(const std::string& path = "/nacos/serverlist") const;

  /// Answers every following request with `status` and `body`.
  void respond(int status, std::string body);
  /// Reads following requests and never answers (the connection stays open until the client
  /// gives up).
  void hang();
  /// Closes following connections as soon as their request arrived, without an answer.
  void close_connections();

  /// Complete requests received so far.
  std::size_t requests() const { return requests_.load(); }
  /// Waits until at least `n` requests were received.
  bool wait_requests(std::size_t n, std::chrono::milliseconds timeout) const;

private:
  enum class mode { respond, hang, close };
  struct connection;

  void run();
  std::string response_text();

  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<std::size_t> requests_{0};
  std::mutex mtx_;
  mode mode_ = mode::respond;
  int status_ = 200;
  std::string body_;
  std::thread thread_;
};

} // namespace registry::test
