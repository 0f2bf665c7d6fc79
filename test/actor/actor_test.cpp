// The node's actors under CAF's deterministic scheduler: virtual time, no threads, no network.

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
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

struct fixture : test::deterministic_system {
  caf::actor gateway;
  std::shared_ptr<node_config> node_cfg = std::make_shared<node_config>();

  fixture() {
    node_cfg->listen = host_port{"127.0.0.1", 8848};
    node_cfg->members = {node_cfg->listen};
    node_cfg->heartbeat.unhealthy_timeout_ms = 15000;
    node_cfg->heartbeat.delete_timeout_ms = 30000;
    node_cfg->heartbeat.check_interval_ms = 1000;
    node_cfg->push.merge_window_ms = 20;
    node_cfg->push.timeout_ms = 3000;
    node_cfg->push.retry_delay_ms = 1000;
  }

  ~fixture() {
    if (gateway)
      (*self)->send_exit(gateway, caf::exit_reason::user_shutdown);
    sched->run();
  }

  void start() {
    gateway = caf::actor_cast<caf::actor>(spawn_gateway_actor(*sys, node_cfg, distro_actor{}));
    sched->run();
  }


  envelope register_heartbeat(const std::string& service, const std::string& ip, int port) {
    v1::RegisterRequest req;
    req.mutable_service()->set_service(service);
    req.mutable_instance()->set_ip(ip);
    req.mutable_instance()->set_port(port);
    req.mutable_instance()->set_weight(1.0);
    req.mutable_instance()->set_enabled(true);
    req.mutable_instance()->set_healthy(true);
    return ask(gateway, reg_atom_v, pack(req));
  }

  /// Opens a session for `remote` (standing in for a client process); returns the session actor.
  caf::actor open_session(const caf::actor& remote) {
    auto reply = hello(gateway, remote);
    CHECK(holds<v1::Welcome>(reply.first));
    return reply.second;
  }

  v1::ServiceInfo query(const std::string& service, bool healthy_only = false) {
    v1::QueryRequest req;
    req.mutable_service()->set_service(service);
    req.set_healthy_only(healthy_only);
    v1::ServiceInfo info;
    REQUIRE(unpack(ask(gateway, query_atom_v, pack(req)), info));
    return info;
  }
};

/// A client process's push receiver: records every push; acknowledges unless told to stay silent.
struct receiver_state {
  std::vector<v1::ServiceInfo> pushes;
  int silent_pushes = 0; ///< how many pushes to leave unanswered
};

caf::behavior push_receiver(caf::stateful_actor<receiver_state>* self,
                            std::shared_ptr<receiver_state> shared) {
  return {
    [=](push_atom, const envelope& env) -> caf::result<envelope> {
      v1::ServiceInfo info;
      unpack(env, info);
      shared->pushes.push_back(info);
      if (shared->silent_pushes > 0) {
        --shared->silent_pushes;
        return self->make_response_promise<envelope>(); // never delivered
      }
      return pack(v1::Ack{});
    },
  };
}

} // namespace

TEST_CASE_FIXTURE(fixture, "a heartbeat instance turns unhealthy after 15 s and is removed after 30 s") {
  start();
  REQUIRE(holds<v1::Ack>(register_heartbeat("orders", "10.0.0.1", 80)));
  CHECK(query("orders").hosts_size() == 1);
  advance(14s, 100ms);
  CHECK(query("orders", true).hosts_size() == 1);
  advance(2s, 100ms);
  CHECK(query("orders", true).hosts_size() == 0);
  auto info = query("orders");
  REQUIRE(info.hosts_size() == 1);
  CHECK(info.reach_protection_threshold()); // threshold 0, zero healthy: shown healthy
  advance(15s, 100ms);
  CHECK(query("orders").hosts_size() == 0);
}

TEST_CASE_FIXTURE(fixture, "a beat keeps a heartbeat instance alive") {
  start();
  REQUIRE(holds<v1::Ack>(register_heartbeat("orders", "10.0.0.1", 80)));
  for (int i = 0; i < 8; ++i) {
    advance(5s, 100ms);
    v1::BeatRequest beat;
    beat.mutable_service()->set_service("orders");
    beat.mutable_instance()->set_ip("10.0.0.1");
    beat.mutable_instance()->set_port(80);
    beat.mutable_instance()->set_weight(1.0);
    beat.mutable_instance()->set_enabled(true);
    REQUIRE(holds<v1::Ack>(ask(gateway, beat_atom_v, pack(beat))));
  }
  CHECK(query("orders", true).hosts_size() == 1);
}

TEST_CASE_FIXTURE(fixture, "pushes are immediate when idle and merged under a burst") {
  start();
  auto shared = std::make_shared<receiver_state>();
  auto receiver = sys->spawn(push_receiver, shared);
  auto session = open_session(receiver);
  REQUIRE(session);
  v1::SubscribeRequest sub;
  sub.mutable_service()->set_service("orders");
  v1::ServiceInfo initial;
  REQUIRE(unpack(ask(session, sub_atom_v, pack(sub)), initial));
  CHECK(initial.hosts_size() == 0);

  // Idle: the first change is pushed at once, without advancing time.
  REQUIRE(holds<v1::Ack>(register_heartbeat("orders", "10.0.0.1", 80)));
  REQUIRE(shared->pushes.size() == 1);
  CHECK(shared->pushes[0].hosts_size() == 1);

  // A burst within the merge window travels as one push when the window closes.
  for (int i = 2; i <= 10; ++i)
    REQUIRE(holds<v1::Ack>(register_heartbeat("orders", "10.0.0." + std::to_string(i), 80)));
  CHECK(shared->pushes.size() == 1);
  advance(30ms, 5ms);
  REQUIRE(shared->pushes.size() == 2);
  CHECK(shared->pushes[1].hosts_size() == 10);
  caf::anon_send_exit(receiver, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(fixture, "a failed push is retried with the current state") {
  start();
  auto shared = std::make_shared<receiver_state>();
  shared->silent_pushes = 1;
  auto receiver = sys->spawn(push_receiver, shared);
  auto session = open_session(receiver);
  REQUIRE(session);
  v1::SubscribeRequest sub;
  sub.mutable_service()->set_service("orders");
  ask(session, sub_atom_v, pack(sub));
  REQUIRE(holds<v1::Ack>(register_heartbeat("orders", "10.0.0.1", 80)));
  REQUIRE(shared->pushes.size() == 1);
  // The push times out after 3 s; the retry follows 1 s later.
  advance(3500ms, 50ms);
  CHECK(shared->pushes.size() == 1);
  advance(1000ms, 50ms);
  REQUIRE(shared->pushes.size() == 2);
  CHECK(shared->pushes[1].hosts_size() == 1);
  caf::anon_send_exit(receiver, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(fixture, "a session's instances leave when its process goes down") {
  start();
  auto shared = std::make_shared<receiver_state>();
  auto remote = sys->spawn(push_receiver, shared);
  auto session = open_session(remote);
  REQUIRE(session);
  v1::RegisterRequest req;
  req.mutable_service()->set_service("orders");
  req.mutable_instance()->set_ip("10.0.0.1");
  req.mutable_instance()->set_port(80);
  req.mutable_instance()->set_weight(1.0);
  req.mutable_instance()->set_enabled(true);
  req.mutable_instance()->set_healthy(true);
  REQUIRE(holds<v1::Ack>(ask(session, reg_atom_v, pack(req))));
  CHECK(query("orders").hosts_size() == 1);
  caf::anon_send_exit(remote, caf::exit_reason::remote_link_unreachable);
  sched->run();
  CHECK(query("orders").hosts_size() == 0);
}

TEST_CASE_FIXTURE(fixture, "the node refuses a bad field and changes nothing") {
  start();
  v1::RegisterRequest req;
  req.mutable_service()->set_service("orders");
  req.mutable_instance()->set_ip("10.0.0.1");
  req.mutable_instance()->set_port(80);
  req.mutable_instance()->set_weight(-1);
  v1::Error err;
  REQUIRE(unpack(ask(gateway, reg_atom_v, pack(req)), err));
  CHECK(err.field() == "weight");
  CHECK(err.code() == v1::Error::INVALID_ARGUMENT);
  CHECK(query("orders").hosts_size() == 0);
  // A malformed envelope is refused too.
  envelope junk{"registry.v1.RegisterRequest", "\xff\xff\xff"};
  REQUIRE(unpack(ask(gateway, reg_atom_v, junk), err));
  CHECK(err.code() == v1::Error::INVALID_ARGUMENT);
}

TEST_CASE_FIXTURE(fixture, "a failed service actor is restarted and rebuilt from its clients") {
  start();
  REQUIRE(holds<v1::Ack>(register_heartbeat("orders", "10.0.0.1", 80)));
  REQUIRE(holds<v1::Ack>(register_heartbeat("orders", "10.0.0.2", 80)));
  service_key key{"public", "DEFAULT_GROUP", "orders"};
  caf::actor service;
  auto h = (*self)->request(gateway, caf::infinite, caf::get_atom::value, key);
  sched->run();
  h.receive([&](service_actor& x) { service = caf::actor_cast<caf::actor>(x); }, [&](caf::error& err) { FAIL(sys->render(err)); });
  REQUIRE(service);
  (*self)->send_exit(service, caf::exit_reason::unhandled_exception);
  sched->run();
  auto info = query("orders");
  CHECK(info.hosts_size() == 2);
  caf::actor restarted;
  auto h2 = (*self)->request(gateway, caf::infinite, caf::get_atom::value, key);
  sched->run();
  h2.receive([&](service_actor& x) { restarted = caf::actor_cast<caf::actor>(x); },
             [&](caf::error& err) { FAIL(sys->render(err)); });
  CHECK(restarted);
  CHECK(restarted != service);
}

TEST_CASE_FIXTURE(fixture, "an idle empty service is removed, so names do not use up the limit") {
  start();
  REQUIRE(holds<v1::Ack>(register_heartbeat("short-lived", "10.0.0.1", 80)));
  v1::DeregisterRequest req;
  req.mutable_service()->set_service("short-lived");
  req.set_ip("10.0.0.1");
  req.set_port(80);
  REQUIRE(holds<v1::Ack>(ask(gateway, dereg_atom_v, pack(req))));
  auto service_of = [&] {
    caf::actor result;
    auto h = (*self)->request(gateway, caf::infinite, caf::get_atom::value,
                              service_key{"public", "DEFAULT_GROUP", "short-lived"});
    sched->run();
    h.receive([&](service_actor& x) { result = caf::actor_cast<caf::actor>(x); }, [&](caf::error& err) { FAIL(sys->render(err)); });
    return result;
  };
  CHECK(service_of());
  advance(61s, 1s);
  CHECK_FALSE(service_of());
  // The name works again at once.
  REQUIRE(holds<v1::Ack>(register_heartbeat("short-lived", "10.0.0.1", 80)));
  CHECK(query("short-lived").hosts_size() == 1);
}

TEST_CASE_FIXTURE(fixture, "a take-over continues the beat clock its previous owner reported") {
  using kind = distro_protocol::local_op::kind;
  start();
  auto id = heartbeat_client_id("10.0.0.9", 80);
  service_key key{"public", "DEFAULT_GROUP", "orders"};
  instance x;
  x.ip = "10.0.0.9";
  x.port = 80;
  client_services services{{key, {x}}};
  auto revision = content_revision(services);
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  sys->clock().now().time_since_epoch())
                  .count();
  // A copy of a client another node checks; then this node becomes responsible. The previous
  // owner reported the last beat 20 s ago (after the unhealthy timeout, before the delete timeout).
  (*self)->send(gateway, replica_atom_v, static_cast<std::int32_t>(kind::replace), id, revision,
                services, false, client_beats{});
  sched->run();
  REQUIRE(query("orders", true).hosts_size() == 1);
  client_beats beats{{key, {{instance_identity("10.0.0.9", 80, "DEFAULT"), beat_mark{now_ms - 20000, false}}}}};
  (*self)->send(gateway, replica_atom_v, static_cast<std::int32_t>(kind::take_over), id, revision,
                client_services{}, true, beats);
  sched->run();
  advance(2s, 100ms);
  CHECK(query("orders", true).hosts_size() == 0); // unhealthy at once, not 15 s after the take-over
  CHECK(query("orders").hosts_size() == 1);
  advance(9s, 100ms); // 31 s since the last beat: gone, not 30 s after the take-over
  CHECK(query("orders").hosts_size() == 0);
}

TEST_CASE_FIXTURE(fixture, "ended clients and removed services leave nothing behind in the gateway") {
  // Client and service actors come and go all the time (sessions, copies, idle services); the
  // gateway lives on. Nothing may keep an ended one's memory: only the test's own weak reference
  // may remain.
  start();
  auto leftover_refs = [](const caf::actor_addr& addr) {
    auto* cb = caf::actor_cast<caf::actor_control_block*>(addr);
    return std::make_pair(cb->strong_refs.load(), cb->weak_refs.load());
  };
  auto shared = std::make_shared<receiver_state>();
  auto remote = sys->spawn(push_receiver, shared);
  auto session = open_session(remote);
  REQUIRE(session);
  v1::RegisterRequest req;
  req.mutable_service()->set_service("orders");
  req.mutable_instance()->set_ip("10.0.0.1");
  req.mutable_instance()->set_port(80);
  REQUIRE(holds<v1::Ack>(ask(session, reg_atom_v, pack(req))));
  REQUIRE(holds<v1::Ack>(register_heartbeat("pay", "10.0.0.2", 80)));
  caf::actor_addr session_addr = session.address();
  caf::actor_addr service_addr;
  {
    auto h = (*self)->request(gateway, caf::infinite, caf::get_atom::value,
                              service_key{"public", "DEFAULT_GROUP", "orders"});
    sched->run();
    h.receive([&](service_actor& x) { service_addr = x.address(); },
              [&](caf::error& err) { FAIL(sys->render(err)); });
  }
  REQUIRE(service_addr);
  session = nullptr;
  // The session's process goes away; the heartbeat client expires; the empty services are swept.
  caf::anon_send_exit(remote, caf::exit_reason::remote_link_unreachable);
  remote = nullptr;
  sched->run();
  CHECK(query("orders").hosts_size() == 0);
  advance(95s, 1s);
  CHECK(query("pay").hosts_size() == 0);
  auto [session_strong, session_weak] = leftover_refs(session_addr);
  CHECK(session_strong == 0);
  CHECK(session_weak == 1);
  auto [service_strong, service_weak] = leftover_refs(service_addr);
  CHECK(service_strong == 0);
  CHECK(service_weak == 1);
}
