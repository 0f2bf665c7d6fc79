// An ending client actor and Distro ops that cross it: no client may be left behind that Distro
// does not hold (a "ghost": instances no client and no node vouches for, never expired), under
// CAF's deterministic scheduler with a stand-in distro actor.

#include <doctest/doctest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/distro/distro_protocol.hpp"
#include "actors/gateway/gateway_actor.hpp"
#include "messages/convert.hpp"
#include "messages/model_inspect.hpp"
#include "messages/type_ids.hpp"
#include "test/support/deterministic_system.hpp"

using namespace registry;
using namespace registry::wire;
using namespace std::chrono_literals;

namespace {

using op_kind = distro_protocol::local_op::kind;

/// What the stand-in distro actor saw and holds. Like the real one it answers a resync with the
/// record as it is when the resync arrives; the answer is held back until the test releases it.
struct distro_stub_state {
  std::map<client_id, client_services> records; ///< last local change per client (empty: deleted)
  std::vector<client_id> resyncs;               ///< resync requests, in order
  /// Answers computed, not sent yet: (op, id, services).
  std::vector<std::tuple<std::int32_t, client_id, client_services>> held;
  caf::actor gateway;
};

caf::behavior distro_stub(caf::event_based_actor* self, std::shared_ptr<distro_stub_state> st) {
  return {
    [=](sync_atom, const client_id& id, std::uint64_t, const client_services& services) {
      st->records[id] = services;
    },
    [=](sync_atom, const client_id& id, std::uint64_t, const client_services& services,
        const client_beats&) { st->records[id] = services; },
    [=](sync_atom, const client_id& id, std::uint64_t, std::uint64_t,
        const client_services& changed, const client_beats&) {
      auto& held = st->records[id];
      for (const auto& [key, xs] : changed)
        if (xs.empty())
          held.erase(key);
        else
          held[key] = xs;
    },
    [=](resync_atom, const client_id& id) {
      st->resyncs.push_back(id);
      auto i = st->records.find(id);
      if (i == st->records.end() || i->second.empty())
        st->held.emplace_back(static_cast<std::int32_t>(op_kind::remove), id, client_services{});
      else
        st->held.emplace_back(static_cast<std::int32_t>(op_kind::replace), id, i->second);
    },
    [=](flush_atom) { // the test: send the held answers
      for (auto& [op, id, services] : st->held)
        self->send(caf::actor_cast<gateway_actor>(st->gateway), resync_atom_v, op, id,
                   services.empty() ? std::uint64_t{0} : content_revision(services), services,
                   true, client_beats{});
      st->held.clear();
    },
  };
}

struct ghost_fixture : test::deterministic_system {
  std::shared_ptr<distro_stub_state> stub = std::make_shared<distro_stub_state>();
  caf::actor distro;
  caf::actor gateway;
  std::shared_ptr<node_config> node_cfg = std::make_shared<node_config>();
  service_key key{"public", "DEFAULT_GROUP", "orders"};
  client_id id = heartbeat_client_id("10.0.0.1", 80);

  ghost_fixture() {
    node_cfg->listen = host_port{"127.0.0.1", 8848};
    node_cfg->members = {node_cfg->listen};
    node_cfg->heartbeat.unhealthy_timeout_ms = 15000;
    node_cfg->heartbeat.delete_timeout_ms = 30000;
    node_cfg->heartbeat.check_interval_ms = 1000;
    distro = sys->spawn(distro_stub, stub);
    gateway = caf::actor_cast<caf::actor>(
      spawn_gateway_actor(*sys, node_cfg, caf::actor_cast<distro_actor>(distro)));
    stub->gateway = gateway;
    // This node alone, ready: it is responsible for every heartbeat client.
    (*self)->send(gateway, view_atom_v, std::vector<std::string>{"127.0.0.1:8848"}, true,
                  std::vector<std::string>{}, std::vector<std::string>{},
                  std::vector<std::string>{}, std::vector<std::string>{});
    sched->run();
  }

  ~ghost_fixture() {
    (*self)->send_exit(gateway, caf::exit_reason::user_shutdown);
    (*self)->send_exit(distro, caf::exit_reason::user_shutdown);
    sched->run();
  }

  void advance(caf::timespan total, caf::timespan step = 100ms) {
    deterministic_system::advance(total, step);
  }

  /// A request to the gateway.
  template <class... Ts>
  envelope ask(Ts&&... xs) {
    return deterministic_system::ask(gateway, std::forward<Ts>(xs)...);
  }

  envelope register_heartbeat() {
    v1::RegisterRequest req;
    req.mutable_service()->set_service(key.name);
    req.mutable_instance()->set_ip("10.0.0.1");
    req.mutable_instance()->set_port(80);
    req.mutable_instance()->set_weight(1.0);
    req.mutable_instance()->set_enabled(true);
    req.mutable_instance()->set_healthy(true);
    return ask(reg_atom_v, pack(req));
  }

  int hosts() {
    v1::QueryRequest req;
    req.mutable_service()->set_service(key.name);
    v1::ServiceInfo info;
    REQUIRE(unpack(ask(query_atom_v, pack(req)), info));
    return info.hosts_size();
  }

  /// The client's content as a peer holds it (what Distro hands the gateway in a replace).
  client_services peer_content() {
    instance x;
    x.ip = "10.0.0.1";
    x.port = 80;
    return client_services{{key, {x}}};
  }

  /// A replica op, as the distro actor sends it to the gateway.
  void send_replace(bool local) {
    auto services = peer_content();
    (*self)->send(gateway, replica_atom_v, static_cast<std::int32_t>(op_kind::replace), id,
                  content_revision(services), services, local, client_beats{});
  }

  /// Registers the heartbeat client and runs up to just before its expiry (no beat follows).
  void register_and_wait_for_expiry() {
    REQUIRE(holds<v1::Ack>(register_heartbeat()));
    REQUIRE(hosts() == 1);
    advance(30500ms); // the check at 30 s finds it 30 s silent: not yet over the delete timeout
    REQUIRE(hosts() == 1);
    REQUIRE(!stub->records[id].empty());
  }
};

} // namespace

TEST_CASE_FIXTURE(ghost_fixture,
                  "a Distro replace that reaches an expiring client leaves no client behind") {
  register_and_wait_for_expiry();
  // The check at 31 s expires the client; the same moment Distro hands the gateway a copy from a
  // peer, processed before the client's delete reaches Distro (it crosses the ending actor).
  sched->advance_time(600ms);
  send_replace(false);
  sched->run();
  CHECK(stub->records[id].empty()); // the client announced its end: Distro holds nothing
  (*self)->send(distro, flush_atom_v);
  sched->run();
  advance(60s, 500ms);
  CHECK(hosts() == 0); // no client without a Distro record (it would never expire)
}

TEST_CASE_FIXTURE(ghost_fixture,
                  "a Distro replace that reaches the gateway after the client ended is undone") {
  register_and_wait_for_expiry();
  sched->advance_time(600ms);
  sched->run(); // expired, ended, forgotten by the gateway; Distro holds nothing
  CHECK(stub->records[id].empty());
  CHECK(hosts() == 0);
  // A copy Distro sent before it read the client's delete reaches the gateway now: a new client.
  send_replace(false);
  sched->run();
  CHECK(hosts() == 1);
  // Distro's answer to the gateway's resync comes after that op: it holds nothing live.
  (*self)->send(distro, flush_atom_v);
  sched->run();
  advance(60s, 500ms);
  CHECK(hosts() == 0);
}

TEST_CASE_FIXTURE(ghost_fixture,
                  "a client re-created by a write while a resync is out is kept") {
  register_and_wait_for_expiry();
  sched->advance_time(600ms);
  sched->run();
  REQUIRE(hosts() == 0);
  // A register re-creates the client before Distro's answer (computed before it saw the new
  // client, so: nothing live) arrives; the new client is live and must stay.
  REQUIRE(holds<v1::Ack>(register_heartbeat()));
  (*self)->send(distro, flush_atom_v);
  sched->run();
  CHECK(hosts() == 1);
  CHECK(!stub->records[id].empty());
  advance(10s, 500ms);
  CHECK(hosts() == 1);
}

TEST_CASE_FIXTURE(ghost_fixture,
                  "a replica created in bulk leaves its services when Distro removes it") {
  // Two copies from a peer in one step (a SyncBatch or a snapshot chunk): the gateway creates
  // both client actors with their content and fills the service in one message, so the clients
  // never updated the service themselves.
  auto other = heartbeat_client_id("10.0.0.2", 80);
  instance second;
  second.ip = "10.0.0.2";
  second.port = 80;
  auto ops = std::make_shared<replica_ops>();
  auto first_content = peer_content();
  client_services second_content{{key, {second}}};
  ops->ops.push_back(distro_protocol::local_op{op_kind::replace, id,
                                               content_revision(first_content), first_content,
                                               false, {}});
  ops->ops.push_back(distro_protocol::local_op{op_kind::replace, other,
                                               content_revision(second_content), second_content,
                                               false, {}});
  (*self)->send(gateway, replica_atom_v, ops);
  sched->run();
  REQUIRE(hosts() == 2);
  // The copy expires (or its owner's node hands it back): Distro removes it.
  (*self)->send(gateway, replica_atom_v, static_cast<std::int32_t>(op_kind::remove), id,
                std::uint64_t{0}, client_services{}, false, client_beats{});
  sched->run();
  CHECK(hosts() == 1);
}
