// A snapshot in chunks (actors/distro/distro_protocol.hpp, Snapshot load and readiness; the checks
// of distro_wire.hpp): two protocol instances, a ready sender and a starting node, exchange the
// chunks directly, without an actor system.

#include <doctest/doctest.h>

#include <string>
#include <tuple>
#include <vector>

#include "actors/distro/distro_protocol.hpp"
#include "actors/distro/distro_wire.hpp"
#include "test/unit/distro_test_support.hpp"

using namespace registry;
using registry::test::up;

namespace {

using proto = distro_protocol;
using op_kind = proto::local_op::kind;

const std::string a = "10.0.0.1:8848"; // the starting node
const std::string b = "10.0.0.2:8848"; // a ready peer
const std::string c = "10.0.0.3:8848"; // another ready peer

distro_config chunk_config(std::size_t clients_max, std::size_t instances_max = 100000) {
  distro_config cfg;
  cfg.sync_delay_ms = 10;
  cfg.sync_timeout_ms = 1000;
  cfg.verify_interval_ms = 1000;
  cfg.verify_timeout_ms = 500;
  cfg.snapshot_timeout_ms = 500;
  cfg.snapshot_retry_delay_ms = 300;
  cfg.lone_ready_wait_ms = 60000;
  cfg.snapshot_chunk_clients_max = clients_max;
  cfg.snapshot_chunk_instances_max = instances_max;
  return cfg;
}

/// A session client of `node` with `instances` instances in one service.
client_id session(const std::string& node, int n) {
  return node + "/" + std::to_string(100 + n) + "/1700000000000";
}

client_services make_services(int instances, std::uint32_t port = 8080) {
  client_services result;
  auto& xs = result[service_key{"public", "DEFAULT_GROUP", "orders"}].mutate();
  for (int k = 0; k < instances; ++k) {
    instance x;
    x.ip = "192.168.2." + std::to_string(k);
    x.port = port;
    xs.push_back(x);
  }
  return result;
}

/// A ready node `self` (no peer data) whose own clients are `clients`.
proto make_sender(const std::string& self, const std::vector<std::string>& peers,
                  const std::vector<std::pair<client_id, int>>& clients, distro_config cfg) {
  proto p{self, cfg};
  auto fx = p.start(up(peers), 0);
  REQUIRE(fx.snapshot_requests.size() == 1);
  distro::snapshot empty{fx.snapshot_requests[0].peer, {}};
  p.on_snapshot_result(fx.snapshot_requests[0].peer, fx.snapshot_requests[0].request_id,
                       proto::snapshot_status::ok, &empty, 0);
  REQUIRE(p.ready());
  for (const auto& x : clients)
    p.on_local_change(proto::local_change{x.first, make_services(x.second), false, {}}, 1);
  REQUIRE(p.check_invariants() == "");
  return p;
}

/// The replaced clients among `fx.apply`.
std::vector<client_id> replaced(const proto::effects& fx) {
  std::vector<client_id> result;
  for (const auto& op : fx.apply)
    if (op.what == op_kind::replace)
      result.push_back(op.id);
  return result;
}

} // namespace

TEST_CASE("distro snapshot: chunks of snapshot_chunk_clients_max in id order; only the last "
          "makes the node ready") {
  std::vector<std::pair<client_id, int>> clients;
  for (int n = 0; n < 8; ++n)
    clients.emplace_back(session(b, n), 2);
  auto sender = make_sender(b, {a, b}, clients, chunk_config(1000));
  proto joiner{a, chunk_config(3)};
  auto fx = joiner.start(up({a, b}), 10);
  std::vector<std::size_t> sizes;
  std::vector<client_id> applied;
  time_ms now = 10;
  for (int round = 0; round < 10 && !joiner.ready(); ++round) {
    REQUIRE(fx.snapshot_requests.size() == 1);
    auto rq = fx.snapshot_requests[0];
    CHECK(rq.peer == b);
    CHECK(rq.request.clients_max == 3);
    CHECK(joiner.snapshot_in_flight(b, rq.request_id) != nullptr);
    auto out = sender.on_snapshot_request(rq.request, ++now);
    REQUIRE(out.reply.has_value());
    auto wire = distro::to_wire(*out.reply);
    CHECK_FALSE(distro::check(wire, rq.request));
    sizes.push_back(out.reply->clients.size());
    fx = joiner.on_snapshot_result(b, rq.request_id, proto::snapshot_status::ok, &*out.reply, ++now);
    CHECK(fx.log.snapshot_chunks == 1);
    for (auto& id : replaced(fx))
      applied.push_back(id);
    CHECK(joiner.check_invariants() == "");
    CHECK(sender.check_invariants() == "");
    if (out.reply->more) {
      CHECK_FALSE(joiner.ready());
      CHECK_FALSE(fx.ready_changed.has_value());
      CHECK(fx.verifies.empty()); // a loading node does not verify
    }
  }
  CHECK(joiner.ready());
  CHECK(fx.ready_changed == true);
  CHECK(sizes == std::vector<std::size_t>{3, 3, 2});
  REQUIRE(fx.log.snapshot_loaded.has_value());
  CHECK(fx.log.snapshot_loaded->clients == 8);
  CHECK(fx.log.snapshot_loaded->chunks == 3);
  // Every client arrived once, in id order (the ops of each chunk are one message to the gateway).
  std::vector<client_id> expected;
  for (const auto& x : clients)
    expected.push_back(x.first);
  CHECK(applied == expected);
  for (const auto& id : expected)
    CHECK(joiner.find(id) != nullptr);
}

TEST_CASE("distro snapshot: a chunk holds about snapshot_chunk_instances_max instances, at least "
          "one client, never half of one") {
  auto sender = make_sender(b, {a, b},
                            {{session(b, 0), 4}, {session(b, 1), 4}, {session(b, 2), 9},
                             {session(b, 3), 1}},
                            chunk_config(1000, 8));
  distro::snapshot_request rq{a, "", 1000, 0};
  auto out = sender.on_snapshot_request(rq, 5);
  REQUIRE(out.reply.has_value());
  CHECK(out.reply->clients.size() == 2); // 4 + 4; the next (9) would pass 8
  CHECK(out.reply->more);
  CHECK(out.reply->last == session(b, 1));
  rq.after = out.reply->last;
  out = sender.on_snapshot_request(rq, 6);
  REQUIRE(out.reply.has_value());
  REQUIRE(out.reply->clients.size() == 1); // larger than the bound alone: sent whole
  CHECK(out.reply->clients[0].id == session(b, 2));
  CHECK(out.reply->more);
  rq.after = out.reply->last;
  rq.instances_max = 1; // the asker's bound counts too (the smaller one)
  out = sender.on_snapshot_request(rq, 7);
  REQUIRE(out.reply.has_value());
  CHECK(out.reply->clients.size() == 1);
  CHECK_FALSE(out.reply->more);
  CHECK(out.reply->last == session(b, 3));
}

TEST_CASE("distro snapshot: deleted clients are left out, and `more` says only whether a live "
          "client follows") {
  auto sender = make_sender(b, {a, b}, {{session(b, 0), 1}, {session(b, 1), 1}, {session(b, 2), 1}},
                            chunk_config(1000));
  sender.on_local_change(proto::local_change{session(b, 2), {}, true, {}}, 2); // a tombstone
  REQUIRE(sender.find(session(b, 2)) != nullptr);
  distro::snapshot_request rq{a, "", 2, 0};
  auto out = sender.on_snapshot_request(rq, 5);
  REQUIRE(out.reply.has_value());
  CHECK(out.reply->clients.size() == 2);
  CHECK_FALSE(out.reply->more); // only the tombstone is left
  // A request without a chunk size (a sender without chunks) gets everything in one Snapshot.
  out = sender.on_snapshot_request(distro::snapshot_request{a}, 6);
  REQUIRE(out.reply.has_value());
  CHECK(out.reply->clients.size() == 2);
  CHECK_FALSE(out.reply->more);
}

TEST_CASE("distro snapshot: a chunk that times out fails the load; it starts again from the first "
          "chunk and the node stays not ready meanwhile") {
  std::vector<std::pair<client_id, int>> clients;
  for (int n = 0; n < 5; ++n)
    clients.emplace_back(session(b, n), 1);
  auto sender = make_sender(b, {a, b, c}, clients, chunk_config(1000));
  proto joiner{a, chunk_config(2)};
  auto fx = joiner.start(up({a, b, c}), 0);
  REQUIRE(fx.snapshot_requests.size() == 1);
  auto rq = fx.snapshot_requests[0];
  REQUIRE(rq.peer == b);
  auto out = sender.on_snapshot_request(rq.request, 1);
  fx = joiner.on_snapshot_result(b, rq.request_id, proto::snapshot_status::ok, &*out.reply, 2);
  CHECK(replaced(fx).size() == 2);
  REQUIRE(fx.snapshot_requests.size() == 1);
  auto second = fx.snapshot_requests[0];
  CHECK(second.request.after == session(b, 1));
  CHECK(fx.wake_at == 2 + 500); // each chunk has its own timeout
  // The second chunk is lost: its timeout fails the load; the next peer is asked from the start.
  fx = joiner.tick(502);
  CHECK(fx.log.snapshot_failures == 1);
  CHECK_FALSE(joiner.ready());
  CHECK_FALSE(fx.ready_changed.has_value());
  REQUIRE(fx.snapshot_requests.size() == 1);
  CHECK(fx.snapshot_requests[0].peer == c);
  CHECK(fx.snapshot_requests[0].request.after.empty());
  CHECK(joiner.snapshot_in_flight(b, second.request_id) == nullptr);
  // The lost chunk's late answer is ignored.
  out = sender.on_snapshot_request(second.request, 503);
  auto late = joiner.on_snapshot_result(b, second.request_id, proto::snapshot_status::ok,
                                        &*out.reply, 504);
  CHECK(late.log.stale_results == 1);
  CHECK(late.apply.empty());
  CHECK_FALSE(joiner.ready());
  // C fails too: the round is over; after the retry delay B is asked again, from the first chunk,
  // and this time every chunk arrives.
  fx = joiner.on_snapshot_result(c, fx.snapshot_requests[0].request_id,
                                 proto::snapshot_status::failed, nullptr, 510);
  CHECK(fx.snapshot_requests.empty());
  fx = joiner.tick(810);
  time_ms now = 810;
  for (int round = 0; round < 5 && !joiner.ready(); ++round) {
    REQUIRE(fx.snapshot_requests.size() == 1);
    rq = fx.snapshot_requests[0];
    CHECK(rq.peer == b);
    if (round == 0)
      CHECK(rq.request.after.empty());
    out = sender.on_snapshot_request(rq.request, ++now);
    fx = joiner.on_snapshot_result(b, rq.request_id, proto::snapshot_status::ok, &*out.reply, ++now);
    CHECK(joiner.check_invariants() == "");
  }
  CHECK(joiner.ready());
  for (const auto& x : clients)
    CHECK(joiner.find(x.first) != nullptr);
}

TEST_CASE("distro snapshot: a chunk that does not move past the cursor fails the load") {
  proto joiner{a, chunk_config(2)};
  auto fx = joiner.start(up({a, b}), 0);
  auto rq = fx.snapshot_requests.at(0);
  distro::snapshot first{b, {}, true, session(b, 3)};
  fx = joiner.on_snapshot_result(b, rq.request_id, proto::snapshot_status::ok, &first, 1);
  REQUIRE(fx.snapshot_requests.size() == 1);
  rq = fx.snapshot_requests[0];
  CHECK(rq.request.after == session(b, 3));
  distro::snapshot stuck{b, {}, true, session(b, 3)}; // the same cursor again
  fx = joiner.on_snapshot_result(b, rq.request_id, proto::snapshot_status::ok, &stuck, 2);
  CHECK(fx.log.snapshot_failures == 1);
  CHECK_FALSE(joiner.ready());
  CHECK(joiner.check_invariants() == "");
}

TEST_CASE("distro snapshot: the first chunk request marks the asker not ready; later ones do not") {
  auto sender = make_sender(b, {a, b, c}, {{session(b, 0), 1}, {session(b, 1), 1}},
                            chunk_config(1));
  sender.on_verify_batch(distro::verify_batch{a, {}}, 2);
  CHECK(sender.peer_ready(a));
  auto out = sender.on_snapshot_request(distro::snapshot_request{a, session(b, 0), 1, 0}, 3);
  CHECK(sender.peer_ready(a));
  out = sender.on_snapshot_request(distro::snapshot_request{a, "", 1, 0}, 4);
  CHECK_FALSE(sender.peer_ready(a));
  REQUIRE(out.reply.has_value());
  CHECK(out.reply->more);
}

// -- the wire checks -------------------------------------------------------------------------------

TEST_CASE("distro snapshot wire: chunk fields round-trip") {
  distro::snapshot_request rq{a, session(b, 1), 500, 9000};
  auto back = distro::from_wire(distro::to_wire(rq));
  CHECK(std::tie(back.source, back.after, back.clients_max, back.instances_max)
        == std::tie(rq.source, rq.after, rq.clients_max, rq.instances_max));
  distro::snapshot s{b, {}, true, session(b, 7)};
  std::vector<distro::dropped_client> dropped;
  auto got = distro::from_wire(distro::to_wire(s), distro::peer_rules{}, dropped);
  CHECK(std::tie(got.source, got.more, got.last) == std::tie(s.source, s.more, s.last));
}

TEST_CASE("distro snapshot wire: a bad SnapshotRequest is refused, naming the field") {
  v1::SnapshotRequest x;
  x.set_source(a);
  CHECK_FALSE(distro::check(x)); // the whole snapshot, as a sender without chunks asks
  x.set_after(session(b, 1));
  auto err = distro::check(x);
  REQUIRE(err);
  CHECK(err->field == "clients_max");
  x.set_clients_max(10);
  CHECK_FALSE(distro::check(x));
  x.set_after(std::string(5000, 'x'));
  err = distro::check(x);
  REQUIRE(err);
  CHECK(err->field == "after");
}

TEST_CASE("distro snapshot wire: a chunk that does not answer its request is refused, naming the "
          "field") {
  auto client = [](const client_id& id) {
    v1::ClientData x;
    x.set_client_id(id);
    return x;
  };
  distro::snapshot_request first{a, "", 3, 0};
  distro::snapshot_request next{a, session(b, 2), 3, 0};
  distro::snapshot_request whole{a};
  struct bad {
    std::string name;
    distro::snapshot_request request;
    std::vector<client_id> ids;
    bool more;
    client_id last;
    std::string field;
  };
  std::vector<bad> cases{
    {"chunk to a request for everything", whole, {session(b, 1)}, true, session(b, 1), "more"},
    {"more without last", first, {}, true, "", "last"},
    {"last not past the cursor", next, {}, true, session(b, 2), "last"},
    {"last before the cursor", next, {}, false, session(b, 1), "last"},
    {"more clients than asked", first,
     {session(b, 1), session(b, 2), session(b, 3), session(b, 4)}, true, session(b, 4), "clients"},
    {"out of order", first, {session(b, 2), session(b, 1)}, true, session(b, 2),
     "clients[1].client_id"},
    {"a duplicate", first, {session(b, 1), session(b, 1)}, true, session(b, 1),
     "clients[1].client_id"},
    {"at the cursor", next, {session(b, 2)}, false, session(b, 3), "clients[0].client_id"},
    {"after last", first, {session(b, 1), session(b, 5)}, false, session(b, 3),
     "clients[1].client_id"},
    {"a whole snapshot answering a cursor", next, {session(b, 3)}, false, "", "last"},
  };
  for (const auto& k : cases) {
    CAPTURE(k.name);
    v1::Snapshot x;
    x.set_source(b);
    for (const auto& id : k.ids)
      *x.add_clients() = client(id);
    x.set_more(k.more);
    x.set_last(k.last);
    auto err = distro::check(x, k.request);
    REQUIRE(err);
    CHECK(err->field == k.field);
  }
  // The good forms: a chunk, the last chunk, and a whole snapshot from a sender without chunks.
  v1::Snapshot chunk;
  *chunk.add_clients() = client(session(b, 3));
  chunk.set_more(true);
  chunk.set_last(session(b, 4));
  CHECK_FALSE(distro::check(chunk, next));
  chunk.set_more(false);
  CHECK_FALSE(distro::check(chunk, next));
  v1::Snapshot all;
  *all.add_clients() = client(session(b, 9));
  *all.add_clients() = client(session(b, 1));
  CHECK_FALSE(distro::check(all, first));
  CHECK_FALSE(distro::check(all, whole));
}

TEST_CASE("distro snapshot: a loading node renews what a verify lists but asks for nothing") {
  proto joiner{a, chunk_config(2)};
  auto fx = joiner.start(up({a, b}), 0);
  auto rq = fx.snapshot_requests.at(0);
  auto s1 = session(b, 1);
  distro::client_data x{s1, 0, make_services(1), false, b, {}};
  x.revision = content_revision(x.services);
  distro::snapshot first{b, {x}, true, s1};
  joiner.on_snapshot_result(b, rq.request_id, proto::snapshot_status::ok, &first, 1);
  REQUIRE_FALSE(joiner.ready());
  // B verifies (it is ready): s1 at another revision, s2 not here yet. Nothing is reported: the
  // next chunks bring them; the listed copy is renewed.
  distro::verify_batch v{b, {{s1, 42}, {session(b, 2), 7}}};
  auto out = joiner.on_verify_batch(v, 2);
  CHECK(out.reply.missing.empty());
  CHECK(out.reply.differing.empty());
  CHECK(out.fx.log.verify_missing == 0);
  REQUIRE(joiner.find(s1) != nullptr);
  CHECK(joiner.find(s1)->renewed_ms == 2);
  CHECK(joiner.check_invariants() == "");
}

TEST_CASE("distro snapshot wire: a chunk is encoded byte for byte as its message") {
  distro::snapshot s{b, {}, true, session(b, 3)};
  for (int n = 0; n < 3; ++n) {
    distro::client_data x{session(b, n), 0, make_services(n + 1, 8080 + n), false, b, {}};
    x.revision = content_revision(x.services);
    s.clients.push_back(x);
  }
  CHECK(distro::encode(s) == distro::to_wire(s).SerializeAsString());
  s.more = false;
  CHECK(distro::encode(s) == distro::to_wire(s).SerializeAsString());
  distro::snapshot empty{b, {}};
  CHECK(distro::encode(empty) == distro::to_wire(empty).SerializeAsString());
}
