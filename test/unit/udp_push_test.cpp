// udp_push_table: subscriptions, expiry, push acks, resends and failures, with an injected clock.

#include <doctest/doctest.h>

#include "actors/http/udp_push.hpp"

using namespace registry;
using namespace registry::http;

namespace {

udp_push_table::config small_config() {
  udp_push_table::config cfg;
  cfg.ack_timeout_ms = 100;
  cfg.retries_max = 2;
  cfg.subscriber_expiry_ms = 1000;
  cfg.subscriptions_max = 3;
  return cfg;
}

const service_key demo{"public", "DEFAULT_GROUP", "demo"};
const udp_address client{"127.0.0.1", 40000};

} // namespace

TEST_CASE("udp_push: a subscription renewed by queries stays, a silent one expires") {
  udp_push_table t{small_config()};
  CHECK(t.subscribe(client, {demo, ""}, 0));
  CHECK(t.subscribe(client, {demo, ""}, 900)); // renewed by the next query
  auto fx = t.on_tick(1500);
  CHECK(fx.expired.empty());
  CHECK(t.subscribed(client, {demo, ""}));
  fx = t.on_tick(1900);
  REQUIRE(fx.expired.size() == 1);
  CHECK(fx.expired[0].first == client);
  CHECK(fx.expired[0].second.key == demo);
  REQUIRE(fx.idle.size() == 1);
  CHECK(!t.subscribed(client, {demo, ""}));
  CHECK(t.subscription_count() == 0);
}

TEST_CASE("udp_push: subscriptions are bounded") {
  udp_push_table t{small_config()};
  for (std::uint16_t p = 1; p <= 3; ++p)
    CHECK(t.subscribe({"127.0.0.1", p}, {demo, ""}, 0));
  CHECK(!t.subscribe({"127.0.0.1", 4}, {demo, ""}, 0));
  CHECK(t.subscribe({"127.0.0.1", 1}, {demo, ""}, 10)); // renewing is always possible
  CHECK(t.unsubscribe({"127.0.0.1", 1}, {demo, ""}));
  CHECK(t.subscribe({"127.0.0.1", 4}, {demo, ""}, 0));
}

TEST_CASE("udp_push: an acknowledged push is done, a lost one is resent and then failed") {
  udp_push_table t{small_config()};
  std::optional<std::uint64_t> superseded;
  auto ref = t.next_ref_time(1000);
  auto id = t.start_push(client, demo, ref, "datagram", 0, superseded);
  CHECK(!superseded);
  CHECK(!t.on_ack({"127.0.0.1", 40001}, ref)); // another address
  CHECK(!t.on_ack(client, ref + 1));            // another push
  auto acked = t.on_ack(client, ref);
  REQUIRE(acked);
  CHECK(*acked == id);
  CHECK(t.pushes_in_flight() == 0);

  auto ref2 = t.next_ref_time(1000);
  CHECK(ref2 > ref);
  auto id2 = t.start_push(client, demo, ref2, "datagram2", 0, superseded);
  CHECK(t.on_tick(99).resend.empty());
  auto fx = t.on_tick(100);
  REQUIRE(fx.resend.size() == 1);
  CHECK(fx.resend[0].second == "datagram2");
  fx = t.on_tick(200);
  CHECK(fx.resend.size() == 1); // second resend (retries_max 2)
  fx = t.on_tick(300);
  CHECK(fx.resend.empty());
  REQUIRE(fx.failed.size() == 1);
  CHECK(fx.failed[0] == id2);
  CHECK(!t.on_ack(client, ref2)); // too late
}

TEST_CASE("udp_push: a newer push to the same address and service supersedes the older") {
  udp_push_table t{small_config()};
  std::optional<std::uint64_t> superseded;
  auto first = t.start_push(client, demo, t.next_ref_time(0), "a", 0, superseded);
  auto second = t.start_push(client, demo, t.next_ref_time(0), "b", 10, superseded);
  REQUIRE(superseded);
  CHECK(*superseded == first);
  CHECK(second != first);
  CHECK(t.pushes_in_flight() == 1);
}

TEST_CASE("udp_push: lastRefTime is unique, increasing and below 2^53") {
  udp_push_table t{small_config()};
  auto a = t.next_ref_time(1'800'000'000'000'000);
  auto b = t.next_ref_time(1'800'000'000'000'000);
  auto c = t.next_ref_time(1'700'000'000'000'000); // the clock stepped back
  CHECK(b == a + 1);
  CHECK(c == b + 1);
  CHECK(c < (std::int64_t{1} << 53));
}

TEST_CASE("udp_push: datagrams and acks in Nacos's format") {
  auto d = make_push_datagram("{\"name\":\"DEFAULT_GROUP@@demo\"}", 42);
  CHECK(d.find("\"type\":\"dom\"") != std::string::npos);
  CHECK(d.find("\"lastRefTime\":42") != std::string::npos);
  CHECK(d.find("\"data\":\"{\\\"name\\\"") != std::string::npos); // data is a JSON string
  std::int64_t ref = 0;
  CHECK(parse_push_ack("{\"type\":\"push-ack\",\"lastRefTime\":42,\"data\":\"\"}", ref));
  CHECK(ref == 42);
  CHECK(parse_push_ack("{\"type\":\"push-ack\",\"lastRefTime\":\"43\",\"data\":\"\"}", ref));
  CHECK(ref == 43);
  CHECK(!parse_push_ack("{\"type\":\"unknown-ack\",\"lastRefTime\":42}", ref));
  CHECK(!parse_push_ack("not json", ref));
  CHECK(!parse_push_ack("{\"type\":\"push-ack\"}", ref));
}
