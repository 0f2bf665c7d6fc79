// One real registryd process driven by registryctl.

#include <doctest/doctest.h>

#include <signal.h>

#include "test/support/node_fixture.hpp"

using namespace registry::test;
using namespace std::chrono_literals;

namespace {

/// Heartbeat timings short enough for tests.
const char* short_beats = "heartbeat:\n  interval_ms: 200\n  unhealthy_timeout_ms: 600\n"
                          "  delete_timeout_ms: 1200\n  check_interval_ms: 50\n";


bool has_host(const nlohmann::json& hosts, const std::string& ip, int port) {
  if (!hosts.is_array())
    return false;
  for (auto& h : hosts)
    if (h["ip"] == ip && h["port"] == port)
      return true;
  return false;
}

/// True once the node's log holds `text` (lines reach the file from the log thread).
bool node_logged(const test_node& node, const std::string& text) {
  return wait_until([&] { return node.log().find(text) != std::string::npos; }, 2s);
}

} // namespace

TEST_CASE("register, query and deregister a heartbeat instance") {
  test_node node;
  REQUIRE(node.start());
  auto r = node.ctl({"register", "orders", "10.0.0.1:8080", "--weight", "2.5", "--meta",
                     "zone=a", "--cluster", "east"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("heartbeat") != std::string::npos);

  auto info = node.ctl_json({"instances", "orders"});
  REQUIRE(info.is_object());
  CHECK(info["name"] == "DEFAULT_GROUP@@orders");
  CHECK(info["groupName"] == "DEFAULT_GROUP");
  CHECK(info.contains("cacheMillis"));
  CHECK(info.contains("lastRefTime"));
  CHECK(info["reachProtectionThreshold"] == false);
  REQUIRE(info["hosts"].size() == 1);
  auto& h = info["hosts"][0];
  CHECK(h["ip"] == "10.0.0.1");
  CHECK(h["port"] == 8080);
  CHECK(h["weight"] == 2.5);
  CHECK(h["healthy"] == true);
  CHECK(h["enabled"] == true);
  CHECK(h["ephemeral"] == true);
  CHECK(h["clusterName"] == "east");
  CHECK(h["serviceName"] == "DEFAULT_GROUP@@orders");
  CHECK(h["metadata"]["zone"] == "a");
  CHECK(h["instanceId"] == "10.0.0.1#8080#east#DEFAULT_GROUP@@orders");

  // Cluster filter and other namespaces/groups are isolated.
  CHECK(node.hosts("orders", {"--cluster", "west"}).empty());
  CHECK(node.hosts("orders", {"--group", "OTHER"}).empty());
  CHECK(node.hosts("orders", {"--namespace", "dev"}).empty());

  auto services = node.ctl_json({"services"});
  REQUIRE(services.is_object());
  CHECK(services["count"] == 1);
  CHECK(services["services"][0] == "orders");

  r = node.ctl({"deregister", "orders", "10.0.0.1:8080", "--cluster", "east"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(node.hosts("orders").empty());
  CHECK(node.ctl_json({"services"})["count"] == 0);
  CHECK(node_logged(node, "registered instance 10.0.0.1:8080"));
  CHECK(node_logged(node, "deregistered instance 10.0.0.1:8080"));
}

TEST_CASE("disabled and zero-weight instances are left out of queries") {
  test_node node;
  REQUIRE(node.start());
  REQUIRE(node.ctl({"register", "pay", "10.0.0.1:1"}).code == 0);
  REQUIRE(node.ctl({"register", "pay", "10.0.0.2:1", "--disabled"}).code == 0);
  REQUIRE(node.ctl({"register", "pay", "10.0.0.3:1", "--weight", "0"}).code == 0);
  auto hosts = node.hosts("pay");
  REQUIRE(hosts.is_array());
  CHECK(hosts.size() == 1);
  CHECK(has_host(hosts, "10.0.0.1", 1));
}

TEST_CASE("service lists page with a total count") {
  test_node node;
  REQUIRE(node.start());
  for (int i = 0; i < 5; ++i)
    REQUIRE(node.ctl({"register", "svc" + std::to_string(i), "10.0.0.1:" + std::to_string(100 + i)})
              .code
            == 0);
  auto page1 = node.ctl_json({"services", "--page", "1", "--size", "2"});
  auto page3 = node.ctl_json({"services", "--page", "3", "--size", "2"});
  REQUIRE(page1.is_object());
  REQUIRE(page3.is_object());
  CHECK(page1["count"] == 5);
  CHECK(page1["services"] == nlohmann::json::array({"svc0", "svc1"}));
  CHECK(page3["services"] == nlohmann::json::array({"svc4"}));
}

TEST_CASE("a subscriber gets the list at once and again on a change") {
  test_node node;
  REQUIRE(node.start());
  auto sub = node.start_ctl({"--json", "subscribe", "orders", "--count", "2"}, "sub");
  REQUIRE(sub.wait_for_output("\n", 5s));
  auto first = nlohmann::json::parse(sub.out_lines().at(0));
  CHECK(first["hosts"].empty());
  REQUIRE(node.ctl({"register", "orders", "10.0.0.9:9000"}).code == 0);
  REQUIRE(sub.wait(5s) == 0);
  auto lines = sub.out_lines();
  REQUIRE(lines.size() == 2);
  auto second = nlohmann::json::parse(lines[1]);
  CHECK(has_host(second["hosts"], "10.0.0.9", 9000));
  CHECK(node_logged(node, "added subscriber"));
}

TEST_CASE("a held session instance is removed within 2 s of kill -9") {
  test_node node;
  REQUIRE(node.start());
  auto holder = node.start_ctl({"register", "orders", "10.0.0.5:7000", "--hold"}, "holder");
  REQUIRE(holder.wait_for_output("registered", 5s));
  REQUIRE(has_host(node.hosts("orders"), "10.0.0.5", 7000));
  auto killed = std::chrono::steady_clock::now();
  holder.signal(SIGKILL);
  REQUIRE(wait_until([&] { return node.hosts("orders").empty(); }, 5s));
  auto gone_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - killed)
                   .count();
  MESSAGE("crash-to-removal: " << gone_ms << " ms (includes registryctl query time)");
  CHECK(gone_ms < 2000);
  CHECK(node_logged(node, "lost its session"));
}

TEST_CASE("a held session deregisters at once on SIGTERM") {
  test_node node;
  REQUIRE(node.start());
  auto holder = node.start_ctl({"register", "orders", "10.0.0.6:7000", "--hold"}, "holder");
  REQUIRE(holder.wait_for_output("registered", 5s));
  REQUIRE(has_host(node.hosts("orders"), "10.0.0.6", 7000));
  holder.signal(SIGTERM);
  CHECK(holder.wait(5s) == 0);
  CHECK(node.hosts("orders").empty());
}

TEST_CASE("a frozen session client is dropped after the CAF connection timeout") {
  test_node node;
  REQUIRE(node.start());
  auto holder = node.start_ctl({"register", "orders", "10.0.0.7:7000", "--hold"}, "holder");
  REQUIRE(holder.wait_for_output("registered", 5s));
  holder.signal(SIGSTOP);
  CHECK(wait_until([&] { return node.hosts("orders").empty(); }, 5s));
  holder.signal(SIGKILL);
}

TEST_CASE("heartbeat instances turn unhealthy, expire, and come back with a beat") {
  test_node node{short_beats};
  REQUIRE(node.start());
  REQUIRE(node.ctl({"register", "orders", "10.0.0.8:8000"}).code == 0);
  auto healthy_of = [&]() -> int {
    auto hosts = node.hosts("orders");
    if (!hosts.is_array() || hosts.empty())
      return -1;
    return hosts[0]["healthy"] == true ? 1 : 0;
  };
  CHECK(healthy_of() == 1);
  // Unhealthy instances still show (protection off by default threshold 0 would show them healthy,
  // so ask healthy-only to see the flip).
  REQUIRE(wait_until(
    [&] {
      auto hosts = node.hosts("orders", {"--healthy-only"});
      return hosts.is_array() && hosts.empty();
    },
    5s));
  REQUIRE(wait_until([&] { return healthy_of() == -1; }, 5s));
  CHECK(node_logged(node, "unhealthy"));
  CHECK(node_logged(node, "expired"));
  // A beat for the unknown instance re-creates it.
  REQUIRE(node.ctl({"beat", "orders", "10.0.0.8:8000"}).code == 0);
  CHECK(healthy_of() == 1);
}

TEST_CASE("healthy protection returns all instances when too few are healthy") {
  test_node node{std::string{short_beats}
                 + "discovery:\n  service_thresholds:\n    DEFAULT_GROUP@@guarded: 0.5\n"
                   "    DEFAULT_GROUP@@unguarded: -1\n"};
  REQUIRE(node.start());
  // One held (healthy) and one heartbeat instance left to turn unhealthy, in both services.
  auto h1 = node.start_ctl({"register", "guarded", "10.0.1.1:1", "--hold"}, "h1");
  auto h2 = node.start_ctl({"register", "unguarded", "10.0.1.1:1", "--hold"}, "h2");
  REQUIRE(h1.wait_for_output("registered", 5s));
  REQUIRE(h2.wait_for_output("registered", 5s));
  REQUIRE(node.ctl({"register", "guarded", "10.0.1.2:1"}).code == 0);
  REQUIRE(node.ctl({"register", "unguarded", "10.0.1.2:1"}).code == 0);
  auto unhealthy_count = [&](const std::string& svc) {
    auto hosts = node.hosts(svc);
    int n = 0;
    for (auto& h : hosts)
      n += h["healthy"] == false;
    return n;
  };
  REQUIRE(wait_until([&] { return unhealthy_count("unguarded") == 1; }, 5s));
  auto guarded = node.ctl_json({"instances", "guarded"});
  CHECK(guarded["reachProtectionThreshold"] == true);
  CHECK(guarded["hosts"].size() == 2);
  CHECK(unhealthy_count("guarded") == 0);
  auto unguarded = node.ctl_json({"instances", "unguarded"});
  CHECK(unguarded["reachProtectionThreshold"] == false);
}

TEST_CASE("bad field values are refused with the field named, and the node keeps serving") {
  test_node node;
  REQUIRE(node.start());
  struct bad_case {
    std::vector<std::string> args;
    std::string field;
  };
  std::vector<bad_case> cases{
    {{"register", "orders", "10.0.0.1:80", "--weight", "20000"}, "weight"},
    {{"register", "orders", "10.0.0.1:80", "--cluster", "bad cluster"}, "clusterName"},
    {{"register", "@@orders", "10.0.0.1:80"}, "serviceName"},
    {{"register", "orders", "10.0.0.1:80", "--group", "bad group!"}, "groupName"},
    {{"register", "orders", "10.0.0.1:80", "--meta", std::string(2000, 'k') + "=v"}, "metadata"},
  };
  for (auto& c : cases) {
    auto args = c.args;
    args.insert(args.begin(), "--no-local-check");
    auto r = node.ctl(args);
    CAPTURE(c.field);
    CHECK(r.code == 1);
    CHECK(r.err.find(c.field) != std::string::npos);
    // Without --no-local-check the CLI refuses it itself, as a usage error.
    CHECK(node.ctl(c.args).code == 2);
  }
  CHECK(node.ctl_json({"services"})["count"] == 0);
  CHECK(node.ctl({"status"}).code == 0);
}

TEST_CASE("bad CLI arguments are usage errors") {
  test_node node;
  REQUIRE(node.start());
  CHECK(node.ctl({"register", "orders", "10.0.0.1"}).code == 2);
  CHECK(node.ctl({"register", "orders", "10.0.0.1:99999"}).code == 2);
  CHECK(node.ctl({"register", "orders", "10.0.0.1:80", "--meta", "novalue"}).code == 2);
  CHECK(node.ctl({"frobnicate"}).code == 2);
  CHECK(node.ctl({"services", "--page", "0"}).code == 2);
  CHECK(node.ctl({"status"}).code == 0);
}

TEST_CASE("no node at the address: exit 3 within 3 s, naming the address") {
  auto port = free_port();
  auto addr = "127.0.0.1:" + std::to_string(port);
  auto r = run({registryctl_path(), "--node", addr, "status"}, 10s);
  CHECK(r.code == 3);
  CHECK(r.err.find(addr) != std::string::npos);
  CHECK(r.elapsed < 3500ms);
}

TEST_CASE("status reports counts and readiness") {
  test_node node;
  REQUIRE(node.start());
  REQUIRE(node.ctl({"register", "a", "10.0.0.1:1"}).code == 0);
  REQUIRE(node.ctl({"register", "b", "10.0.0.1:1"}).code == 0);
  REQUIRE(node.ctl({"register", "b", "10.0.0.2:1"}).code == 0);
  auto st = node.ctl_json({"status"});
  REQUIRE(st.is_object());
  CHECK(st["ready"] == true);
  CHECK(st["services"] == 2);
  CHECK(st["instances"] == 3);
  CHECK(st["clients"] == 2);
  CHECK(st["address"] == node.address());
}

TEST_CASE("bad configs stop the start-up with file, key and problem") {
  auto dir = make_temp_dir();
  struct bad_config {
    std::string yaml;
    std::string key;
  };
  std::vector<bad_config> cases{
    {"listen: 127.0.0.1:1\nmembers: [127.0.0.1:1]\nfrobnicate: 1\n", "frobnicate"},
    {"listen: 127.0.0.1:1\nmembers: [127.0.0.1:1]\nheartbeat:\n  interval_ms: abc\n",
     "heartbeat.interval_ms"},
    {"listen: 127.0.0.1:99999\nmembers: [127.0.0.1:99999]\n", "listen"},
    {"members: [127.0.0.1:1]\n", "listen"},
  };
  int i = 0;
  for (auto& c : cases) {
    auto path = dir + "/bad" + std::to_string(i++) + ".yaml";
    write_file(path, c.yaml);
    auto r = run({registryd_path(), "--config", path}, 10s);
    CAPTURE(c.yaml);
    CHECK(r.code != 0);
    CHECK(r.err.find(path) != std::string::npos);
    CHECK(r.err.find(c.key) != std::string::npos);
  }
  auto r = run({registryd_path(), "--config", dir + "/missing.yaml"}, 10s);
  CHECK(r.code != 0);
  CHECK(r.err.find("missing.yaml") != std::string::npos);
  remove_tree(dir);
}

TEST_CASE("SIGTERM shuts the node down cleanly") {
  test_node node;
  REQUIRE(node.start());
  CHECK(node.stop() == 0);
  CHECK(node_logged(node, "stopped"));
}
