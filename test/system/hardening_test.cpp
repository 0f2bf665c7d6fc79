// Defects of the core seen by hand: member identity, trust, readiness and session bounds.

#include <doctest/doctest.h>

#include <signal.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/interfaces.hpp"
#include "messages/distro.pb.h"
#include "messages/registry.pb.h"
#include "messages/type_ids.hpp"
#include "test/support/node_fixture.hpp"

using namespace registry::test;
using namespace std::chrono_literals;

TEST_CASE("a member listed by another spelling (localhost) is the same node: nothing is lost") {
  auto p0 = free_port();
  auto p1 = free_port();
  auto a0 = "127.0.0.1:" + std::to_string(p0);
  auto a1 = "127.0.0.1:" + std::to_string(p1);
  // Node 0 names node 1 as localhost; node 1 names both by IP.
  auto node0 = test_node::with_members(p0, {a0, "localhost:" + std::to_string(p1)}, cluster_timings);
  auto node1 = test_node::with_members(p1, {a0, a1}, cluster_timings);
  auto& n0 = *node0;
  auto& n1 = *node1;
  n0.launch();
  n1.launch();
  REQUIRE(n0.wait_ready(20s));
  REQUIRE(n1.wait_ready(20s));
  REQUIRE(wait_until([&] { return n0.member_state("localhost:" + std::to_string(p1)) == "UP"; },
                     20s));
  // members shows which node answers at the spelled address.
  auto members = n0.ctl_json({"members"});
  bool announced = false;
  for (auto& m : members["members"])
    if (m["address"] == "localhost:" + std::to_string(p1))
      announced = m.value("node", "") == a1;
  CHECK(announced);

  auto holder = n1.start_ctl({"register", "orders", "10.9.0.1:80", "--hold"}, "holder");
  REQUIRE(holder.wait_for_output("registered", 5s));
  REQUIRE(wait_until([&] { return host_set(n0.hosts("orders")).size() == 1; }, 5s));
  // Past several copy-expiry windows (3 x 500 ms) the live session is still visible at node 0.
  auto deadline = std::chrono::steady_clock::now() + 4s;
  while (std::chrono::steady_clock::now() < deadline) {
    REQUIRE(host_set(n0.hosts("orders")) == std::vector<std::string>{"10.9.0.1:80"});
  }
  CHECK(n0.log().find("member localhost:" + std::to_string(p1) + " is node " + a1)
        != std::string::npos);
  holder.signal(SIGTERM);
  REQUIRE(holder.wait(5s) == 0);
  CHECK(wait_until([&] { return host_set(n0.hosts("orders")).empty(); }, 5s));
}

namespace {

/// A process of the test's own that connects to a node's port as any program could.
struct intruder {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  intruder() {
    registry::wire::configure_system(cfg, 200, 1000, 1);
    sys = std::make_unique<caf::actor_system>(cfg);
  }

  caf::actor connect(int port) {
    auto x = sys->middleman().remote_actor<registry::front_door_actor>("127.0.0.1",
                                                              static_cast<std::uint16_t>(port));
    // Untyped on purpose: these tests send what the interface does not list.
    return x ? caf::actor_cast<caf::actor>(*x) : caf::actor{};
  }

  /// Sends a request and returns the reply as a message (or the error's text).
  template <class... Ts>
  std::string ask(const caf::actor& dest, Ts&&... xs) {
    caf::scoped_actor self{*sys};
    std::string result = "no reply";
    self->request(dest, std::chrono::seconds(3), std::forward<Ts>(xs)...)
      .receive([&](caf::message& msg) { result = to_string(msg); },
               [&](caf::error& err) { result = "error: " + sys->render(err); });
    return result;
  }
};

} // namespace

TEST_CASE("the published port answers only the client protocol: in-process messages are refused") {
  test_node n;
  REQUIRE(n.start());
  REQUIRE(n.ctl({"register", "orders", "10.8.0.1:80"}).code == 0);
  intruder x;
  auto door = x.connect(n.port());
  REQUIRE(door);
  using namespace registry::wire;
  // The routing view that once made a node refuse every heartbeat registration.
  std::vector<std::string> nowhere{"nowhere:1"}, none;
  auto reply = x.ask(door, view_atom_v, nowhere, false, nowhere, nowhere);
  CHECK(reply.find("error") != std::string::npos);
  reply = x.ask(door, view_atom_v, nowhere, false, nowhere, nowhere, nowhere, nowhere);
  CHECK(reply.find("error") != std::string::npos);
  // A member-list reload, a replica and an exit message go nowhere either.
  CHECK(x.ask(door, reload_atom_v, nowhere).find("error") != std::string::npos);
  {
    caf::scoped_actor self{*x.sys};
    self->send_exit(door, caf::exit_reason::user_shutdown);
  }
  // The node is ready, keeps its data and takes heartbeat registrations.
  CHECK(n.wait_ready(5s));
  CHECK(n.log().find("refused an exit message") != std::string::npos);
  // CAF always honours an exit with reason kill; the front door alone is replaced and the data
  // stays.
  {
    caf::scoped_actor self{*x.sys};
    self->send_exit(door, caf::exit_reason::kill);
  }
  CHECK(wait_until([&] { return n.log().find("restarted the front door") != std::string::npos; },
                   5s));
  auto ready_again = n.wait_ready(5s);
  if (!ready_again) {
    auto log = n.log();
    MESSAGE(log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
  }
  CHECK(ready_again);
  REQUIRE(n.ctl({"register", "orders", "10.8.0.2:80"}).code == 0);
  CHECK(host_set(n.hosts("orders")) == std::vector<std::string>{"10.8.0.1:80", "10.8.0.2:80"});
  CHECK(n.log().find("refused") != std::string::npos);
}

TEST_CASE("the published handle is typed: it connects as the front door and as nothing wider") {
  test_node n;
  REQUIRE(n.start());
  intruder x;
  auto port = static_cast<std::uint16_t>(n.port());
  // The client protocol's interface is what the node announces for its port.
  auto door = x.sys->middleman().remote_actor<registry::front_door_actor>("127.0.0.1", port);
  REQUIRE_MESSAGE(door, x.sys->render(door.error()));
  caf::scoped_actor self{*x.sys};
  registry::v1::QueryRequest query;
  query.mutable_service()->set_service("orders");
  query.mutable_service()->set_namespace_id("public");
  query.mutable_service()->set_group("DEFAULT_GROUP");
  bool answered = false;
  self->request(*door, std::chrono::seconds(3), registry::wire::query_atom_v,
                registry::wire::pack(query))
    .receive([&](registry::wire::envelope& reply) {
               answered = registry::wire::holds<registry::v1::ServiceInfo>(reply);
             },
             [&](caf::error& err) { FAIL(x.sys->render(err)); });
  CHECK(answered);
  // A handle that claims the gateway's in-process interface, or the distro's, is refused.
  auto gateway = x.sys->middleman().remote_actor<registry::gateway_actor>("127.0.0.1", port);
  CHECK_FALSE(gateway);
  auto distro = x.sys->middleman().remote_actor<registry::distro_actor>("127.0.0.1", port);
  CHECK_FALSE(distro);
  // A narrower view of the front door (what an older client knows) still connects.
  using query_only = caf::typed_actor<caf::replies_to<registry::wire::query_atom,
                                                      registry::wire::envelope>::with<
    registry::wire::envelope>>;
  CHECK(x.sys->middleman().remote_actor<query_only>("127.0.0.1", port));
}

TEST_CASE("a process without the cluster secret cannot become a peer") {
  auto p0 = free_port(), p1 = free_port();
  std::string secret = "cluster_secret: test-secret-0123456789abcdef\n";
  test_node a{p0, {p0, p1}, cluster_timings + secret};
  test_node b{p1, {p0, p1}, cluster_timings + secret};
  a.launch();
  b.launch();
  REQUIRE(a.wait_ready(20s));
  REQUIRE(b.wait_ready(20s));
  REQUIRE(wait_until([&] { return a.member_state(b.address()) == "UP"; }, 20s));
  CHECK(a.ctl_json({"status"})["security"] == "authenticated cluster");

  intruder x;
  auto door = x.connect(a.port());
  REQUIRE(door);
  using namespace registry::wire;
  registry::v1::PeerHello hello;
  hello.set_protocol_version(registry::v1::PROTOCOL_VERSION_CURRENT);
  hello.set_cluster_name("test");
  hello.set_address("127.0.0.1:1");
  hello.set_nonce(std::string(16, 'n'));
  // The welcome carries a challenge but no peer handle.
  caf::actor peer_handle;
  std::string welcome_kind;
  registry::v1::PeerWelcome welcome;
  {
    caf::scoped_actor self{*x.sys};
    self->request(door, 3s, peer_atom_v, pack(hello))
      .receive([&](envelope& env, caf::actor& handle) {
                 welcome_kind = env.kind;
                 unpack(env, welcome);
                 peer_handle = handle;
               },
               [&](caf::error&) {});
  }
  CHECK(welcome_kind == "registry.v1.PeerWelcome");
  CHECK_FALSE(peer_handle);
  CHECK_FALSE(welcome.proof().empty());
  // A made-up proof is refused.
  registry::v1::PeerAuth auth;
  auth.set_nonce(welcome.nonce());
  auth.set_proof(std::string(32, 'p'));
  CHECK(x.ask(door, peer_atom_v, pack(auth)).find("registry.v1.Error") != std::string::npos);
  // Node-to-node messages sent to the published port are refused too.
  registry::v1::SyncBatch batch;
  batch.set_source(b.address());
  auto* c = batch.add_clients();
  c->set_client_id("10.7.0.1:80#true");
  c->set_revision(1);
  c->set_owner(b.address());
  auto* svc = c->add_services();
  svc->mutable_service()->set_service("ghost");
  auto* inst = svc->add_instances();
  inst->set_ip("10.7.0.1");
  inst->set_port(80);
  inst->set_weight(1);
  inst->set_enabled(true);
  inst->set_healthy(true);
  inst->set_ephemeral(true);
  CHECK(x.ask(door, sync_atom_v, pack(batch)).find("error") != std::string::npos);
  CHECK(host_set(a.hosts("ghost")).empty());
  CHECK(a.log().find("wrong cluster secret") != std::string::npos);
}

TEST_CASE("a member with another cluster secret is refused and shown DOWN") {
  auto p0 = free_port(), p1 = free_port();
  test_node a{p0, {p0, p1}, cluster_timings + "cluster_secret: test-secret-0123456789abcdef\n"};
  test_node b{p1, {p0, p1}, cluster_timings + "cluster_secret: another-secret-0123456789ab\n"};
  a.launch();
  b.launch();
  REQUIRE(a.wait_ready(20s));
  REQUIRE(b.wait_ready(20s));
  CHECK(wait_until([&] { return b.log().find("refused the member") != std::string::npos; }, 10s));
  CHECK(a.member_state(b.address()) == "DOWN");
  CHECK(b.member_state(a.address()) == "DOWN");
}

namespace {

/// A client process's push receiver that acknowledges every push.
caf::behavior acking_client(caf::event_based_actor*, int) {
  return {
    [](registry::wire::push_atom, const registry::wire::envelope&) {
      return registry::wire::pack(registry::v1::Ack{});
    },
  };
}

} // namespace

TEST_CASE("a joining node reports ready only with the whole snapshot applied, and refuses "
          "queries and sessions before") {
  auto p0 = free_port(), p1 = free_port();
  test_node a{p0, {p0, p1}, cluster_timings};
  REQUIRE(a.start());
  REQUIRE(a.wait_ready(20s));
  // 300 sessions with 10 instances each at A: many clients to apply at B.
  constexpr int per_session = 10;
  constexpr int count = 300 * per_session;
  intruder x;
  auto door = x.connect(a.port());
  REQUIRE(door);
  using namespace registry::wire;
  auto client = x.sys->spawn(acking_client, 0);
  // Stops the client actor whatever happens, so the intruder's actor system can end.
  std::shared_ptr<void> stop_client(nullptr, [&](void*) {
    caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
  });
  {
    caf::scoped_actor self{*x.sys};
    registry::v1::Hello hello;
    hello.set_protocol_version(registry::v1::PROTOCOL_VERSION_CURRENT);
    caf::actor session;
    int acked = 0;
    for (int i = 0; i < count; ++i) {
      if (i % per_session == 0) {
        session = nullptr;
        self->request(door, 3s, hello_atom_v, pack(hello), client)
          .receive([&](envelope&, caf::actor& s) { session = s; }, [&](caf::error&) {});
        REQUIRE(session);
      }
      registry::v1::RegisterRequest req;
      req.mutable_service()->set_service("bulk");
      auto* inst = req.mutable_instance();
      inst->set_ip("10.20." + std::to_string(i / 250) + "." + std::to_string(i % 250));
      inst->set_port(80);
      self->request(session, 10s, reg_atom_v, pack(req))
        .receive([&](envelope& env) { acked += holds<registry::v1::Ack>(env) ? 1 : 0; },
                 [&](caf::error&) {});
    }
    REQUIRE(acked == count);
  }
  // B joins. The first time it says ready, every instance is there: asked over one connection,
  // the status and the query follow each other within a millisecond.
  test_node b{p1, {p0, p1}, cluster_timings};
  b.launch();
  caf::actor b_door;
  REQUIRE(wait_until([&] { return static_cast<bool>(b_door = x.connect(b.port())); }, 20s));
  bool refused_before_ready = false;
  int hosts_at_ready = -1;
  {
    caf::scoped_actor self{*x.sys};
    registry::v1::QueryRequest q;
    q.mutable_service()->set_service("bulk");
    REQUIRE(wait_until(
      [&] {
        bool ready = false;
        self->request(b_door, 3s, status_atom_v, pack(registry::v1::StatusRequest{}))
          .receive(
            [&](envelope& env) {
              registry::v1::Status st;
              ready = unpack(env, st) && st.ready();
            },
            [&](caf::error&) {});
        self->request(b_door, 3s, query_atom_v, pack(q))
          .receive(
            [&](envelope& env) {
              registry::v1::ServiceInfo info;
              registry::v1::Error err;
              if (ready && unpack(env, info))
                hosts_at_ready = info.hosts_size();
              if (unpack(env, err) && err.code() == registry::v1::Error::UNAVAILABLE)
                refused_before_ready = true;
            },
            [&](caf::error&) {});
        return ready;
      },
      30s));
  }
  CHECK(hosts_at_ready == count);
  MESSAGE("a query was refused as not ready while B was loading: " << refused_before_ready);
}
