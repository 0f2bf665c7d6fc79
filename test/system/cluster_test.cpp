// Three real registryd processes on loopback, replicating with Distro.

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <cstdlib>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/interfaces.hpp"
#include "actors/member/member_tracker.hpp"
#include "messages/type_ids.hpp"
#include "test/support/node_fixture.hpp"

using namespace registry::test;
using namespace std::chrono_literals;


TEST_CASE("a registration at A becomes visible at B and C; a subscriber on C is notified") {
  test_cluster c;
  REQUIRE(c.start());
  auto sub = c[2].start_ctl({"--json", "subscribe", "orders", "--count", "2"}, "sub");
  REQUIRE(sub.wait_for_output("\n", 5s));
  auto holder = c[0].start_ctl({"register", "orders", "10.1.0.1:80", "--hold"}, "holder");
  REQUIRE(holder.wait_for_output("registered", 5s));
  CHECK(c.all_see({0, 1, 2}, "orders", {"10.1.0.1:80"}, 5s));
  REQUIRE(sub.wait(5s) == 0);
  auto lines = sub.out_lines();
  REQUIRE(lines.size() == 2);
  CHECK(host_set(nlohmann::json::parse(lines[1])["hosts"]) == std::vector<std::string>{"10.1.0.1:80"});
  // A clean close at A removes it everywhere.
  holder.signal(SIGTERM);
  REQUIRE(holder.wait(5s) == 0);
  CHECK(c.all_see({0, 1, 2}, "orders", {}, 5s));
}

TEST_CASE("a heartbeat write at a node that is not responsible is forwarded") {
  test_cluster c;
  REQUIRE(c.start());
  // Register five heartbeat clients through node A: some belong to B or C.
  std::vector<std::string> expected;
  for (int i = 1; i <= 5; ++i) {
    auto addr = "10.2.0." + std::to_string(i) + ":80";
    REQUIRE(c[0].ctl({"register", "pay", addr}).code == 0);
    expected.push_back(addr);
  }
  CHECK(c.all_see({0, 1, 2}, "pay", expected, 5s));
  // Lines reach the log files from each node's log thread: wait for them.
  auto forwarded = wait_until(
    [&] {
      return c[0].log().find("forward") != std::string::npos
             || c[1].log().find("registered instance 10.2.0.") != std::string::npos
             || c[2].log().find("registered instance 10.2.0.") != std::string::npos;
    },
    2s);
  CHECK(forwarded);
}

TEST_CASE("kill -9 of a node: nothing is lost at the others, its sessions leave, it rejoins") {
  test_cluster c;
  REQUIRE(c.start());
  auto at_a = c[0].start_ctl({"register", "orders", "10.3.0.1:80", "--hold"}, "a");
  auto at_b = c[1].start_ctl({"register", "orders", "10.3.0.2:80", "--hold"}, "b");
  auto at_c = c[2].start_ctl({"register", "orders", "10.3.0.3:80", "--hold"}, "c");
  REQUIRE(at_a.wait_for_output("registered", 5s));
  REQUIRE(at_b.wait_for_output("registered", 5s));
  REQUIRE(at_c.wait_for_output("registered", 5s));
  REQUIRE(c.all_see({0, 1, 2}, "orders", {"10.3.0.1:80", "10.3.0.2:80", "10.3.0.3:80"}, 5s));

  // The holder at B would move to another node; stop it first so B's session really ends.
  at_b.signal(SIGKILL);
  c[1].process().signal(SIGKILL);
  c[1].process().wait(5s);
  auto killed = std::chrono::steady_clock::now();
  // A and C keep their own clients and drop B's within the copy expiry window (3 x 500 ms).
  REQUIRE(c.all_see({0, 2}, "orders", {"10.3.0.1:80", "10.3.0.3:80"}, 5s));
  auto gone_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - killed)
                   .count();
  MESSAGE("B's session left A and C after " << gone_ms << " ms");
  CHECK(c[0].member_state(c[1].address()) == "DOWN");

  // B restarts, loads a snapshot, becomes ready and converges.
  c[1].launch();
  REQUIRE(c[1].wait_ready(20s));
  CHECK(wait_until([&] { return c[1].log().find("loaded a snapshot") != std::string::npos; }, 2s));
  CHECK(c.all_see({0, 1, 2}, "orders", {"10.3.0.1:80", "10.3.0.3:80"}, 5s));
}

TEST_CASE("a heartbeat client whose responsible node dies keeps its instance") {
  test_cluster c;
  REQUIRE(c.start());
  std::vector<std::string> all{c[0].address(), c[1].address(), c[2].address()};
  // Find an address whose responsible node is B, so that beats through A are forwarded to B.
  std::string addr;
  for (int i = 1; i < 200 && addr.empty(); ++i) {
    auto candidate = "10.4.0." + std::to_string(i) + ":80";
    if (registry::responsible_node(all, candidate) == c[1].address())
      addr = candidate;
  }
  REQUIRE(!addr.empty());
  auto beater = c[0].start_ctl({"beat", "pay", addr, "--every-ms", "150"}, "beater");
  REQUIRE(c.all_see({0, 1, 2}, "pay", {addr}, 5s));
  c[1].process().signal(SIGKILL);
  c[1].process().wait(5s);
  // Well past the delete timeout (1.2 s) and the copy expiry (1.5 s): still there at A and C.
  auto deadline = std::chrono::steady_clock::now() + 4s;
  bool always_present = true;
  while (std::chrono::steady_clock::now() < deadline) {
    for (auto i : {0, 2})
      if (host_set(c[i].hosts("pay")) != std::vector<std::string>{addr})
        always_present = false;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(always_present);
  auto hosts = c[0].hosts("pay", {"--healthy-only"});
  CHECK(host_set(hosts) == std::vector<std::string>{addr});
  beater.signal(SIGTERM);
}

TEST_CASE("after writes stop all nodes return identical instance lists") {
  test_cluster c;
  REQUIRE(c.start());
  std::vector<child_process> holders;
  for (int i = 0; i < 9; ++i)
    holders.push_back(c[i % 3].start_ctl(
      {"register", "svc" + std::to_string(i % 2), "10.5.0." + std::to_string(i) + ":80", "--hold"},
      "h" + std::to_string(i)));
  for (int i = 0; i < 6; ++i)
    REQUIRE(c[(i + 1) % 3].ctl({"register", "svc" + std::to_string(i % 2),
                                "10.6.0." + std::to_string(i) + ":80"})
              .code
            == 0);
  for (auto& h : holders)
    REQUIRE(h.wait_for_output("registered", 5s));
  for (auto svc : {"svc0", "svc1"}) {
    CAPTURE(svc);
    CHECK(wait_until(
      [&] {
        auto a = host_set(c[0].hosts(svc));
        return a.size() == (std::string{svc} == "svc0" ? 8u : 7u)
               && a == host_set(c[1].hosts(svc)) && a == host_set(c[2].hosts(svc));
      },
      5s));
  }
}

TEST_CASE("a frozen node is marked DOWN, and UP again after it resumes") {
  test_cluster c;
  REQUIRE(c.start());
  c[2].process().signal(SIGSTOP);
  CHECK(wait_until([&] { return c[0].member_state(c[2].address()) == "DOWN"; }, 10s));
  CHECK(wait_until([&] { return c[1].member_state(c[2].address()) == "DOWN"; }, 10s));
  // Writes during the freeze reach C after it resumes.
  REQUIRE(c[0].ctl({"register", "late", "10.7.0.1:80"}).code == 0);
  c[2].process().signal(SIGCONT);
  CHECK(wait_until([&] { return c[0].member_state(c[2].address()) == "UP"; }, 10s));
  CHECK(c.all_see({0, 1, 2}, "late", {"10.7.0.1:80"}, 10s));
}

TEST_CASE("an authenticated cluster: a frozen node reconnects once it resumes") {
  // With a cluster secret, a lost connection is dialled again with a full handshake. The member
  // answering it had trusted the dialling process before the freeze; it must still prove the
  // secret, or the dialler refuses it and the two stay DOWN for good.
  test_cluster c{3, "cluster_secret: freeze-test-secret-0123456789\n"};
  REQUIRE(c.start());
  REQUIRE(wait_until([&] { return c[0].member_state(c[2].address()) == "UP"; }, 10s));
  c[2].process().signal(SIGSTOP);
  CHECK(wait_until([&] { return c[0].member_state(c[2].address()) == "DOWN"; }, 10s));
  // The connection itself is gone (CAF's heartbeat timeout), not only the probes.
  CHECK(wait_until([&] { return c[0].log().find("lost the connection") != std::string::npos; },
                   10s));
  REQUIRE(c[0].ctl({"register", "late", "10.7.0.2:80"}).code == 0);
  c[2].process().signal(SIGCONT);
  CHECK(wait_until([&] { return c[0].member_state(c[2].address()) == "UP"; }, 10s));
  CHECK(wait_until([&] { return c[2].member_state(c[0].address()) == "UP"; }, 10s));
  CHECK(c.all_see({0, 1, 2}, "late", {"10.7.0.2:80"}, 10s));
  CHECK(c[0].log().find("refused the member") == std::string::npos);
}

TEST_CASE("a node of another cluster is refused") {
  auto pa = free_port(), pb = free_port();
  test_node a{pa, {pa, pb}, cluster_timings};
  // B names the same members but another cluster.
  test_node b{pb, {pa, pb}, cluster_timings};
  write_file(b.config_path(), "listen: " + b.address() + "\nmembers: [" + a.address() + ", "
                                + b.address() + "]\ncluster_name: other\nlog:\n  level: debug\n"
                                + "  file: " + b.dir() + "/node.log\n" + session_config() + cluster_timings);
  a.launch();
  b.launch();
  REQUIRE(a.wait_ready(20s));
  REQUIRE(b.wait_ready(20s));
  CHECK(wait_until([&] { return a.log().find("refused") != std::string::npos; }, 10s));
  CHECK(a.member_state(b.address()) == "DOWN");
  CHECK(b.member_state(a.address()) == "DOWN");
}

TEST_CASE("members added to the file take effect without a restart") {
  auto pa = free_port(), pb = free_port();
  test_node a{pa, {pa}, cluster_timings};
  test_node b{pb, {pa, pb}, cluster_timings};
  a.launch();
  b.launch();
  REQUIRE(a.wait_ready(20s));
  CHECK(a.member_state(b.address()) == "");
  // A learns of B from its re-read file (SIGHUP makes it immediate; the file watch would too).
  write_file(a.config_path(), "listen: " + a.address() + "\nmembers: [" + a.address() + ", "
                                + b.address() + "]\ncluster_name: test\nlog:\n  level: debug\n"
                                + "  file: " + a.dir() + "/node.log\n" + session_config() + cluster_timings);
  a.process().signal(SIGHUP);
  CHECK(wait_until([&] { return a.member_state(b.address()) == "UP"; }, 10s));
  REQUIRE(b.wait_ready(20s));
  REQUIRE(b.ctl({"register", "orders", "10.8.0.1:80"}).code == 0);
  CHECK(wait_until([&] { return host_set(a.hosts("orders")).size() == 1; }, 5s));
  // And forgets it again.
  write_file(a.config_path(), "listen: " + a.address() + "\nmembers: [" + a.address()
                                + "]\ncluster_name: test\nlog:\n  level: debug\n  file: "
                                + a.dir() + "/node.log\n" + session_config() + cluster_timings);
  a.process().signal(SIGHUP);
  CHECK(wait_until([&] { return a.member_state(b.address()).empty(); }, 10s));
}

TEST_CASE("a dead heartbeat instance expires although its responsible node keeps restarting") {
  // Longer beat timeouts than cluster_timings, so that the responsible node restarts several times
  // (kill -9, start, ready) within one delete timeout.
  const std::string timings = "heartbeat:\n  interval_ms: 500\n  unhealthy_timeout_ms: 2000\n"
                              "  delete_timeout_ms: 4000\n  check_interval_ms: 50\n"
                              "distro:\n  verify_interval_ms: 500\n  lone_ready_wait_ms: 1000\n"
                              "  snapshot_retry_delay_ms: 200\n  reconnect_backoff_min_ms: 100\n"
                              "  reconnect_backoff_max_ms: 500\n";
  const auto delete_timeout = 4000ms;
  const auto bound = 3000ms; // a check, a sync, and one restart of the node that holds it
  test_cluster c{0};
  for (int i = 0; i < 3; ++i)
    c.ports.push_back(free_port());
  for (auto p : c.ports)
    c.nodes.push_back(std::make_unique<test_node>(p, c.ports, timings));
  REQUIRE(c.start());
  std::vector<std::string> all{c[0].address(), c[1].address(), c[2].address()};
  std::string addr;
  for (int i = 1; i < 200 && addr.empty(); ++i) {
    auto candidate = "10.9.0." + std::to_string(i) + ":80";
    if (registry::responsible_node(all, candidate) == c[1].address())
      addr = candidate;
  }
  REQUIRE(!addr.empty());
  // Registered through A (forwarded to B, its responsible node); no beat ever follows.
  auto registered = std::chrono::steady_clock::now();
  REQUIRE(c[0].ctl({"register", "pay", addr}).code == 0);
  REQUIRE(c.all_see({0, 1, 2}, "pay", {addr}, 3s));
  auto gone = [&] {
    for (auto i : {0, 1, 2})
      if (!host_set(c[i].hosts("pay")).empty())
        return false;
    return true;
  };
  // B crash-loops: each restart moves responsibility to A or C and back to B.
  int restarts = 0;
  bool expired = false;
  while (!expired && std::chrono::steady_clock::now() < registered + delete_timeout + 2 * bound) {
    c[1].process().signal(SIGKILL);
    c[1].process().wait(5s);
    c[1].launch();
    REQUIRE(c[1].wait_ready(20s));
    ++restarts;
    expired = gone();
  }
  auto gone_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - registered)
                   .count();
  MESSAGE("B restarted " << restarts << " times; the instance was gone everywhere after "
                         << gone_ms << " ms (delete timeout 4000 ms)");
  CHECK(expired);
  CHECK(gone_ms <= (delete_timeout + bound).count());
  CHECK(restarts >= 2);
}

namespace {

/// Bytes this process's connections to 127.0.0.1:`port` have had acknowledged by the other side
/// (read from the sockets themselves; -1 when there is none).
long long bytes_acked_to(int port) {
  long long total = -1;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir)
    return total;
  while (auto* e = readdir(dir)) {
    int fd = std::atoi(e->d_name);
    if (fd <= 2)
      continue;
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0 || peer.sin_family != AF_INET
        || ntohs(peer.sin_port) != port)
      continue;
    tcp_info info{};
    socklen_t info_len = sizeof(info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &info_len) == 0)
      total = (total < 0 ? 0 : total) + static_cast<long long>(info.tcpi_bytes_acked);
  }
  closedir(dir);
  return total;
}

} // namespace

TEST_CASE("a node restarted while its peer decodes a large message reconnects to it at once") {
  // A peer that is busy decoding a large message when a connection to it closes must still
  // attribute the next connection to the node that dials over it (the closed one's descriptor is
  // often reused at once): the restarted node is UP on both sides and data flows both ways.
  test_cluster c{2, "cluster_secret: restart-test-secret-0123456789\n"};
  REQUIRE(c.start());
  caf::actor_system_config cfg;
  registry::wire::configure_system(cfg, 200, 1000, 1); // the test nodes' CAF timings
  caf::actor_system sys{cfg};
  auto b = sys.middleman().remote_actor<registry::front_door_actor>(
    "127.0.0.1", static_cast<std::uint16_t>(c[1].port()));
  REQUIRE_MESSAGE(b, sys.render(b.error()));
  // About 8 MB on the wire that take B a good fraction of a second to decode (4M strings); B's
  // front door has no handler for it and drops it after decoding.
  const std::size_t strings = 4'000'000;
  auto large = caf::make_message(std::vector<std::string>(strings, "x"));
  const long long wire_bytes = 2 * static_cast<long long>(strings);
  const int rounds = 4;
  for (int round = 1; round <= rounds; ++round) {
    CAPTURE(round);
    auto before = bytes_acked_to(c[1].port());
    REQUIRE(before >= 0);
    caf::anon_send(caf::actor_cast<caf::actor>(*b), large);
    // B holds the whole message: it decodes it now.
    REQUIRE(wait_until([&] { return bytes_acked_to(c[1].port()) >= before + wire_bytes; }, 10s));
    c[0].process().signal(SIGKILL);
    c[0].process().wait(5s);
    auto restarted = std::chrono::steady_clock::now();
    c[0].launch();
    REQUIRE(c[0].wait_ready(20s));
    auto both_up = wait_until(
      [&] {
        return c[0].member_state(c[1].address()) == "UP"
               && c[1].member_state(c[0].address()) == "UP";
      },
      10s);
    auto a_name = "10.11." + std::to_string(round) + ".1:80";
    auto b_name = "10.11." + std::to_string(round) + ".2:80";
    auto service = "restart" + std::to_string(round);
    bool exchanged = both_up && c[0].ctl({"register", service, a_name}).code == 0
                     && c[1].ctl({"register", service, b_name}).code == 0
                     && c.all_see({0, 1}, service, {a_name, b_name}, 10s);
    auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - restarted)
                     .count();
    MESSAGE("round " << round << ": both UP " << both_up << ", data exchanged " << exchanged
                     << " after " << took_ms << " ms");
    if (!exchanged) {
      auto log = c[1].log();
      auto at = log.find("anonymous handshake");
      MESSAGE("B's log " << (at == std::string::npos ? std::string{"has no anonymous handshake"}
                                                     : log.substr(at > 200 ? at - 200 : 0, 600)));
    }
    REQUIRE(exchanged);
  }
}
