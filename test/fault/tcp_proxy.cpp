#include "test/fault/tcp_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <stdexcept>
#include <vector>

#include "config/defaults.hpp"

namespace registry::test {

namespace limits = registry::defaults::fault;

const char* to_string(proxy_mode mode) {
  switch (mode) {
    case proxy_mode::open:
      return "open";
    case proxy_mode::cut:
      return "cut";
    case proxy_mode::stall:
      return "stall";
  }
  return "?";
}

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  return addr;
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/// One forwarded connection: `a` is the accepted side, `b` the connection to the target.
struct connection {
  int a = -1;
  int b = -1;
  std::string a_to_b; ///< read from a, not yet written to b
  std::string b_to_a;
  bool dead = false;

  ~connection() {
    if (a >= 0)
      ::close(a);
    if (b >= 0)
      ::close(b);
  }
};

/// Reads what fits into `buf` (bounded); false on EOF or a hard error.
bool read_into(int fd, std::string& buf) {
  char chunk[16384];
  while (buf.size() < limits::proxy_buffer_bytes_max) {
    auto want = std::min(sizeof(chunk), limits::proxy_buffer_bytes_max - buf.size());
    auto n = ::read(fd, chunk, want);
    if (n > 0) {
      buf.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0)
      return false;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
  return true;
}

/// Writes what the socket takes from `buf`; false on a hard error. Counts bytes into `total`.
bool write_from(int fd, std::string& buf, std::atomic<std::uint64_t>& total) {
  while (!buf.empty()) {
    auto n = ::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
    if (n > 0) {
      buf.erase(0, static_cast<std::size_t>(n));
      total += static_cast<std::uint64_t>(n);
      continue;
    }
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
  }
  return true;
}

} // namespace

tcp_proxy::tcp_proxy(int target_port) : target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  auto addr = loopback(0);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || ::listen(listen_fd_, 64) != 0) {
    if (listen_fd_ >= 0)
      ::close(listen_fd_);
    throw std::runtime_error("tcp_proxy: cannot listen on 127.0.0.1");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  set_nonblocking(listen_fd_);
  if (::pipe2(wake_fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("tcp_proxy: cannot create the wake pipe");
  }
  thread_ = std::thread([this] { loop(); });
}

tcp_proxy::~tcp_proxy() {
  stop_ = true;
  wake();
  if (thread_.joinable())
    thread_.join();
  ::close(listen_fd_);
  ::close(wake_fds_[0]);
  ::close(wake_fds_[1]);
}

void tcp_proxy::set_mode(proxy_mode mode) {
  mode_ = mode;
  wake();
}

void tcp_proxy::wake() {
  char c = 1;
  [[maybe_unused]] auto n = ::write(wake_fds_[1], &c, 1);
}

void tcp_proxy::loop() {
  std::vector<std::unique_ptr<connection>> conns;
  std::vector<pollfd> fds;
  while (!stop_) {
    auto mode = mode_.load();
    if (mode == proxy_mode::cut)
      conns.clear();
    // Index 0: wake pipe, 1: listener, then two entries per connection.
    fds.clear();
    fds.push_back({wake_fds_[0], POLLIN, 0});
    short accept_events = conns.size() < limits::proxy_connections_max ? POLLIN : 0;
    fds.push_back({listen_fd_, accept_events, 0});
    bool flowing = mode == proxy_mode::open;
    for (auto& c : conns) {
      short ea = 0, eb = 0;
      if (flowing) {
        if (c->a_to_b.size() < limits::proxy_buffer_bytes_max)
          ea |= POLLIN;
        if (c->b_to_a.size() < limits::proxy_buffer_bytes_max)
          eb |= POLLIN;
        if (!c->b_to_a.empty())
          ea |= POLLOUT;
        if (!c->a_to_b.empty())
          eb |= POLLOUT;
      }
      fds.push_back({c->a, ea, 0});
      fds.push_back({c->b, eb, 0});
    }
    int rc = ::poll(fds.data(), fds.size(), static_cast<int>(limits::proxy_poll_ms));
    if (rc < 0 && errno != EINTR)
      break;
    if (rc <= 0)
      continue;
    if (fds[0].revents & POLLIN) {
      char drain[64];
      while (::read(wake_fds_[0], drain, sizeof(drain)) > 0) {
      }
    }
    // Connections first (indexes stay valid), then the listener.
    for (std::size_t i = 0; i < conns.size(); ++i) {
      auto& c = *conns[i];
      auto ra = fds[2 + 2 * i].revents;
      auto rb = fds[2 + 2 * i + 1].revents;
      if ((ra | rb) & (POLLERR | POLLNVAL)) {
        c.dead = true;
        continue;
      }
      if (flowing) {
        if ((ra & (POLLIN | POLLHUP)) && !read_into(c.a, c.a_to_b))
          c.dead = true;
        if ((rb & (POLLIN | POLLHUP)) && !read_into(c.b, c.b_to_a))
          c.dead = true;
        if (!write_from(c.b, c.a_to_b, forwarded_) || !write_from(c.a, c.b_to_a, forwarded_))
          c.dead = true;
      } else if ((ra | rb) & POLLHUP) {
        c.dead = true;
      }
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](const auto& c) { return c->dead; }),
                conns.end());
    if (fds[1].revents & POLLIN) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        ++accepted_;
        if (mode_.load() == proxy_mode::cut) {
          ::close(fd);
        } else {
          // The target is on loopback: a blocking connect answers at once (refused when it is down,
          // accepted by the kernel's backlog when it is frozen).
          int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
          auto addr = loopback(target_port_);
          if (up >= 0 && ::connect(up, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
            set_nonblocking(fd);
            set_nonblocking(up);
            auto c = std::make_unique<connection>();
            c->a = fd;
            c->b = up;
            conns.push_back(std::move(c));
          } else {
            ::close(fd);
            if (up >= 0)
              ::close(up);
          }
        }
      }
    }
    open_ = conns.size();
  }
  conns.clear();
  open_ = 0;
}

} // namespace registry::test
