#include "test/support/http_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <vector>

#include "test/support/process.hpp"

namespace registry::test {

namespace {

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

} // namespace

struct http_test_server::connection {
  int fd = -1;
  std::string in;       ///< request bytes so far
  std::string out;      ///< response bytes not yet written
  bool answered = false; ///< the request is complete and handled
  bool close_after_write = false;
};

http_test_server::http_test_server() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listen_fd_ < 0)
    throw std::runtime_error("http_test_server: socket failed");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0
      || ::listen(listen_fd_, 64) != 0
      || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("http_test_server: cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
  set_nonblocking(listen_fd_);
  if (::pipe(wake_fds_) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("http_test_server: pipe failed");
  }
  thread_ = std::thread([this] { run(); });
}

http_test_server::~http_test_server() {
  char byte = 1;
  [[maybe_unused]] auto n = ::write(wake_fds_[1], &byte, 1);
  thread_.join();
  ::close(wake_fds_[0]);
  ::close(wake_fds_[1]);
  ::close(listen_fd_);
}

std::string http_test_server::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void http_test_server::respond(int status, std::string body) {
  std::lock_guard<std::mutex> guard{mtx_};
  mode_ = mode::respond;
  status_ = status;
  body_ = std::move(body);
}

void http_test_server::hang() {
  std::lock_guard<std::mutex> guard{mtx_};
  mode_ = mode::hang;
}

void http_test_server::close_connections() {
  std::lock_guard<std::mutex> guard{mtx_};
  mode_ = mode::close;
}

bool http_test_server::wait_requests(std::size_t n, std::chrono::milliseconds timeout) const {
  return wait_until([&] { return requests() >= n; }, timeout);
}

void http_test_server::run() {
  std::vector<connection> conns;
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({wake_fds_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (auto& c : conns)
      fds.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
    if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR)
      break;
    if (fds[0].revents != 0)
      break; // asked to stop
    if (fds[1].revents & POLLIN) {
      for (;;) {
        int fd = ::accept(listen_fd_, nullptr, nullptr);
        if (fd < 0)
          break;
        if (conns.size() >= connections_max) {
          ::close(fd);
          continue;
        }
        set_nonblocking(fd);
        conns.push_back(connection{fd, {}, {}, false, false});
      }
    }
    // Connections are matched to their poll entries by position: fds[2 + i] is conns[i].
    std::vector<connection> kept;
    for (std::size_t i = 0; i < conns.size(); ++i) {
      auto& c = conns[i];
      short ev = i + 2 < fds.size() ? fds[i + 2].revents : 0;
      bool drop = false;
      if (ev & (POLLERR | POLLNVAL)) {
        drop = true;
      } else if (!c.out.empty() && (ev & POLLOUT)) {
        auto n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN)
          drop = true;
        else if (n > 0)
          c.out.erase(0, static_cast<std::size_t>(n));
        if (c.out.empty() && c.close_after_write)
          drop = true;
      } else if (ev & (POLLIN | POLLHUP)) {
        char buf[2048];
        auto n = ::recv(c.fd, buf, sizeof buf, 0);
        if (n <= 0) {
          drop = n == 0 || errno != EAGAIN; // the client closed (or failed)
        } else if (!c.answered) {
          c.in.append(buf, static_cast<std::size_t>(n));
          if (c.in.size() > request_bytes_max) {
            drop = true;
          } else if (c.in.find("\r\n\r\n") != std::string::npos) {
            c.answered = true;
            ++requests_;
            std::lock_guard<std::mutex> guard{mtx_};
            if (mode_ == mode::close) {
              drop = true;
            } else if (mode_ == mode::respond) {
              c.out = response_text();
              c.close_after_write = true;
            } // hang: keep the connection, answer nothing
          }
        }
      }
      if (drop)
        ::close(c.fd);
      else
        kept.push_back(std::move(c));
    }
    conns = std::move(kept);
  }
  for (auto& c : conns)
    ::close(c.fd);
}

std::string http_test_server::response_text() {
  return "HTTP/1.1 " + std::to_string(status_) + " " + reason_phrase(status_)
         + "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body_.size())
         + "\r\nConnection: close\r\n\r\n" + body_;
}

} // namespace registry::test
