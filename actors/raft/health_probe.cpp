#include "actors/raft/health_probe.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace registry {

namespace {

using clock_type = std::chrono::steady_clock;

enum class phase { connecting, sending, reading, done };

struct probe_state {
  int fd = -1;
  phase at = phase::connecting;
  std::string request;
  std::size_t sent = 0;
  std::string answer;
  clock_type::time_point start;
};

std::int64_t elapsed_ms(clock_type::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - since).count();
}

void finish(probe_state& s, health_probe_result& r, std::int32_t outcome) {
  r.outcome = outcome;
  r.rt_ms = elapsed_ms(s.start);
  if (s.fd >= 0)
    ::close(s.fd);
  s.fd = -1;
  s.at = phase::done;
}

/// The status code of an HTTP answer so far (0: not known yet).
int status_code(const std::string& answer) {
  auto eol = answer.find("\r\n");
  if (eol == std::string::npos)
    return 0;
  auto sp = answer.find(' ');
  if (sp == std::string::npos || sp + 4 > eol)
    return -1;
  return std::atoi(answer.c_str() + sp + 1);
}

} // namespace

std::vector<health_probe_result> run_probes(const std::vector<health_probe>& xs,
                                            std::int64_t timeout_ms) {
  std::vector<health_probe_result> results(xs.size());
  std::vector<probe_state> states(xs.size());
  auto started = clock_type::now();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    auto& s = states[i];
    auto& r = results[i];
    r.id = xs[i].id;
    s.start = clock_type::now();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(xs[i].port));
    if (::inet_pton(AF_INET, xs[i].ip.c_str(), &addr.sin_addr) != 1) {
      finish(s, r, 1);
      continue;
    }
    s.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0) {
      finish(s, r, 1);
      continue;
    }
    if (!xs[i].http_path.empty())
      s.request = "GET " + xs[i].http_path + " HTTP/1.0\r\nHost: " + xs[i].ip + ":"
                  + std::to_string(xs[i].port) + "\r\nUser-Agent: registryd health check"
                  + "\r\nConnection: close\r\n\r\n";
    auto rc = ::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    if (rc == 0) {
      if (s.request.empty())
        finish(s, r, 0);
      else
        s.at = phase::sending;
    } else if (errno != EINPROGRESS) {
      finish(s, r, errno == ECONNREFUSED ? 2 : 1);
    }
  }
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < states.size(); ++i) {
      auto& s = states[i];
      if (s.at == phase::done)
        continue;
      short events = s.at == phase::reading ? POLLIN : POLLOUT;
      fds.push_back(pollfd{s.fd, events, 0});
      which.push_back(i);
    }
    if (fds.empty())
      break;
    auto left = timeout_ms - elapsed_ms(started);
    if (left <= 0)
      break;
    auto n = ::poll(fds.data(), fds.size(), static_cast<int>(left));
    if (n < 0 && errno != EINTR)
      break;
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0)
        continue;
      auto& s = states[which[k]];
      auto& r = results[which[k]];
      if (s.at == phase::connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          finish(s, r, err == ECONNREFUSED ? 2 : 1);
          continue;
        }
        if (s.request.empty()) {
          finish(s, r, 0);
          continue;
        }
        s.at = phase::sending;
      }
      if (s.at == phase::sending) {
        auto w = ::send(s.fd, s.request.data() + s.sent, s.request.size() - s.sent, MSG_NOSIGNAL);
        if (w < 0) {
          if (errno != EAGAIN)
            finish(s, r, errno == ECONNREFUSED ? 2 : 1);
          continue;
        }
        s.sent += static_cast<std::size_t>(w);
        if (s.sent == s.request.size())
          s.at = phase::reading;
        continue;
      }
      if (s.at == phase::reading) {
        char buf[512];
        auto got = ::recv(s.fd, buf, sizeof buf, 0);
        if (got < 0 && errno == EAGAIN)
          continue;
        if (got > 0 && s.answer.size() < 4096)
          s.answer.append(buf, static_cast<std::size_t>(got));
        auto code = status_code(s.answer);
        if (code != 0)
          finish(s, r, code >= 200 && code < 300 ? 0 : 1);
        else if (got <= 0)
          finish(s, r, 1);
      }
    }
  }
  // Whatever is left timed out.
  for (std::size_t i = 0; i < states.size(); ++i)
    if (states[i].at != phase::done)
      finish(states[i], results[i], 1);
  return results;
}

} // namespace registry
