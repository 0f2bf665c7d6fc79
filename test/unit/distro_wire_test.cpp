// Peer data on the way in (actors/distro/distro_wire.hpp): a client that breaks a rule of
// messages/validate.hpp is dropped and reported, the other clients of the same message are applied.

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "actors/distro/distro_protocol.hpp"
#include "actors/distro/distro_wire.hpp"

using namespace registry;

namespace {

using proto = distro_protocol;
using op_kind = proto::local_op::kind;

const std::string self_name = "10.0.0.1:8848";
const std::string peer_name = "10.0.0.2:8848";

client_id session_of_peer(int n) {
  return peer_name + "/1000/" + std::to_string(n);
}

instance make_instance(const std::string& ip, std::uint32_t port) {
  instance x;
  x.ip = ip;
  x.port = port;
  return x;
}

service_key orders() {
  return {"public", "DEFAULT_GROUP", "orders"};
}

/// A client that passes every check, with its content revision.
distro::client_data good_client(const client_id& id, std::uint32_t port = 8080) {
  distro::client_data x;
  x.id = id;
  x.services[orders()].mutate().push_back(make_instance("192.168.1.1", port));
  x.revision = content_revision(x.services);
  x.owner = peer_name;
  return x;
}

/// One broken rule: how to break it, and the field the drop must name.
struct bad_case {
  std::string name;
  std::string field;
  std::function<void(distro::client_data&)> spoil;
  bool keep_revision = false; ///< the revision stays that of the unspoilt content
};

instance& first(distro::client_data& x) {
  return x.services.begin()->second.mutate().front();
}

std::vector<bad_case> bad_cases() {
  std::vector<bad_case> xs;
  xs.push_back({"NaN weight", "weight",
                [](auto& x) { first(x).weight = std::numeric_limits<double>::quiet_NaN(); }});
  xs.push_back({"negative weight", "weight", [](auto& x) { first(x).weight = -1.0; }});
  xs.push_back({"huge weight", "weight", [](auto& x) { first(x).weight = 1e300; }});
  xs.push_back({"infinite weight", "weight",
                [](auto& x) { first(x).weight = std::numeric_limits<double>::infinity(); }});
  xs.push_back({"over-long ip", "ip", [](auto& x) { first(x).ip = std::string(129, '1'); }});
  xs.push_back({"port 0", "port", [](auto& x) { first(x).port = 0; }});
  xs.push_back({"port over 65535", "port", [](auto& x) { first(x).port = 70000; }});
  xs.push_back({"persistent instance", "ephemeral", [](auto& x) { first(x).ephemeral = false; }});
  xs.push_back({"bad cluster", "clusterName", [](auto& x) { first(x).cluster = "a b"; }});
  xs.push_back({"over-long instance id", "instanceId",
                [](auto& x) { first(x).instance_id = std::string(257, 'i'); }});
  xs.push_back({"too much metadata", "metadata", [](auto& x) {
                  for (int k = 0; k < 65; ++k)
                    first(x).metadata.emplace_back("k" + std::to_string(1000 + k), "v");
                }});
  xs.push_back({"over-long service name", "serviceName", [](auto& x) {
                  auto xs = x.services.begin()->second;
                  x.services.clear();
                  x.services[{"public", "DEFAULT_GROUP", std::string(513, 's')}] = xs;
                }});
  xs.push_back({"bad namespace", "namespaceId", [](auto& x) {
                  auto xs = x.services.begin()->second;
                  x.services.clear();
                  x.services[{"pub lic", "DEFAULT_GROUP", "orders"}] = xs;
                }});
  xs.push_back({"over-long group", "groupName", [](auto& x) {
                  auto xs = x.services.begin()->second;
                  x.services.clear();
                  x.services[{"public", std::string(129, 'g'), "orders"}] = xs;
                }});
  xs.push_back({"too many instances", "instances", [](auto& x) {
                  auto& v = x.services.begin()->second.mutate();
                  for (std::uint32_t port = 1; v.size() <= defaults::instances_per_client_max; ++port)
                    v.push_back(make_instance("192.168.2.1", port));
                }});
  xs.push_back({"the same instance twice", "instances", [](auto& x) {
                  auto& v = x.services.begin()->second.mutate();
                  auto twin = v.front();
                  twin.weight = 2.0;
                  v.push_back(twin);
                }});
  xs.push_back({"empty client id", "clientId", [](auto& x) { x.id.clear(); }});
  xs.push_back({"over-long client id", "clientId",
                [](auto& x) { x.id = peer_name + "/1/" + std::string(400, '7'); }});
  xs.push_back({"heartbeat client with another ip:port", "ip",
                [](auto& x) { x.id = "192.168.9.9:8080#true"; }});
  xs.push_back({"a live client without instances", "services", [](auto& x) { x.services.clear(); }});
  xs.push_back({"wrong revision", "revision", [](auto& x) { x.revision ^= 1; }, true});
  return xs;
}

distro::client_data spoilt(const bad_case& c, const client_id& id) {
  auto x = good_client(id, 9090);
  c.spoil(x);
  if (!c.keep_revision)
    x.revision = content_revision(x.services);
  return x;
}

std::vector<client_id> replaced(const proto::effects& fx) {
  std::vector<client_id> result;
  for (auto& op : fx.apply)
    if (op.what == op_kind::replace)
      result.push_back(op.id);
  return result;
}

distro_config small_config() {
  distro_config cfg;
  cfg.verify_interval_ms = 1000;
  cfg.snapshot_timeout_ms = 500;
  cfg.lone_ready_wait_ms = 2000;
  return cfg;
}

} // namespace

TEST_CASE("distro wire: a client that passes the rules goes through unchanged") {
  std::vector<distro::dropped_client> dropped;
  distro::sync_batch batch{peer_name, {good_client(session_of_peer(1)), good_client("192.168.1.1:8080#true")}};
  batch.clients.push_back(distro::client_data{session_of_peer(3), 0, {}, true, peer_name, {}});
  auto back = distro::from_wire(distro::to_wire(batch), distro::peer_rules{}, dropped);
  CHECK(dropped.empty());
  REQUIRE(back.clients.size() == 3);
  CHECK(back.clients[0].services == batch.clients[0].services);
  CHECK(back.clients[1].revision == batch.clients[1].revision);
  CHECK(back.clients[2].deleted);
}

TEST_CASE("distro wire: each bad field drops its client from a SyncBatch; the others are applied") {
  for (const auto& c : bad_cases()) {
    CAPTURE(c.name);
    auto bad = spoilt(c, session_of_peer(2));
    REQUIRE(distro::check(bad, distro::peer_rules{}).has_value());
    distro::sync_batch sent{peer_name, {good_client(session_of_peer(1)), bad,
                                        good_client(session_of_peer(3))}};
    std::vector<distro::dropped_client> dropped;
    auto got = distro::from_wire(distro::to_wire(sent), distro::peer_rules{}, dropped);
    REQUIRE(dropped.size() == 1);
    CHECK(dropped[0].error.field == c.field);
    CHECK(dropped[0].id == bad.id);
    REQUIRE(got.clients.size() == 2);
    CHECK(got.source == peer_name);

    // The node applies the good clients of the batch, and nothing of the bad one.
    proto p{self_name, small_config()};
    p.start({{self_name, member_state::up}, {peer_name, member_state::up}}, 0);
    auto fx = p.on_sync_batch(got, 10);
    CHECK(replaced(fx) == std::vector<client_id>{session_of_peer(1), session_of_peer(3)});
    CHECK(p.find(session_of_peer(1)) != nullptr);
    CHECK(p.find(session_of_peer(3)) != nullptr);
    CHECK(p.find(bad.id) == nullptr);
    CHECK(p.check_invariants() == "");
  }
}

TEST_CASE("distro wire: a bad client of a Snapshot is dropped; the node loads the rest") {
  for (const auto& c : bad_cases()) {
    CAPTURE(c.name);
    auto bad = spoilt(c, session_of_peer(2));
    distro::snapshot sent{peer_name, {bad, good_client(session_of_peer(1)),
                                      good_client("192.168.1.1:8080#true")}};
    std::vector<distro::dropped_client> dropped;
    auto got = distro::from_wire(distro::to_wire(sent), distro::peer_rules{}, dropped);
    REQUIRE(dropped.size() == 1);
    CHECK(dropped[0].error.field == c.field);
    REQUIRE(got.clients.size() == 2);

    proto p{self_name, small_config()};
    auto fx = p.start({{self_name, member_state::up}, {peer_name, member_state::up}}, 0);
    REQUIRE(fx.snapshot_requests.size() == 1);
    fx = p.on_snapshot_result(peer_name, fx.snapshot_requests[0].request_id,
                              proto::snapshot_status::ok, &got, 10);
    CHECK(p.ready());
    CHECK(replaced(fx).size() == 2);
    CHECK(p.find(session_of_peer(1)) != nullptr);
    CHECK(p.find("192.168.1.1:8080#true") != nullptr);
    CHECK(p.find(bad.id) == nullptr);
    CHECK(p.check_invariants() == "");
  }
}

TEST_CASE("distro wire: the limit on instances per client is this node's own") {
  auto x = good_client(session_of_peer(1));
  x.services[orders()].mutate().push_back(make_instance("192.168.1.2", 8080));
  x.revision = content_revision(x.services);
  CHECK_FALSE(distro::check(x, distro::peer_rules{2}));
  auto err = distro::check(x, distro::peer_rules{1});
  REQUIRE(err);
  CHECK(err->field == "instances");
}

TEST_CASE("distro wire: deletes, verify batches and replies drop bad client ids only") {
  distro::sync_batch deletes{peer_name, {distro::client_data{"", 0, {}, true, peer_name, {}},
                                         distro::client_data{session_of_peer(1), 0, {}, true,
                                                             peer_name, {}}}};
  std::vector<distro::dropped_client> dropped;
  auto got = distro::from_wire(distro::to_wire(deletes), distro::peer_rules{}, dropped);
  REQUIRE(got.clients.size() == 1);
  CHECK(got.clients[0].id == session_of_peer(1));
  REQUIRE(dropped.size() == 1);
  CHECK(dropped[0].error.field == "clientId");

  std::string too_long(defaults::client_id_chars_max + 1, 'x');
  distro::verify_batch vb{peer_name, {{session_of_peer(1), 7}, {"", 8}, {too_long, 9}}};
  dropped.clear();
  auto vgot = distro::from_wire(distro::to_wire(vb), dropped);
  REQUIRE(vgot.clients.size() == 1);
  CHECK(vgot.clients[0].id == session_of_peer(1));
  CHECK(vgot.clients[0].revision == 7);
  CHECK(dropped.size() == 2);

  distro::verify_reply vr{{"", session_of_peer(2), too_long}};
  dropped.clear();
  auto rgot = distro::from_wire(distro::to_wire(vr), dropped);
  CHECK(rgot.missing == std::vector<client_id>{session_of_peer(2)});
  CHECK(dropped.size() == 2);
}

TEST_CASE("distro wire: a client synced to several peers is encoded once, with the same bytes") {
  auto one = good_client(session_of_peer(1)), two = good_client(session_of_peer(2), 8081);
  auto three = good_client(session_of_peer(3), 8082);
  distro::sync_batch to_b{peer_name, {one, two}};
  distro::sync_batch to_c{peer_name, {two, three}};
  distro::sync_batch empty{peer_name, {}};
  distro::sync_encoder encoder;
  CHECK(encoder.encode(to_b) == distro::to_wire(to_b).SerializeAsString());
  CHECK(encoder.encode(to_c) == distro::to_wire(to_c).SerializeAsString());
  CHECK(encoder.encode(empty) == distro::to_wire(empty).SerializeAsString());
  CHECK(encoder.clients_encoded() == 3); // "two" once for both peers
  // What the receiver decodes is what was meant.
  v1::SyncBatch wire;
  REQUIRE(wire.ParseFromString(encoder.encode(to_c)));
  std::vector<distro::dropped_client> dropped;
  auto back = distro::from_wire(wire, distro::peer_rules{}, dropped);
  CHECK(dropped.empty());
  REQUIRE(back.clients.size() == 2);
  CHECK(back.clients[1].id == three.id);
}

TEST_CASE("distro wire: a verify's bucket fields are checked, naming the field") {
  auto refused = [](const v1::VerifyBatch& x) {
    auto err = distro::check(x);
    return err ? err->field : std::string{};
  };
  distro::verify_batch digest{peer_name, {}, 4, {1, 2, 3, 4}, {}};
  CHECK(refused(distro::to_wire(digest)).empty());
  distro::verify_batch detail{peer_name, {{session_of_peer(1), 7}}, 4, {}, {0, 3}};
  CHECK(refused(distro::to_wire(detail)).empty());
  std::vector<distro::dropped_client> dropped;
  auto back = distro::from_wire(distro::to_wire(detail), dropped);
  CHECK(back.listed == detail.listed);
  CHECK(back.buckets == 4);

  auto x = distro::to_wire(digest);
  x.set_buckets(defaults::verify_buckets_max + 1);
  CHECK(refused(x) == "buckets");
  x = distro::to_wire(digest);
  x.add_digests(5);
  CHECK(refused(x) == "digests");
  x = distro::to_wire(digest);
  x.add_listed(1);
  CHECK(refused(x) == "listed"); // a digest names no buckets (only the clients in flight)
  x = distro::to_wire(digest);
  auto* in_flight = x.add_clients();
  in_flight->set_client_id(session_of_peer(2));
  CHECK(refused(x).empty());
  x = distro::to_wire(detail);
  x.add_listed(4);
  CHECK(refused(x) == "listed");
  x = distro::to_wire(detail);
  x.set_buckets(0);
  CHECK(refused(x) == "listed");

  v1::VerifyReply reply;
  reply.add_differing(3);
  CHECK_FALSE(distro::check(reply));
  reply.add_differing(defaults::verify_buckets_max);
  auto err = distro::check(reply);
  REQUIRE(err);
  CHECK(err->field == "differing");
}

TEST_CASE("distro wire: drops are all counted, logged at most once per interval per peer") {
  distro::drop_counter drops{1000};
  auto first = drops.count("a", 0);
  REQUIRE(first);
  CHECK(first->drops_since == 1);
  CHECK_FALSE(drops.count("a", 10));
  CHECK_FALSE(drops.count("a", 999));
  auto other = drops.count("b", 999); // another peer has its own interval
  REQUIRE(other);
  CHECK(other->peer_total == 1);
  auto again = drops.count("a", 1000);
  REQUIRE(again);
  CHECK(again->drops_since == 3);
  CHECK(again->peer_total == 4);
  CHECK(drops.total() == 5);
}
