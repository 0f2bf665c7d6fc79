// The fault tier. Plain parts (schedule, comparison, proxy) are tested first; then real clusters.
//
//   build/test/fault/fault_tests                      CI mode: seeds 1, 2, 3 (about a minute)
//   REGISTRY_FAULT_SEEDS=17,42 build/test/fault/fault_tests -tc="*CI*"     replays seeds
//   REGISTRY_FAULT_PARTITIONS=0 ...                   direct layout, no partition faults
//   REGISTRY_FAULT_LONG=10 build/test/fault/fault_tests -tc="*long*"       10 minutes, 5 nodes,
//                                                     10k clients, 100k instances
//
// A failing run prints the command that replays it and keeps the node logs.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>

#include "test/fault/fault_harness.hpp"
#include "test/fault/fault_plan.hpp"
#include "test/fault/tcp_proxy.hpp"
#include "test/support/process.hpp"

using namespace registry::test;
using namespace registry::test::fault;

namespace {

std::string env(const char* name) {
  auto* v = std::getenv(name);
  return v ? v : "";
}

std::vector<std::uint64_t> seeds_from_env(std::vector<std::uint64_t> fallback) {
  auto text = env("REGISTRY_FAULT_SEEDS");
  if (text.empty())
    return fallback;
  std::vector<std::uint64_t> result;
  std::stringstream in{text};
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty())
      result.push_back(std::stoull(item));
  return result;
}

/// The proxy layout with partition faults is on unless REGISTRY_FAULT_PARTITIONS=0 (nodes then
/// list each other directly). It relies on member identity: a member listed by a proxy's address is
/// the node that answers there.
bool partitions_on() {
  return env("REGISTRY_FAULT_PARTITIONS") != "0";
}

/// Seeds that fail because of a known node bug (each with the reason). Their runs are still made
/// and reported, but do not fail the CI mode.
const std::set<std::uint64_t> known_failures = {};

// -- a tiny echo server for the proxy tests ---------------------------------------------------

class echo_server {
public:
  echo_server() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(fd_, 16);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~echo_server() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }

private:
  void serve() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0)
        return;
      std::thread([c] {
        char buf[4096];
        for (ssize_t n; (n = ::read(c, buf, sizeof(buf))) > 0;)
          if (::send(c, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n)
            break;
        ::close(c);
      }).detach();
    }
  }
  int fd_;
  int port_ = 0;
  std::thread thread_;
};

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Reads up to `n` bytes within `timeout_ms`: the bytes, "<eof>" when closed, "" on timeout.
std::string read_some(int fd, std::size_t n, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0)
    return "";
  std::string buf(n, '\0');
  auto got = ::read(fd, buf.data(), n);
  if (got <= 0)
    return "<eof>";
  buf.resize(static_cast<std::size_t>(got));
  return buf;
}

void report_run(const run_report& r, const std::string& replay) {
  std::int64_t longest = 0, longest_ready = 0, longest_after_settle = 0;
  std::size_t faults = 0, lost = 0, ghosted = 0;
  for (auto& rr : r.rounds) {
    longest = std::max(longest, rr.convergence_ms);
    longest_ready = std::max(longest_ready, rr.ready_ms);
    if (rr.convergence_ms >= 0)
      longest_after_settle = std::max(longest_after_settle, rr.convergence_ms - rr.settled_ms);
    faults += rr.faults;
    lost += rr.lost;
    ghosted += rr.ghosted;
  }
  std::cout << "fault: " << r.rounds.size() << " round(s), " << faults << " faults, longest "
            << "convergence " << longest << " ms (longest until every node was ready "
            << longest_ready << " ms, from the load settled until the lists agreed "
            << longest_after_settle << " ms), lost " << lost << ", ghosted " << ghosted << "\n";
  for (std::size_t i = 0; i < r.rss_start.size(); ++i)
    std::cout << "fault: n" << i << " RSS " << r.rss_start[i] / 1024 << " KiB at start, "
              << (i < r.rss_end.size() ? std::to_string(r.rss_end[i] / 1024) + " KiB" : "?")
              << " at end\n";
  if (!r.ok)
    std::cout << "fault: replay with: " << replay << "\n";
  std::cout << std::flush;
}

} // namespace

TEST_SUITE("fault plan") {

TEST_CASE("a seed always gives the same schedule, another seed another one") {
  plan_options o;
  o.partitions = true;
  o.seed = 7;
  auto a = make_fault_plan(o);
  auto b = make_fault_plan(o);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    CHECK(a[i].describe() == b[i].describe());
  o.seed = 8;
  auto c = make_fault_plan(o);
  bool differs = c.size() != a.size();
  for (std::size_t i = 0; !differs && i < a.size(); ++i)
    differs = a[i].describe() != c[i].describe();
  CHECK(differs);
}

TEST_CASE("every fault is healed in time and no node is in two faults at once") {
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    CAPTURE(seed);
    plan_options o;
    o.seed = seed;
    o.nodes = 3 + static_cast<int>(seed % 3);
    o.partitions = seed % 2 == 0;
    auto plan = make_fault_plan(o);
    std::map<int, int> faults_on; // node -> active faults
    int active = 0, kills = 0;
    std::int64_t last = 0;
    for (auto& ev : plan) {
      CHECK(ev.at_ms >= last);
      CHECK(ev.at_ms <= o.duration_ms);
      last = ev.at_ms;
      if (ev.kind == fault_event::kill_client) {
        ++kills;
        continue;
      }
      CHECK(ev.a >= 0);
      CHECK(ev.a < o.nodes);
      CHECK(ev.b < o.nodes);
      if (!o.partitions)
        CHECK((ev.kind != fault_event::partition_cut && ev.kind != fault_event::partition_stall));
      int delta = ev.is_heal() ? -1 : 1;
      active += delta;
      for (int n : {ev.a, ev.b})
        if (n >= 0) {
          faults_on[n] += delta;
          CHECK(faults_on[n] >= 0);
          CHECK(faults_on[n] <= 1);
        }
      CHECK(active <= o.concurrent_max);
    }
    CHECK(active == 0);
    CHECK(kills == o.doomed_clients);
  }
}

TEST_CASE("views: lost and ghosted instances are counted per node") {
  service_view want{{"a", {"1.1.1.1:1", "1.1.1.1:2"}}, {"b", {"2.2.2.2:1"}}};
  service_view have{{"a", {"1.1.1.1:1", "9.9.9.9:9"}}, {"c", {"3.3.3.3:3"}}};
  auto d = compare_views(want, have);
  CHECK(d.lost == 2);
  CHECK(d.ghosted == 2);
  CHECK_FALSE(d.same());
  CHECK(compare_views(want, want).same());
  CHECK(d.examples.front() == "lost a 1.1.1.1:2");
}

} // TEST_SUITE

TEST_SUITE("tcp proxy") {

TEST_CASE("the proxy forwards, cuts and stalls connections") {
  echo_server echo;
  tcp_proxy proxy{echo.port()};
  int fd = connect_to(proxy.port());
  REQUIRE(fd >= 0);
  REQUIRE(::send(fd, "ping", 4, MSG_NOSIGNAL) == 4);
  CHECK(read_some(fd, 4, 3000) == "ping");

  SUBCASE("cut closes connections and refuses new ones; open lets them through again") {
    proxy.set_mode(proxy_mode::cut);
    CHECK(read_some(fd, 4, 3000) == "<eof>");
    int again = connect_to(proxy.port());
    if (again >= 0) { // accepted by the kernel, then closed by the proxy
      CHECK(read_some(again, 4, 3000) == "<eof>");
      ::close(again);
    }
    proxy.set_mode(proxy_mode::open);
    int fresh = connect_to(proxy.port());
    REQUIRE(fresh >= 0);
    REQUIRE(::send(fresh, "pong", 4, MSG_NOSIGNAL) == 4);
    CHECK(read_some(fresh, 4, 3000) == "pong");
    ::close(fresh);
  }
  SUBCASE("stall holds the bytes until the link opens again") {
    proxy.set_mode(proxy_mode::stall);
    REQUIRE(::send(fd, "held", 4, MSG_NOSIGNAL) == 4);
    // Nothing may arrive while stalled: a bounded wait for the absence of data.
    CHECK(read_some(fd, 4, 300) == "");
    CHECK(proxy.connections() == 1);
    proxy.set_mode(proxy_mode::open);
    CHECK(read_some(fd, 4, 3000) == "held");
  }
  ::close(fd);
}

} // TEST_SUITE

TEST_SUITE("fault injection") {

TEST_CASE("CI: short seeded runs on a 3-node cluster") {
  for (auto seed : seeds_from_env({1, 2, 3})) {
    CAPTURE(seed);
    auto sc = ci_scenario(seed, partitions_on());
    auto r = run_scenario(sc, std::cout);
    std::string replay = "REGISTRY_FAULT_SEEDS=" + std::to_string(seed)
                         + (partitions_on() ? "" : " REGISTRY_FAULT_PARTITIONS=0")
                         + " build/test/fault/fault_tests -tc='CI*'";
    report_run(r, replay);
    if (known_failures.count(seed)) {
      std::cout << "fault: seed " << seed << " is a known failure (see known_failures)\n";
      continue;
    }
    CHECK_MESSAGE(r.ok, r.failure);
  }
}

TEST_CASE("long: minutes of rounds with 10k clients and 100k instances (REGISTRY_FAULT_LONG)") {
  auto minutes = env("REGISTRY_FAULT_LONG");
  if (minutes.empty()) {
    MESSAGE("long mode off; set REGISTRY_FAULT_LONG=<minutes> to run it");
    return;
  }
  auto seeds = seeds_from_env({1000});
  auto sc = long_scenario(seeds.front(), partitions_on(), std::stoi(minutes));
  auto r = run_scenario(sc, std::cout);
  report_run(r, "REGISTRY_FAULT_LONG=" + minutes + " REGISTRY_FAULT_SEEDS="
                  + std::to_string(seeds.front())
                  + (partitions_on() ? "" : " REGISTRY_FAULT_PARTITIONS=0")
                  + " build/test/fault/fault_tests -tc='long*'");
  CHECK_MESSAGE(r.ok, r.failure);
}

} // TEST_SUITE
