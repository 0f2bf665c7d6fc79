// Tests of actors/raft/persistent_store (the state machine of persistent instances) and
// actors/raft/health_checker (the decisions of server-side health checks).

#include <limits>

#include <doctest/doctest.h>

#include "actors/raft/health_checker.hpp"
#include "actors/raft/persistent_store.hpp"
#include "config/defaults.hpp"
#include "messages/raft.pb.h"

using namespace registry;
using namespace registry::raft;

namespace {

service_key svc(const std::string& name) {
  return service_key{"public", "DEFAULT_GROUP", name};
}

persistent_op reg(const std::string& service, const std::string& ip, std::uint32_t port) {
  persistent_op op;
  op.what = persistent_op::kind::reg;
  op.service = svc(service);
  op.inst.ip = ip;
  op.inst.port = port;
  op.inst.ephemeral = false;
  return op;
}

persistent_op with(persistent_op op, persistent_op::kind k) {
  op.what = k;
  return op;
}

} // namespace

TEST_CASE("persistent_store: register, update health, deregister, through encoded commands") {
  persistent_store s;
  auto r = s.apply(encode(reg("db", "10.0.0.1", 5432)));
  CHECK(r.ok);
  REQUIRE(r.changed);
  CHECK(*r.changed == svc("db"));
  CHECK(r.client == "10.0.0.1:5432#false");
  auto xs = s.instances_of(svc("db"), "10.0.0.1:5432#false");
  REQUIRE(xs.size() == 1);
  CHECK_FALSE(xs[0].ephemeral);
  CHECK(xs[0].instance_id == "10.0.0.1#5432#DEFAULT#DEFAULT_GROUP@@db");
  // The same register again changes nothing.
  CHECK_FALSE(s.apply(encode(reg("db", "10.0.0.1", 5432))).changed);
  // A health flip of an existing instance.
  auto flip = reg("db", "10.0.0.1", 5432);
  flip.what = persistent_op::kind::health;
  flip.inst.healthy = false;
  auto h = s.apply(encode(flip));
  CHECK(h.changed);
  REQUIRE(h.healthy_now);
  CHECK_FALSE(*h.healthy_now);
  CHECK_FALSE(s.instances_of(svc("db"), "10.0.0.1:5432#false")[0].healthy);
  // Deregister; a second one is no error.
  auto d = s.apply(encode(with(reg("db", "10.0.0.1", 5432), persistent_op::kind::dereg)));
  CHECK(d.changed);
  CHECK(s.instance_count() == 0);
  CHECK(s.service_count() == 0);
  auto d2 = s.apply(with(reg("db", "10.0.0.1", 5432), persistent_op::kind::dereg));
  CHECK(d2.ok);
  CHECK_FALSE(d2.changed);
  CHECK(d2.detail == "no such instance");
  // A late health flip does not bring a deregistered instance back (Nacos #8653).
  auto late = s.apply(encode(flip));
  CHECK_FALSE(late.changed);
  CHECK(s.instance_count() == 0);
  // Malformed bytes are refused and change nothing.
  auto bad = s.apply(std::string("\xff\xff\xff", 3));
  CHECK_FALSE(bad.ok);
}

TEST_CASE("persistent_store: snapshot and restore give the same state") {
  persistent_store a;
  for (std::uint32_t p = 1; p <= 50; ++p) {
    auto op = reg(p % 2 ? "odd" : "even", "10.0.1." + std::to_string(p), 80);
    op.check = *parse_health_check(p % 3 ? "tcp" : "http:/health");
    a.apply(op);
  }
  persistent_store b;
  REQUIRE(b.restore(a.snapshot()));
  CHECK(b.instance_count() == 50);
  CHECK(b.snapshot() == a.snapshot());
  CHECK(b.all_clients() == a.all_clients());
  const auto* rec = b.find(svc("odd"), "10.0.1.3", 80, "DEFAULT");
  REQUIRE(rec);
  CHECK(to_string(rec->check) == "http:/health");
  CHECK_FALSE(b.restore("\x08\xff"));
  CHECK(b.instance_count() == 50); // unchanged after a failed restore
}

TEST_CASE("persistent_store: an update changes weight, enabled and metadata, never health or check") {
  persistent_store s;
  auto r = reg("db", "10.0.0.1", 5432);
  r.check.type = health_check_spec::kind::http;
  r.check.path = "/health";
  REQUIRE(s.apply(encode(r)).ok);
  auto down = with(reg("db", "10.0.0.1", 5432), persistent_op::kind::health);
  down.inst.healthy = false;
  REQUIRE(s.apply(encode(down)).healthy_now == false);

  auto u = with(reg("db", "10.0.0.1", 5432), persistent_op::kind::update);
  u.inst.weight = 3;
  u.inst.enabled = false;
  u.inst.metadata = {{"role", "primary"}};
  u.inst.healthy = true; // ignored: health is the checks'
  auto result = s.apply(encode(u));
  CHECK(result.ok);
  REQUIRE(result.changed);
  CHECK(result.client == persistent_client_id("10.0.0.1", 5432));
  auto* rec = s.find(svc("db"), "10.0.0.1", 5432, "DEFAULT");
  REQUIRE(rec != nullptr);
  CHECK(rec->inst.weight == 3);
  CHECK_FALSE(rec->inst.enabled);
  CHECK(rec->inst.metadata == u.inst.metadata);
  CHECK_FALSE(rec->inst.healthy);
  CHECK(rec->check.type == health_check_spec::kind::http);
  CHECK(s.apply(encode(u)).detail == "unchanged");
  persistent_store copy; // the snapshot holds the update
  REQUIRE(copy.restore(s.snapshot()));
  REQUIRE(copy.find(svc("db"), "10.0.0.1", 5432, "DEFAULT") != nullptr);
  CHECK(copy.find(svc("db"), "10.0.0.1", 5432, "DEFAULT")->inst.weight == 3);

  auto missing = with(reg("db", "10.0.0.9", 5432), persistent_op::kind::update);
  result = s.apply(encode(missing));
  CHECK_FALSE(result.ok);
  CHECK(result.detail.find("instance not exist") != std::string::npos);
  CHECK(s.instance_count() == 1);
}

TEST_CASE("persistent_store: a service's protect threshold is set, kept without instances, bounded") {
  persistent_store s;
  auto threshold = [](const std::string& service, double value) {
    persistent_op op;
    op.what = persistent_op::kind::threshold;
    op.service = svc(service);
    op.protect_threshold = value;
    return encode(op);
  };
  auto r = s.apply(threshold("db", 0.5));
  CHECK(r.ok);
  REQUIRE(r.threshold_now);
  CHECK(r.threshold_now->first == svc("db"));
  CHECK(r.threshold_now->second == 0.5);
  CHECK_FALSE(r.changed); // no instance changed
  CHECK(s.thresholds().at(svc("db")) == 0.5);
  CHECK(s.service_count() == 0); // a setting, not an instance
  r = s.apply(threshold("db", 0.5));
  CHECK(r.ok);
  CHECK(r.detail == "unchanged");
  CHECK_FALSE(r.threshold_now);
  CHECK(s.apply(threshold("db", -1)).threshold_now->second == -1.0);

  // Out of range (NaN too) is refused by every member alike and changes nothing.
  for (double bad : {1.5, -0.5, -2.0, std::numeric_limits<double>::quiet_NaN(),
                     std::numeric_limits<double>::infinity()}) {
    r = s.apply(threshold("db", bad));
    CHECK_FALSE(r.ok);
    CHECK(r.detail.find("0..1") != std::string::npos);
  }
  CHECK(s.thresholds().at(svc("db")) == -1.0);

  // Snapshots carry thresholds beside instances.
  REQUIRE(s.apply(encode(reg("db", "10.0.0.1", 5432))).ok);
  persistent_store copy;
  REQUIRE(copy.restore(s.snapshot()));
  CHECK(copy.thresholds() == s.thresholds());
  CHECK(copy.instance_count() == 1);

  // The bound is a constant, so every member refuses the same command.
  for (std::size_t i = s.thresholds().size(); i < defaults::persistent_thresholds_max; ++i)
    REQUIRE(s.apply(threshold("svc" + std::to_string(i), 0.1)).ok);
  r = s.apply(threshold("one-more", 0.1));
  CHECK_FALSE(r.ok);
  CHECK(r.detail.find("the limit is") != std::string::npos);
  CHECK(s.apply(threshold("db", 0.3)).ok); // changing an existing one is still possible
}

TEST_CASE("persistent_store: the snapshot is the PersistentSnapshot message, also after flips") {
  persistent_store a;
  for (std::uint32_t p = 1; p <= 20; ++p)
    a.apply(reg("svc", "10.0.2." + std::to_string(p), 80));
  auto flip = reg("svc", "10.0.2.7", 80);
  flip.what = persistent_op::kind::health;
  flip.inst.healthy = false;
  REQUIRE(a.apply(flip).healthy_now);
  // The bytes the store writes from its records parse as the message, record for record.
  registry::v1::PersistentSnapshot msg;
  REQUIRE(msg.ParseFromString(a.snapshot()));
  CHECK(msg.records_size() == 20);
  persistent_store b;
  REQUIRE(b.restore(msg.SerializeAsString()));
  CHECK(b.snapshot() == a.snapshot());
  const auto* rec = b.find(svc("svc"), "10.0.2.7", 80, "DEFAULT");
  REQUIRE(rec);
  CHECK_FALSE(rec->inst.healthy);
}

TEST_CASE("persistent_store: health check specs parse") {
  CHECK(parse_health_check("tcp")->type == health_check_spec::kind::tcp);
  CHECK(parse_health_check("none")->type == health_check_spec::kind::none);
  auto h = parse_health_check("http:/ready");
  REQUIRE(h);
  CHECK(h->type == health_check_spec::kind::http);
  CHECK(h->path == "/ready");
  CHECK_FALSE(parse_health_check("udp"));
  CHECK_FALSE(parse_health_check("http:ready"));
}

namespace {

health_checker::target tgt(const std::string& ip, bool healthy = true) {
  health_checker::target t;
  t.key = svc("db");
  t.ip = ip;
  t.port = 80;
  t.cluster = "DEFAULT";
  t.healthy = healthy;
  return t;
}

health_checker_config hc_config() {
  health_checker_config c;
  c.interval_min_ms = 1000;
  c.interval_max_ms = 5000;
  c.timeout_ms = 500;
  c.in_flight_max = 2;
  return c;
}

} // namespace

TEST_CASE("health_checker: three failures in a row flip, a success in between resets") {
  health_checker hc{hc_config()};
  hc.set_targets({tgt("10.0.0.1")}, 0);
  CHECK(hc.due(999).empty());
  time_ms now = 1000;
  auto fail = [&](health_checker::outcome x) {
    auto cs = hc.due(now);
    REQUIRE(cs.size() == 1);
    auto f = hc.on_result(cs[0].id, x, 500, now);
    now = *hc.next_due();
    return f;
  };
  CHECK_FALSE(fail(health_checker::outcome::fail));
  CHECK_FALSE(fail(health_checker::outcome::fail));
  CHECK_FALSE(fail(health_checker::outcome::ok)); // resets
  CHECK_FALSE(fail(health_checker::outcome::fail));
  CHECK_FALSE(fail(health_checker::outcome::fail));
  auto f = fail(health_checker::outcome::fail);
  REQUIRE(f);
  CHECK_FALSE(f->healthy);
  // Back: three successes in a row.
  CHECK_FALSE(fail(health_checker::outcome::ok));
  CHECK_FALSE(fail(health_checker::outcome::ok));
  auto back = fail(health_checker::outcome::ok);
  REQUIRE(back);
  CHECK(back->healthy);
}

TEST_CASE("health_checker: a refused connection flips at once; the interval adapts and is bounded") {
  health_checker hc{hc_config()};
  hc.set_targets({tgt("10.0.0.1")}, 0);
  auto cs = hc.due(1000);
  REQUIRE(cs.size() == 1);
  auto f = hc.on_result(cs[0].id, health_checker::outcome::fail_now, 1, 1000);
  REQUIRE(f);
  CHECK_FALSE(f->healthy);
  // rt = max: 0.75 x 1000 + 0.25 x 5000 = 2000.
  CHECK(hc.interval_of("10.0.0.1", 80) == 2000);
  // Fast answers bring it down to the minimum, never below.
  time_ms now = 3000;
  for (int i = 0; i < 20; ++i) {
    auto c = hc.due(now);
    REQUIRE(c.size() == 1);
    hc.on_result(c[0].id, health_checker::outcome::ok, 1, now);
    now = *hc.next_due();
  }
  CHECK(hc.interval_of("10.0.0.1", 80) == 1000);
  // Timeouts push it up to the maximum, never above.
  for (int i = 0; i < 20; ++i) {
    auto c = hc.due(now);
    REQUIRE(c.size() == 1);
    hc.on_result(c[0].id, health_checker::outcome::fail, 500, now);
    now = *hc.next_due();
  }
  CHECK(hc.interval_of("10.0.0.1", 80) == 5000);
}

TEST_CASE("health_checker: checks in flight are bounded; none is skipped; gone targets ignored") {
  health_checker hc{hc_config()};
  auto none = tgt("10.0.0.9");
  none.check.type = health_check_spec::kind::none;
  hc.set_targets({tgt("10.0.0.1"), tgt("10.0.0.2"), tgt("10.0.0.3"), none}, 0);
  CHECK(hc.target_count() == 3);
  auto first = hc.due(1000);
  CHECK(first.size() == 2); // in_flight_max
  CHECK(hc.due(1000).empty());
  hc.on_result(first[0].id, health_checker::outcome::ok, 1, 1001);
  CHECK(hc.due(1001).size() == 1); // the third one, delayed not dropped
  // A target that goes away: its result is ignored.
  hc.set_targets({tgt("10.0.0.3")}, 1002);
  CHECK_FALSE(hc.on_result(first[1].id, health_checker::outcome::fail_now, 1, 1003));
  CHECK(hc.target_count() == 1);
}
