#pragma once
/// A pausable TCP proxy for the fault tier: it listens on a free loopback port and forwards every
/// connection to a target port. A partition between two nodes pauses the proxies of both directions:
///
///   open  -> bytes flow
///   cut   -> every connection is closed and new ones are accepted and closed at once
///   stall -> connections stay up but no byte is forwarded (new ones are accepted and stall too)
///
/// One thread per proxy runs a poll loop; connections and buffers are bounded
/// (registry::defaults::fault::proxy_*), a full buffer stops reading from its source.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace registry::test {

enum class proxy_mode { open, cut, stall };

const char* to_string(proxy_mode mode);

class tcp_proxy {
public:
  /// Listens on 127.0.0.1:<free port> and forwards to 127.0.0.1:`target_port`. Throws on failure.
  explicit tcp_proxy(int target_port);
  ~tcp_proxy(); ///< closes every connection and joins the thread

  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  int port() const { return port_; }
  int target_port() const { return target_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Switches the mode; takes effect within one poll round (the loop is woken at once).
  void set_mode(proxy_mode mode);
  proxy_mode mode() const { return mode_.load(); }

  /// Connections accepted since the start (for tests of the proxy itself).
  std::uint64_t accepted() const { return accepted_.load(); }
  /// Bytes forwarded in both directions since the start.
  std::uint64_t forwarded_bytes() const { return forwarded_.load(); }
  /// Connections open now.
  std::size_t connections() const { return open_.load(); }

private:
  void loop();
  void wake();

  int target_port_;
  int port_ = 0;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};
  std::atomic<proxy_mode> mode_{proxy_mode::open};
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> forwarded_{0};
  std::atomic<std::size_t> open_{0};
  std::thread thread_;
};

} // namespace registry::test
