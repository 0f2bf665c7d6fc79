// The real npm Nacos 1.x client (nacos-naming 2.6.3) against registryd's HTTP API: installed with
// npm at test time into a temporary directory, driven by nacos_npm_client.js. Skipped, saying so,
// only when npm itself is missing.

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>

#include "test/support/node_fixture.hpp"

using namespace registry::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* npm_package = "nacos-naming@2.6.3";

/// The directory holding node_modules/nacos-naming, installed once per test run ("" = no npm,
/// "FAILED" = npm failed).
const std::string& npm_client_dir() {
  static std::string dir = [] {
    if (which("npm").empty() || which("node").empty())
      return std::string{};
    std::string why;
    auto modules = npm_install(npm_package, why);
    if (modules.empty()) {
      MESSAGE(why);
      return std::string{"FAILED"};
    }
    return modules.substr(0, modules.size() - std::string{"/node_modules"}.size());
  }();
  return dir;
}

/// Runs the driver script; its output (one line per step) is checked by the caller.
run_result drive(const std::vector<std::string>& args) {
 std::vector<std::string> argv{which("env"), "NODE_PATH=" + npm_client_dir() + "/node_modules", which("node"),
                                std::string{SOURCE_DIR} + "/test/system/nacos_npm_client.js"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, 90s);
}

void check_steps(const run_result& r, const std::vector<std::string>& steps) {
  INFO("driver output:\n" << r.out << r.err);
  CHECK(r.code == 0);
  for (auto& s : steps)
    CHECK(r.out.find("ok " + s + "\n") != std::string::npos);
}

/// Short timings: the client beats every second and polls every 2 s.
const std::string npm_timings = "heartbeat:\n  interval_ms: 1000\n  unhealthy_timeout_ms: 3000\n"
                                "  delete_timeout_ms: 6000\n  check_interval_ms: 100\n"
                                "discovery:\n  cache_millis: 2000\n";

} // namespace

TEST_CASE("npm nacos-naming: register, push by UDP, select, status, deregister") {
  if (npm_client_dir().empty()) {
    MESSAGE("SKIPPED: npm (or node) is not installed, so the npm Nacos client cannot be tested");
    return;
  }
  REQUIRE(npm_client_dir() != "FAILED");
  test_node node{npm_timings + "distro:\n  lone_ready_wait_ms: 0\n"};
  REQUIRE(node.start());
  auto http = node.http_address();
  REQUIRE(!http.empty());
  auto r = drive({"basic", http, http});
  check_steps(r, {"subscribe-event", "getAllInstances", "selectInstances-healthy",
                  "selectInstances-unhealthy", "getServerStatus", "deregister"});
  // The change reached the subscriber as a UDP push it acknowledged, not only by polling.
  CHECK(wait_until([&] { return node.log().find("acknowledged UDP push") != std::string::npos; },
                   5s));
  node.stop();
}

TEST_CASE("npm nacos-naming: a node killed while the client is subscribed") {
  if (npm_client_dir().empty()) {
    MESSAGE("SKIPPED: npm (or node) is not installed, so the npm Nacos client cannot be tested");
    return;
  }
  REQUIRE(npm_client_dir() != "FAILED");
  std::vector<int> ports{free_port(), free_port()};
  std::vector<std::unique_ptr<test_node>> nodes;
  for (auto p : ports)
    nodes.push_back(std::make_unique<test_node>(
      p, ports, npm_timings + "distro:\n  verify_interval_ms: 500\n  lone_ready_wait_ms: 1000\n"
                "  reconnect_backoff_min_ms: 100\n  reconnect_backoff_max_ms: 500\n"));
  for (auto& n : nodes)
    n->launch();
  for (auto& n : nodes)
    REQUIRE(n->wait_ready(20s));
  REQUIRE(wait_until([&] { return nodes[0]->member_state(nodes[1]->address()) == "UP"
                                  && nodes[1]->member_state(nodes[0]->address()) == "UP"; },
                     20s));
  auto a = nodes[0]->http_address();
  auto b = nodes[1]->http_address();
  REQUIRE(!a.empty());
  REQUIRE(!b.empty());
  auto r = drive({"kill", a + "," + b, b, std::to_string(nodes[0]->process().pid())});
  check_steps(r, {"subscribed-before-kill", "register-on-survivor", "event-after-kill",
                  "getServerStatus-after-kill"});
  nodes[0]->process().wait(5s);
  nodes[1]->stop();
}
