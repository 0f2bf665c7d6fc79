#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "actors/member/member_tracker.hpp"

using namespace registry;

namespace {

const std::string a = "10.0.0.1:8848";
const std::string b = "10.0.0.2:8848";
const std::string c = "10.0.0.3:8848";
const std::string d = "10.0.0.4:8848";

member_tracker_config make_config() {
  member_tracker_config cfg;
  cfg.failures_until_down = 3;
  cfg.backoff_min_ms = 200;
  cfg.backoff_max_ms = 5000;
  return cfg;
}

/// A tracker at `a` with b and c UP.
member_tracker make_tracker(time_ms now = 0) {
  member_tracker t{a, {a, b, c}, make_config(), now};
  t.on_success(b, now);
  t.on_success(c, now);
  return t;
}

std::string heartbeat_id(int i) {
  return "192.168." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ":8080#true";
}

} // namespace

TEST_CASE("member_tracker: FNV-1a 64 matches the published test vectors") {
  CHECK(fnv1a_64("") == 0xcbf29ce484222325ULL);
  CHECK(fnv1a_64("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(fnv1a_64("foobar") == 0x85944171f73967e8ULL);
}

TEST_CASE("member_tracker: ids map to routing keys and session owners") {
  CHECK(routing_key("10.1.1.1:80#true") == "10.1.1.1:80");
  CHECK(routing_key("10.1.1.1:80") == "10.1.1.1:80");
  CHECK(routing_key("#true") == "#true");
  CHECK(session_owner("10.0.0.2:8848/7/1700000000000") == std::optional<std::string_view>{b});
  CHECK_FALSE(session_owner("10.1.1.1:80#true").has_value());
  CHECK_FALSE(session_owner("/7/1").has_value());
}

TEST_CASE("member_tracker: other members start DOWN with a connection attempt due at once") {
  member_tracker t{a, {c, b}, make_config(), 1000};
  CHECK(t.state(a) == member_state::up);
  CHECK(t.state(b) == member_state::down);
  CHECK_FALSE(t.state(d).has_value());
  CHECK(t.members() == std::vector<std::string>{a, b, c});
  CHECK(t.alive_members() == std::vector<std::string>{a});
  CHECK(t.next_wake() == 1000);
  CHECK(t.due_reconnects(1000) == std::vector<std::string>{b, c});
  CHECK(t.due_reconnects(1000).empty()); // scheduled already
  CHECK_FALSE(t.standalone());
  CHECK(member_tracker{a, {a}, make_config(), 0}.standalone());
}

TEST_CASE("member_tracker: SUSPICIOUS on the first failure, DOWN after failures_until_down") {
  auto t = make_tracker();
  auto ch = t.on_failure(b, 10);
  CHECK(t.state(b) == member_state::suspicious);
  REQUIRE(ch.transitions.size() == 1);
  CHECK(ch.transitions[0].before == member_state::up);
  CHECK(ch.transitions[0].after == member_state::suspicious);
  CHECK_FALSE(ch.alive_changed); // a suspicious member still routes: one timeout re-shards nothing
  ch = t.on_failure(b, 20);
  CHECK(t.state(b) == member_state::suspicious);
  CHECK(ch.transitions.empty());
  ch = t.on_failure(b, 30);
  CHECK(t.state(b) == member_state::down);
  CHECK(ch.alive_changed);
  CHECK(t.alive_members() == std::vector<std::string>{a, c});
  CHECK(t.on_failure(b, 40).empty()); // DOWN stays DOWN
  CHECK(t.failures(b) == 3);
}

TEST_CASE("member_tracker: UP again as soon as the peer answers") {
  auto t = make_tracker();
  t.on_failure(b, 10);
  auto ch = t.on_success(b, 20);
  CHECK(t.state(b) == member_state::up);
  CHECK(t.failures(b) == 0);
  REQUIRE(ch.transitions.size() == 1);
  CHECK(ch.transitions[0].after == member_state::up);
  t.on_connection_lost(b, 30);
  ch = t.on_success(b, 40);
  CHECK(t.state(b) == member_state::up);
  CHECK(ch.alive_changed);
  CHECK_FALSE(t.reconnect_at(b).has_value());
}

TEST_CASE("member_tracker: a lost connection is DOWN at once") {
  auto t = make_tracker();
  auto ch = t.on_connection_lost(c, 100);
  CHECK(t.state(c) == member_state::down);
  CHECK(ch.alive_changed);
  CHECK(t.on_connection_lost(c, 200).empty());
  CHECK(t.on_connection_lost(d, 200).empty()); // unknown member
  CHECK(t.on_success(d, 200).empty());
}

TEST_CASE("member_tracker: DOWN by failed requests is unresponsive until the connection goes") {
  // Requests that time out on an open connection mean a member too slow to answer (or this node
  // too starved to read the answers), not a dead one: the view says so, and a later loss of the
  // connection is a change of the view too.
  auto t = make_tracker();
  for (time_ms now : {10, 20, 30})
    t.on_failure(b, now);
  REQUIRE(t.state(b) == member_state::down);
  auto v = t.view();
  REQUIRE(v.size() == 3);
  CHECK(v[1].address == b);
  CHECK(v[1].unresponsive);
  CHECK_FALSE(v[2].unresponsive);
  auto ch = t.on_connection_lost(b, 40);
  CHECK_FALSE(ch.empty());
  CHECK(ch.transitions.empty()); // still DOWN
  CHECK_FALSE(t.view()[1].unresponsive);
  CHECK(t.on_connection_lost(b, 50).empty());
  // An answer ends it; a lost connection from UP is never unresponsive.
  for (time_ms now : {60, 70, 80})
    t.on_failure(c, now);
  CHECK(t.view()[2].unresponsive);
  t.on_success(c, 90);
  CHECK_FALSE(t.view()[2].unresponsive);
  t.on_connection_lost(c, 100);
  CHECK_FALSE(t.view()[2].unresponsive);
}

TEST_CASE("member_tracker: reconnect backoff doubles from min to max and resets on an answer") {
  auto t = make_tracker();
  t.on_connection_lost(b, 1000);
  std::vector<time_ms> attempts;
  time_ms now = 1000;
  for (int i = 0; i < 8; ++i) {
    REQUIRE(t.next_wake().has_value());
    now = *t.next_wake();
    CHECK(t.due_reconnects(now) == std::vector<std::string>{b});
    attempts.push_back(now);
  }
  // Delays: 200, 400, 800, 1600, 3200, 5000 (capped), 5000, 5000.
  std::vector<time_ms> expected{1200, 1600, 2400, 4000, 7200, 12200, 17200, 22200};
  CHECK(attempts == expected);
  t.on_success(b, now);
  CHECK_FALSE(t.next_wake().has_value());
  t.on_connection_lost(b, 30000);
  CHECK(t.reconnect_at(b) == 30200); // back to the minimum
}

TEST_CASE("member_tracker: members change at runtime; self is always kept and UP") {
  auto t = make_tracker();
  auto ch = t.set_members({b, d}, 500); // self missing from the list, c removed, d added
  REQUIRE(ch.transitions.size() == 2);
  CHECK(ch.transitions[0].address == c);
  CHECK(ch.transitions[0].before == member_state::up);
  CHECK_FALSE(ch.transitions[0].after.has_value());
  CHECK(ch.transitions[1].address == d);
  CHECK_FALSE(ch.transitions[1].before.has_value());
  CHECK(ch.transitions[1].after == member_state::down);
  CHECK(ch.alive_changed);
  CHECK(t.members() == std::vector<std::string>{a, b, d});
  CHECK(t.state(a) == member_state::up);
  CHECK(t.state(b) == member_state::up); // kept as it was
  CHECK(t.due_reconnects(500) == std::vector<std::string>{d});
  auto v = t.view();
  REQUIRE(v.size() == 3);
  CHECK(v[0] == member_view{a, member_state::up});
  CHECK(v[2] == member_view{d, member_state::down});
}

TEST_CASE("member_tracker: members over members_max are refused in sorted order") {
  auto cfg = make_config();
  cfg.members_max = 3;
  member_tracker t{a, {a}, cfg, 0};
  auto ch = t.set_members({d, c, b, a}, 0);
  CHECK(ch.members_refused == 1);
  CHECK(t.members() == std::vector<std::string>{a, b, c});
}

TEST_CASE("member_tracker: config from the node config and validation") {
  node_config::distro_t x;
  x.member_failures_until_down = 5;
  x.reconnect_backoff_min_ms = 50;
  x.reconnect_backoff_max_ms = 400;
  member_tracker_config cfg{x};
  CHECK(cfg.failures_until_down == 5);
  CHECK(cfg.backoff_min_ms == 50);
  CHECK(cfg.backoff_max_ms == 400);
  CHECK(validate(cfg).empty());
  cfg.backoff_min_ms = 500;
  CHECK(validate(cfg) == "backoff_min_ms must not exceed backoff_max_ms");
  cfg = make_config();
  cfg.failures_until_down = 0;
  CHECK_FALSE(validate(cfg).empty());
}

TEST_CASE("member_tracker: a session client belongs to the node in its id") {
  auto t = make_tracker();
  CHECK(t.responsible_node(b + "/1/1700000000000") == b);
  t.on_connection_lost(b, 10);
  CHECK(t.responsible_node(b + "/1/1700000000000") == b); // never re-mapped
}

TEST_CASE("member_tracker: heartbeat clients map by ip:port, identically on every node") {
  auto t = make_tracker();
  member_tracker other{c, {a, b, c}, make_config(), 0};
  other.on_success(a, 0);
  other.on_success(b, 0);
  std::map<std::string, int> load;
  for (int i = 0; i < 3000; ++i) {
    auto id = heartbeat_id(i);
    auto owner = t.responsible_node(id);
    CHECK(owner == other.responsible_node(id));
    CHECK(owner == t.responsible_node(std::string{routing_key(id)}));
    CHECK(owner == responsible_node({c, a, b}, id)); // order of the list does not matter
    ++load[owner];
  }
  REQUIRE(load.size() == 3);
  for (const auto& [node, n] : load)
    CHECK(n > 800); // 1000 expected each
}

TEST_CASE("member_tracker: when a member leaves only its clients move") {
  std::vector<std::string> before{a, b, c, d};
  std::vector<std::string> after{a, b, d};
  int moved = 0;
  for (int i = 0; i < 4000; ++i) {
    auto id = heartbeat_id(i);
    auto x = responsible_node(before, id);
    auto y = responsible_node(after, id);
    if (x != c) {
      CHECK(x == y); // stable
    } else {
      CHECK(y != c);
      ++moved;
    }
  }
  CHECK(moved > 800); // about a quarter moved, and only those
  CHECK(moved < 1200);
}

TEST_CASE("member_tracker: when a member joins only the clients it wins move to it") {
  std::vector<std::string> before{a, b, c};
  std::vector<std::string> after{a, b, c, d};
  for (int i = 0; i < 4000; ++i) {
    auto id = heartbeat_id(i);
    auto x = responsible_node(before, id);
    auto y = responsible_node(after, id);
    CHECK((x == y || y == d));
  }
  CHECK(responsible_node({}, heartbeat_id(1)).empty());
}
