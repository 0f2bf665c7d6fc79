// Client actors and service pushes under CAF's deterministic scheduler: ending sessions, batch
// registers (one update, one Distro revision), healing beats whose service update times out, and
// pushes to a stalled subscriber.

#include <doctest/doctest.h>

#include <functional>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/client/client_actor.hpp"
#include "actors/gateway/gateway_actor.hpp"
#include "messages/convert.hpp"
#include "messages/model_inspect.hpp"
#include "messages/type_ids.hpp"
#include "test/support/deterministic_system.hpp"

using namespace registry;
using namespace registry::wire;
using namespace std::chrono_literals;

namespace {

struct client_fixture : test::deterministic_system {
  /// Stopped when the test ends, also after a failed REQUIRE.
  std::vector<caf::actor> actors;
  /// Run first when the test ends (e.g. to drop held response promises).
  std::vector<std::function<void()>> cleanups;

  client_fixture() {
  }

  ~client_fixture() {
    for (auto& f : cleanups)
      f();
    for (auto& a : actors)
      (*self)->send_exit(a, caf::exit_reason::user_shutdown);
    sched->run();
  }

  /// Keeps `a` to stop it at the end of the test.
  caf::actor keep(caf::actor a) {
    actors.push_back(a);
    return a;
  }

};

/// Stands in for the gateway in front of the service actors: records every instance list a client
/// sends and answers the requests, except the ones it is told to leave unanswered.
struct fake_gateway_state {
  std::vector<std::vector<instance>> puts;
  int silent_puts = 0; ///< how many svc_put requests to leave unanswered
};

caf::behavior fake_gateway(caf::event_based_actor* self,
                           std::shared_ptr<fake_gateway_state> shared) {
  return {
    [=](svc_put_atom, const service_key&, const client_id&,
        const instance_list& xs) -> caf::result<envelope> {
      shared->puts.push_back(xs);
      if (shared->silent_puts > 0) {
        --shared->silent_puts;
        return self->make_response_promise<envelope>(); // never delivered: a timed-out update
      }
      return pack(v1::Ack{});
    },
    [=](svc_drop_atom, const service_key&, const client_id&) {},
    [=](client_gone_atom, const client_id&) { return true; },
  };
}

v1::Instance wire_instance(const std::string& ip, int port) {
  v1::Instance x;
  x.set_ip(ip);
  x.set_port(port);
  x.set_weight(1.0);
  x.set_healthy(true);
  x.set_enabled(true);
  x.set_ephemeral(true);
  return x;
}

/// A client process's push receiver that acknowledges every push.
/// (It takes an unused argument: CAF 0.17.6 binds a null tuple when an actor is spawned without
/// arguments, which UBSan reports.)
caf::behavior acking_receiver(caf::event_based_actor*, int) {
  return {
    [](push_atom, const envelope&) { return pack(v1::Ack{}); },
  };
}

} // namespace

TEST_CASE_FIXTURE(client_fixture, "a session that is ending refuses subscribe and register") {
  auto node_cfg = std::make_shared<node_config>();
  node_cfg->listen = host_port{"127.0.0.1", 8848};
  node_cfg->members = {node_cfg->listen};
  auto gateway = keep(caf::actor_cast<caf::actor>(spawn_gateway_actor(*sys, node_cfg, distro_actor{})));
  sched->run();
  auto remote = keep(sys->spawn(acking_receiver, 0));
  v1::Hello hello;
  hello.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  caf::actor session;
  auto h = (*self)->request(gateway, caf::infinite, hello_atom_v, pack(hello), remote);
  sched->run();
  h.receive([&](envelope&, caf::actor& s) { session = s; },
            [&](caf::error& err) { FAIL(sys->render(err)); });
  REQUIRE(session);
  // The bye and the requests after it are in the session's mailbox together: the session is
  // ending while it handles them.
  (*self)->send(session, bye_atom_v);
  v1::SubscribeRequest sub;
  sub.mutable_service()->set_service("orders");
  auto hs = (*self)->request(session, caf::infinite, sub_atom_v, pack(sub));
  v1::RegisterRequest reg;
  reg.mutable_service()->set_service("orders");
  *reg.mutable_instance() = wire_instance("10.0.0.1", 80);
  auto hr = (*self)->request(session, caf::infinite, reg_atom_v, pack(reg));
  sched->run();
  v1::Error err;
  hs.receive([&](envelope& env) { CHECK_MESSAGE(unpack(env, err), env.kind); },
             [&](caf::error& e) { FAIL(sys->render(e)); });
  CHECK(err.code() == v1::Error::UNAVAILABLE);
  CHECK(err.message().find("ending") != std::string::npos);
  err.Clear();
  hr.receive([&](envelope& env) { CHECK_MESSAGE(unpack(env, err), env.kind); },
             [&](caf::error& e) { FAIL(sys->render(e)); });
  CHECK(err.code() == v1::Error::UNAVAILABLE);
  // Nothing of the ending session stays at the service.
  v1::QueryRequest q;
  q.mutable_service()->set_service("orders");
  v1::ServiceInfo info;
  REQUIRE(unpack(ask(gateway, query_atom_v, pack(q)), info));
  CHECK(info.hosts_size() == 0);
}

TEST_CASE_FIXTURE(client_fixture, "a healing beat whose service update timed out heals on the next beat") {
  auto shared = std::make_shared<fake_gateway_state>();
  auto gateway = keep(sys->spawn(fake_gateway, shared));
  client_settings settings;
  settings.limits.unhealthy_timeout_ms = 600;
  settings.limits.delete_timeout_ms = 60000;
  settings.check_interval_ms = 100;
  settings.request_timeout_ms = 300;
  auto client = keep(caf::actor_cast<caf::actor>(spawn_client_actor(
    *sys, "10.0.0.1:80#true", client_kind::heartbeat, settings,
    caf::actor_cast<gateway_actor>(gateway), subscriber_actor{}, distro_actor{})));
  sched->run();
  v1::RegisterRequest reg;
  reg.mutable_service()->set_service("orders");
  *reg.mutable_instance() = wire_instance("10.0.0.1", 80);
  REQUIRE(holds<v1::Ack>(ask(client, reg_atom_v, pack(reg))));
  // No beat: the instance turns unhealthy.
  advance(800ms, 50ms);
  REQUIRE(!shared->puts.empty());
  REQUIRE(shared->puts.back().size() == 1);
  REQUIRE_FALSE(shared->puts.back()[0].healthy);
  // A beat heals it, but the service update times out: the client reverts to unhealthy.
  shared->silent_puts = 1;
  v1::BeatRequest beat;
  beat.mutable_service()->set_service("orders");
  *beat.mutable_instance() = wire_instance("10.0.0.1", 80);
  auto hb = (*self)->request(client, caf::infinite, beat_atom_v, pack(beat));
  sched->run();
  advance(400ms, 50ms);
  hb.receive([&](envelope& env) { CHECK(holds<v1::Error>(env)); },
             [&](caf::error& e) { FAIL(sys->render(e)); });
  REQUIRE(!shared->puts.back().empty());
  CHECK_FALSE(shared->puts.back()[0].healthy);
  // The next beat heals it for good.
  auto before = shared->puts.size();
  REQUIRE(holds<v1::Ack>(ask(client, beat_atom_v, pack(beat))));
  REQUIRE(shared->puts.size() > before);
  REQUIRE(shared->puts.back().size() == 1);
  CHECK(shared->puts.back()[0].healthy);
}

namespace {

/// A node with its gateway, for the push tests.
struct push_fixture : client_fixture {
  caf::actor gateway;
  std::shared_ptr<node_config> node_cfg = std::make_shared<node_config>();

  push_fixture() {
    node_cfg->listen = host_port{"127.0.0.1", 8848};
    node_cfg->members = {node_cfg->listen};
    node_cfg->push.merge_window_ms = 20;
    node_cfg->push.timeout_ms = 3000;
    node_cfg->push.retry_delay_ms = 1000;
  }

  void start() {
    gateway = keep(caf::actor_cast<caf::actor>(spawn_gateway_actor(*sys, node_cfg, distro_actor{})));
    sched->run();
  }

  envelope register_heartbeat(const std::string& service, const std::string& ip, int port) {
    v1::RegisterRequest req;
    req.mutable_service()->set_service(service);
    *req.mutable_instance() = wire_instance(ip, port);
    return ask(gateway, reg_atom_v, pack(req));
  }

  caf::actor open_session(const caf::actor& remote) { return hello(gateway, remote).second; }
};

/// A client process that can stall: while `stalled`, pushes are held unanswered; an ok_atom
/// answers the held ones. Records every push and the most ever held at once.
struct stalling_receiver_state {
  std::vector<envelope> pushes;
  std::vector<caf::typed_response_promise<envelope>> held;
  bool stalled = false;
  std::size_t held_max = 0;

  void release() {
    for (auto& rp : held)
      rp.deliver(pack(v1::Ack{}));
    held.clear();
  }

  std::vector<v1::ServiceInfo> infos() const {
    std::vector<v1::ServiceInfo> result;
    for (auto& env : pushes) {
      v1::ServiceInfo info;
      if (unpack(env, info))
        result.push_back(info);
    }
    return result;
  }
};

caf::behavior stalling_receiver(caf::event_based_actor* self,
                                std::shared_ptr<stalling_receiver_state> shared) {
  return {
    [=](push_atom, const envelope& env) -> caf::result<envelope> {
      shared->pushes.push_back(env);
      if (!shared->stalled)
        return pack(v1::Ack{});
      shared->held.push_back(self->make_response_promise<envelope>());
      shared->held_max = std::max(shared->held_max, shared->held.size());
      return shared->held.back();
    },
    // Promises are delivered inside the actor only.
    [=](caf::ok_atom) { shared->release(); },
  };
}

} // namespace

TEST_CASE_FIXTURE(push_fixture, "a stalled subscriber has one push in flight and gets the newest state") {
  start();
  auto shared = std::make_shared<stalling_receiver_state>();
  cleanups.push_back([shared] { shared->held.clear(); });
  auto receiver = keep(sys->spawn(stalling_receiver, shared));
  auto session = open_session(receiver);
  REQUIRE(session);
  v1::SubscribeRequest sub;
  sub.mutable_service()->set_service("orders");
  REQUIRE(holds<v1::ServiceInfo>(ask(session, sub_atom_v, pack(sub))));
  shared->stalled = true;
  // Ten changes, further apart than the merge window, while the subscriber does not answer.
  for (int i = 1; i <= 10; ++i) {
    REQUIRE(holds<v1::Ack>(register_heartbeat("orders", "10.0.0." + std::to_string(i), 80)));
    advance(100ms, 10ms);
  }
  CHECK(shared->held_max == 1);
  CHECK(shared->pushes.size() == 1);
  // The subscriber answers: the newest state follows at once, as one push.
  shared->stalled = false;
  caf::anon_send(receiver, caf::ok_atom::value);
  sched->run();
  auto infos = shared->infos();
  REQUIRE(infos.size() == 2);
  CHECK(infos.back().hosts_size() == 10);
  CHECK(shared->held_max == 1);
}

TEST_CASE_FIXTURE(push_fixture, "a timed-out push is followed by the newest state, one at a time") {
  start();
  auto shared = std::make_shared<stalling_receiver_state>();
  cleanups.push_back([shared] { shared->held.clear(); });
  auto receiver = keep(sys->spawn(stalling_receiver, shared));
  auto session = open_session(receiver);
  REQUIRE(session);
  v1::SubscribeRequest sub;
  sub.mutable_service()->set_service("orders");
  REQUIRE(holds<v1::ServiceInfo>(ask(session, sub_atom_v, pack(sub))));
  shared->stalled = true;
  for (int i = 1; i <= 5; ++i) {
    REQUIRE(holds<v1::Ack>(register_heartbeat("orders", "10.0.0." + std::to_string(i), 80)));
    advance(100ms, 10ms);
  }
  // The first push times out after 3 s; the next one carries every change so far.
  shared->held.clear(); // the timed-out requests are gone at the node anyway
  shared->held_max = 0;
  advance(5s, 50ms);
  shared->stalled = false;
  caf::anon_send(receiver, caf::ok_atom::value);
  advance(5s, 50ms);
  auto infos = shared->infos();
  REQUIRE(infos.size() >= 2);
  CHECK(infos.back().hosts_size() == 5);
  CHECK(shared->held_max <= 1);
}

TEST_CASE_FIXTURE(push_fixture, "a subscriber stalled past drop_after_ms is dropped and told") {
  node_cfg->push.timeout_ms = 300;
  node_cfg->push.retry_delay_ms = 100;
  node_cfg->push.drop_after_ms = 2000;
  start();
  auto shared = std::make_shared<stalling_receiver_state>();
  cleanups.push_back([shared] { shared->held.clear(); });
  auto receiver = keep(sys->spawn(stalling_receiver, shared));
  auto session = open_session(receiver);
  REQUIRE(session);
  v1::SubscribeRequest sub;
  sub.mutable_service()->set_service("orders");
  sub.add_clusters("DEFAULT");
  REQUIRE(holds<v1::ServiceInfo>(ask(session, sub_atom_v, pack(sub))));
  shared->stalled = true;
  REQUIRE(holds<v1::Ack>(register_heartbeat("orders", "10.0.0.1", 80)));
  // Retried while stalled, one push at a time; not yet dropped within the bound.
  advance(1500ms, 10ms);
  CHECK(shared->infos().size() >= 2);
  v1::SubscriptionDropped dropped;
  for (auto& env : shared->pushes)
    CHECK_FALSE(unpack(env, dropped));
  // Past the bound: the last message is the notice, naming the service and clusters.
  advance(1500ms, 10ms);
  REQUIRE(!shared->pushes.empty());
  REQUIRE(unpack(shared->pushes.back(), dropped));
  CHECK(dropped.service().service() == "orders");
  CHECK(dropped.clusters() == "DEFAULT");
  CHECK(dropped.reason().find("2000 ms") != std::string::npos);
  // Nothing more is pushed to it.
  auto count = shared->pushes.size();
  REQUIRE(holds<v1::Ack>(register_heartbeat("orders", "10.0.0.2", 80)));
  advance(1s, 10ms);
  CHECK(shared->pushes.size() == count);
  // Subscribing again brings the pushes back.
  shared->stalled = false;
  REQUIRE(holds<v1::ServiceInfo>(ask(session, sub_atom_v, pack(sub))));
  REQUIRE(holds<v1::Ack>(register_heartbeat("orders", "10.0.0.3", 80)));
  advance(100ms, 10ms);
  auto infos = shared->infos();
  REQUIRE(!infos.empty());
  CHECK(infos.back().hosts_size() == 3);
}

TEST_CASE_FIXTURE(client_fixture, "one client process cannot use up the clients, and sessions "
                                  "never crowd out replicas") {
  auto node_cfg = std::make_shared<node_config>();
  node_cfg->listen = host_port{"127.0.0.1", 8848};
  node_cfg->members = {node_cfg->listen};
  node_cfg->limits.clients_max = 3;
  node_cfg->limits.sessions_per_connection_max = 2;
  // The "client process" here is this process, whose gRPC front end would widen the bound.
  node_cfg->grpc.enabled = false;
  auto gateway = keep(caf::actor_cast<caf::actor>(spawn_gateway_actor(*sys, node_cfg, distro_actor{})));
  sched->run();
  auto remote = keep(sys->spawn(acking_receiver, 0));
  auto open_session = [&] { return hello(gateway, remote); };
  auto first = open_session();
  auto second = open_session();
  CHECK(first.second);
  CHECK(second.second);
  // The third session of the same process is refused, naming the bound.
  auto third = open_session();
  CHECK_FALSE(third.second);
  v1::Error err;
  REQUIRE(unpack(third.first, err));
  CHECK(err.code() == v1::Error::LIMIT_EXCEEDED);
  CHECK(err.field() == "session");
  // Replicas of other nodes' clients are bounded apart from clients_max: with the node's own
  // clients at their limit, copies are still taken.
  for (int i = 0; i < 5; ++i) {
    client_services services;
    instance x;
    x.ip = "10.1.0." + std::to_string(i);
    x.port = 80;
    x.weight = 1;
    x.healthy = true;
    x.enabled = true;
    x.ephemeral = true;
    services[service_key{"public", "DEFAULT_GROUP", "copied"}] = {x};
    (*self)->send(gateway, replica_atom_v, std::int32_t{0}, "10.9.9.9:1/1/" + std::to_string(i),
                  std::uint64_t{1}, services, false, client_beats{});
  }
  sched->run();
  advance(std::chrono::milliseconds(100));
  v1::QueryRequest q;
  q.mutable_service()->set_service("copied");
  v1::ServiceInfo info;
  REQUIRE(unpack(ask(gateway, query_atom_v, pack(q)), info));
  CHECK(info.hosts_size() == 5);
}

namespace {

/// Stands in for the distro actor: records every announcement of a client (revision, instances).
struct fake_distro_state {
  std::vector<std::pair<std::uint64_t, std::size_t>> syncs;
};

caf::behavior fake_distro(caf::event_based_actor*, std::shared_ptr<fake_distro_state> shared) {
  auto count = [](const client_services& services) {
    std::size_t n = 0;
    for (auto& kv : services)
      n += kv.second.size();
    return n;
  };
  return {
    [=](sync_atom, const client_id&, std::uint64_t revision, const client_services& services,
        const client_beats&) { shared->syncs.emplace_back(revision, count(services)); },
    [=](sync_atom, const client_id&, std::uint64_t revision, const client_services& services) {
      shared->syncs.emplace_back(revision, count(services));
    },
    [=](sync_atom, const client_id&, std::uint64_t revision, std::uint64_t,
        const client_services& changed, const client_beats&) {
      shared->syncs.emplace_back(revision, count(changed));
    },
  };
}

v1::BatchRegisterRequest batch_request(const std::string& service, int first_port, int n) {
  v1::BatchRegisterRequest req;
  req.mutable_service()->set_service(service);
  for (int i = 0; i < n; ++i)
    *req.add_instances() = wire_instance("10.0.0.1", first_port + i);
  return req;
}

} // namespace

TEST_CASE_FIXTURE(client_fixture, "a batch is one service update and one Distro revision") {
  auto puts = std::make_shared<fake_gateway_state>();
  auto syncs = std::make_shared<fake_distro_state>();
  auto gateway = keep(sys->spawn(fake_gateway, puts));
  auto distro = keep(sys->spawn(fake_distro, syncs));
  auto client = keep(caf::actor_cast<caf::actor>(spawn_client_actor(
    *sys, "127.0.0.1:8848/1/1", client_kind::session, client_settings{},
    caf::actor_cast<gateway_actor>(gateway), subscriber_actor{},
    caf::actor_cast<distro_actor>(distro))));
  sched->run();
  REQUIRE(holds<v1::Ack>(ask(client, reg_atom_v, pack(batch_request("orders", 8000, 10)))));
  sched->run();
  REQUIRE(puts->puts.size() == 1);
  CHECK(puts->puts[0].size() == 10);
  REQUIRE(syncs->syncs.size() == 1);
  CHECK(syncs->syncs[0].first == 1); // one revision for ten instances
  CHECK(syncs->syncs[0].second == 10);

  // A bad instance: an error naming it, no update, no announcement.
  auto bad = batch_request("orders", 9000, 5);
  bad.mutable_instances(3)->set_port(0);
  auto reply = ask(client, reg_atom_v, pack(bad));
  v1::Error err;
  REQUIRE(unpack(reply, err));
  CHECK(err.code() == v1::Error::INVALID_ARGUMENT);
  CHECK(err.field() == "instances[3].port");
  sched->run();
  CHECK(puts->puts.size() == 1);
  CHECK(syncs->syncs.size() == 1);

  // A batch whose service update times out is undone: the follow-up update restores the old list.
  puts->silent_puts = 1;
  auto second = (*self)->request(client, caf::infinite, reg_atom_v,
                                 pack(batch_request("orders", 9000, 3)));
  sched->run();
  advance(3500ms, 100ms);
  second.receive([&](envelope& env) { CHECK(holds<v1::Error>(env)); },
                 [&](caf::error& e) { FAIL(sys->render(e)); });
  REQUIRE(puts->puts.size() == 3);
  CHECK(puts->puts[1].size() == 3);  // the batch that timed out
  CHECK(puts->puts[2].size() == 10); // the client's list again
  sched->run();
  CHECK(syncs->syncs.size() == 1);   // nothing new to announce
}
