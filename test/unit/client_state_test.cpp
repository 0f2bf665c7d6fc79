#include <doctest/doctest.h>

#include <algorithm>

#include "actors/client/client_state.hpp"

using namespace registry;

namespace {

const service_key svc_a{"public", "DEFAULT_GROUP", "a"};
const service_key svc_b{"public", "DEFAULT_GROUP", "b"};

instance node(const std::string& ip, std::uint32_t port, const std::string& cluster = "DEFAULT") {
  instance x;
  x.ip = ip;
  x.port = port;
  x.cluster = cluster;
  return x;
}

client_state heartbeat_client(client_limits limits = {}) {
  return client_state{heartbeat_client_id("10.0.0.1", 8080), client_kind::heartbeat, limits};
}

const instance* find(const client_state& c, const service_key& key, const std::string& ip,
                     std::uint32_t port) {
  auto i = c.services().find(key);
  if (i == c.services().end())
    return nullptr;
  for (const auto& x : i->second)
    if (x.ip == ip && x.port == port)
      return &x;
  return nullptr;
}

} // namespace

TEST_CASE("client_state: kinds have names") {
  CHECK(std::string{to_string(client_kind::session)} == "session");
  CHECK(std::string{to_string(client_kind::heartbeat)} == "heartbeat");
  CHECK(std::string{to_string(client_kind::replica)} == "replica");
  client_state c{"node/1/2", client_kind::session, {}};
  CHECK(c.id() == "node/1/2");
  CHECK(c.kind() == client_kind::session);
  CHECK(c.empty());
  CHECK(c.revision() == 0);
}

TEST_CASE("client_state: put adds, replaces by (ip, port, cluster) and bumps the revision") {
  client_state c{"s/1/1", client_kind::session, {}};
  auto r = c.put(svc_a, node("10.0.0.1", 80), 0);
  CHECK_FALSE(r.error);
  CHECK(r.changed);
  CHECK(c.revision() == 1);
  CHECK(c.instance_count() == 1);
  // The instance id stays empty: the actor fills it.
  CHECK(c.services().at(svc_a).front().instance_id.empty());

  // Identical: no change, no bump.
  r = c.put(svc_a, node("10.0.0.1", 80), 10);
  CHECK_FALSE(r.error);
  CHECK_FALSE(r.changed);
  CHECK(c.revision() == 1);

  // Same identity, other content: replaced in place.
  auto heavier = node("10.0.0.1", 80);
  heavier.weight = 5.0;
  r = c.put(svc_a, heavier, 20);
  CHECK(r.changed);
  CHECK(c.revision() == 2);
  CHECK(c.instance_count() == 1);
  CHECK(c.services().at(svc_a).front().weight == 5.0);

  // Another cluster or port is another instance; another service too.
  CHECK(c.put(svc_a, node("10.0.0.1", 80, "east"), 30).changed);
  CHECK(c.put(svc_a, node("10.0.0.1", 81), 30).changed);
  CHECK(c.put(svc_b, node("10.0.0.1", 80), 30).changed);
  CHECK(c.instance_count() == 4);
  CHECK(c.services().size() == 2);
  CHECK(c.services().at(svc_a).size() == 3);
  CHECK(c.revision() == 5);
}

TEST_CASE("client_state: remove") {
  client_state c{"s/1/1", client_kind::session, {}};
  c.put(svc_a, node("10.0.0.1", 80), 0);
  c.put(svc_a, node("10.0.0.2", 80), 0);
  auto rev = c.revision();
  CHECK_FALSE(c.remove(svc_a, "10.0.0.1", 80, "east"));
  CHECK_FALSE(c.remove(svc_b, "10.0.0.1", 80, "DEFAULT"));
  CHECK(c.revision() == rev);
  CHECK(c.remove(svc_a, "10.0.0.1", 80, "DEFAULT"));
  CHECK(c.revision() == rev + 1);
  CHECK(c.instance_count() == 1);
  CHECK(c.remove(svc_a, "10.0.0.2", 80, "DEFAULT"));
  CHECK(c.services().count(svc_a) == 0); // an empty service disappears
  CHECK(c.empty());
  CHECK(c.instance_count() == 0);
}

TEST_CASE("client_state: the instance bound is enforced and changes nothing") {
  client_limits limits;
  limits.instances_max = 2;
  client_state c{"s/1/1", client_kind::session, limits};
  CHECK(c.put(svc_a, node("10.0.0.1", 80), 0).changed);
  CHECK(c.put(svc_b, node("10.0.0.1", 80), 0).changed);
  auto rev = c.revision();
  auto r = c.put(svc_a, node("10.0.0.2", 80), 0);
  REQUIRE(r.error);
  CHECK(r.error->field == "instances");
  CHECK(r.error->message == "client s/1/1 holds 2 instances, the limit is 2");
  CHECK_FALSE(r.changed);
  CHECK(c.instance_count() == 2);
  CHECK(c.revision() == rev);
  // Replacing an existing instance is fine at the bound.
  auto heavier = node("10.0.0.1", 80);
  heavier.weight = 2.0;
  r = c.put(svc_a, heavier, 0);
  CHECK_FALSE(r.error);
  CHECK(r.changed);
  // So is a beat for a known instance; a beat that would create one is refused.
  CHECK_FALSE(c.beat(svc_a, heavier, 0).error);
  auto b = c.beat(svc_a, node("10.0.0.3", 80), 0);
  REQUIRE(b.error);
  CHECK(b.error->field == "instances");
  CHECK_FALSE(b.created);
  CHECK_FALSE(b.changed);
  // Room again after a removal.
  c.remove(svc_b, "10.0.0.1", 80, "DEFAULT");
  CHECK_FALSE(c.put(svc_a, node("10.0.0.2", 80), 0).error);
}

TEST_CASE("client_state: heartbeat expiry with an injected clock") {
  auto c = heartbeat_client();
  c.put(svc_a, node("10.0.0.1", 80), 0);
  auto rev = c.revision();

  auto t = c.tick(14900);
  CHECK(t.changed.empty());
  REQUIRE(find(c, svc_a, "10.0.0.1", 80));
  CHECK(find(c, svc_a, "10.0.0.1", 80)->healthy);
  CHECK(c.tick(15000).changed.empty()); // exactly at the timeout: still healthy
  CHECK(c.revision() == rev);

  t = c.tick(15100);
  CHECK(t.changed == std::vector<service_key>{svc_a});
  REQUIRE(t.marked_unhealthy.size() == 1);
  CHECK(t.marked_unhealthy[0].first == svc_a);
  CHECK(t.marked_unhealthy[0].second.address() == "10.0.0.1:80");
  CHECK_FALSE(t.marked_unhealthy[0].second.healthy);
  CHECK(t.removed.empty());
  CHECK_FALSE(find(c, svc_a, "10.0.0.1", 80)->healthy);
  CHECK(c.revision() == rev + 1);

  // Already unhealthy: no further flip.
  t = c.tick(20000);
  CHECK(t.changed.empty());
  CHECK(t.marked_unhealthy.empty());
  CHECK(c.revision() == rev + 1);

  CHECK(c.tick(30000).removed.empty());
  t = c.tick(30100);
  CHECK(t.changed == std::vector<service_key>{svc_a});
  REQUIRE(t.removed.size() == 1);
  CHECK(t.removed[0].first == svc_a);
  CHECK(t.removed[0].second.address() == "10.0.0.1:80");
  CHECK(c.empty());
  CHECK(c.services().empty());
  CHECK(c.instance_count() == 0);
  CHECK(c.revision() == rev + 2);
}

TEST_CASE("client_state: expiry skips straight to removal after a long silence") {
  auto c = heartbeat_client();
  c.put(svc_a, node("10.0.0.1", 80), 0);
  c.put(svc_a, node("10.0.0.2", 80), 20000);
  auto t = c.tick(30100);
  CHECK(t.removed.size() == 1);
  CHECK(t.marked_unhealthy.empty());
  CHECK(c.instance_count() == 1);
  CHECK(c.services().count(svc_a) == 1); // still holds 10.0.0.2
}

TEST_CASE("client_state: a beat restores health after expiry") {
  auto c = heartbeat_client();
  c.put(svc_a, node("10.0.0.1", 80), 0);
  c.tick(15100);
  REQUIRE_FALSE(find(c, svc_a, "10.0.0.1", 80)->healthy);
  auto rev = c.revision();
  auto b = c.beat(svc_a, node("10.0.0.1", 80), 16000);
  CHECK_FALSE(b.error);
  CHECK_FALSE(b.created);
  CHECK(b.changed);
  CHECK(find(c, svc_a, "10.0.0.1", 80)->healthy);
  CHECK(c.revision() == rev + 1);
  // The beat restarted the clock: healthy until 16000 + 15000.
  CHECK(c.tick(31000).changed.empty());
  CHECK(c.tick(31100).marked_unhealthy.size() == 1);
}

TEST_CASE("client_state: a beat for a healthy instance only refreshes its clock") {
  auto c = heartbeat_client();
  c.put(svc_a, node("10.0.0.1", 80), 0);
  auto rev = c.revision();
  for (time_ms t = 5000; t <= 60000; t += 5000) {
    auto b = c.beat(svc_a, node("10.0.0.1", 80), t);
    CHECK_FALSE(b.created);
    CHECK_FALSE(b.changed);
    CHECK(c.tick(t + 1000).changed.empty());
  }
  CHECK(c.revision() == rev);
  CHECK(find(c, svc_a, "10.0.0.1", 80)->healthy);
}

TEST_CASE("client_state: an instance registered unhealthy is not healed by a beat") {
  auto c = heartbeat_client();
  auto sick = node("10.0.0.1", 80);
  sick.healthy = false;
  c.put(svc_a, sick, 0);
  auto b = c.beat(svc_a, sick, 1000);
  CHECK_FALSE(b.changed);
  CHECK_FALSE(find(c, svc_a, "10.0.0.1", 80)->healthy);
}

TEST_CASE("client_state: a beat re-creates an unknown instance from its content") {
  auto c = heartbeat_client();
  c.put(svc_a, node("10.0.0.1", 80), 0);
  c.tick(30100);
  REQUIRE(c.empty());
  auto rev = c.revision();
  auto x = node("10.0.0.1", 80);
  x.weight = 3.0;
  x.metadata = {{"env", "prod"}};
  auto b = c.beat(svc_a, x, 31000);
  CHECK_FALSE(b.error);
  CHECK(b.created);
  CHECK(b.changed);
  CHECK(c.revision() == rev + 1);
  REQUIRE(find(c, svc_a, "10.0.0.1", 80));
  CHECK(*find(c, svc_a, "10.0.0.1", 80) == x);
  // Its clock starts at the beat.
  CHECK(c.tick(46000).changed.empty());
  CHECK(c.tick(46100).marked_unhealthy.size() == 1);
}

TEST_CASE("client_state: re-registering refreshes the beat time") {
  auto c = heartbeat_client();
  c.put(svc_a, node("10.0.0.1", 80), 0);
  CHECK_FALSE(c.put(svc_a, node("10.0.0.1", 80), 10000).changed);
  CHECK(c.tick(15100).changed.empty());
  CHECK(c.tick(25100).marked_unhealthy.size() == 1);
  // Registering again after expiry marked it unhealthy heals it (the content differs).
  CHECK(c.put(svc_a, node("10.0.0.1", 80), 26000).changed);
  CHECK(find(c, svc_a, "10.0.0.1", 80)->healthy);
}

TEST_CASE("client_state: session and replica clients never expire by beats") {
  client_state session{"s/1/1", client_kind::session, {}};
  client_state replica{"10.0.0.1:80#true", client_kind::replica, {}};
  session.put(svc_a, node("10.0.0.1", 80), 0);
  client_services copy{{svc_a, {node("10.0.0.1", 80)}}};
  replica.replace(copy, 3);
  for (auto* c : {&session, &replica}) {
    auto rev = c->revision();
    auto t = c->tick(1000000);
    CHECK(t.changed.empty());
    CHECK(c->instance_count() == 1);
    CHECK(c->revision() == rev);
  }
}

TEST_CASE("client_state: renew_beats restarts every clock") {
  auto c = heartbeat_client();
  c.put(svc_a, node("10.0.0.1", 80), 0);
  c.put(svc_b, node("10.0.0.1", 80), 0);
  c.renew_beats(100000);
  CHECK(c.tick(100000 + 15000).changed.empty());
  auto t = c.tick(100000 + 15100);
  CHECK(t.marked_unhealthy.size() == 2);
  CHECK(t.changed == std::vector<service_key>{svc_a, svc_b});
}

TEST_CASE("client_state: a replaced copy that becomes owned does not expire on the spot") {
  // A heartbeat client filled from a Distro copy, then made responsible.
  auto c = heartbeat_client();
  c.replace({{svc_a, {node("10.0.0.1", 80)}}}, 9);
  c.renew_beats(500000);
  CHECK(c.tick(500000 + 14000).changed.empty());
  CHECK(c.instance_count() == 1);
  CHECK(c.tick(500000 + 30100).removed.size() == 1);
}

TEST_CASE("client_state: replace() reports the services that changed") {
  client_state c{"10.0.0.1:80#true", client_kind::replica, {}};
  auto changed = c.replace({{svc_a, {node("10.0.0.1", 80)}}, {svc_b, {node("10.0.0.2", 80)}}}, 5);
  CHECK(changed == std::vector<service_key>{svc_a, svc_b});
  CHECK(c.revision() == 5);
  CHECK(c.instance_count() == 2);

  // Same contents, other order, newer revision: nothing changed.
  changed = c.replace({{svc_b, {node("10.0.0.2", 80)}}, {svc_a, {node("10.0.0.1", 80)}}}, 6);
  CHECK(changed.empty());
  CHECK(c.revision() == 6);

  // b changed, a disappeared (an empty list counts as absent), c appeared.
  const service_key svc_c{"dev", "G", "c"};
  auto heavier = node("10.0.0.2", 80);
  heavier.weight = 7.0;
  changed = c.replace({{svc_a, {}}, {svc_b, {heavier}}, {svc_c, {node("10.0.0.3", 80)}}}, 7);
  std::sort(changed.begin(), changed.end());
  std::vector<service_key> expected{svc_a, svc_b, svc_c};
  std::sort(expected.begin(), expected.end());
  CHECK(changed == expected);
  CHECK(c.services().count(svc_a) == 0);
  CHECK(c.services().size() == 2);
  CHECK(c.instance_count() == 2);
  CHECK(c.revision() == 7);

  // Everything gone.
  changed = c.replace({}, 8);
  CHECK(changed.size() == 2);
  CHECK(c.empty());
  CHECK(c.instance_count() == 0);
}

TEST_CASE("client_state: the revision bumps on every visible change") {
  auto c = heartbeat_client();
  std::uint64_t rev = c.revision();
  auto bumped = [&] {
    bool r = c.revision() > rev;
    rev = c.revision();
    return r;
  };
  c.put(svc_a, node("10.0.0.1", 80), 0);
  CHECK(bumped());
  c.put(svc_a, node("10.0.0.1", 80), 1);
  CHECK_FALSE(bumped());
  c.beat(svc_a, node("10.0.0.1", 80), 2);
  CHECK_FALSE(bumped());
  c.tick(15002);
  CHECK_FALSE(bumped()); // exactly 15000 ms after the last beat: not yet
  c.tick(15003);
  CHECK(bumped());
  c.beat(svc_a, node("10.0.0.1", 80), 15200);
  CHECK(bumped());
  c.remove(svc_a, "10.0.0.1", 80, "DEFAULT");
  CHECK(bumped());
  c.remove(svc_a, "10.0.0.1", 80, "DEFAULT");
  CHECK_FALSE(bumped());
  c.beat(svc_a, node("10.0.0.1", 80), 16000);
  CHECK(bumped());
  c.tick(46001);
  CHECK(bumped());
  CHECK(c.empty());
}

TEST_CASE("client_state: subscriptions and their bound") {
  client_limits limits;
  limits.subscriptions_max = 2;
  client_state c{"s/1/1", client_kind::session, limits};
  CHECK_FALSE(c.subscribe({svc_a, ""}));
  CHECK_FALSE(c.subscribe({svc_a, "east"}));
  CHECK_FALSE(c.subscribe({svc_a, ""})); // already there: fine at the bound
  auto e = c.subscribe({svc_b, ""});
  REQUIRE(e);
  CHECK(e->field == "subscriptions");
  CHECK(c.subscriptions().size() == 2);
  CHECK(c.unsubscribe({svc_a, "east"}));
  CHECK_FALSE(c.unsubscribe({svc_a, "east"}));
  CHECK_FALSE(c.subscribe({svc_b, ""}));
  CHECK(c.subscriptions().count({svc_b, ""}) == 1);
  CHECK(c.revision() == 0); // subscriptions are not replicated state
}

// -- beat clocks across a change of responsibility ---------------------------------------

TEST_CASE("client_state: beat marks report the last beat and the expiry mark") {
  auto c = heartbeat_client();
  c.put(svc_a, node("10.0.0.1", 80), 1000);
  c.put(svc_b, node("10.0.0.1", 80), 2000);
  c.tick(1000 + 15100); // svc_a's instance missed its beats
  auto marks = c.beat_marks();
  REQUIRE(marks.size() == 2);
  auto ident = instance_identity("10.0.0.1", 80, "DEFAULT");
  CHECK(marks[svc_a][ident].last_beat_ms == 1000);
  CHECK(marks[svc_a][ident].marked_unhealthy);
  CHECK(marks[svc_b][ident].last_beat_ms == 2000);
  CHECK_FALSE(marks[svc_b][ident].marked_unhealthy);
  // Replicas and sessions have no beat clocks to report.
  client_state r{"10.0.0.1:80#true", client_kind::replica, {}};
  r.replace({{svc_a, {node("10.0.0.1", 80)}}}, 1);
  CHECK(r.beat_marks().empty());
}

TEST_CASE("client_state: a take-over continues the beat clock: expiry at the original deadline") {
  // The owner saw the last beat at 0 (its clock); the new owner took over at 20000 (same clock here).
  auto ident = instance_identity("10.0.0.1", 80, "DEFAULT");
  client_state c{"10.0.0.1:80#true", client_kind::replica, {}};
  c.replace({{svc_a, {node("10.0.0.1", 80)}}}, 7);
  c.set_kind(client_kind::heartbeat);
  c.adopt_beats({{svc_a, {{ident, beat_mark{0, false}}}}}, 20000);
  auto t = c.tick(20000);
  CHECK(t.marked_unhealthy.size() == 1); // already silent for 20 s > 15 s
  CHECK(c.tick(30000).removed.empty());
  CHECK(c.tick(30100).removed.size() == 1); // at 0 + 30 s, not at 20000 + 30 s
}

TEST_CASE("client_state: an instance marked unhealthy stays unhealthy at the new owner; a beat heals it") {
  auto ident = instance_identity("10.0.0.1", 80, "DEFAULT");
  auto sick = node("10.0.0.1", 80);
  sick.healthy = false;
  client_state c{"10.0.0.1:80#true", client_kind::replica, {}};
  c.replace({{svc_a, {sick}}}, 7);
  c.set_kind(client_kind::heartbeat);
  c.adopt_beats({{svc_a, {{ident, beat_mark{-16000, true}}}}}, 0);
  CHECK(c.tick(100).changed.empty());
  REQUIRE(find(c, svc_a, "10.0.0.1", 80));
  CHECK_FALSE(find(c, svc_a, "10.0.0.1", 80)->healthy);
  auto b = c.beat(svc_a, node("10.0.0.1", 80), 200);
  CHECK(b.changed);
  CHECK(find(c, svc_a, "10.0.0.1", 80)->healthy);
}

TEST_CASE("client_state: unknown beat marks start the clock at the take-over; newer clocks are kept") {
  auto ident = instance_identity("10.0.0.1", 80, "DEFAULT");
  auto c = heartbeat_client();
  c.put(svc_a, node("10.0.0.1", 80), 0);
  c.put(svc_b, node("10.0.0.1", 80), 0);
  c.adopt_beats({{svc_a, {{ident, beat_mark{-10000, false}}}}}, 1000);
  auto t = c.tick(1000 + 5100); // svc_a: silent since -10000
  CHECK(t.marked_unhealthy.size() == 1);
  CHECK(t.changed == std::vector<service_key>{svc_a});
  // keep_newer: an older mark does not move a clock back.
  auto d = heartbeat_client();
  d.put(svc_a, node("10.0.0.1", 80), 5000);
  d.adopt_beats({{svc_a, {{ident, beat_mark{0, false}}}}}, 6000, true);
  CHECK(d.tick(5000 + 15000).changed.empty());
}

TEST_CASE("client_state: beats alone are reported at most once per report interval") {
  client_limits limits;
  limits.unhealthy_timeout_ms = 15000; // reports every 15000 / 3 = 5000 ms
  auto c = heartbeat_client(limits);
  c.put(svc_a, node("10.0.0.1", 80), 0);
  c.beats_reported(0);
  CHECK_FALSE(c.beat_report_due(100));
  c.beat(svc_a, node("10.0.0.1", 80), 1000);
  CHECK_FALSE(c.beat_report_due(4999));
  CHECK(c.beat_report_due(5000));
  c.beats_reported(5000);
  CHECK_FALSE(c.beat_report_due(20000)); // no beat since: nothing to report
}

TEST_CASE("client_state: a batch (put_all) replaces the service's instances as one change") {
  client_state c{"s/1/1", client_kind::session, {}};
  CHECK(c.put(svc_a, node("10.0.0.1", 80), 0).changed);
  CHECK(c.put(svc_a, node("10.0.0.2", 80), 0).changed);
  CHECK(c.put(svc_b, node("10.0.0.9", 80), 0).changed);
  auto rev = c.revision();
  // Unsorted on purpose: the client keeps its (cluster, ip, port) order.
  auto r = c.put_all(svc_a, {node("10.0.0.4", 80), node("10.0.0.2", 80), node("10.0.0.3", 80)}, 0);
  CHECK_FALSE(r.error);
  CHECK(r.changed);
  CHECK(c.revision() == rev + 1); // one revision for the whole batch
  CHECK(c.instance_count() == 4);
  auto& xs = c.services().at(svc_a);
  REQUIRE(xs.size() == 3);
  CHECK(xs[0].ip == "10.0.0.2");
  CHECK(xs[1].ip == "10.0.0.3");
  CHECK(xs[2].ip == "10.0.0.4");
  CHECK(find(c, svc_a, "10.0.0.1", 80) == nullptr); // left out of the batch: gone
  CHECK(find(c, svc_b, "10.0.0.9", 80) != nullptr); // other services stay
  // The same content again changes nothing.
  r = c.put_all(svc_a, {node("10.0.0.3", 80), node("10.0.0.4", 80), node("10.0.0.2", 80)}, 0);
  CHECK_FALSE(r.changed);
  CHECK(c.revision() == rev + 1);
  // Empty (undoing a batch) removes the service.
  r = c.put_all(svc_a, {}, 0);
  CHECK(r.changed);
  CHECK(c.services().count(svc_a) == 0);
  CHECK(c.instance_count() == 1);
}

TEST_CASE("client_state: a batch over the instance bound changes nothing") {
  client_limits limits;
  limits.instances_max = 3;
  client_state c{"s/1/1", client_kind::session, limits};
  CHECK(c.put(svc_a, node("10.0.0.1", 80), 0).changed);
  CHECK(c.put(svc_b, node("10.0.0.9", 80), 0).changed);
  auto rev = c.revision();
  auto r = c.put_all(svc_a, {node("10.0.0.2", 80), node("10.0.0.3", 80), node("10.0.0.4", 80)}, 0);
  REQUIRE(r.error);
  CHECK(r.error->field == "instances");
  CHECK(r.error->message == "client s/1/1 would hold 4 instances, the limit is 3");
  CHECK_FALSE(r.changed);
  CHECK(c.revision() == rev);
  CHECK(c.instance_count() == 2);
  CHECK(find(c, svc_a, "10.0.0.1", 80) != nullptr);
  // What the batch replaces does not count: two in place of one fits.
  CHECK_FALSE(c.put_all(svc_a, {node("10.0.0.2", 80), node("10.0.0.3", 80)}, 0).error);
  CHECK(c.instance_count() == 3);
}

TEST_CASE("client_state: an announcement names the services changed since the last one") {
  client_state c{"127.0.0.1:7848/1/1", client_kind::session, client_limits{}};
  REQUIRE(c.put(svc_a, node("10.0.0.1", 80), 0).changed);
  REQUIRE(c.put(svc_b, node("10.0.0.1", 81), 0).changed);
  auto first = c.take_announcement();
  CHECK(first.whole); // nothing announced yet: the whole client
  CHECK(c.take_announcement().changed.empty()); // nothing since
  REQUIRE(c.put(svc_b, node("10.0.0.2", 81), 0).changed);
  auto second = c.take_announcement();
  CHECK_FALSE(second.whole);
  REQUIRE(second.changed.size() == 1);
  CHECK(second.changed.at(svc_b).size() == 2);
  CHECK(second.changed.at(svc_b).shares_with(c.services().at(svc_b)));
  REQUIRE(c.remove(svc_a, "10.0.0.1", 80, "DEFAULT"));
  auto third = c.take_announcement();
  REQUIRE(third.changed.count(svc_a) == 1);
  CHECK(third.changed.at(svc_a).empty()); // the service went
  c.set_kind(client_kind::heartbeat); // what Distro holds may come from elsewhere now
  CHECK(c.take_announcement().whole);
}

TEST_CASE("client_state: a beat heals an instance whose list another holder shares") {
  client_limits limits;
  limits.unhealthy_timeout_ms = 100;
  limits.delete_timeout_ms = 1000;
  client_state c{heartbeat_client_id("10.0.0.1", 80), client_kind::heartbeat, limits};
  REQUIRE(c.put(svc_a, node("10.0.0.1", 80), 0).changed);
  REQUIRE(c.put(svc_a, node("10.0.0.2", 80), 0).changed);
  REQUIRE(c.beat(svc_a, node("10.0.0.1", 80), 150).error == std::nullopt);
  REQUIRE(c.tick(200).marked_unhealthy.size() == 1); // 10.0.0.2 missed its beats
  client_services held = c.services(); // as Distro's record and the service index hold it
  auto r = c.beat(svc_a, node("10.0.0.2", 80), 210);
  CHECK(r.changed);
  const auto& now = c.services().at(svc_a);
  REQUIRE(now.size() == 2);
  CHECK(now[0].healthy);
  CHECK(now[1].healthy);
  CHECK_FALSE(held.at(svc_a)[1].healthy); // the other holder's list is as it was
}
