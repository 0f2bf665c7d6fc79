#include <doctest/doctest.h>

#include "actors/service/service_index.hpp"

using namespace registry;

namespace {

const service_key orders{"public", "DEFAULT_GROUP", "orders"};

instance inst(const std::string& ip, std::uint32_t port, bool healthy = true,
              const std::string& cluster = "DEFAULT") {
  instance x;
  x.ip = ip;
  x.port = port;
  x.healthy = healthy;
  x.cluster = cluster;
  return x;
}

std::vector<std::string> addresses(const service_info& info) {
  std::vector<std::string> r;
  for (const auto& h : info.hosts)
    r.push_back(h.address());
  return r;
}

std::size_t healthy_hosts(const service_info& info) {
  std::size_t n = 0;
  for (const auto& h : info.hosts)
    n += h.healthy ? 1 : 0;
  return n;
}

} // namespace

TEST_CASE("service_index: put replaces a client's list and reports visible changes") {
  service_index idx{orders};
  CHECK(idx.key() == orders);
  CHECK(idx.empty());
  CHECK(idx.revision() == 0);

  CHECK(idx.put("c1", {inst("10.0.0.1", 80), inst("10.0.0.2", 80)}));
  CHECK(idx.revision() == 1);
  CHECK(idx.instance_count() == 2);
  CHECK(idx.client_count() == 1);

  // The same contents in another order: nothing visible changed.
  CHECK_FALSE(idx.put("c1", {inst("10.0.0.2", 80), inst("10.0.0.1", 80)}));
  CHECK(idx.revision() == 1);

  // Any field counts.
  auto heavier = inst("10.0.0.2", 80);
  heavier.weight = 3.0;
  CHECK(idx.put("c1", {inst("10.0.0.1", 80), heavier}));
  CHECK(idx.revision() == 2);

  CHECK(idx.put("c2", {inst("10.0.0.3", 80)}));
  CHECK(idx.instance_count() == 3);
  CHECK(idx.client_count() == 2);

  // Replacing shrinks, too.
  CHECK(idx.put("c1", {inst("10.0.0.1", 80)}));
  CHECK(idx.instance_count() == 2);

  // An empty list removes the client.
  CHECK(idx.put("c1", {}));
  CHECK(idx.client_count() == 1);
  CHECK(idx.instance_count() == 1);
  CHECK_FALSE(idx.put("c1", {}));
  auto rev = idx.revision();

  CHECK_FALSE(idx.remove_client("nobody"));
  CHECK(idx.revision() == rev);
  CHECK(idx.remove_client("c2"));
  CHECK(idx.revision() == rev + 1);
  CHECK(idx.empty());
  CHECK(idx.instance_count() == 0);
}

TEST_CASE("service_index: all() merges clients sorted by cluster, ip, port") {
  service_index idx{orders};
  idx.put("c1", {inst("10.0.0.2", 80, true, "b"), inst("10.0.0.1", 90)});
  idx.put("c2", {inst("10.0.0.1", 80), inst("10.0.0.1", 70, true, "a")});
  auto xs = idx.all();
  REQUIRE(xs.size() == 4);
  CHECK(xs[0].cluster == "DEFAULT");
  CHECK(xs[0].address() == "10.0.0.1:80");
  CHECK(xs[1].address() == "10.0.0.1:90");
  CHECK(xs[2].cluster == "a");
  CHECK(xs[3].cluster == "b");
}

TEST_CASE("service_index: select fills the service info") {
  service_index idx{orders};
  idx.put("c1", {inst("10.0.0.2", 80), inst("10.0.0.1", 80)});
  auto info = idx.select({{"DEFAULT", "x"}, false}, 0.0, 12345, 10000);
  CHECK(info.key == orders);
  CHECK(info.clusters == "DEFAULT,x");
  CHECK(info.last_ref_time_ms == 12345);
  CHECK(info.cache_millis == 10000);
  CHECK_FALSE(info.reach_protection_threshold);
  CHECK(addresses(info) == std::vector<std::string>{"10.0.0.1:80", "10.0.0.2:80"});
  CHECK(idx.select({}, 0.0, 0, 0).clusters.empty());
}

TEST_CASE("service_index: threshold 0 with no healthy instance returns all, marked healthy") {
  // Nacos #2031: the default threshold 0.0 fires exactly when nothing is healthy.
  service_index idx{orders};
  idx.put("c1", {inst("10.0.0.1", 80, false), inst("10.0.0.2", 80, false)});
  auto info = idx.select({}, 0.0, 0, 10000);
  CHECK(info.reach_protection_threshold);
  CHECK(info.hosts.size() == 2);
  CHECK(healthy_hosts(info) == 2);
  // The index itself is untouched.
  for (const auto& x : idx.all())
    CHECK_FALSE(x.healthy);
}

TEST_CASE("service_index: threshold 0 with one healthy instance does not fire") {
  service_index idx{orders};
  idx.put("c1", {inst("10.0.0.1", 80, false), inst("10.0.0.2", 80, true)});
  auto info = idx.select({}, 0.0, 0, 10000);
  CHECK_FALSE(info.reach_protection_threshold);
  CHECK(info.hosts.size() == 2);
  CHECK(healthy_hosts(info) == 1);
}

TEST_CASE("service_index: healthy_only with every instance unhealthy is empty") {
  service_index idx{orders};
  idx.put("c1", {inst("10.0.0.1", 80, false), inst("10.0.0.2", 80, false)});
  auto info = idx.select({{}, true}, 0.0, 0, 10000);
  CHECK(info.hosts.empty());
  CHECK_FALSE(info.reach_protection_threshold);
  // Even a high threshold cannot fire on an empty result (0/0).
  CHECK(idx.select({{}, true}, 0.9, 0, 10000).hosts.empty());
}

TEST_CASE("service_index: healthy_only leaves unhealthy out; ratio 1.0 fires only at threshold 1") {
  service_index idx{orders};
  idx.put("c1", {inst("10.0.0.1", 80, false), inst("10.0.0.2", 80, true)});
  auto info = idx.select({{}, true}, 0.5, 0, 10000);
  CHECK_FALSE(info.reach_protection_threshold);
  CHECK(addresses(info) == std::vector<std::string>{"10.0.0.2:80"});
  auto at_one = idx.select({{}, true}, 1.0, 0, 10000);
  CHECK(at_one.reach_protection_threshold);
  CHECK(addresses(at_one) == std::vector<std::string>{"10.0.0.2:80"});
}

TEST_CASE("service_index: threshold 0.5 with 1 of 3 healthy fires") {
  service_index idx{orders};
  idx.put("c1", {inst("10.0.0.1", 80, true), inst("10.0.0.2", 80, false),
                 inst("10.0.0.3", 80, false)});
  auto info = idx.select({}, 0.5, 0, 10000);
  CHECK(info.reach_protection_threshold);
  CHECK(info.hosts.size() == 3);
  CHECK(healthy_hosts(info) == 3);
  // 2 of 3 healthy (0.67) is above the threshold.
  idx.put("c1", {inst("10.0.0.1", 80, true), inst("10.0.0.2", 80, true),
                 inst("10.0.0.3", 80, false)});
  auto above = idx.select({}, 0.5, 0, 10000);
  CHECK_FALSE(above.reach_protection_threshold);
  CHECK(healthy_hosts(above) == 2);
  // The ratio is inclusive: 1 of 2 at 0.5 fires.
  idx.put("c1", {inst("10.0.0.1", 80, true), inst("10.0.0.2", 80, false)});
  CHECK(idx.select({}, 0.5, 0, 10000).reach_protection_threshold);
}

TEST_CASE("service_index: a negative threshold switches protection off") {
  service_index idx{orders};
  idx.put("c1", {inst("10.0.0.1", 80, false), inst("10.0.0.2", 80, false)});
  auto info = idx.select({}, -1.0, 0, 10000);
  CHECK_FALSE(info.reach_protection_threshold);
  CHECK(info.hosts.size() == 2);
  CHECK(healthy_hosts(info) == 0);
  CHECK(idx.select({{}, true}, -1.0, 0, 10000).hosts.empty());
}

TEST_CASE("service_index: disabled instances and weight 0 never reach clients") {
  service_index idx{orders};
  auto disabled = inst("10.0.0.1", 80);
  disabled.enabled = false;
  auto weightless = inst("10.0.0.2", 80);
  weightless.weight = 0.0;
  idx.put("c1", {disabled, weightless, inst("10.0.0.3", 80, false)});
  auto info = idx.select({}, -1.0, 0, 10000);
  CHECK(addresses(info) == std::vector<std::string>{"10.0.0.3:80"});
  // They do not count for protection either: the only candidate is unhealthy, so 0 fires.
  auto protected_info = idx.select({}, 0.0, 0, 10000);
  CHECK(protected_info.reach_protection_threshold);
  CHECK(addresses(protected_info) == std::vector<std::string>{"10.0.0.3:80"});
  // Only disabled/weightless ones: empty, and no protection.
  idx.put("c1", {disabled, weightless});
  auto none = idx.select({}, 0.0, 0, 10000);
  CHECK(none.hosts.empty());
  CHECK_FALSE(none.reach_protection_threshold);
}

TEST_CASE("service_index: cluster filter") {
  service_index idx{orders};
  idx.put("c1", {inst("10.0.0.1", 80, true, "east"), inst("10.0.0.2", 80, true, "west"),
                 inst("10.0.0.3", 80, false, "north")});
  idx.put("c2", {inst("10.0.0.4", 80, true, "east")});
  auto east = idx.select({{"east"}, false}, 0.0, 0, 10000);
  CHECK(addresses(east) == std::vector<std::string>{"10.0.0.1:80", "10.0.0.4:80"});
  CHECK(east.clusters == "east");
  auto two = idx.select({{"west", "east"}, false}, 0.0, 0, 10000);
  CHECK(two.hosts.size() == 3);
  CHECK(two.clusters == "west,east");
  CHECK(idx.select({{"nowhere"}, false}, 0.0, 0, 10000).hosts.empty());
  // Protection looks at the asked clusters only: north alone has no healthy instance.
  auto north = idx.select({{"north"}, false}, 0.0, 0, 10000);
  CHECK(north.reach_protection_threshold);
  CHECK(healthy_hosts(north) == 1);
  CHECK(idx.select({}, 0.0, 0, 10000).hosts.size() == 4);
}

TEST_CASE("service_index: paginate") {
  std::vector<std::string> names;
  for (char c = 'a'; c <= 'e'; ++c)
    names.emplace_back(1, c);
  auto p1 = paginate(names, 1, 2);
  CHECK(p1.count == 5);
  CHECK(p1.items == std::vector<std::string>{"a", "b"});
  CHECK(paginate(names, 2, 2).items == std::vector<std::string>{"c", "d"});
  auto last = paginate(names, 3, 2);
  CHECK(last.count == 5);
  CHECK(last.items == std::vector<std::string>{"e"});
  auto beyond = paginate(names, 4, 2);
  CHECK(beyond.count == 5);
  CHECK(beyond.items.empty());
  CHECK(paginate(names, 1, 500).items.size() == 5);
  CHECK(paginate(names, 4000000000u, 500).items.empty()); // no overflow
  CHECK(paginate({}, 1, 20).count == 0);
  CHECK(paginate({}, 1, 20).items.empty());
}

TEST_CASE("an instance published by two clients shows once, healthy if either says so") {
  registry::service_index idx{registry::service_key{"public", "DEFAULT_GROUP", "orders"}};
  registry::instance x;
  x.ip = "10.0.0.1";
  x.port = 80;
  x.healthy = false;
  idx.put("old-session", {x});
  x.healthy = true;
  idx.put("new-session", {x});
  auto info = idx.select({}, -1.0, 0, 10000);
  REQUIRE(info.hosts.size() == 1);
  CHECK(info.hosts[0].healthy);
  idx.remove_client("new-session");
  info = idx.select({}, -1.0, 0, 10000);
  REQUIRE(info.hosts.size() == 1);
  CHECK_FALSE(info.hosts[0].healthy);
}

TEST_CASE("service_index: which kinds it holds follows every put and removal") {
  service_index idx{orders};
  CHECK_FALSE(idx.holds_persistent());
  CHECK_FALSE(idx.holds_ephemeral());
  idx.put(persistent_client_id("10.0.0.1", 80), {inst("10.0.0.1", 80)});
  idx.put(persistent_client_id("10.0.0.2", 80), {inst("10.0.0.2", 80)});
  CHECK(idx.holds_persistent());
  CHECK_FALSE(idx.holds_ephemeral());
  idx.put(persistent_client_id("10.0.0.1", 80), {inst("10.0.0.1", 80, false)}); // a replace
  idx.put("node/1/1", {inst("10.0.0.3", 80)});
  CHECK(idx.holds_ephemeral());
  idx.put("node/1/1", {}); // an empty list removes the client
  CHECK_FALSE(idx.holds_ephemeral());
  idx.remove_client(persistent_client_id("10.0.0.1", 80));
  CHECK(idx.holds_persistent());
  idx.remove_client(persistent_client_id("10.0.0.2", 80));
  idx.remove_client(persistent_client_id("10.0.0.2", 80)); // twice: nothing to remove
  CHECK_FALSE(idx.holds_persistent());
  CHECK(idx.empty());
}
