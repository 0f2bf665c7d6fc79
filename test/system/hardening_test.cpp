// Defects of the core seen by hand: member identity, trust, readiness and session bounds.

#include <doctest/doctest.h>

#include <signal.h>

#include "test/support/node_fixture.hpp"

using namespace registry::test;
using namespace std::chrono_literals;

TEST_CASE("a member listed by another spelling (localhost) is the same node: nothing is lost") {
  auto p0 = free_port();
  auto p1 = free_port();
  auto a0 = "127.0.0.1:" + std::to_string(p0);
  auto a1 = "127.0.0.1:" + std::to_string(p1);
  // Node 0 names node 1 as localhost; node 1 names both by IP.
  auto node0 = test_node::with_members(p0, {a0, "localhost:" + std::to_string(p1)}, cluster_timings);
  auto node1 = test_node::with_members(p1, {a0, a1}, cluster_timings);
  auto& n0 = *node0;
  auto& n1 = *node1;
  n0.launch();
  n1.launch();
  REQUIRE(n0.wait_ready(20s));
  REQUIRE(n1.wait_ready(20s));
  REQUIRE(wait_until([&] { return n0.member_state("localhost:" + std::to_string(p1)) == "UP"; },
                     20s));
  // members shows which node answers at the spelled address.
  auto members = n0.ctl_json({"members"});
  bool announced = false;
  for (auto& m : members["members"])
    if (m["address"] == "localhost:" + std::to_string(p1))
      announced = m.value("node", "") == a1;
  CHECK(announced);

  auto holder = n1.start_ctl({"register", "orders", "10.9.0.1:80", "--hold"}, "holder");
  REQUIRE(holder.wait_for_output("registered", 5s));
  REQUIRE(wait_until([&] { return host_set(n0.hosts("orders")).size() == 1; }, 5s));
  // Past several copy-expiry windows (3 x 500 ms) the live session is still visible at node 0.
  auto deadline = std::chrono::steady_clock::now() + 4s;
  while (std::chrono::steady_clock::now() < deadline) {
    REQUIRE(host_set(n0.hosts("orders")) == std::vector<std::string>{"10.9.0.1:80"});
  }
  CHECK(n0.log().find("member localhost:" + std::to_string(p1) + " is node " + a1)
        != std::string::npos);
  holder.signal(SIGTERM);
  REQUIRE(holder.wait(5s) == 0);
  CHECK(wait_until([&] { return host_set(n0.hosts("orders")).empty(); }, 5s));
}
