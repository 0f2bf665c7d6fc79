// The web console in a real browser: Debian's chromium, headless, driven by puppeteer-core (npm,
// installed into a temporary directory at test time; no browser is downloaded) through
// console_browser.js, against two real nodes with auth on. The driver checks every page against
// `registryctl --json`, performs each action, checks that registry metadata holding markup shows
// as text, and checks a page under query load. Screenshots go to build/test-artefacts/.
// Without npm, node or chromium the test fails, saying which is missing.

#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "test/support/node_fixture.hpp"

using namespace registry::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* puppeteer_package = "puppeteer-core@24.43.1";
constexpr const char* chromium_path = "/usr/bin/chromium";

/// node_modules holding puppeteer-core, installed once per run; "" and `why` on failure.
std::string puppeteer_modules(std::string& why) {
  static std::string failure;
  // PUPPETEER_SKIP_DOWNLOAD: puppeteer-core downloads nothing anyway; this keeps it so.
  static std::string dir = npm_install(puppeteer_package, failure, {"PUPPETEER_SKIP_DOWNLOAD=1"});
  why = failure;
  return dir;
}

std::string artefact_dir() {
  std::string dir = std::string{BUILD_DIR} + "/test-artefacts";
  ::mkdir(dir.c_str(), 0755);
  return dir;
}

} // namespace

TEST_CASE("console: pages against registryctl, actions, escaping, live view under load") {
  // Fail, never skip: a console that was not tested must not look tested.
  REQUIRE_MESSAGE(!which("node").empty(), "node is not installed: the console test needs it");
  REQUIRE_MESSAGE(!which("npm").empty(), "npm is not installed: the console test needs it");
  REQUIRE_MESSAGE(::access(chromium_path, X_OK) == 0,
                  "chromium is not installed at /usr/bin/chromium (tools/install-deps installs it)");
  std::string why;
  auto modules = puppeteer_modules(why);
  REQUIRE_MESSAGE(!modules.empty(), why);

  auto users = make_temp_dir();
  auto hash = run({"/bin/sh", "-c", "printf wonderland | " + registryd_path() + " --hash-password alice"}, 20s);
  REQUIRE(hash.code == 0);
  write_file(users + "/users", hash.out);
  // Heartbeat clients stay healthy for the whole test without beats; Raft on (data_dir).
  const std::string yaml = "heartbeat:\n  unhealthy_timeout_ms: 600000\n  delete_timeout_ms: 1200000\n"
                           "distro:\n  verify_interval_ms: 500\n  lone_ready_wait_ms: 1000\n"
                           "cluster_secret: console-test-secret-0123\n"
                           "data_dir: data\n"
                           "raft:\n  election_timeout_ms: 1000\n  heartbeat_interval_ms: 100\n"
                           "auth:\n  enabled: true\n  secret: 0123456789abcdef0123456789abcdef\n"
                           "  users_file: " + users + "/users\n";
  std::vector<int> ports{free_port(), free_port()};
  std::vector<std::unique_ptr<test_node>> nodes;
  for (auto p : ports)
    nodes.push_back(std::make_unique<test_node>(p, ports, yaml));
  for (auto& n : nodes) {
    n->set_ctl_flags({"--user", "alice", "--password", "wonderland"});
    n->launch();
  }
  for (auto& n : nodes)
    REQUIRE(n->wait_ready(20s));
  REQUIRE(wait_until([&] { return nodes[0]->member_state(nodes[1]->address()) == "UP"; }, 20s));
  std::string leader;
  REQUIRE(wait_until([&] {
    auto r = nodes[0]->ctl_json({"raft"});
    leader = r.is_object() ? r.value("leader", "") : "";
    return !leader.empty();
  }, 20s));
  // The console of the Raft leader: its cluster page shows the members' match indexes too.
  auto& node = nodes[1]->address() == leader ? *nodes[1] : *nodes[0];

  // Data: services with instances over both nodes, metadata holding markup, one subscriber.
  auto reg = [&](std::vector<std::string> args) { REQUIRE(node.ctl(std::move(args)).code == 0); };
  reg({"register", "orders", "10.0.0.1:8080", "--meta", "zone=z1"});
  reg({"register", "orders", "10.0.0.2:8080", "--cluster", "c2", "--weight", "2"});
  reg({"register", "payments", "10.0.1.1:9000", "--meta",
       "note=<img src=x onerror=window.__xss=1>"});
  reg({"register", "inventory", "10.0.2.1:7000"});
  reg({"register", "users", "10.0.3.1:7000"});
  reg({"register", "billing", "10.0.5.1:7000", "--namespace", "dev", "--group", "TEAM_A"});
  auto subscriber = node.start_ctl({"subscribe", "orders"}, "subscriber");
  auto session = node.start_ctl({"register", "sessions", "10.0.4.1:7000", "--hold"}, "session");
  REQUIRE(wait_until([&] {
    auto st = node.ctl_json({"status"});
    return st.is_object() && st.value("subscribers", 0) == 1 && st.value("instances", 0) == 7;
  }, 10s));
  auto http = node.http_address();
  REQUIRE(!http.empty());

  std::vector<std::string> ctl{registryctl_path(), "--node", node.address(), "--caf-heartbeat-ms",
                               "200", "--caf-timeout-ms", "1000", "--user", "alice", "--password",
                               "wonderland"};
  nlohmann::json cfg{{"base", "http://" + http},
                     {"ctl", ctl},
                     {"shots", artefact_dir()},
                     {"user", "alice"},
                     {"password", "wonderland"},
                     {"chromium", chromium_path}};
  auto r = run({which("env"), "NODE_PATH=" + modules, which("node"),
                std::string{SOURCE_DIR} + "/test/system/console_browser.js", cfg.dump()},
               300s);
  INFO("driver output:\n" << r.out << r.err);
  CHECK(r.code == 0);
  for (auto step : {"headers", "login-first", "login", "services-page", "filters", "search", "paging",
                    "service-page", "live-view", "cancel", "offline", "online", "weight",
                    "refused-weight", "threshold", "refused-threshold", "xss", "session-instance", "cluster-page", "logout",
                    "no-page-errors"})
    CHECK_MESSAGE(r.out.find(std::string{"ok "} + step + "\n") != std::string::npos, step);
  MESSAGE("console driver:\n" << r.out);

  // The actions' effects as registryctl sees them afterwards.
  auto orders = node.hosts("orders");
  bool weight_set = false;
  for (auto& h : orders)
    if (h.value("ip", "") == "10.0.0.2")
      weight_set = h.value("weight", 0.0) == 3.5;
  CHECK(weight_set);
  auto listed = host_set(orders);
  CHECK(std::find(listed.begin(), listed.end(), "10.0.0.1:8080") != listed.end());
  // The threshold went through Raft: the other member applies it too.
  auto& other = &node == nodes[0].get() ? *nodes[1] : *nodes[0];
  CHECK(wait_until([&] {
    auto info = other.ctl_json({"instances", "orders"});
    return info.is_object() && info.value("reachProtectionThreshold", false);
  }, 10s));
  subscriber.signal(SIGTERM);
  session.signal(SIGTERM);
  for (auto& n : nodes)
    n->stop();
}

TEST_CASE("console: with auth off the pages and actions need no login") {
  REQUIRE_MESSAGE(!which("node").empty(), "node is not installed: the console test needs it");
  REQUIRE_MESSAGE(!which("npm").empty(), "npm is not installed: the console test needs it");
  REQUIRE_MESSAGE(::access(chromium_path, X_OK) == 0,
                  "chromium is not installed at /usr/bin/chromium (tools/install-deps installs it)");
  std::string why;
  auto modules = puppeteer_modules(why);
  REQUIRE_MESSAGE(!modules.empty(), why);
  test_node node{"heartbeat:\n  unhealthy_timeout_ms: 600000\n  delete_timeout_ms: 1200000\n"
                 "distro:\n  lone_ready_wait_ms: 0\n"};
  REQUIRE(node.start());
  REQUIRE(node.ctl({"register", "orders", "10.0.0.1:8080"}).code == 0);
  std::vector<std::string> ctl{registryctl_path(), "--node", node.address(), "--caf-heartbeat-ms",
                               "200", "--caf-timeout-ms", "1000"};
  nlohmann::json cfg{{"mode", "open"},
                     {"base", "http://" + node.http_address()},
                     {"ctl", ctl},
                     {"shots", artefact_dir()},
                     {"chromium", chromium_path}};
  auto r = run({which("env"), "NODE_PATH=" + modules, which("node"),
                std::string{SOURCE_DIR} + "/test/system/console_browser.js", cfg.dump()},
               120s);
  INFO("driver output:\n" << r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("ok open\n") != std::string::npos);
  node.stop();
}
