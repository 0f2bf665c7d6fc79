// The client library (through registryctl) against a real three-node cluster: moving between
// nodes with redo, failover files, and the update task repairing a missed push.

#include <doctest/doctest.h>

#include <signal.h>

#include <thread>

#include "test/support/node_fixture.hpp"

using namespace registry::test;
using namespace std::chrono_literals;

TEST_CASE("a held registration and a subscription move when their node dies") {
  test_cluster c;
  REQUIRE(c.start());
  // Both clients start at node A, the first of their lists.
  auto holder = c[0].start_ctl_on(c.node_list(), {"register", "orders", "10.9.0.1:80", "--hold"},
                                  "holder");
  auto sub = c[0].start_ctl_on(c.node_list(), {"--json", "subscribe", "orders"}, "sub");
  REQUIRE(holder.wait_for_output("registered", 5s));
  REQUIRE(c.all_see({0, 1, 2}, "orders", {"10.9.0.1:80"}, 5s));
  auto sub_sees = [&](std::size_t hosts) {
    return wait_until(
      [&] {
        auto lines = sub.out_lines();
        return !lines.empty()
               && host_set(nlohmann::json::parse(lines.back())["hosts"]).size() == hosts;
      },
      5s);
  };
  REQUIRE(sub_sees(1));

  c[0].process().signal(SIGKILL);
  c[0].process().wait(5s);
  auto killed = std::chrono::steady_clock::now();
  // Watch B and C for 3 s: the longest time the instance was missing there is the gap.
  auto gap = 0ms, longest = 0ms;
  auto last = killed;
  while (std::chrono::steady_clock::now() - killed < 3s) {
    bool seen = host_set(c[1].hosts("orders")) == std::vector<std::string>{"10.9.0.1:80"}
                && host_set(c[2].hosts("orders")) == std::vector<std::string>{"10.9.0.1:80"};
    auto now = std::chrono::steady_clock::now();
    gap = seen ? 0ms : gap + std::chrono::duration_cast<std::chrono::milliseconds>(now - last);
    longest = std::max(longest, gap);
    last = now;
  }
  MESSAGE("failover gap after kill -9 of the client's node: " << longest.count() << " ms");
  CHECK(longest < 2000ms);
  CHECK(holder.wait_for_output("moved", 5s));
  CHECK(c.all_see({1, 2}, "orders", {"10.9.0.1:80"}, 5s));

  // The subscription moved too: a change made at C reaches it.
  REQUIRE(c[2].ctl({"register", "orders", "10.9.0.2:80"}).code == 0);
  REQUIRE(sub_sees(2));
  holder.signal(SIGTERM);
  CHECK(holder.wait(5s) == 0);
  CHECK(c.all_see({1, 2}, "orders", {"10.9.0.2:80"}, 5s));
}

TEST_CASE("with failover on and every node down, answers come from disk") {
  test_cluster c;
  REQUIRE(c.start());
  auto dir = make_temp_dir();
  REQUIRE(c[0].ctl({"register", "orders", "10.9.1.1:80"}).code == 0);
  REQUIRE(c[0].ctl({"register", "orders", "10.9.1.2:80"}).code == 0);
  REQUIRE(c.all_see({0, 1, 2}, "orders", {"10.9.1.1:80", "10.9.1.2:80"}, 5s));
  // A subscription fills the disk cache.
  auto fill = c[0].ctl_on(c.node_list(), {"--cache-dir", dir, "subscribe", "orders", "--count", "1"});
  REQUIRE(fill.code == 0);
  auto on = c[0].ctl_on(c.node_list(), {"--cache-dir", dir, "failover", "on"});
  REQUIRE_MESSAGE(on.code == 0, on.err);
  CHECK(on.out.find("1 cached services saved") != std::string::npos);
  for (auto& n : c.nodes)
    n->process().signal(SIGKILL);
  for (auto& n : c.nodes)
    n->process().wait(5s);
  auto r = c[0].ctl_on(c.node_list(), {"--cache-dir", dir, "--json", "instances", "orders"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(host_set(nlohmann::json::parse(r.out)["hosts"])
        == std::vector<std::string>{"10.9.1.1:80", "10.9.1.2:80"});
  // Without failover the same read fails: no node answers.
  REQUIRE(c[0].ctl_on(c.node_list(), {"--cache-dir", dir, "failover", "off"}).code == 0);
  CHECK(c[0].ctl_on(c.node_list(), {"--cache-dir", dir, "instances", "orders"}).code == 3);
  remove_tree(dir);
}

TEST_CASE("the update task repairs what a missed push would have delivered") {
  // Pushes are switched off at the nodes: only the subscriber's update task can see the change.
  test_cluster c{3, "push:\n  enabled: false\n"};
  REQUIRE(c.start());
  auto sub = c[0].start_ctl_on(c.node_list(),
                               {"--update-interval-ms", "300", "--json", "subscribe", "orders"},
                               "sub");
  REQUIRE(sub.wait_for_output("\n", 5s));
  REQUIRE(c[1].ctl({"register", "orders", "10.9.2.1:80"}).code == 0);
  CHECK(wait_until(
    [&] {
      auto lines = sub.out_lines();
      return !lines.empty()
             && host_set(nlohmann::json::parse(lines.back())["hosts"])
                  == std::vector<std::string>{"10.9.2.1:80"};
    },
    5s));
  sub.signal(SIGTERM);
}
