// Batch register (BatchRegisterRequest, messages/PROTOCOL.md) against real registryd processes: a
// two-node cluster, the client library in this process and registryctl.

#include <doctest/doctest.h>

#include <signal.h>

#include <mutex>
#include <vector>

#include "test/support/node_fixture.hpp"
#include "tools/client/registry_client.hpp"

using namespace registry;
using namespace registry::test;
using namespace std::chrono_literals;

namespace {

/// A library client of `node`, with the fixture's CAF heartbeats; the update task stays out of the
/// way (only pushes change a subscription's state).
client::options batch_client_options(const test_node& node, bool check_locally = true) {
  client::options o;
  o.servers = {node.address()};
  o.update_interval = 60s;
  o.update_backoff_max = 60s;
  o.caf_heartbeat_interval = 200ms;
  o.caf_connection_timeout = 1000ms;
  o.check_locally = check_locally;
  return o;
}

std::vector<instance> batch_of(const std::string& prefix, int n) {
  std::vector<instance> xs;
  for (int i = 1; i <= n; ++i) {
    instance x;
    x.ip = prefix + std::to_string(i);
    x.port = 8080;
    xs.push_back(x);
  }
  return xs;
}

std::vector<std::string> addresses(const std::vector<instance>& xs) {
  std::vector<std::string> result;
  for (auto& x : xs)
    result.push_back(x.address());
  std::sort(result.begin(), result.end());
  return result;
}

} // namespace

TEST_CASE("batch: every instance is visible at the other node, and a new batch replaces the old") {
  test_cluster c{2};
  REQUIRE(c.start());
  client::naming_client client{batch_client_options(c[0])};
  auto first = batch_of("10.7.0.", 5);
  client.register_instances("pay", "DEFAULT_GROUP", first);
  CHECK(c.all_see({0, 1}, "pay", addresses(first), 5s));
  // The client's instances in the service become the second batch's: .1 and .2 go, .6 comes.
  auto second = batch_of("10.7.0.", 6);
  second.erase(second.begin(), second.begin() + 2);
  client.register_instances("pay", "DEFAULT_GROUP", second);
  CHECK(c.all_see({0, 1}, "pay", addresses(second), 5s));
  // A single register adds to the batch, a deregister removes one of it.
  instance extra;
  extra.ip = "10.7.1.1";
  extra.port = 9090;
  client.register_instance("pay", "DEFAULT_GROUP", extra);
  client.deregister_instance("pay", "DEFAULT_GROUP", second.front());
  auto expected = addresses(second);
  expected.erase(std::find(expected.begin(), expected.end(), second.front().address()));
  expected.push_back(extra.address());
  std::sort(expected.begin(), expected.end());
  CHECK(c.all_see({0, 1}, "pay", expected, 5s));
}

TEST_CASE("batch: a bad batch registers nothing and the error names the field") {
  test_cluster c{2};
  REQUIRE(c.start());
  // No local check: the node itself must refuse.
  client::naming_client client{batch_client_options(c[0], false)};
  auto good = batch_of("10.7.2.", 3);
  client.register_instances("pay", "DEFAULT_GROUP", good);
  REQUIRE(c.all_see({0, 1}, "pay", addresses(good), 5s));

  auto bad = batch_of("10.7.3.", 4);
  bad[2].port = 0;
  try {
    client.register_instances("pay", "DEFAULT_GROUP", bad);
    FAIL("a batch with port 0 was accepted");
  } catch (const client::error& e) {
    CHECK(e.from_node());
    CHECK(e.code() == client::error_code::invalid_argument);
    CHECK(e.field() == "instances[2].port");
    CHECK(std::string{e.what()}.find("instances[2]") != std::string::npos);
  }
  bad[2].port = 8080;
  bad[3] = bad[0]; // a duplicate
  try {
    client.register_instances("pay", "DEFAULT_GROUP", bad);
    FAIL("a batch with a duplicate was accepted");
  } catch (const client::error& e) {
    CHECK(e.field() == "instances[3]");
  }
  // Nothing changed: the good batch alone, at both nodes (a later change is seen after the
  // refused ones, so they had their chance to show).
  instance marker;
  marker.ip = "10.7.9.9";
  marker.port = 1;
  client.register_instance("pay", "DEFAULT_GROUP", marker);
  auto expected = addresses(good);
  expected.push_back(marker.address());
  std::sort(expected.begin(), expected.end());
  CHECK(c.all_see({0, 1}, "pay", expected, 5s));

  // With local checks, the library refuses before sending.
  client::naming_client checked{batch_client_options(c[0])};
  try {
    checked.register_instances("pay", "DEFAULT_GROUP", {});
    FAIL("an empty batch was accepted");
  } catch (const client::error& e) {
    CHECK_FALSE(e.from_node());
    CHECK(e.field() == "instances");
  }
}

TEST_CASE("batch: a subscriber at the other node gets one push for the whole batch") {
  test_cluster c{2};
  REQUIRE(c.start());
  std::mutex mtx;
  std::vector<std::size_t> host_counts; // per listener call
  client::naming_client subscriber{batch_client_options(c[1])};
  subscriber.subscribe("pay", "DEFAULT_GROUP", {}, [&](const client::change_event& ev) {
    std::lock_guard<std::mutex> guard{mtx};
    host_counts.push_back(ev.info.hosts.size());
  });
  auto seen = [&](std::size_t hosts) {
    return wait_until(
      [&] {
        std::lock_guard<std::mutex> guard{mtx};
        return !host_counts.empty() && host_counts.back() == hosts;
      },
      5s);
  };
  client::naming_client client{batch_client_options(c[0])};
  client.register_instances("pay", "DEFAULT_GROUP", batch_of("10.7.4.", 20));
  REQUIRE(seen(20));
  // A later single register is pushed after the batch's push: once it is seen, every push the
  // batch caused has arrived.
  instance marker;
  marker.ip = "10.7.5.1";
  marker.port = 1;
  client.register_instance("pay", "DEFAULT_GROUP", marker);
  REQUIRE(seen(21));
  std::lock_guard<std::mutex> guard{mtx};
  auto counts = host_counts;
  counts.erase(counts.begin(), std::find_if(counts.begin(), counts.end(),
                                            [](std::size_t n) { return n > 0; }));
  CHECK(counts == std::vector<std::size_t>{20, 21});
}

TEST_CASE("batch: registryctl register with several addresses holds them as one batch") {
  test_cluster c{2};
  REQUIRE(c.start());
  auto holder = c[0].start_ctl_on(c.node_list(),
                                  {"register", "shop", "10.7.6.1:80", "10.7.6.2:80",
                                   "10.7.6.3:81", "--hold", "--cluster", "east"},
                                  "holder");
  REQUIRE(holder.wait_for_output("registered", 5s));
  CHECK(holder.out().find("as one batch") != std::string::npos);
  std::vector<std::string> all{"10.7.6.1:80", "10.7.6.2:80", "10.7.6.3:81"};
  CHECK(c.all_see({0, 1}, "shop", all, 5s));
  CHECK(c[1].hosts("shop", {"--cluster", "east"}).size() == 3);

  // Without --hold several addresses are refused, naming the argument.
  auto r = c[0].ctl({"register", "shop", "10.7.6.4:80", "10.7.6.5:80"});
  CHECK(r.code == 2);
  CHECK(r.err.find("IP:PORT") != std::string::npos);
  CHECK(r.err.find("--hold") != std::string::npos);
  // A bad address the node refuses is named by its argument; nothing is registered.
  r = c[0].ctl({"--no-local-check", "register", "other", "10.7.7.1:80", "10.7.7.2:0", "--hold"});
  CHECK(r.code == 1);
  CHECK(r.err.find("IP:PORT '10.7.7.2:0'") != std::string::npos);
  CHECK(r.err.find("instances[1].port") != std::string::npos);
  CHECK(c[0].hosts("other").empty());

  // The batch moves with the session when its node dies (redo as one batch).
  c[0].process().signal(SIGKILL);
  c[0].process().wait(5s);
  CHECK(holder.wait_for_output("moved", 10s));
  CHECK(holder.out().find("3 instances re-registered") != std::string::npos);
  CHECK(c.all_see({1}, "shop", all, 5s));
  holder.signal(SIGTERM);
  CHECK(holder.wait(5s) == 0);
  CHECK(c.all_see({1}, "shop", {}, 5s));
}
