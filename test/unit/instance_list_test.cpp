// The compact store's shared instance lists: holders share one copy, a change never reaches
// another holder, and Distro's content hash follows every change.
#include <doctest/doctest.h>

#include "actors/client/client_state.hpp"
#include "actors/distro/distro_protocol.hpp"
#include "actors/service/service_index.hpp"

using namespace registry;

namespace {

const service_key orders{"public", "DEFAULT_GROUP", "orders"};

instance at(const std::string& ip, std::uint32_t port) {
  instance x;
  x.ip = ip;
  x.port = port;
  return x;
}

} // namespace

TEST_CASE("instance_list: a copy shares the instances; a change copies them first") {
  instance_list a{at("10.0.0.1", 80), at("10.0.0.2", 80)};
  instance_list b = a;
  CHECK(b.shares_with(a));
  b.mutate()[0].weight = 5.0;
  CHECK_FALSE(b.shares_with(a));
  CHECK(a[0].weight == 1.0); // the other holder never sees the change
  CHECK(b[0].weight == 5.0);
  CHECK(a != b);
  // The only holder changes in place.
  const instance* before = &b[0];
  b.mutate()[0].weight = 6.0;
  CHECK(&b[0] == before);
}

TEST_CASE("instance_list: the kept digest follows a change made in place") {
  instance_list a{at("10.0.0.1", 80)};
  int computed = 0;
  auto sum_ports = [&](const std::vector<instance>& xs) {
    ++computed;
    std::uint64_t s = 0;
    for (const auto& x : xs)
      s += x.port;
    return s;
  };
  CHECK(a.digest(sum_ports) == 80);
  CHECK(a.digest(sum_ports) == 80);
  CHECK(computed == 1); // kept with the list
  a.mutate()[0].port = 81; // the only holder: in place, the kept value goes
  CHECK(a.digest(sum_ports) == 81);
  instance_list b = a;
  b.mutate()[0].port = 82; // shared: copied, each keeps its own
  CHECK(a.digest(sum_ports) == 81);
  CHECK(b.digest(sum_ports) == 82);
}

TEST_CASE("compact store: the client, the service index and Distro's record hold one list") {
  client_state client{"127.0.0.1:7848/1/1", client_kind::session, client_limits{}};
  REQUIRE(client.put(orders, at("10.0.0.2", 80), 0).changed);
  REQUIRE(client.put(orders, at("10.0.0.1", 80), 0).changed);
  const instance_list& held = client.services().at(orders);
  service_index index{orders};
  REQUIRE(index.put(client.id(), held));
  client_services copy = client.services(); // as a Distro record keeps it
  CHECK(copy.at(orders).shares_with(held));
  CHECK(index.all().size() == 2);
  // A change by the client leaves the index and the record as they were.
  auto revision = content_revision(copy);
  REQUIRE(client.put(orders, at("10.0.0.3", 80), 0).changed);
  CHECK(copy.at(orders).size() == 2);
  CHECK(index.all().size() == 2);
  CHECK(content_revision(client.services()) != revision);
  CHECK(content_revision(copy) == revision);
  // The same content in another order hashes the same.
  client_services reordered;
  reordered[orders] = std::vector<instance>{at("10.0.0.2", 80), at("10.0.0.1", 80)};
  CHECK(content_revision(reordered) == revision);
}
