// Persistent instances on three real registryd processes: Raft over the peer links, the data
// directory, kill -9 of the leader and of every node, a minority, and server-side health checks.

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "test/support/node_fixture.hpp"
#include "tools/client/registry_client.hpp"

using namespace registry::test;
using namespace std::chrono_literals;

namespace {

/// Short Raft timings and a data directory next to each node's config.
const std::string raft_yaml = "data_dir: data\n"
                              "raft:\n  election_timeout_ms: 1000\n  heartbeat_interval_ms: 100\n"
                              "  snapshot_threshold_entries: 200\n  snapshot_trailing_entries: 20\n"
                              "  write_timeout_ms: 4000\n"
                              "health_check:\n  interval_min_ms: 100\n  interval_max_ms: 300\n"
                              "  timeout_ms: 100\n  in_flight_max: 64\n"
                              "discovery:\n  protection_enabled: false\n";

registry::client::options client_options(const std::vector<std::string>& servers) {
  registry::client::options o;
  o.servers = servers;
  o.update_interval = 60s;
  o.update_backoff_max = 60s;
  o.request_timeout = 4000ms;
  o.connect_timeout = 1000ms;
  o.caf_heartbeat_interval = 500ms;
  o.caf_connection_timeout = 5000ms;
  return o;
}

/// Three nodes with Raft. CAF heartbeats of 500/5000 ms as in the TLS tests: on a loaded machine
/// the fixture's 200/1000 ms drop healthy links, and every drop costs Raft an election.
struct raft_cluster : test_cluster {
  raft_cluster() : test_cluster(3, raft_yaml) {
    for (auto& n : nodes)
      n->set_caf_timing(500, 5000);
  }
};

/// The index of the node that reports itself leader (-1 when none).
int leader_of(test_cluster& c, const std::vector<std::size_t>& alive) {
  for (auto i : alive) {
    auto r = c[i].ctl_json({"raft"});
    if (!r.is_null() && r.value("role", "") == "leader")
      return static_cast<int>(i);
  }
  return -1;
}

int wait_leader(test_cluster& c, const std::vector<std::size_t>& alive,
                std::chrono::milliseconds timeout = 10s) {
  int result = -1;
  wait_until(
    [&] {
      result = leader_of(c, alive);
      return result >= 0;
    },
    timeout);
  return result;
}

std::string addr(int i) {
  return "10.7." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":8080";
}

/// Every node in `which` shows exactly `expected` (sorted) for `service`.
bool all_hold(test_cluster& c, const std::vector<std::size_t>& which, const std::string& service,
              std::vector<std::string> expected, std::chrono::milliseconds timeout) {
  std::sort(expected.begin(), expected.end());
  return c.all_see(which, service, expected, timeout);
}

} // namespace

TEST_CASE("raft: a persistent instance written at a follower shows on every node") {
  raft_cluster c;
  REQUIRE(c.start());
  int leader = wait_leader(c, {0, 1, 2});
  REQUIRE(leader >= 0);
  auto follower = static_cast<std::size_t>((leader + 1) % 3);
  auto r = c[follower].ctl({"register", "db", "10.6.0.1:5432", "--persistent", "--check", "none"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(all_hold(c, {0, 1, 2}, "db", {"10.6.0.1:5432"}, 5s));
  auto hosts = c[0].hosts("db");
  REQUIRE(hosts.size() == 1);
  CHECK(hosts[0]["ephemeral"] == false);
  // Listed as a service, shown by status and raft.
  auto list = c[2].ctl_json({"services"});
  REQUIRE(!list.is_null());
  CHECK(list["services"] == nlohmann::json::array({"db"}));
  auto st = c[follower].ctl_json({"status"});
  CHECK(st["raftRole"] == "follower");
  // The leader it names (an election may have happened meanwhile on a loaded machine).
  auto named = st["raftLeader"].get<std::string>();
  CHECK((named == c[0].address() || named == c[1].address() || named == c[2].address()));
  auto raft = c[static_cast<std::size_t>(leader)].ctl_json({"raft"});
  CHECK(raft["commitIndex"].get<std::uint64_t>() >= 2);
  CHECK(raft["members"].size() == 3);
  // Mixing kinds is refused with Nacos's message.
  auto mix = c[0].ctl({"register", "db", "10.6.0.2:5432", "--hold"}, 5s);
  CHECK(mix.code != 0);
  CHECK(mix.err.find("is persistent service, can't register ephemeral instance") != std::string::npos);
  auto holder = c[0].start_ctl({"register", "web", "10.6.0.3:80", "--hold"}, "holder");
  REQUIRE(holder.wait_for_output("registered", 5s));
  auto mix2 = c[1].ctl({"register", "web", "10.6.0.4:80", "--persistent"});
  CHECK(mix2.code != 0);
  CHECK(mix2.err.find("is ephemeral service, can't register persistent instance") != std::string::npos);
  holder.signal(SIGTERM);
  holder.wait(5s);
  // Deregister through another node.
  REQUIRE(c[(follower + 1) % 3].ctl({"deregister", "db", "10.6.0.1:5432", "--persistent"}).code == 0);
  CHECK(all_hold(c, {0, 1, 2}, "db", {}, 5s));
}

TEST_CASE("raft: kill -9 of the leader under write load loses no acknowledged write") {
  raft_cluster c;
  REQUIRE(c.start());
  int leader = wait_leader(c, {0, 1, 2});
  REQUIRE(leader >= 0);
  std::mutex mtx;
  std::vector<std::string> acked;
  std::atomic<bool> stop{false};
  std::atomic<int> next{0};
  // Two writers that know every node: a failed write is simply not acknowledged.
  auto writer = [&](std::vector<std::string> servers) {
    registry::client::naming_client client{client_options(servers)};
    while (!stop) {
      int i = next++;
      registry::instance x;
      auto a = addr(i);
      x.ip = a.substr(0, a.find(':'));
      x.port = 8080;
      x.ephemeral = false;
      try {
        client.register_persistent_instance("load", "DEFAULT_GROUP", x, "none");
        std::lock_guard<std::mutex> guard{mtx};
        acked.push_back(a);
      } catch (const registry::client::error&) {
        std::this_thread::sleep_for(20ms);
      }
    }
  };
  std::vector<std::string> all{c[0].address(), c[1].address(), c[2].address()};
  std::vector<std::string> rotated{c[1].address(), c[2].address(), c[0].address()};
  std::thread w1{writer, all};
  std::thread w2{writer, rotated};
  REQUIRE(wait_until([&] { std::lock_guard<std::mutex> g{mtx}; return acked.size() >= 30; }, 10s));
  auto killed = static_cast<std::size_t>(leader);
  c[killed].process().signal(SIGKILL);
  c[killed].process().wait(5s);
  std::size_t at_kill = 0;
  {
    std::lock_guard<std::mutex> g{mtx};
    at_kill = acked.size();
  }
  std::vector<std::size_t> alive;
  for (std::size_t i = 0; i < 3; ++i)
    if (i != killed)
      alive.push_back(i);
  CHECK(wait_leader(c, alive) >= 0);
  // Writes go on with the new leader.
  CHECK(wait_until([&] { std::lock_guard<std::mutex> g{mtx}; return acked.size() >= at_kill + 30; },
                   15s));
  c[killed].launch();
  REQUIRE(c[killed].wait_ready(20s));
  std::this_thread::sleep_for(300ms);
  stop = true;
  w1.join();
  w2.join();
  std::vector<std::string> expected;
  {
    std::lock_guard<std::mutex> g{mtx};
    expected = acked;
  }
  MESSAGE(expected.size() << " acknowledged persistent writes, " << at_kill
                          << " before the kill");
  // Every acknowledged write is everywhere, the restarted node included. Writes that failed may
  // or may not have been applied, so compare as "contains".
  auto holds_all = [&](std::size_t i) {
    auto hosts = host_set(c[i].hosts("load"));
    std::set<std::string> have(hosts.begin(), hosts.end());
    for (auto& a : expected)
      if (!have.count(a))
        return false;
    return true;
  };
  CHECK(wait_until([&] { return holds_all(0) && holds_all(1) && holds_all(2); }, 15s));
  // All nodes agree exactly once the load stopped.
  CHECK(wait_until(
    [&] {
      auto a = host_set(c[0].hosts("load"));
      return a == host_set(c[1].hosts("load")) && a == host_set(c[2].hosts("load"));
    },
    10s));
}

TEST_CASE("raft: kill -9 of every node, then a restart, keeps every acknowledged write") {
  raft_cluster c;
  REQUIRE(c.start());
  REQUIRE(wait_leader(c, {0, 1, 2}) >= 0);
  std::vector<std::string> acked;
  {
    registry::client::naming_client client{
      client_options({c[0].address(), c[1].address(), c[2].address()})};
    // Enough writes for snapshots and compaction (threshold 200).
    for (int i = 0; i < 260; ++i) {
      registry::instance x;
      auto a = addr(i);
      x.ip = a.substr(0, a.find(':'));
      x.port = 8080;
      x.ephemeral = false;
      client.register_persistent_instance("crash", "DEFAULT_GROUP", x, "none");
      acked.push_back(a);
    }
  }
  for (std::size_t i = 0; i < 3; ++i)
    c[i].process().signal(SIGKILL);
  for (std::size_t i = 0; i < 3; ++i)
    c[i].process().wait(5s);
  for (std::size_t i = 0; i < 3; ++i)
    c[i].launch();
  for (std::size_t i = 0; i < 3; ++i)
    REQUIRE(c[i].wait_ready(20s));
  REQUIRE(wait_leader(c, {0, 1, 2}) >= 0);
  CHECK(all_hold(c, {0, 1, 2}, "crash", acked, 15s));
  CHECK(wait_until([&] { return c[0].log().find("snapshotted") != std::string::npos
                                || c[1].log().find("snapshotted") != std::string::npos; },
                   2s));
}

TEST_CASE("raft: a minority cannot commit") {
  raft_cluster c;
  REQUIRE(c.start());
  REQUIRE(wait_leader(c, {0, 1, 2}) >= 0);
  REQUIRE(c[0].ctl({"register", "m", "10.8.0.1:80", "--persistent", "--check", "none"}).code == 0);
  REQUIRE(all_hold(c, {0, 1, 2}, "m", {"10.8.0.1:80"}, 5s));
  for (std::size_t i : {1, 2}) {
    c[i].process().signal(SIGKILL);
    c[i].process().wait(5s);
  }
  auto r = c[0].ctl({"register", "m", "10.8.0.2:80", "--persistent", "--check", "none",
                     "--timeout-ms", "8000"},
                    20s);
  INFO("registryctl said: " << r.err);
  CHECK(r.code != 0);
  // Which error depends on what the survivor believes: no leader, or a leader it cannot reach.
  CHECK((r.err.find("no Raft leader") != std::string::npos
         || r.err.find("not committed") != std::string::npos
         || r.err.find("did not answer") != std::string::npos
         || r.err.find("is not connected") != std::string::npos));
  // Nothing changed at the survivor, and it leads nobody.
  CHECK(host_set(c[0].hosts("m")) == std::vector<std::string>{"10.8.0.1:80"});
  CHECK(c[0].ctl_json({"raft"})["role"] != "leader");
}

namespace {

/// A TCP listener on 127.0.0.1 that can be closed and opened again on the same port. It never
/// accepts: checks connect into its (large) backlog.
class tcp_listener {
public:
  explicit tcp_listener(int port) : port_(port) {
    open();
  }
  ~tcp_listener() {
    close();
  }
  bool open() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, SOMAXCONN) != 0) {
      close();
      return false;
    }
    return true;
  }
  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

private:
  int port_;
  int fd_ = -1;
};

bool healthy_at(test_node& n, const std::string& service, bool expected) {
  auto hosts = n.hosts(service);
  return hosts.size() == 1 && hosts[0]["healthy"] == expected;
}

} // namespace

TEST_CASE("raft: a TCP health check flips an instance when its listener stops and back") {
  raft_cluster c;
  REQUIRE(c.start());
  REQUIRE(wait_leader(c, {0, 1, 2}) >= 0);
  int port = free_port();
  tcp_listener listener{port};
  auto target = "127.0.0.1:" + std::to_string(port);
  REQUIRE(c[1].ctl({"register", "checked", target, "--persistent"}).code == 0);
  REQUIRE(all_hold(c, {0, 1, 2}, "checked", {target}, 5s));
  for (std::size_t i = 0; i < 3; ++i)
    CHECK(healthy_at(c[i], "checked", true));
  // Connection refused: unhealthy at once, on every node (a Raft write).
  listener.close();
  CHECK(wait_until([&] { return healthy_at(c[0], "checked", false) && healthy_at(c[1], "checked", false)
                                && healthy_at(c[2], "checked", false); },
                   5s));
  bool flipped_logged = wait_until(
    [&] {
      for (std::size_t i = 0; i < 3; ++i)
        if (c[i].log().find("health check flips " + target) != std::string::npos)
          return true;
      return false;
    },
    2s);
  CHECK(flipped_logged);
  // Back after three good checks.
  REQUIRE(listener.open());
  CHECK(wait_until([&] { return healthy_at(c[0], "checked", true) && healthy_at(c[1], "checked", true)
                                && healthy_at(c[2], "checked", true); },
                   8s));
}

namespace {

/// The Raft members (id -> voter) that node `n` reports (empty when it does not answer).
std::map<std::string, bool> raft_members(const test_node& n) {
  std::map<std::string, bool> result;
  auto r = n.ctl_json({"raft"});
  if (!r.is_object() || !r["members"].is_array())
    return result;
  for (auto& m : r["members"])
    result[m["id"].get<std::string>()] = m["voter"].get<bool>();
  return result;
}

/// A number of node `n`'s `raft --json` (0 when it does not answer).
std::uint64_t raft_field(const test_node& n, const char* key) {
  auto r = n.ctl_json({"raft"});
  return r.is_object() && r[key].is_number() ? r[key].get<std::uint64_t>() : 0;
}

/// Every node in `which` reports exactly `voters` as voters and no learners.
bool all_report_voters(test_cluster& c, const std::vector<std::size_t>& which,
                       const std::set<std::string>& voters, std::chrono::milliseconds timeout) {
  std::map<std::string, bool> expected;
  for (auto& v : voters)
    expected[v] = true;
  return wait_until(
    [&] {
      for (auto i : which)
        if (raft_members(c[i]) != expected)
          return false;
      return true;
    },
    timeout);
}

/// Whether any node's log holds `text`.
bool any_log_has(test_cluster& c, const std::string& text) {
  for (auto& n : c.nodes)
    if (n->log().find(text) != std::string::npos)
      return true;
  return false;
}

} // namespace

TEST_CASE("raft: the configuration follows the member lists: a node joins, a node leaves") {
  raft_cluster c;
  REQUIRE(c.start());
  int leader = wait_leader(c, {0, 1, 2});
  REQUIRE(leader >= 0);
  std::vector<std::string> written;
  for (int i = 0; i < 5; ++i) {
    written.push_back(addr(i));
    auto r = c[static_cast<std::size_t>(leader)].ctl(
      {"register", "members", addr(i), "--persistent", "--check", "none"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
  }
  // A fourth node with an empty data_dir joins: it must not found a cluster of its own.
  auto p4 = free_port();
  auto all = c.ports;
  all.push_back(p4);
  c.nodes.push_back(std::make_unique<test_node>(p4, all, cluster_timings + raft_yaml));
  c.ports.push_back(p4);
  auto& d = c[3];
  d.set_caf_timing(500, 5000);
  d.set_extra_args({"--raft-join"});
  for (std::size_t i = 0; i < 3; ++i) {
    c[i].set_members(all);
    c[i].process().signal(SIGHUP);
  }
  // Added as a learner; not promoted while it does not run (it acknowledged nothing).
  CHECK(wait_until(
    [&] {
      auto m = raft_members(c[static_cast<std::size_t>(leader)]);
      return m.count(d.address()) > 0 && !m[d.address()];
    },
    10s));
  d.launch();
  std::set<std::string> four{c[0].address(), c[1].address(), c[2].address(), d.address()};
  CHECK(all_report_voters(c, {0, 1, 2, 3}, four, 30s));
  CHECK(wait_until([&] { return raft_field(d, "persistentInstances") == 5; }, 10s));
  CHECK(all_hold(c, {3}, "members", written, 10s));
  CHECK(d.wait_ready(10s));
  CHECK(d.log().find("starts without a configuration") != std::string::npos);
  CHECK(any_log_has(c, "added " + d.address() + " as a learner"));
  CHECK(any_log_has(c, "promoted " + d.address() + " to voter"));
  // The new voter counts: a write commits with it.
  auto w = d.ctl({"register", "members", addr(5), "--persistent", "--check", "none"});
  INFO(w.out << w.err);
  REQUIRE(w.code == 0);
  written.push_back(addr(5));
  CHECK(all_hold(c, {0, 1, 2, 3}, "members", written, 10s));

  // A founding follower leaves the lists of the others.
  leader = wait_leader(c, {0, 1, 2, 3});
  REQUIRE(leader >= 0);
  std::size_t gone = 0;
  while (static_cast<int>(gone) == leader || gone == 3)
    ++gone;
  std::vector<int> rest;
  std::vector<std::size_t> staying;
  std::set<std::string> three;
  for (std::size_t i = 0; i < 4; ++i)
    if (i != gone) {
      rest.push_back(c.ports[i]);
      staying.push_back(i);
      three.insert(c[i].address());
    }
  for (auto i : staying) {
    c[i].set_members(rest);
    c[i].process().signal(SIGHUP);
  }
  CHECK(all_report_voters(c, staying, three, 30s));
  CHECK(any_log_has(c, "removed " + c[gone].address() + " from the configuration"));
  CHECK(c[gone].stop() == 0);
  auto x = c[staying[0]].ctl({"register", "members", addr(6), "--persistent", "--check", "none"});
  INFO(x.out << x.err);
  CHECK(x.code == 0);
  written.push_back(addr(6));
  CHECK(all_hold(c, staying, "members", written, 10s));
}

TEST_CASE("raft: a leader stopped with SIGTERM hands leadership over first") {
  raft_cluster c;
  REQUIRE(c.start());
  int leader = wait_leader(c, {0, 1, 2});
  REQUIRE(leader >= 0);
  auto r = c[0].ctl({"register", "db", "10.6.1.1:5432", "--persistent", "--check", "none"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  auto old_leader = static_cast<std::size_t>(leader);
  auto old_address = c[old_leader].address();
  auto term = raft_field(c[old_leader], "term");
  CHECK(c[old_leader].stop() == 0);
  auto log = c[old_leader].log();
  CHECK(log.find("hands leadership to") != std::string::npos);
  CHECK(log.find("stepped down for the leadership transfer to") != std::string::npos);
  std::vector<std::size_t> others;
  for (std::size_t i = 0; i < 3; ++i)
    if (i != old_leader)
      others.push_back(i);
  int next = wait_leader(c, others, 10s);
  REQUIRE(next >= 0);
  // The new leader campaigned because of the transfer, not after an election timeout.
  CHECK(c[static_cast<std::size_t>(next)].log().find("campaigns at once: leadership transfer from "
                                                     + old_address)
        != std::string::npos);
  MESSAGE("term " << term << " -> " << raft_field(c[static_cast<std::size_t>(next)], "term"));
  auto w = c[others[0]].ctl({"register", "db", "10.6.1.2:5432", "--persistent", "--check", "none"});
  INFO(w.out << w.err);
  CHECK(w.code == 0);
}

TEST_CASE("raft: a restarted follower reports ready only with the writes it missed") {
  raft_cluster c;
  REQUIRE(c.start());
  int leader = wait_leader(c, {0, 1, 2});
  REQUIRE(leader >= 0);
  auto down = static_cast<std::size_t>((leader + 1) % 3);
  auto up = static_cast<std::size_t>((leader + 2) % 3);
  REQUIRE(c[down].stop() == 0);
  for (int i = 0; i < 20; ++i) {
    auto r = c[up].ctl({"register", "missed", addr(i), "--persistent", "--check", "none"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
  }
  c[down].launch();
  // The first time it reports ready, it already holds every write it missed.
  std::uint64_t first = 0;
  REQUIRE(wait_until(
    [&] {
      auto st = c[down].ctl_json({"status"});
      if (!st.is_object() || st["ready"] != true)
        return false;
      first = raft_field(c[down], "persistentInstances");
      return true;
    },
    20s));
  CHECK(first == 20);
  CHECK(c[down].log().find("is ready: applied up to") != std::string::npos);
}

TEST_CASE("raft: registryctl raft --transfer-to hands leadership to the named voter") {
  raft_cluster c;
  REQUIRE(c.start());
  int leader = wait_leader(c, {0, 1, 2});
  REQUIRE(leader >= 0);
  auto l = static_cast<std::size_t>(leader);
  auto t = (l + 1) % 3;
  // Only the leader hands over; a follower says so.
  auto follower = c[t].ctl({"raft", "--transfer-to", "any"});
  CHECK(follower.code == 1);
  CHECK(follower.err.find("is not the Raft leader") != std::string::npos);
  auto stranger = c[l].ctl({"raft", "--transfer-to", "127.0.0.1:1"});
  CHECK(stranger.code == 1);
  CHECK(stranger.err.find("127.0.0.1:1 is not a voter") != std::string::npos);
  auto r = c[l].ctl({"raft", "--transfer-to", c[t].address()});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("leadership moved from " + c[l].address() + " to " + c[t].address())
        != std::string::npos);
  CHECK(wait_until([&] { return leader_of(c, {0, 1, 2}) == static_cast<int>(t); }, 10s));
  CHECK(c[t].log().find("campaigns at once: leadership transfer from " + c[l].address())
        != std::string::npos);
}
