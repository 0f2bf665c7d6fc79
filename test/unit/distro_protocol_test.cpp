#include <doctest/doctest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "actors/client/client_state.hpp"
#include "actors/distro/distro_protocol.hpp"
#include "actors/distro/distro_wire.hpp"
#include "test/unit/distro_test_support.hpp"

using namespace registry;
using registry::test::up;

namespace {

using proto = distro_protocol;
using op_kind = proto::local_op::kind;

const std::string a = "10.0.0.1:8848";
const std::string b = "10.0.0.2:8848";
const std::string c = "10.0.0.3:8848";
const std::string d = "10.0.0.4:8848";

distro_config make_config() {
  distro_config cfg;
  cfg.sync_delay_ms = 10;
  cfg.sync_timeout_ms = 1000;
  cfg.sync_retry_delay_ms = 100;
  cfg.sync_batch_clients_max = 3;
  cfg.verify_interval_ms = 1000;
  cfg.verify_timeout_ms = 500;
  cfg.copy_expiry_verify_rounds = 3;
  cfg.snapshot_timeout_ms = 500;
  cfg.snapshot_retry_delay_ms = 300;
  cfg.lone_ready_wait_ms = 2000;
  return cfg;
}

client_services make_services(const std::string& name, std::uint32_t port = 8080) {
  instance x;
  x.ip = "192.168.1.1";
  x.port = port;
  x.instance_id = x.ip + "#" + std::to_string(port);
  return client_services{{service_key{"public", "DEFAULT_GROUP", name}, {x}}};
}

proto::local_change change(const client_id& id, const std::string& name, std::uint32_t port = 8080) {
  return proto::local_change{id, make_services(name, port), false, {}};
}

proto::local_change removal(const client_id& id) {
  return proto::local_change{id, {}, true, {}};
}

distro::client_data data(const client_id& id, const std::string& name, std::uint32_t port = 8080) {
  auto s = make_services(name, port);
  return distro::client_data{id, content_revision(s), s, false, "", {}};
}

std::vector<proto::outgoing_sync> syncs_to(const proto::effects& fx, const std::string& peer) {
  std::vector<proto::outgoing_sync> result;
  for (const auto& s : fx.syncs)
    if (s.peer == peer)
      result.push_back(s);
  return result;
}

std::vector<client_id> ids_of(const distro::sync_batch& x) {
  std::vector<client_id> result;
  for (const auto& x_client : x.clients)
    result.push_back(x_client.id);
  return result;
}

/// A session client of `node`.
client_id session(const std::string& node, int n) {
  return node + "/" + std::to_string(n) + "/1700000000000";
}

/// A heartbeat client.
client_id heartbeat(int n) {
  return "192.168.7." + std::to_string(n) + ":9000#true";
}

/// A ready node `self` at time 0 whose peers are UP and proved ready; its first verifies answered.
proto make_ready(const std::string& self, const std::vector<std::string>& peers,
                 distro_config cfg = make_config()) {
  proto p{self, cfg};
  auto fx = p.start(up(peers), 0);
  REQUIRE(fx.snapshot_requests.size() == 1);
  auto rq = fx.snapshot_requests[0];
  distro::snapshot s{rq.peer, {}};
  fx = p.on_snapshot_result(rq.peer, rq.request_id, proto::snapshot_status::ok, &s, 0);
  REQUIRE(p.ready());
  for (const auto& v : fx.verifies)
    p.on_verify_result(v.peer, v.verify_id, distro::verify_reply{}, 0);
  for (const auto& peer : peers)
    p.on_verify_batch(distro::verify_batch{peer, {}}, 0);
  REQUIRE(p.check_invariants() == "");
  return p;
}

/// Acknowledges `syncs` at `now`.
void ack(proto& p, const std::vector<proto::outgoing_sync>& syncs, time_ms now) {
  for (const auto& s : syncs)
    p.on_sync_result(s.peer, s.batch_id, true, now);
}

/// Acknowledges every sync of `fx` at `now`.
void ack_all(proto& p, const proto::effects& fx, time_ms now) {
  ack(p, fx.syncs, now);
}

} // namespace

// -- configuration ---------------------------------------------------------------------

TEST_CASE("distro: config from the node config, validation") {
  node_config::distro_t x;
  x.sync_delay_ms = 5;
  x.verify_interval_ms = 700;
  x.copy_expiry_verify_rounds = 4;
  x.lone_ready_wait_ms = 123;
  distro_config cfg{x};
  CHECK(cfg.sync_delay_ms == 5);
  CHECK(cfg.verify_interval_ms == 700);
  CHECK(cfg.copy_expiry_verify_rounds == 4);
  CHECK(cfg.lone_ready_wait_ms == 123);
  CHECK(cfg.sync_batch_clients_max == defaults::sync_batch_clients_max);
  CHECK(validate(cfg).empty());
  cfg.copy_expiry_verify_rounds = 1;
  CHECK(validate(cfg) == "copy_expiry_verify_rounds must be at least 2");
  cfg = make_config();
  cfg.sync_batch_clients_max = 0;
  CHECK_FALSE(validate(cfg).empty());
}

TEST_CASE("distro: content revision sees every field but not the order of instances") {
  auto s = make_services("orders");
  auto one = s.begin()->second.front();
  auto two = one;
  two.port = 9090;
  client_services xs{{s.begin()->first, {one, two}}};
  client_services ys{{s.begin()->first, {two, one}}};
  CHECK(content_revision(xs) == content_revision(ys));
  CHECK(content_revision(xs) != 0);
  auto zs = xs;
  zs.begin()->second.mutate()[0].weight = 2.0;
  CHECK(content_revision(zs) != content_revision(xs));
  zs = xs;
  zs.begin()->second.mutate()[0].metadata = {{"k", "v"}};
  CHECK(content_revision(zs) != content_revision(xs));
  CHECK(content_revision(make_services("a")) != content_revision(make_services("b")));
  CHECK(content_revision({}) != 0);
}

// -- start and readiness -----------------------------------------------------------------

TEST_CASE("distro: a standalone node is ready at once and sends nothing") {
  proto p{a, make_config()};
  auto fx = p.start(up({a}), 0);
  CHECK(p.ready());
  CHECK(fx.ready_changed == true);
  CHECK(fx.snapshot_requests.empty());
  CHECK(p.routing() == std::vector<std::string>{a});
  fx = p.on_local_change(change(heartbeat(1), "orders"), 5);
  CHECK(fx.syncs.empty());
  CHECK(fx.apply.empty());
  REQUIRE(p.find(heartbeat(1)) != nullptr);
  CHECK(p.find(heartbeat(1))->local);
  fx = p.on_local_change(removal(heartbeat(1)), 6);
  CHECK(p.find(heartbeat(1)) == nullptr); // no peer waits for the delete
  REQUIRE(fx.wake_at.has_value());
  CHECK(*fx.wake_at > 6);
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: snapshot load asks peers one after another and retries after a round") {
  proto p{a, make_config()};
  auto fx = p.start(up({a, b, c, d}), 0);
  CHECK_FALSE(p.ready());
  CHECK(fx.verifies.empty());
  REQUIRE(fx.snapshot_requests.size() == 1);
  CHECK(fx.snapshot_requests[0].peer == b);
  CHECK(fx.snapshot_requests[0].request.source == a);
  // A failure moves on to the next peer at once.
  fx = p.on_snapshot_result(b, fx.snapshot_requests[0].request_id, proto::snapshot_status::failed,
                            nullptr, 50);
  REQUIRE(fx.snapshot_requests.size() == 1);
  CHECK(fx.snapshot_requests[0].peer == c);
  CHECK(fx.log.snapshot_failures == 1);
  fx = p.on_snapshot_result(c, fx.snapshot_requests[0].request_id,
                            proto::snapshot_status::unavailable, nullptr, 60);
  REQUIRE(fx.snapshot_requests.size() == 1);
  CHECK(fx.snapshot_requests[0].peer == d);
  // No answer: the protocol times the request out itself.
  auto d_request = fx.snapshot_requests[0];
  CHECK(fx.wake_at == 60 + 500);
  fx = p.tick(560);
  CHECK(fx.snapshot_requests.empty()); // round over: wait snapshot_retry_delay_ms
  CHECK(fx.wake_at == 560 + 300);
  fx = p.on_snapshot_result(d, d_request.request_id, proto::snapshot_status::ok, nullptr, 600);
  CHECK(fx.log.stale_results == 1); // a late answer to a timed-out request is ignored
  fx = p.tick(860);
  REQUIRE(fx.snapshot_requests.size() == 1);
  CHECK(fx.snapshot_requests[0].peer == b); // new round, same order
  CHECK_FALSE(p.ready());
  // B answers: applied, ready, verify at once to every peer.
  distro::snapshot s{b, {data(session(b, 1), "orders"), data(heartbeat(3), "pay")}};
  fx = p.on_snapshot_result(b, fx.snapshot_requests[0].request_id, proto::snapshot_status::ok, &s,
                            900);
  CHECK(p.ready());
  CHECK(fx.ready_changed == true);
  REQUIRE(fx.log.snapshot_loaded.has_value());
  CHECK(fx.log.snapshot_loaded->source == b);
  CHECK(fx.log.snapshot_loaded->clients == 2);
  CHECK(fx.log.snapshot_loaded->duration_ms == 900);
  CHECK(fx.apply.size() == 2);
  CHECK(fx.verifies.size() == 3);
  CHECK(p.find(session(b, 1)) != nullptr);
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: a peer that proves it is ready is asked first") {
  proto p{a, make_config()};
  auto fx = p.start(up({a, b, c, d}), 0);
  REQUIRE(fx.snapshot_requests.size() == 1);
  auto first = fx.snapshot_requests[0];
  CHECK(first.peer == b);
  // D verifies: it is ready. B fails; D is asked before C.
  auto out = p.on_verify_batch(distro::verify_batch{d, {}}, 10);
  CHECK(out.fx.snapshot_requests.empty()); // one request at a time
  fx = p.on_snapshot_result(b, first.request_id, proto::snapshot_status::failed, nullptr, 20);
  REQUIRE(fx.snapshot_requests.size() == 1);
  CHECK(fx.snapshot_requests[0].peer == d);
}

TEST_CASE("distro: a loading node neither verifies nor serves snapshots") {
  proto p{a, make_config()};
  p.start(up({a, b}), 0);
  auto out = p.on_snapshot_request(distro::snapshot_request{b}, 10);
  CHECK_FALSE(out.reply.has_value()); // the actor replies UNAVAILABLE
  auto fx = p.tick(5000);
  CHECK(fx.verifies.empty());
}

TEST_CASE("distro: a ready node serves its snapshot and routes nothing to the loading asker") {
  auto p = make_ready(a, {b, c});
  p.on_local_change(change(session(a, 1), "orders"), 10);
  p.on_local_change(change(session(a, 2), "orders"), 10);
  p.on_local_change(removal(session(a, 2)), 11);
  CHECK(p.routing() == std::vector<std::string>{a, b, c});
  auto out = p.on_snapshot_request(distro::snapshot_request{c}, 20);
  REQUIRE(out.reply.has_value());
  CHECK(out.reply->source == a);
  REQUIRE(out.reply->clients.size() == 1); // tombstones are not part of it
  CHECK(out.reply->clients[0].id == session(a, 1));
  CHECK(out.reply->clients[0].owner == a);
  CHECK(p.routing() == std::vector<std::string>{a, b});
  REQUIRE(out.fx.routing_changed.has_value());
  // C verifies once loaded: routed to again.
  auto v = p.on_verify_batch(distro::verify_batch{c, {}}, 30);
  CHECK(p.routing() == std::vector<std::string>{a, b, c});
  CHECK(v.fx.routing_changed.has_value());
}

TEST_CASE("distro: a lone node with every peer DOWN becomes ready after lone_ready_wait_ms") {
  proto p{a, make_config()};
  std::vector<member_view> down{{b, member_state::down}, {c, member_state::down}};
  auto fx = p.start(down, 0);
  CHECK(fx.snapshot_requests.empty());
  CHECK_FALSE(p.ready());
  time_ms now = 0;
  while (!p.ready()) {
    REQUIRE(fx.wake_at.has_value());
    now = *fx.wake_at;
    REQUIRE(now <= 2000);
    fx = p.tick(now);
    CHECK(fx.snapshot_requests.empty());
  }
  CHECK(now == 2000);
  CHECK(fx.ready_changed == true);
  CHECK(fx.log.ready_alone);
  CHECK(p.routing() == std::vector<std::string>{a});
}

TEST_CASE("distro: a cold start (every peer not ready) does not wait forever") {
  proto p{a, make_config()};
  auto fx = p.start(up({a, b}), 0);
  time_ms now = 0;
  for (int i = 0; i < 100 && !p.ready(); ++i) {
    for (const auto& rq : fx.snapshot_requests) {
      fx = p.on_snapshot_result(rq.peer, rq.request_id, proto::snapshot_status::unavailable,
                                nullptr, now);
      break;
    }
    if (p.ready())
      break;
    now = *fx.wake_at;
    fx = p.tick(now);
  }
  CHECK(p.ready());
  CHECK(now >= 2000);
  CHECK(now < 2000 + 300 + 1);
}

TEST_CASE("distro: a peer that only fails (timeouts) keeps a starting node waiting") {
  proto p{a, make_config()};
  auto fx = p.start(up({a, b}), 0);
  time_ms now = 0;
  for (int i = 0; i < 50; ++i) {
    now = *fx.wake_at;
    fx = p.tick(now);
  }
  CHECK(now > 2000);
  CHECK_FALSE(p.ready()); // B may hold data: wait for it (or for it to be DOWN)
  fx = p.on_members({{b, member_state::down}}, now);
  CHECK(p.ready());
  CHECK(fx.log.ready_alone);
}

// -- sync ----------------------------------------------------------------------------

TEST_CASE("distro: an idle node sends a change to every peer at once") {
  auto p = make_ready(a, {b, c});
  auto fx = p.on_local_change(change(session(a, 1), "orders"), 100);
  REQUIRE(fx.syncs.size() == 2);
  for (const auto& s : fx.syncs) {
    CHECK(s.batch.source == a);
    REQUIRE(s.batch.clients.size() == 1);
    const auto& x = s.batch.clients[0];
    CHECK(x.id == session(a, 1));
    CHECK(x.revision == content_revision(make_services("orders")));
    CHECK(x.services == make_services("orders"));
    CHECK_FALSE(x.deleted);
    CHECK(x.owner == a);
  }
  CHECK(fx.log.batches_sent == 2);
  CHECK(p.sync_in_flight(b));
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: changes within sync_delay_ms are merged into one batch") {
  auto p = make_ready(a, {b});
  auto fx = p.on_local_change(change(session(a, 1), "orders"), 100);
  ack_all(p, fx, 101);
  fx = p.on_local_change(change(session(a, 2), "orders"), 102);
  CHECK(fx.syncs.empty());
  CHECK(fx.wake_at == 110);
  fx = p.on_local_change(change(session(a, 3), "orders"), 105);
  CHECK(fx.syncs.empty());
  fx = p.on_local_change(change(session(a, 2), "orders", 9), 106); // newer state of the same client
  CHECK(fx.syncs.empty());
  fx = p.tick(110);
  REQUIRE(fx.syncs.size() == 1);
  CHECK(ids_of(fx.syncs[0].batch) == std::vector<client_id>{session(a, 2), session(a, 3)});
  CHECK(fx.syncs[0].batch.clients[0].services == make_services("orders", 9));
  // After a quiet window, the next change is sent at once again.
  ack_all(p, fx, 111);
  fx = p.on_local_change(change(session(a, 4), "orders"), 500);
  CHECK(fx.syncs.size() == 1);
}

TEST_CASE("distro: at most one batch is in flight per peer") {
  auto p = make_ready(a, {b, c});
  auto fx = p.on_local_change(change(session(a, 1), "orders"), 100);
  auto to_b = syncs_to(fx, b);
  REQUIRE(to_b.size() == 1);
  ack(p, syncs_to(fx, c), 105); // C acknowledges, B does not yet
  fx = p.on_local_change(change(session(a, 2), "orders"), 200);
  CHECK(syncs_to(fx, b).empty());
  CHECK(syncs_to(fx, c).size() == 1);
  CHECK(p.pending_count(b) == 1);
  fx = p.tick(300);
  CHECK(syncs_to(fx, b).empty());
  fx = p.on_sync_result(b, to_b[0].batch_id, true, 350);
  auto next = syncs_to(fx, b);
  REQUIRE(next.size() == 1);
  CHECK(ids_of(next[0].batch) == std::vector<client_id>{session(a, 2)});
}

TEST_CASE("distro: a batch holds at most sync_batch_clients_max clients") {
  auto p = make_ready(a, {b});
  auto fx = p.on_local_change(change(session(a, 0), "orders"), 100);
  auto first = fx.syncs.at(0);
  for (int i = 1; i <= 7; ++i)
    p.on_local_change(change(session(a, i), "orders"), 100 + i);
  CHECK(p.pending_count(b) == 7);
  fx = p.on_sync_result(b, first.batch_id, true, 200);
  REQUIRE(fx.syncs.size() == 1);
  CHECK(fx.syncs[0].batch.clients.size() == 3);
  std::size_t total = 3;
  time_ms now = 200;
  while (p.pending_count(b) > 0) {
    now += 20;
    fx = p.on_sync_result(b, fx.syncs.at(0).batch_id, true, now);
    REQUIRE(fx.syncs.size() == 1);
    CHECK(fx.syncs[0].batch.clients.size() <= 3);
    total += fx.syncs[0].batch.clients.size();
  }
  CHECK(total == 7);
}

TEST_CASE("distro: a failed batch is retried after the delay with only the newest state") {
  auto p = make_ready(a, {b});
  auto fx = p.on_local_change(change(heartbeat(1), "orders"), 100);
  auto first = fx.syncs.at(0);
  CHECK(first.batch.clients.at(0).services == make_services("orders"));
  p.on_local_change(change(heartbeat(1), "orders", 1), 150);
  p.on_local_change(change(heartbeat(1), "orders", 2), 160);
  CHECK(p.pending_count(b) == 1); // one entry per client per peer
  fx = p.on_sync_result(b, first.batch_id, false, 200);
  CHECK(fx.syncs.empty());
  CHECK(fx.log.batches_failed == 1);
  CHECK(fx.wake_at == 300);
  CHECK(p.pending_count(b) == 1);
  fx = p.tick(300);
  REQUIRE(fx.syncs.size() == 1);
  REQUIRE(fx.syncs[0].batch.clients.size() == 1);
  CHECK(fx.syncs[0].batch.clients[0].services == make_services("orders", 2));
  CHECK(fx.log.batches_retried == 1);
  // A result for the old batch is ignored.
  fx = p.on_sync_result(b, first.batch_id, true, 310);
  CHECK(fx.log.stale_results == 1);
  CHECK(p.sync_in_flight(b));
}

TEST_CASE("distro: a batch without result is failed after sync_timeout_ms") {
  auto p = make_ready(a, {b});
  auto fx = p.on_local_change(change(session(a, 1), "orders"), 100);
  REQUIRE(fx.syncs.size() == 1);
  fx = p.tick(1099);
  CHECK(fx.log.batches_failed == 0);
  fx = p.tick(1100);
  CHECK(fx.log.batches_failed == 1);
  CHECK(p.is_pending(b, session(a, 1)));
  fx = p.tick(1200);
  CHECK(fx.syncs.size() == 1);
}

TEST_CASE("distro: deletes travel as deleted=true; the tombstone goes once every peer has it") {
  auto p = make_ready(a, {b, c});
  auto fx = p.on_local_change(change(session(a, 1), "orders"), 100);
  ack_all(p, fx, 101);
  fx = p.on_local_change(removal(session(a, 1)), 200);
  REQUIRE(fx.syncs.size() == 2);
  for (const auto& s : fx.syncs) {
    REQUIRE(s.batch.clients.size() == 1);
    CHECK(s.batch.clients[0].deleted);
    CHECK(s.batch.clients[0].services.empty());
  }
  REQUIRE(p.find(session(a, 1)) != nullptr);
  CHECK(p.find(session(a, 1))->tombstone);
  p.on_sync_result(b, syncs_to(fx, b)[0].batch_id, true, 201);
  CHECK(p.find(session(a, 1)) != nullptr); // C still waits for it
  p.on_sync_result(c, syncs_to(fx, c)[0].batch_id, true, 202);
  CHECK(p.find(session(a, 1)) == nullptr);
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: nothing goes to a DOWN peer; its pending waits until it is back") {
  auto p = make_ready(a, {b, c});
  std::vector<member_view> view{{b, member_state::down}, {c, member_state::up}};
  p.on_members(view, 50);
  auto fx = p.on_local_change(change(session(a, 1), "orders"), 100);
  CHECK(syncs_to(fx, b).empty());
  CHECK(syncs_to(fx, c).size() == 1);
  CHECK(p.pending_count(b) == 1);
  fx = p.tick(5000);
  CHECK(syncs_to(fx, b).empty());
  view[0].state = member_state::up;
  fx = p.on_members(view, 6000);
  REQUIRE(syncs_to(fx, b).size() == 1);
  CHECK(ids_of(syncs_to(fx, b)[0].batch) == std::vector<client_id>{session(a, 1)});
  // And a verify at once, so B learns that we are ready.
  CHECK(std::count_if(fx.verifies.begin(), fx.verifies.end(),
                      [](const auto& v) { return v.peer == b; })
        == 1);
}

TEST_CASE("distro: a peer going DOWN fails its batch in flight; leaving drops its pending") {
  auto p = make_ready(a, {b, c});
  auto fx = p.on_local_change(change(session(a, 1), "orders"), 100);
  fx = p.on_members({{b, member_state::down}, {c, member_state::up}}, 150);
  CHECK(fx.log.batches_failed == 1);
  CHECK_FALSE(p.sync_in_flight(b));
  CHECK(p.is_pending(b, session(a, 1)));
  p.on_local_change(removal(session(a, 1)), 200);
  CHECK(p.find(session(a, 1)) != nullptr);
  fx = p.on_members(up({c}), 300); // B leaves the member list
  CHECK(p.pending_count(b) == 0);
  CHECK(p.peers().size() == 1);
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: a client actor's later announcements carry only the services that changed") {
  auto p = make_ready(a, {b});
  auto id = session(a, 1);
  auto whole = change(id, "orders");
  whole.services.insert(*make_services("billing").begin());
  whole.announcer = 7;
  whole.seq = 1;
  p.on_local_change(whole, 10);
  REQUIRE(p.find(id) != nullptr);
  auto both = p.find(id)->services;
  // seq 2 after 1: billing moves to port 9, orders goes; the record is the whole content then.
  proto::local_change delta{id, make_services("billing", 9), false, {}};
  delta.services[service_key{"public", "DEFAULT_GROUP", "orders"}] = instance_list{};
  delta.announcer = 7;
  delta.seq = 2;
  delta.base_seq = 1;
  auto fx = p.on_local_change(delta, 20);
  CHECK(fx.announce_whole.empty());
  CHECK(p.find(id)->services == make_services("billing", 9));
  CHECK(p.find(id)->revision == content_revision(make_services("billing", 9)));
  // Changes that do not follow the record's announcement (a lost one, another actor) change
  // nothing and ask for the whole client.
  auto stale = delta;
  stale.services = make_services("billing", 11);
  stale.seq = 4;
  stale.base_seq = 3;
  fx = p.on_local_change(stale, 30);
  CHECK(fx.announce_whole == std::vector<client_id>{id});
  CHECK(p.find(id)->services == make_services("billing", 9));
  stale.announcer = 8;
  stale.base_seq = 2;
  fx = p.on_local_change(stale, 31);
  CHECK(fx.announce_whole == std::vector<client_id>{id});
  CHECK(both.size() == 2);
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: a revision updated per partial announcement equals the whole content's") {
  // The record keeps the sum of its services' terms and changes only the named ones: after any
  // sequence of adds, changes and removals it must equal what a peer computes from the whole.
  auto p = make_ready(a, {b});
  auto id = session(a, 1);
  auto first = change(id, "svc-0");
  first.announcer = 3;
  first.seq = 1;
  p.on_local_change(first, 10);
  std::uint64_t seq = 1;
  std::uint32_t state = 12345; // a fixed linear congruential sequence: the same cases every run
  auto next = [&state](std::uint32_t n) {
    state = state * 1103515245u + 12345u;
    return (state >> 8) % n;
  };
  for (int round = 0; round < 200; ++round) {
    proto::local_change delta{id, {}, false, {}};
    auto names = 1 + next(3);
    for (std::uint32_t k = 0; k < names; ++k) {
      auto name = "svc-" + std::to_string(next(6));
      auto key = service_key{"public", "DEFAULT_GROUP", name};
      if (next(4) == 0)
        delta.services[key] = instance_list{}; // removal (or nothing, if not held)
      else
        delta.services[key] = make_services(name, 80 + next(5)).begin()->second;
    }
    delta.announcer = 3;
    delta.base_seq = seq;
    delta.seq = ++seq;
    auto fx = p.on_local_change(delta, 20 + round);
    REQUIRE(fx.announce_whole.empty());
    const auto* r = p.find(id);
    REQUIRE(r != nullptr);
    if (r->tombstone)
      continue;
    CHECK(r->revision == content_revision(r->services));
  }
  CHECK(p.check_invariants() == "");
}

// -- receiving -----------------------------------------------------------------------

TEST_CASE("distro: received clients replace the copy as a whole or remove it") {
  auto p = make_ready(b, {a, c});
  auto id = session(a, 1);
  auto fx = p.on_sync_batch(distro::sync_batch{a, {data(id, "orders")}}, 100);
  REQUIRE(fx.apply.size() == 1);
  CHECK(fx.apply[0].what == op_kind::replace);
  CHECK(fx.apply[0].id == id);
  CHECK_FALSE(fx.apply[0].local);
  CHECK(fx.apply[0].services == make_services("orders"));
  CHECK(fx.syncs.empty()); // copies are never re-synced
  // Same revision: renewed, nothing to apply.
  fx = p.on_sync_batch(distro::sync_batch{a, {data(id, "orders")}}, 200);
  CHECK(fx.apply.empty());
  CHECK(p.find(id)->renewed_ms == 200);
  fx = p.on_sync_batch(distro::sync_batch{a, {data(id, "orders", 9)}}, 300);
  REQUIRE(fx.apply.size() == 1);
  CHECK(fx.apply[0].services == make_services("orders", 9));
  distro::client_data gone{id, 0, {}, true, a, {}};
  fx = p.on_sync_batch(distro::sync_batch{a, {gone}}, 400);
  REQUIRE(fx.apply.size() == 1);
  CHECK(fx.apply[0].what == op_kind::remove);
  CHECK(p.find(id) == nullptr);
  fx = p.on_sync_batch(distro::sync_batch{a, {gone}}, 401); // unknown: nothing to do
  CHECK(fx.apply.empty());
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: a resync tells what the node holds of a client, as an op") {
  auto p = make_ready(b, {a, c});
  // A copy: replace with its content, not local, no beat clocks.
  auto copy = session(a, 1);
  p.on_sync_batch(distro::sync_batch{a, {data(copy, "orders")}}, 100);
  auto op = p.resync(copy);
  CHECK(op.what == op_kind::replace);
  CHECK(op.id == copy);
  CHECK_FALSE(op.local);
  CHECK(op.services == make_services("orders"));
  CHECK(op.revision == content_revision(make_services("orders")));
  // Deleted by its owner, or never known: remove.
  distro::client_data gone{copy, 0, {}, true, a, {}};
  p.on_sync_batch(distro::sync_batch{a, {gone}}, 200);
  CHECK(p.resync(copy).what == op_kind::remove);
  CHECK(p.resync(heartbeat(99)).what == op_kind::remove);
  // A heartbeat client this node checks: replace, local, with its beat clocks.
  client_id hb;
  for (int n = 1; hb.empty(); ++n)
    if (p.responsible_node(heartbeat(n)) == b)
      hb = heartbeat(n);
  auto x = change(hb, "pay");
  auto key = x.services.begin()->first;
  x.beats[key]["192.168.1.1:8080:DEFAULT"] = beat_mark{250, false};
  p.on_local_change(x, 300);
  op = p.resync(hb);
  CHECK(op.what == op_kind::replace);
  CHECK(op.local);
  CHECK(op.beats == x.beats);
  // Its delete (a tombstone): remove.
  p.on_local_change(removal(hb), 400);
  CHECK(p.resync(hb).what == op_kind::remove);
  // A session of this node is never re-created from Distro.
  auto own = session(b, 1);
  p.on_local_change(change(own, "orders"), 500);
  CHECK(p.resync(own).what == op_kind::remove);
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: data for a client this node is responsible for is not applied") {
  auto p = make_ready(b, {a, c});
  auto id = session(b, 1);
  p.on_local_change(change(id, "orders"), 10);
  auto fx = p.on_sync_batch(distro::sync_batch{a, {data(id, "orders", 9)}}, 20);
  CHECK(fx.apply.empty());
  CHECK(fx.log.conflicts == 1);
  CHECK(p.find(id)->services == make_services("orders"));
}

TEST_CASE("distro: a session of a previous run of this node is deleted cluster-wide") {
  auto p = make_ready(b, {a, c});
  auto old = session(b, 1);
  auto fx = p.on_sync_batch(distro::sync_batch{a, {data(old, "orders")}}, 100);
  CHECK(fx.apply.empty());
  CHECK(fx.log.stale_sessions == 1);
  REQUIRE(fx.syncs.size() == 2);
  for (const auto& s : fx.syncs) {
    REQUIRE(s.batch.clients.size() == 1);
    CHECK(s.batch.clients[0].id == old);
    CHECK(s.batch.clients[0].deleted);
  }
}

TEST_CASE("distro: copies over clients_max are refused") {
  auto cfg = make_config();
  cfg.clients_max = 2;
  auto p = make_ready(b, {a}, cfg);
  auto fx =
    p.on_sync_batch(distro::sync_batch{a, {data(session(a, 1), "x"), data(session(a, 2), "x")}}, 100);
  CHECK(fx.apply.size() == 2);
  fx = p.on_sync_batch(distro::sync_batch{a, {data(session(a, 3), "x")}}, 101);
  CHECK(fx.apply.empty());
  CHECK(fx.log.copies_refused == 1);
  CHECK(p.records().size() == 2);
}

// -- verify --------------------------------------------------------------------------

TEST_CASE("distro: verify renews equal copies and reports missing and stale ones") {
  auto p = make_ready(b, {a, c});
  auto x = session(a, 1), y = session(a, 2), z = session(a, 3);
  p.on_sync_batch(distro::sync_batch{a, {data(x, "orders"), data(y, "orders")}}, 100);
  distro::verify_batch v{a,
                         {{x, content_revision(make_services("orders"))},
                          {y, content_revision(make_services("orders", 1))},
                          {z, 42}}};
  auto out = p.on_verify_batch(v, 700);
  CHECK(out.reply.missing == std::vector<client_id>{y, z});
  CHECK(out.fx.log.verify_missing == 2);
  CHECK(p.find(x)->renewed_ms == 700);
  CHECK(p.find(y)->renewed_ms == 700); // stale, but listed: kept until the sync replaces it
}

TEST_CASE("distro: every verify_interval_ms a ready node verifies its clients; mismatches go in full") {
  auto p = make_ready(a, {b});
  auto fx = p.on_local_change(change(session(a, 1), "orders"), 10);
  ack_all(p, fx, 11);
  p.on_sync_batch(distro::sync_batch{b, {data(session(b, 1), "pay")}}, 12); // a copy: not verified
  fx = p.tick(999);
  CHECK(fx.verifies.empty());
  fx = p.tick(1000);
  REQUIRE(fx.verifies.size() == 1);
  const auto& v = fx.verifies[0];
  CHECK(v.peer == b);
  CHECK(v.batch.source == a);
  REQUIRE(v.batch.clients.size() == 1);
  CHECK(v.batch.clients[0].id == session(a, 1));
  CHECK(v.batch.clients[0].revision == content_revision(make_services("orders")));
  fx = p.on_verify_result(b, v.verify_id, distro::verify_reply{{session(a, 1), session(b, 1)}}, 1010);
  CHECK(fx.log.verify_mismatches == 1); // the copy is not ours to sync
  REQUIRE(fx.syncs.size() == 1);
  CHECK(ids_of(fx.syncs[0].batch) == std::vector<client_id>{session(a, 1)});
  CHECK(fx.syncs[0].batch.clients[0].services == make_services("orders"));
  fx = p.tick(2000);
  CHECK(fx.verifies.size() == 1);
}

TEST_CASE("distro: a verify without reply is failed after verify_timeout_ms") {
  auto p = make_ready(a, {b});
  auto fx = p.tick(1000);
  REQUIRE(fx.verifies.size() == 1);
  fx = p.tick(1500);
  CHECK(fx.log.verify_failed == 1);
  fx = p.on_verify_result(b, 12345, distro::verify_reply{}, 1600);
  CHECK(fx.log.stale_results == 1);
}

// -- copy expiry -----------------------------------------------------------------------

TEST_CASE("distro: a copy not renewed for copy_expiry_verify_rounds intervals is removed") {
  auto p = make_ready(b, {a, c});
  auto x = session(a, 1), y = session(a, 2);
  auto rev = content_revision(make_services("orders"));
  p.on_sync_batch(distro::sync_batch{a, {data(x, "orders"), data(y, "orders")}}, 100);
  p.on_local_change(change(session(b, 1), "orders"), 100);
  // A keeps verifying x, but not y (y is absent: not deleted at once, just not renewed).
  for (time_ms t = 1000; t <= 2000; t += 1000) {
    auto out = p.on_verify_batch(distro::verify_batch{a, {{x, rev}}}, t);
    CHECK(out.reply.missing.empty());
    CHECK(p.find(y) != nullptr);
  }
  // The third verify of A without y: the sweep (every verify_interval_ms) removes it.
  auto out = p.on_verify_batch(distro::verify_batch{a, {{x, rev}}}, 3000);
  auto& fx = out.fx;
  REQUIRE(fx.apply.size() == 1);
  CHECK(fx.apply[0].what == op_kind::remove);
  CHECK(fx.apply[0].id == y);
  CHECK(fx.log.copies_expired == 1);
  CHECK(p.find(y) == nullptr);
  CHECK(p.find(x) != nullptr);
  // A crashes (DOWN): nobody vouches for x any more, it goes once not renewed for three intervals
  // (renewed at 3000); our own client never expires.
  fx = p.on_members({{a, member_state::down}, {c, member_state::up}}, 3500);
  fx = p.tick(5900);
  CHECK(p.find(x) != nullptr);
  fx = p.tick(7000);
  CHECK(fx.log.copies_expired == 1);
  CHECK(p.find(x) == nullptr);
  CHECK(p.find(session(b, 1)) != nullptr);
  fx = p.tick(100000);
  CHECK(p.find(session(b, 1)) != nullptr);
  CHECK(p.check_invariants() == "");
}

// -- digest verify -----------------------------------------------------------------------

namespace {

/// Delivers `v` (from `from` to `to`) at `now` and its reply back, and so on for the detail a
/// digest's reply asks for. Returns every VerifyBatch delivered and the last reply.
std::pair<std::vector<distro::verify_batch>, distro::verify_reply>
deliver_verify(proto& from, proto& to, proto::outgoing_verify v, time_ms now) {
  std::vector<distro::verify_batch> sent;
  distro::verify_reply last;
  for (;;) {
    sent.push_back(v.batch);
    auto out = to.on_verify_batch(v.batch, now);
    last = out.reply;
    auto fx = from.on_verify_result(v.peer, v.verify_id, out.reply, now);
    if (fx.verifies.empty())
      return {sent, last};
    REQUIRE(fx.verifies.size() == 1);
    v = fx.verifies[0];
  }
}

/// The one verify `fx` sends to `peer`.
proto::outgoing_verify verify_to(const proto::effects& fx, const std::string& peer) {
  for (const auto& v : fx.verifies)
    if (v.peer == peer)
      return v;
  FAIL("no verify to " << peer);
  return {};
}

} // namespace

TEST_CASE("distro: a digest verify does not grow with the clients; only differing buckets are listed") {
  auto cfg = make_config();
  cfg.verify_buckets = 64; // a full list up to 8 clients
  cfg.sync_batch_clients_max = 5000;
  auto owner = make_ready(a, {b}, cfg);
  auto peer = make_ready(b, {a}, cfg);
  const int clients = 2000;
  std::vector<proto::outgoing_sync> syncs;
  for (int i = 0; i < clients; ++i) {
    auto fx = owner.on_local_change(change(session(a, i), "orders"), 10);
    for (auto& x : syncs_to(fx, b))
      syncs.push_back(x);
  }
  // Every sync reaches the peer and is acknowledged.
  for (time_ms t = 20; !syncs.empty(); t += 10) {
    std::vector<proto::outgoing_sync> next;
    for (const auto& x : syncs) {
      peer.on_sync_batch(x.batch, t);
      for (auto& y : syncs_to(owner.on_sync_result(b, x.batch_id, true, t), b))
        next.push_back(y);
    }
    syncs = next;
  }
  REQUIRE(owner.pending_count(b) == 0);

  auto v = verify_to(owner.tick(1000), b);
  CHECK(v.batch.buckets == 64);
  CHECK(v.batch.digests.size() == 64);
  CHECK(v.batch.clients.empty());
  auto digest_bytes = distro::to_wire(v.batch).ByteSizeLong();
  CHECK(digest_bytes < 64 * 8 + 64);
  std::vector<distro::verify_batch> sent;
  distro::verify_reply reply;
  std::tie(sent, reply) = deliver_verify(owner, peer, v, 1000);
  CHECK(sent.size() == 1); // every bucket matched: no detail
  CHECK(reply.differing.empty());

  // A change on its way to the peer (its sync in flight) is listed beside the digests and left out
  // of them: no bucket differs, and the peer reports nothing (the owner has it pending).
  auto changed = session(a, 7);
  auto fx = owner.on_local_change(change(changed, "orders", 9090), 1100);
  auto in_flight = syncs_to(fx, b);
  REQUIRE(in_flight.size() == 1);
  v = verify_to(owner.tick(2000), b);
  CHECK(v.batch.clients.size() == 1);
  std::tie(sent, reply) = deliver_verify(owner, peer, v, 2000);
  CHECK(sent.size() == 1);
  CHECK(reply.differing.empty());
  CHECK(reply.missing.empty());

  // The sync is acknowledged but the peer lost the change (real divergence): only its bucket is
  // listed in full, and the peer reports only that client.
  for (time_ms t = 2100; !in_flight.empty(); t += 10) {
    std::vector<proto::outgoing_sync> next;
    for (const auto& x : in_flight)
      next = syncs_to(owner.on_sync_result(b, x.batch_id, true, t), b);
    in_flight = next;
  }
  REQUIRE_FALSE(owner.is_pending(b, changed));
  REQUIRE_FALSE(owner.sync_in_flight(b));
  auto bucket = verify_bucket(changed, 64);
  v = verify_to(owner.tick(3000), b);
  CHECK(v.batch.clients.empty());
  std::tie(sent, reply) = deliver_verify(owner, peer, v, 3000);
  REQUIRE(sent.size() == 2);
  CHECK(sent[1].listed == std::vector<std::uint32_t>{bucket});
  CHECK(sent[1].digests.empty());
  std::size_t in_bucket = 0;
  for (int i = 0; i < clients; ++i)
    in_bucket += verify_bucket(session(a, i), 64) == bucket ? 1 : 0;
  CHECK(sent[1].clients.size() == in_bucket); // its neighbours too: they collide in the bucket
  CHECK(in_bucket > 1);
  CHECK(reply.missing == std::vector<client_id>{changed});
  CHECK((owner.is_pending(b, changed) || owner.sync_in_flight(b))); // synced in full again
  // The full list would have been about 20 times larger than digest and detail together.
  distro::verify_batch full{a, {}};
  for (int i = 0; i < clients; ++i)
    full.clients.push_back({session(a, i), 1});
  CHECK(distro::to_wire(full).ByteSizeLong()
        > 10 * (digest_bytes + distro::to_wire(sent[1]).ByteSizeLong()));
  CHECK(owner.check_invariants() == "");
  CHECK(peer.check_invariants() == "");
}

TEST_CASE("distro: copy expiry through digests: a matching bucket renews its copies, an unlisted copy goes") {
  auto cfg = make_config();
  cfg.verify_buckets = 2; // every verify is a digest; many clients per bucket
  auto owner = make_ready(a, {b, c}, cfg);
  auto peer = make_ready(b, {a, c}, cfg);
  std::vector<distro::client_data> copies;
  for (int i = 0; i < 20; ++i) {
    owner.on_local_change(change(session(a, i), "orders"), 10);
    copies.push_back(data(session(a, i), "orders"));
  }
  // The peer also holds a copy from A that A no longer holds (its delete was lost).
  auto gone = session(a, 99);
  copies.push_back(data(gone, "orders"));
  peer.on_sync_batch(distro::sync_batch{a, copies}, 20);
  auto gone_bucket = verify_bucket(gone, 2);

  // Rounds 1 and 2: the gone copy's bucket differs and is listed; it is kept (not yet expired).
  for (time_ms t = 1000; t <= 2000; t += 1000) {
    std::vector<distro::verify_batch> sent;
    distro::verify_reply reply;
    std::tie(sent, reply) = deliver_verify(owner, peer, verify_to(owner.tick(t), b), t);
    REQUIRE(sent.size() == 2);
    CHECK(sent[1].listed == std::vector<std::uint32_t>{gone_bucket});
    CHECK(reply.missing.empty());
    CHECK(peer.find(gone) != nullptr);
  }
  // The third digest round without it: the sweep removes it; every listed client stays, in either
  // bucket.
  auto v = verify_to(owner.tick(3000), b);
  auto out = peer.on_verify_batch(v.batch, 3000);
  CHECK(out.fx.log.copies_expired == 1);
  CHECK(peer.find(gone) == nullptr);
  for (int i = 0; i < 20; ++i)
    CHECK(peer.find(session(a, i)) != nullptr);
  // Now every bucket matches: the copies live on through digests alone, many rounds later.
  for (time_ms t = 4000; t <= 20000; t += 1000) {
    std::vector<distro::verify_batch> sent;
    distro::verify_reply reply;
    std::tie(sent, reply) = deliver_verify(owner, peer, verify_to(owner.tick(t), b), t);
    CHECK(sent.size() == 1);
    peer.tick(t);
  }
  for (int i = 0; i < 20; ++i)
    CHECK(peer.find(session(a, i)) != nullptr);
  // A digest renews a copy for the take-over rule too (Beat clocks): it is vouched at that round.
  CHECK(peer.find(session(a, 3))->vouched_ms == 20000);
  CHECK(peer.check_invariants() == "");
}

TEST_CASE("distro: a verify with inconsistent buckets renews nothing and asks nothing") {
  auto p = make_ready(b, {a});
  p.on_sync_batch(distro::sync_batch{a, {data(session(a, 1), "orders")}}, 10);
  auto digest = verify_share(session(a, 1), content_revision(make_services("orders")));
  distro::verify_batch bad{a, {}, 4, {digest}, {}}; // one digest for four buckets
  auto out = p.on_verify_batch(bad, 100);
  CHECK(out.fx.log.malformed == 1);
  CHECK(out.reply.differing.empty());
  CHECK(out.reply.missing.empty());
  CHECK(p.find(session(a, 1))->renewed_ms == 10);
}

// -- responsibility ----------------------------------------------------------------------

TEST_CASE("distro: heartbeat clients map over ready members; a leaving member moves only its own") {
  auto p = make_ready(a, {b, c, d});
  CHECK(p.routing() == std::vector<std::string>{a, b, c, d});
  // Copies of heartbeat clients from their owners, and local ones.
  std::map<client_id, std::string> owner;
  for (int i = 0; i < 60; ++i) {
    auto id = heartbeat(i);
    owner[id] = p.responsible_node(id);
    if (owner[id] == a)
      p.on_local_change(change(id, "orders"), 10);
    else
      p.on_sync_batch(distro::sync_batch{owner[id], {data(id, "orders")}}, 10);
    REQUIRE(p.find(id) != nullptr);
    CHECK(p.find(id)->local == (owner[id] == a));
  }
  auto fx = p.on_members({{b, member_state::up}, {c, member_state::down}, {d, member_state::up}},
                         100);
  REQUIRE(fx.routing_changed.has_value());
  CHECK(*fx.routing_changed == std::vector<std::string>{a, b, d});
  std::size_t moved_here = 0;
  for (const auto& o : fx.apply) {
    CHECK(o.what == op_kind::take_over);
    CHECK(owner[o.id] == c); // only C's clients move
    ++moved_here;
  }
  for (const auto& [id, o] : owner) {
    auto now_owner = p.responsible_node(id);
    if (o != c)
      CHECK(now_owner == o);
    CHECK(p.find(id)->local == (now_owner == a));
  }
  CHECK(moved_here > 0);
  CHECK(fx.log.taken_over == moved_here);
  // C comes back: not routed to until it proves it is ready, then its clients go back.
  fx = p.on_members(up({b, c, d}), 200);
  CHECK_FALSE(fx.routing_changed.has_value());
  auto out = p.on_verify_batch(distro::verify_batch{c, {}}, 300);
  std::size_t moved_back = 0;
  for (const auto& o : out.fx.apply) {
    CHECK(o.what == op_kind::hand_over);
    CHECK(owner[o.id] == c);
    CHECK(p.find(o.id)->renewed_ms == 300); // a fresh expiry clock
    ++moved_back;
  }
  CHECK(moved_back == moved_here);
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: handover: the old owner sends its latest state; the new owner applies it") {
  // A is responsible for `id` while C is not routed to; then C proves ready and wins `id`.
  auto p = make_ready(a, {b, c});
  p.on_snapshot_request(distro::snapshot_request{c}, 1); // C (re)loads: not routed to
  client_id id;
  for (int i = 0; id.empty(); ++i)
    if (responsible_node({a, b, c}, heartbeat(i)) == c && p.responsible_node(heartbeat(i)) == a)
      id = heartbeat(i);
  auto fx = p.on_local_change(change(id, "orders"), 10);
  ack_all(p, fx, 11);
  fx = p.on_local_change(change(id, "orders", 9), 30);
  ack_all(p, fx, 31);
  CHECK(p.pending_count(c) == 0);
  auto out = p.on_verify_batch(distro::verify_batch{c, {}}, 100); // C is ready: it wins `id`
  REQUIRE(out.fx.apply.size() == 1);
  CHECK(out.fx.apply[0].what == op_kind::hand_over);
  auto to_c = syncs_to(out.fx, c);
  REQUIRE(to_c.size() == 1); // queued for the new owner, which may lack it
  CHECK(to_c[0].batch.clients.at(0).services == make_services("orders", 9));
  CHECK(syncs_to(out.fx, b).empty());

  // On C's side: it got the old state, then it is responsible: adopted, and the old owner's newer
  // write still applies.
  auto q = make_ready(c, {a, b});
  REQUIRE(q.responsible_node(id) == c);
  auto fy = q.on_sync_batch(distro::sync_batch{a, {data(id, "orders")}}, 5);
  REQUIRE(fy.apply.size() == 1);
  CHECK(fy.apply[0].local);
  CHECK(q.find(id)->adopted);
  fy = q.on_sync_batch(to_c[0].batch, 101);
  REQUIRE(fy.apply.size() == 1);
  CHECK(fy.apply[0].what == op_kind::replace);
  CHECK(fy.apply[0].local);
  CHECK(fy.apply[0].services == make_services("orders", 9));
  // Once C changes it itself, C's state wins.
  q.on_local_change(change(id, "orders", 7), 110);
  CHECK_FALSE(q.find(id)->adopted);
  fy = q.on_sync_batch(distro::sync_batch{a, {data(id, "orders", 9)}}, 120);
  CHECK(fy.apply.empty());
  CHECK(fy.log.conflicts == 1);
  CHECK(p.check_invariants() == "");
  CHECK(q.check_invariants() == "");
}

TEST_CASE("distro: a client arriving for which this node is responsible becomes local") {
  auto p = make_ready(a, {b});
  client_id mine;
  for (int i = 0; mine.empty(); ++i)
    if (p.responsible_node(heartbeat(i)) == a)
      mine = heartbeat(i);
  auto fx = p.on_sync_batch(distro::sync_batch{b, {data(mine, "orders")}}, 10);
  REQUIRE(fx.apply.size() == 1);
  CHECK(fx.apply[0].what == op_kind::replace);
  CHECK(fx.apply[0].local);
  CHECK(p.find(mine)->local);
}

TEST_CASE("distro: a local change for a client another node is responsible for is handed over") {
  auto p = make_ready(a, {b});
  client_id theirs;
  for (int i = 0; theirs.empty(); ++i)
    if (p.responsible_node(heartbeat(i)) == b)
      theirs = heartbeat(i);
  auto fx = p.on_local_change(change(theirs, "orders"), 10);
  REQUIRE(fx.apply.size() == 1);
  CHECK(fx.apply[0].what == op_kind::hand_over);
  CHECK(fx.syncs.size() == 1); // the write still travels to the responsible node
  CHECK_FALSE(p.find(theirs)->local);
}

TEST_CASE("distro: wake_at is always later than now") {
  auto p = make_ready(a, {b, c});
  time_ms now = 0;
  auto fx = p.tick(now);
  for (int i = 0; i < 200; ++i) {
    REQUIRE(fx.wake_at.has_value());
    CHECK(*fx.wake_at > now);
    now = *fx.wake_at;
    if (i % 7 == 0)
      p.on_local_change(change(session(a, i), "orders"), now);
    fx = p.tick(now);
    CHECK(p.check_invariants() == "");
  }
}

// -- deletions while a member is DOWN ------------------------------------------------------

namespace {

std::size_t tombstones(const proto& p) {
  return static_cast<std::size_t>(std::count_if(p.records().begin(), p.records().end(),
                                                [](const auto& kv) { return kv.second.tombstone; }));
}

/// Sessions of `self` that register and end, each acknowledged by every alive peer at once.
time_ms churn(proto& p, const std::string& self, int first, int count, time_ms now) {
  for (int i = first; i < first + count; ++i) {
    auto fx = p.on_local_change(change(session(self, i), "orders"), now);
    ack_all(p, fx, now + 1);
    now += 20;
    fx = p.on_local_change(removal(session(self, i)), now);
    ack_all(p, fx, now + 1);
    now += 20;
  }
  return now;
}

} // namespace

TEST_CASE("distro: with one member DOWN, session churn does not end in refused copies") {
  auto cfg = make_config();
  cfg.clients_max = 10;
  auto p = make_ready(a, {b, c}, cfg);
  p.on_members({{b, member_state::up}, {c, member_state::down}}, 5);
  auto now = churn(p, a, 1, 50, 10);
  // The deletes reached B; C is DOWN and gets none of them.
  CHECK(p.pending_count(c) == 0);
  CHECK(tombstones(p) == 0);
  // B's copies are still welcome: tombstones never count toward clients_max.
  auto fx = p.on_sync_batch(distro::sync_batch{b, {data(session(b, 1), "pay")}}, now);
  CHECK(fx.log.copies_refused == 0);
  CHECK(fx.log.copies_applied == 1);
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: tombstones do not count toward clients_max; live clients do") {
  auto cfg = make_config();
  cfg.clients_max = 2;
  auto p = make_ready(a, {b, c}, cfg);
  // C is UP but never acknowledges: the deletes wait for it (bounded by tombstones_max).
  for (int i = 1; i <= 5; ++i) {
    p.on_local_change(change(session(a, i), "orders"), 10 * i);
    p.on_local_change(removal(session(a, i)), 10 * i + 5);
  }
  CHECK(tombstones(p) == 5);
  auto fx =
    p.on_sync_batch(distro::sync_batch{b, {data(session(b, 1), "x"), data(session(b, 2), "x")}}, 100);
  CHECK(fx.log.copies_applied == 2);
  CHECK(fx.log.copies_refused == 0);
  fx = p.on_sync_batch(distro::sync_batch{b, {data(session(b, 3), "x")}}, 101);
  CHECK(fx.log.copies_refused == 1);
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: tombstones are bounded by tombstones_max; the oldest is dropped first") {
  auto cfg = make_config();
  cfg.tombstones_max = 3;
  auto p = make_ready(a, {b}, cfg);
  // B is UP but does not acknowledge anything: every delete stays pending for it.
  for (int i = 1; i <= 6; ++i) {
    p.on_local_change(change(session(a, i), "orders"), 10 * i);
    p.on_local_change(removal(session(a, i)), 10 * i + 5);
    CHECK(p.check_invariants() == "");
  }
  CHECK(tombstones(p) == 3);
  CHECK(p.find(session(a, 1)) == nullptr);
  CHECK(p.find(session(a, 3)) == nullptr);
  CHECK(p.find(session(a, 4)) != nullptr);
  CHECK(p.find(session(a, 6)) != nullptr);
  CHECK(p.pending_count(b) <= 3);
}

TEST_CASE("distro: a peer going DOWN drops the deletes pending for it") {
  auto p = make_ready(a, {b, c});
  auto fx = p.on_local_change(change(session(a, 1), "orders"), 100);
  ack_all(p, fx, 101);
  fx = p.on_local_change(removal(session(a, 1)), 200);
  ack(p, syncs_to(fx, b), 201); // C does not answer
  REQUIRE(p.find(session(a, 1)) != nullptr);
  fx = p.on_members({{b, member_state::up}, {c, member_state::down}}, 300);
  CHECK(fx.log.batches_failed == 1);
  CHECK(p.pending_count(c) == 0);
  CHECK(p.find(session(a, 1)) == nullptr);
  // Back UP: nothing about the deleted client is sent.
  fx = p.on_members(up({b, c}), 400);
  CHECK(syncs_to(fx, c).empty());
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: a dropped delete: the DOWN peer's copy expires, also when it comes back late") {
  // A and C are cut off from each other while A deletes a session that C holds a copy of.
  auto pa = make_ready(a, {c});
  auto pc = make_ready(c, {a});
  auto x = session(a, 1);
  auto fx = pa.on_local_change(change(x, "orders"), 100);
  REQUIRE(syncs_to(fx, c).size() == 1);
  pc.on_sync_batch(syncs_to(fx, c)[0].batch, 101);
  ack_all(pa, fx, 102);
  REQUIRE(pc.find(x) != nullptr);
  pa.on_members({{c, member_state::down}}, 200);
  pc.on_members({{a, member_state::down}}, 200);
  fx = pa.on_local_change(removal(x), 300);
  CHECK(fx.syncs.empty());
  CHECK(pa.find(x) == nullptr); // nobody alive waits for the delete
  // C stays cut off for a long time; nothing renews its copy, so it expires.
  time_ms t = 1000;
  for (; t <= 100000; t += 1000)
    pc.tick(t);
  CHECK(pc.find(x) == nullptr);
  // They meet again: verifies in both directions bring nothing back.
  auto fa = pa.on_members(up({c}), t);
  auto fc = pc.on_members(up({a}), t);
  for (const auto& v : fa.verifies) {
    auto out = pc.on_verify_batch(v.batch, t + 1);
    CHECK(out.reply.missing.empty());
    pa.on_verify_result(c, v.verify_id, out.reply, t + 2);
  }
  for (const auto& v : fc.verifies) {
    auto out = pa.on_verify_batch(v.batch, t + 1);
    CHECK(out.reply.missing.empty());
    pc.on_verify_result(a, v.verify_id, out.reply, t + 2);
  }
  CHECK(pa.find(x) == nullptr);
  CHECK(pc.find(x) == nullptr);
  CHECK(pa.check_invariants() == "");
  CHECK(pc.check_invariants() == "");
}

TEST_CASE("distro: a dropped delete: a restarted peer loads no deleted client") {
  auto pa = make_ready(a, {c});
  auto x = session(a, 1);
  auto fx = pa.on_local_change(change(x, "orders"), 100);
  ack_all(pa, fx, 101);
  pa.on_members({{c, member_state::down}}, 200); // C crashed
  pa.on_local_change(removal(x), 300);
  CHECK(pa.find(x) == nullptr);
  // C restarts and loads a snapshot from A: the deleted session is not in it.
  pa.on_members(up({c}), 5000);
  auto out = pa.on_snapshot_request(distro::snapshot_request{c}, 5001);
  REQUIRE(out.reply.has_value());
  for (const auto& client : out.reply->clients)
    CHECK(client.id != x);
}

// -- beat clocks on a take-over ----------------------------------------------------------------

TEST_CASE("distro: beat clocks travel as ages and a take-over continues them") {
  // A is responsible for h; its client actor reports the last beat at 1000 (A's clock).
  auto h = heartbeat(1);
  auto svc = make_services("orders");
  auto key = svc.begin()->first;
  auto ident = instance_identity("192.168.1.1", 8080, "DEFAULT");
  auto pa = make_ready(a, {b});
  auto pb = make_ready(b, {a});
  // Whoever is responsible in {a, b} writes; the other must be the one taking over.
  auto owner_is_a = pa.responsible_node(h) == a;
  auto& owner = owner_is_a ? pa : pb;
  auto& other = owner_is_a ? pb : pa;
  auto other_name = owner_is_a ? b : a;
  auto owner_name = owner_is_a ? a : b;
  proto::local_change x{h, svc, false, {{key, {{ident, beat_mark{1000, false}}}}}};
  auto fx = owner.on_local_change(x, 1000);
  // Only the beat clock moves on: that is synced as well.
  ack_all(owner, fx, 1001);
  x.beats[key][ident].last_beat_ms = 4000;
  fx = owner.on_local_change(x, 9000);
  auto out = syncs_to(fx, other_name);
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].batch.clients.size() == 1);
  CHECK(out[0].batch.clients[0].beats.at(key).at(ident).age_ms == 5000); // measured at sending
  // The other node's clock is 100000 ms ahead; the batch arrives there.
  time_ms skew = 100000;
  other.on_sync_batch(out[0].batch, 9000 + skew);
  REQUIRE(other.find(h) != nullptr);
  CHECK(other.find(h)->beats.at(key).at(ident).last_beat_ms == 4000 + skew);
  // The owner leaves: the other node takes over and its client actor continues from that beat.
  fx = other.on_members({{owner_name, member_state::down}}, 10000 + skew);
  auto take = std::find_if(fx.apply.begin(), fx.apply.end(),
                           [&](const proto::local_op& op) { return op.id == h; });
  REQUIRE(take != fx.apply.end());
  CHECK(take->what == op_kind::take_over);
  CHECK(take->beats.at(key).at(ident).last_beat_ms == 4000 + skew);
  // Carried out on the client state: the instance goes at the original deadline (4000 + 30000).
  client_state c{h, client_kind::replica, {}};
  c.replace(svc, other.find(h)->revision);
  c.set_kind(client_kind::heartbeat);
  c.adopt_beats(take->beats, 10000 + skew);
  CHECK(c.tick(4000 + 30000 + skew).removed.empty());
  CHECK(c.tick(4000 + 30100 + skew).removed.size() == 1);
  CHECK(other.check_invariants() == "");
}

TEST_CASE("distro: a snapshot carries beat ages; a client without them starts afresh") {
  auto h = heartbeat(2);
  auto svc = make_services("orders");
  auto key = svc.begin()->first;
  auto ident = instance_identity("192.168.1.1", 8080, "DEFAULT");
  auto pa = make_ready(a, {b});
  pa.on_sync_batch(distro::sync_batch{b, {data(h, "orders")}}, 500); // no ages: an older sender
  proto::local_change x{heartbeat(3), svc, false, {{key, {{ident, beat_mark{700, true}}}}}};
  pa.on_local_change(x, 800);
  auto out = pa.on_snapshot_request(distro::snapshot_request{b}, 2000);
  REQUIRE(out.reply.has_value());
  for (const auto& c : out.reply->clients) {
    if (c.id == h)
      CHECK(c.beats.empty());
    if (c.id == heartbeat(3)) {
      CHECK(c.beats.at(key).at(ident).age_ms == 1300);
      CHECK(c.beats.at(key).at(ident).marked_unhealthy);
    }
  }
}

TEST_CASE("distro: beat ages survive the wire; without them a client's ages are unknown") {
  auto svc = make_services("orders");
  auto key = svc.begin()->first;
  auto ident = instance_identity("192.168.1.1", 8080, "DEFAULT");
  distro::client_data x{heartbeat(4), content_revision(svc), svc, false, a, {}};
  x.beats[key][ident] = distro::beat_age{12345, true};
  v1::ClientData msg;
  distro::to_wire(x, msg);
  REQUIRE(msg.services_size() == 1);
  REQUIRE(msg.services(0).beats_size() == 1);
  CHECK(msg.services(0).beats(0).age_ms() == 12345);
  auto y = distro::from_wire(msg);
  CHECK(y.revision == x.revision); // the ages are not content
  CHECK(y.services == x.services);
  CHECK(y.beats == x.beats);
  // An older sender: no beats field at all.
  msg.mutable_services(0)->clear_beats();
  CHECK(distro::from_wire(msg).beats.empty());
  // A deleted client carries none.
  distro::client_data gone{heartbeat(4), 0, {}, true, a, {}};
  distro::to_wire(gone, msg);
  CHECK(distro::from_wire(msg).beats.empty());
}

TEST_CASE("distro: a node frozen past the expiry time keeps the copies of its alive sources") {
  // B is frozen (SIGSTOP, or starved by its own actors) from 100 to 100000: its first input after
  // that is a tick. The owners' verifies are still in its mailbox; no copy of an alive, ready
  // source may go.
  auto p = make_ready(b, {a, c});
  auto x = session(a, 1), y = session(a, 2), z = session(c, 1);
  auto rev = content_revision(make_services("orders"));
  p.on_sync_batch(distro::sync_batch{a, {data(x, "orders"), data(y, "orders")}}, 100);
  p.on_sync_batch(distro::sync_batch{c, {data(z, "orders")}}, 100);
  auto fx = p.tick(100000);
  CHECK(fx.log.copies_expired == 0);
  CHECK(p.find(x) != nullptr);
  CHECK(p.find(y) != nullptr);
  CHECK(p.find(z) != nullptr);
  // The queued verifies arrive: A lists x only (y ended meanwhile and its delete was lost), C
  // lists z. y goes after A's third verify without it; x and z stay.
  for (time_ms t = 100001; t <= 102001; t += 1000) {
    p.on_verify_batch(distro::verify_batch{a, {{x, rev}}}, t);
    p.on_verify_batch(distro::verify_batch{c, {{z, rev}}}, t);
  }
  p.tick(103000);
  CHECK(p.find(x) != nullptr);
  CHECK(p.find(y) == nullptr);
  CHECK(p.find(z) != nullptr);
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: the copies of a member DOWN by timeouts on an open connection are kept") {
  // A's probes time out while its connection stays open (A, or B itself, is overloaded): A is
  // DOWN for routing, but it is alive and ready, so its copies follow its verifies and its
  // silence (as a source that sends no verify), never the expiry time of a crashed source. Seen in
  // the long fault run: a restarted, loaded node marked its peers DOWN one after the other and
  // dropped thousands of live copies each time, then had to take them all again.
  auto p = make_ready(b, {a, c});
  auto x = session(a, 1), z = session(c, 1);
  p.on_sync_batch(distro::sync_batch{a, {data(x, "orders")}}, 100);
  p.on_sync_batch(distro::sync_batch{c, {data(z, "orders")}}, 100);
  std::vector<member_view> view{{a, member_state::down}, {b, member_state::up},
                                {c, member_state::up}};
  view[0].unresponsive = true;
  auto fx = p.on_members(view, 500);
  CHECK(p.routing() == std::vector<std::string>{b, c});
  for (time_ms t = 1000; t <= 8000; t += 1000)
    CHECK(p.tick(t).log.copies_expired == 0);
  CHECK(p.find(x) != nullptr);
  // Answering again: UP and ready at once (the same run of A), its copies still here.
  view[0].state = member_state::up;
  view[0].unresponsive = false;
  fx = p.on_members(view, 8500);
  CHECK(p.routing() == std::vector<std::string>{a, b, c});
  CHECK(p.find(x) != nullptr);
  // DOWN by timeouts again, then the connection goes (a crash): the expiry time counts.
  view[0].state = member_state::down;
  view[0].unresponsive = true;
  p.on_members(view, 9000);
  view[0].unresponsive = false;
  p.on_members(view, 9500);
  fx = p.tick(10000);
  CHECK(fx.log.copies_expired == 1);
  CHECK(p.find(x) == nullptr);
  CHECK(p.find(z) != nullptr);
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: a member DOWN by timeouts that stays silent loses its copies in the end") {
  auto p = make_ready(b, {a});
  auto x = session(a, 1);
  p.on_sync_batch(distro::sync_batch{a, {data(x, "orders")}}, 100);
  std::vector<member_view> view{{a, member_state::down}, {b, member_state::up}};
  view[0].unresponsive = true;
  p.on_members(view, 200);
  // A's last verify was at 0 (make_ready): its copies go after the silence of a source that sends
  // no verify, copy_expiry_silent_source_factor * 3 of B's sweeps.
  auto sweeps = 3 * defaults::copy_expiry_silent_source_factor;
  for (int k = 1; k < sweeps; ++k)
    CHECK(p.tick(k * 1000).log.copies_expired == 0);
  CHECK(p.tick(sweeps * 1000).log.copies_expired == 1);
  CHECK(p.find(x) == nullptr);
}

TEST_CASE("distro: a copy listed at another revision is kept while the repair is pending") {
  // A's syncs to B time out under load; A's verifies list x at its new revision. B must not expire
  // the (stale) copy meanwhile: it reports it stale every round and keeps it.
  auto p = make_ready(b, {a});
  auto x = session(a, 1);
  p.on_sync_batch(distro::sync_batch{a, {data(x, "orders")}}, 100);
  auto newer = content_revision(make_services("orders", 9090));
  for (time_ms t = 1000; t <= 8000; t += 1000) {
    auto out = p.on_verify_batch(distro::verify_batch{a, {{x, newer}}}, t);
    CHECK(out.reply.missing == std::vector<client_id>{x});
    CHECK(out.fx.log.copies_expired == 0);
    REQUIRE(p.find(x) != nullptr);
  }
  // The sync finally gets through.
  p.on_sync_batch(distro::sync_batch{a, {data(x, "orders", 9090)}}, 8500);
  CHECK(p.find(x)->revision == newer);
  CHECK(p.on_verify_batch(distro::verify_batch{a, {{x, newer}}}, 9000).reply.missing.empty());
}

TEST_CASE("distro: the copies of an alive source that sends no verify go after a longer silence") {
  // A answers B's probes but does not see B alive (it sends B nothing): its copies at B go after
  // copy_expiry_silent_source_factor * 3 of B's sweeps (one per second) since A's last verify
  // (at 0 in make_ready).
  auto p = make_ready(b, {a});
  auto x = session(a, 1);
  p.on_sync_batch(distro::sync_batch{a, {data(x, "orders")}}, 100);
  auto sweeps = 3 * defaults::copy_expiry_silent_source_factor;
  for (int k = 1; k < sweeps; ++k)
    CHECK(p.tick(k * 1000).log.copies_expired == 0);
  CHECK(p.find(x) != nullptr);
  auto fx = p.tick(sweeps * 1000);
  CHECK(fx.log.copies_expired == 1);
  CHECK(p.find(x) == nullptr);
}

TEST_CASE("distro: a starved node counts its own sweeps, not the time it did not run") {
  // B loaded a snapshot from A, then its actors kept it from running for far longer than any
  // expiry time (A's verifies wait in its mailbox). Its first sweep after that removes nothing.
  proto p{b, make_config()};
  auto fx = p.start(up({a}), 0);
  REQUIRE(fx.snapshot_requests.size() == 1);
  auto x = session(a, 1);
  distro::snapshot s{a, {data(x, "orders")}};
  p.on_snapshot_result(a, fx.snapshot_requests[0].request_id, proto::snapshot_status::ok, &s, 10);
  fx = p.tick(60000);
  CHECK(fx.log.copies_expired == 0);
  CHECK(p.find(x) != nullptr);
  auto out = p.on_verify_batch(distro::verify_batch{a, {{x, content_revision(make_services("orders"))}}},
                               60001);
  CHECK(out.reply.missing.empty());
  CHECK(p.find(x) != nullptr);
}

TEST_CASE("distro: a failed batch is resent in halves; answered batches grow back") {
  auto p = make_ready(a, {b}); // sync_batch_clients_max = 3
  auto fx = p.on_local_change(change(session(a, 100), "orders"), 10);
  REQUIRE(syncs_to(fx, b).size() == 1);
  ack_all(p, fx, 11);
  for (int k = 1; k <= 20; ++k)
    p.on_local_change(change(session(a, k), "orders"), 12);
  std::vector<std::size_t> sizes;
  time_ms t = 100;
  auto next_batch = [&]() -> std::optional<proto::outgoing_sync> {
    for (int step = 0; step < 50; ++step, t += 10) {
      auto out = syncs_to(p.tick(t), b);
      if (!out.empty())
        return out[0];
    }
    return std::nullopt;
  };
  auto first = next_batch();
  REQUIRE(first);
  CHECK(first->batch.clients.size() == 3);
  p.on_sync_result(b, first->batch_id, false, t); // not answered in time
  for (bool ok : {true, true, true}) {
    auto s = next_batch();
    REQUIRE(s);
    sizes.push_back(s->batch.clients.size());
    p.on_sync_result(b, s->batch_id, ok, t);
  }
  CHECK(sizes == std::vector<std::size_t>{1, 2, 3});
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: a member dropped from the list and added back does not take its copies along") {
  // B holds copies from A after some of A's verifies; A leaves B's member list for a moment (a
  // reload) and comes back: its first verifies must not expire what it still holds.
  auto p = make_ready(b, {a, c});
  auto x = session(a, 1), y = session(a, 2);
  auto rev = content_revision(make_services("orders"));
  for (time_ms t = 100; t <= 500; t += 100)
    p.on_verify_batch(distro::verify_batch{a, {}}, t);
  p.on_sync_batch(distro::sync_batch{a, {data(x, "orders"), data(y, "orders")}}, 600);
  p.on_members(up({c}), 700);    // A left the list
  p.on_members(up({a, c}), 800); // and is back
  auto out = p.on_verify_batch(distro::verify_batch{a, {{x, rev}}}, 900);
  CHECK(out.fx.log.copies_expired == 0);
  p.tick(1000);
  CHECK(p.find(x) != nullptr);
  CHECK(p.find(y) != nullptr);
  // y is not in A's verifies: it goes after the third, x stays.
  p.on_verify_batch(distro::verify_batch{a, {{x, rev}}}, 1900);
  p.on_verify_batch(distro::verify_batch{a, {{x, rev}}}, 2900);
  p.tick(3000);
  CHECK(p.find(x) != nullptr);
  CHECK(p.find(y) == nullptr);
  CHECK(p.check_invariants() == "");
}

namespace {

/// A heartbeat client that `self` is responsible for among `nodes`.
client_id heartbeat_of(const std::string& self, const std::vector<std::string>& nodes) {
  for (int i = 0;; ++i)
    if (responsible_node(nodes, heartbeat(i)) == self)
      return heartbeat(i);
}

/// `id`'s data as `from` syncs it: one instance of "orders", beaten `age_ms` ago.
distro::client_data beaten(const client_id& id, time_ms age_ms) {
  auto x = data(id, "orders");
  auto& [key, xs] = *x.services.begin();
  x.beats[key][instance_identity(xs.front().ip, xs.front().port, xs.front().cluster)] =
    distro::beat_age{age_ms, false};
  return x;
}

} // namespace

TEST_CASE("distro: a responsible node continues fresher beat clocks a peer reports") {
  // B sees a member that A does not see yet: its routing sends the client's beats to B, which
  // reports their clocks here. A's client actor must continue them, or it expires a live client.
  auto p = make_ready(a, {b});
  auto h = heartbeat_of(a, {a, b});
  auto fx = p.on_sync_batch(distro::sync_batch{b, {beaten(h, 0)}}, 1000);
  REQUIRE(p.find(h) != nullptr);
  REQUIRE(p.find(h)->local);
  fx = p.on_sync_batch(distro::sync_batch{b, {beaten(h, 0)}}, 8000); // same content, beaten at 8000
  auto op = std::find_if(fx.apply.begin(), fx.apply.end(),
                         [&](const proto::local_op& o) { return o.id == h; });
  REQUIRE(op != fx.apply.end());
  CHECK(op->what == op_kind::replace);
  CHECK(op->local);
  CHECK(op->beats.begin()->second.begin()->second.last_beat_ms == 8000);
  // Older clocks change nothing.
  fx = p.on_sync_batch(distro::sync_batch{b, {beaten(h, 5000)}}, 9000);
  CHECK(fx.apply.empty());
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: a heartbeat client this node expired comes back when a peer saw a later beat") {
  auto p = make_ready(a, {b});
  auto h = heartbeat_of(a, {a, b});
  p.on_local_change(change(h, "orders"), 100);
  // No beat reached A: its client actor expired the client at 20000 (the delete waits for B).
  p.on_local_change(removal(h), 20000);
  REQUIRE(p.find(h) != nullptr);
  REQUIRE(p.find(h)->tombstone);
  // B's report of a beat before the deletion does not bring it back.
  auto fx = p.on_sync_batch(distro::sync_batch{b, {beaten(h, 2000)}}, 20500);
  CHECK(fx.apply.empty());
  CHECK(p.find(h)->tombstone);
  // A beat at B after the deletion: the client lives, A holds it again and checks it.
  fx = p.on_sync_batch(distro::sync_batch{b, {beaten(h, 100)}}, 21000);
  REQUIRE(fx.apply.size() == 1);
  CHECK(fx.apply[0].what == op_kind::replace);
  CHECK(fx.apply[0].local);
  REQUIRE(p.find(h) != nullptr);
  CHECK_FALSE(p.find(h)->tombstone);
  CHECK(p.find(h)->local);
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: instances are counted by the member that owns their client (the console)") {
  auto p = make_ready(b, {a});
  // A copy of a's session, and local clients: two sessions of b and heartbeat clients that the
  // routing gives to either member.
  p.on_sync_batch(distro::sync_batch{a, {data(session(a, 1), "orders")}}, 10);
  p.on_local_change(change(session(b, 1), "orders", 1), 11);
  p.on_local_change(change(session(b, 2), "pay", 2), 12);
  std::map<std::string, std::uint64_t> expected{{a, 1}, {b, 2}};
  for (int n = 1; n <= 20; ++n) {
    auto id = heartbeat(n);
    if (p.responsible_node(id) == b) {
      p.on_local_change(change(id, "orders", 9000), 13);
      ++expected[b];
    } else {
      p.on_sync_batch(distro::sync_batch{a, {data(id, "orders", 9000)}}, 13);
      ++expected[a];
    }
  }
  CHECK(p.instances_by_owner() == expected);
  p.on_local_change(removal(session(b, 2)), 14); // a tombstone counts nothing
  --expected[b];
  CHECK(p.instances_by_owner() == expected);
}
// -- take-over of a heartbeat client whose beat reports lag -------------------------------------

namespace {

/// The owner/other pair of `h` over {a, b}: (owner, other, owner's name, other's name).
struct beat_pair {
  proto pa = make_ready(a, {b});
  proto pb = make_ready(b, {a});
  client_id h;
  bool owner_is_a = true;
  explicit beat_pair(client_id id) : h(std::move(id)) {
    owner_is_a = pa.responsible_node(h) == a;
  }
  proto& owner() { return owner_is_a ? pa : pb; }
  proto& other() { return owner_is_a ? pb : pa; }
  std::string owner_name() const { return owner_is_a ? a : b; }
  std::string other_name() const { return owner_is_a ? b : a; }
};

/// The beat clock of the only instance of `xs`.
time_ms only_beat(const client_beats& xs) {
  REQUIRE(xs.size() == 1);
  REQUIRE(xs.begin()->second.size() == 1);
  return xs.begin()->second.begin()->second.last_beat_ms;
}

/// The take_over op of `id` in `fx`.
const proto::local_op& take_over_of(const proto::effects& fx, const client_id& id) {
  auto i = std::find_if(fx.apply.begin(), fx.apply.end(), [&](const proto::local_op& op) {
    return op.id == id && op.what == op_kind::take_over;
  });
  REQUIRE(i != fx.apply.end());
  return *i;
}

} // namespace

TEST_CASE("distro: a live heartbeat client whose beat reports lag survives a take-over") {
  // Seen in the fault tier: an overloaded owner's syncs (and with them its beat reports) lag far
  // behind while its verifies still arrive every round. The client keeps beating at the owner; the
  // other node holds a beat clock from long ago when the owner goes DOWN and takes the client over.
  beat_pair n{heartbeat(31)};
  auto svc = make_services("orders");
  auto key = svc.begin()->first;
  auto ident = instance_identity("192.168.1.1", 8080, "DEFAULT");
  client_limits limits; // unhealthy after 15000 ms, removed after 30000 ms without a beat
  REQUIRE(n.other().config().beat_unhealthy_timeout_ms == limits.unhealthy_timeout_ms);
  proto::local_change x{n.h, svc, false, {{key, {{ident, beat_mark{1000, false}}}}}};
  auto fx = n.owner().on_local_change(x, 1000);
  auto out = syncs_to(fx, n.other_name());
  REQUIRE(out.size() == 1);
  n.other().on_sync_batch(out[0].batch, 1000);
  ack_all(n.owner(), fx, 1002);
  // Beats every 5 s at the owner, reported; the batches carrying them never arrive. Its verifies
  // do, listing the client at the same revision (healthy) every second.
  auto revision = content_revision(svc);
  for (time_ms t = 2000; t <= 28000; t += 1000) {
    if (t % 5000 == 0) {
      x.beats[key][ident].last_beat_ms = t;
      n.owner().on_local_change(x, t);
    }
    n.other().on_verify_batch(distro::verify_batch{n.owner_name(), {{n.h, revision}}}, t);
  }
  CHECK(only_beat(n.other().find(n.h)->beats) == 1000); // the lagging report
  // The owner goes DOWN at 28500; the other node takes over and runs the client's expiry.
  fx = n.other().on_members({{n.owner_name(), member_state::down}}, 28500);
  const auto& take = take_over_of(fx, n.h);
  client_state c{n.h, client_kind::replica, limits};
  c.replace(svc, revision);
  c.set_kind(client_kind::heartbeat);
  c.adopt_beats(take.beats, 28500);
  // The client's next beat reaches the new owner within one beat interval: until then the
  // take-over must not have removed it.
  auto next_beat = 28500 + defaults::beat_interval_ms;
  for (time_ms t = 28500; t <= next_beat; t += 500)
    CHECK(c.tick(t).removed.empty());
  CHECK_FALSE(c.beat(key, svc.begin()->second.front(), next_beat).created);
  CHECK(n.other().check_invariants() == "");
}

TEST_CASE("distro: a dead heartbeat client lives at most one unhealthy timeout longer after a take-over") {
  // The owner's last vouch for a healthy copy raises the taken-over clock, by at most
  // beat_unhealthy_timeout_ms over the last beat this node knows: neither a lagging vouch nor
  // responsibility moving to and fro keeps a dead client alive longer.
  beat_pair n{heartbeat(32)};
  auto svc = make_services("orders");
  auto key = svc.begin()->first;
  auto ident = instance_identity("192.168.1.1", 8080, "DEFAULT");
  auto unhealthy = n.other().config().beat_unhealthy_timeout_ms;
  proto::local_change x{n.h, svc, false, {{key, {{ident, beat_mark{1000, false}}}}}};
  auto fx = n.owner().on_local_change(x, 1000);
  auto out = syncs_to(fx, n.other_name());
  REQUIRE(out.size() == 1);
  n.other().on_sync_batch(out[0].batch, 1000);
  // The last beat was at 1000; the owner vouches (healthy, same revision) until 40000: its view
  // of the clock lags too (it took the client over itself, say).
  auto revision = content_revision(svc);
  for (time_ms t = 2000; t <= 40000; t += 1000)
    n.other().on_verify_batch(distro::verify_batch{n.owner_name(), {{n.h, revision}}}, t);
  fx = n.other().on_members({{n.owner_name(), member_state::down}}, 40500);
  CHECK(only_beat(take_over_of(fx, n.h).beats) == 1000 + unhealthy);
  // Its client actor reports the clock it runs: the peers still get the last real beat, so the
  // next take-over cannot raise it once more.
  auto& p = n.other();
  proto::local_change report{n.h, svc, false, {{key, {{ident, beat_mark{1000 + unhealthy, false}}}}}};
  fx = p.on_members(up({n.owner_name()}), 41000);
  ack_all(p, fx, 41000);
  REQUIRE(p.find(n.h) != nullptr);
  // (the owner came back but is not ready yet: the client is still this node's)
  REQUIRE(p.find(n.h)->local);
  fx = p.on_local_change(report, 41500);
  CHECK(syncs_to(fx, n.owner_name()).empty()); // no beat since: nothing new to tell
  CHECK(only_beat(p.find(n.h)->beats) == 1000);
  CHECK(only_beat(p.resync(n.h).beats) == 1000 + unhealthy); // what the client actor runs
  auto snap = p.on_snapshot_request(distro::snapshot_request{n.owner_name()}, 41500);
  REQUIRE(snap.reply.has_value());
  REQUIRE(snap.reply->clients.size() == 1);
  CHECK(snap.reply->clients[0].beats.at(key).at(ident).age_ms == 41500 - 1000);
  ack_all(p, snap.fx, 41500);
  // A beat after the take-over is real and travels as it is.
  report.beats[key][ident].last_beat_ms = 42000;
  fx = p.on_local_change(report, 42000);
  auto back = syncs_to(fx, n.owner_name());
  REQUIRE(back.size() == 1);
  CHECK(back[0].batch.clients[0].beats.at(key).at(ident).age_ms == 0);
  CHECK(p.check_invariants() == "");
}

TEST_CASE("distro: without a vouch after the last report a take-over continues the reported clock") {
  // A copy whose owner never listed it since its clocks arrived: nothing raises them, a dead
  // instance goes at its original deadline.
  beat_pair n{heartbeat(33)};
  auto svc = make_services("orders");
  auto key = svc.begin()->first;
  auto ident = instance_identity("192.168.1.1", 8080, "DEFAULT");
  proto::local_change x{n.h, svc, false, {{key, {{ident, beat_mark{1000, false}}}}}};
  auto fx = n.owner().on_local_change(x, 1000);
  auto out = syncs_to(fx, n.other_name());
  REQUIRE(out.size() == 1);
  n.other().on_sync_batch(out[0].batch, 1000);
  fx = n.other().on_members({{n.owner_name(), member_state::down}}, 20000);
  CHECK(only_beat(take_over_of(fx, n.h).beats) == 1000);
  // An instance the copy shows unhealthy is not raised by a vouch either.
  CHECK(n.other().check_invariants() == "");
}
