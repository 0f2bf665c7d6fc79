// The client library (and registryctl) against scripted in-process nodes published on loopback:
// a node that refuses the first re-registration after a move, and a node that drops a
// subscription. The scripted nodes speak the wire protocol of messages/PROTOCOL.md.

#include <doctest/doctest.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "messages/convert.hpp"
#include "messages/type_ids.hpp"
#include "test/support/node_fixture.hpp"
#include "tools/client/registry_client.hpp"

using namespace registry;
using namespace registry::test;
using namespace registry::wire;
using namespace std::chrono_literals;

namespace {

/// What a scripted node saw and how it answers.
struct script {
  std::atomic<int> regs{0};
  std::atomic<int> reg_acks{0};
  std::atomic<int> batch_regs{0}; ///< of regs: BatchRegisterRequests
  std::atomic<int> batch_instances{0}; ///< instances in the last BatchRegisterRequest
  std::atomic<int> subs{0};
  std::atomic<int> refuse_regs{0}; ///< refuse this many RegisterRequests (LIMIT_EXCEEDED) first
  std::mutex mtx;
  caf::actor client;  ///< the client actor from the last hello
  caf::actor session; ///< the node-side session actor
};

caf::behavior scripted_session(caf::event_based_actor*, std::shared_ptr<script> sc) {
  return {
    [=](reg_atom, const envelope& env) {
      ++sc->regs;
      v1::BatchRegisterRequest batch;
      if (unpack(env, batch)) {
        ++sc->batch_regs;
        sc->batch_instances = batch.instances_size();
      }
      if (sc->refuse_regs > 0) {
        --sc->refuse_regs;
        return pack(make_error(v1::Error::LIMIT_EXCEEDED, "instances", "scripted refusal"));
      }
      ++sc->reg_acks;
      return pack(v1::Ack{});
    },
    [=](dereg_atom, const envelope&) { return pack(v1::Ack{}); },
    [=](sub_atom, const envelope& env) {
      ++sc->subs;
      v1::SubscribeRequest req;
      unpack(env, req);
      v1::ServiceInfo info;
      auto key = from_wire(req.service());
      info.set_name(key.grouped_name());
      info.set_group_name(key.group);
      info.set_cache_millis(10000);
      info.set_last_ref_time(sc->subs);
      return pack(info);
    },
    [=](unsub_atom, const envelope&) { return pack(v1::Ack{}); },
    [=](bye_atom) { return pack(v1::Ack{}); },
  };
}

caf::behavior scripted_gateway(caf::event_based_actor* self, std::shared_ptr<script> sc) {
  return {
    [=](hello_atom, const envelope&, const caf::actor& client) {
      auto session = self->spawn(scripted_session, sc);
      {
        std::lock_guard<std::mutex> guard{sc->mtx};
        sc->client = client;
        sc->session = session;
      }
      v1::Welcome welcome;
      welcome.set_session_id("s1");
      welcome.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
      return caf::make_message(pack(welcome), session);
    },
    [=](query_atom, const envelope& env) {
      v1::QueryRequest req;
      unpack(env, req);
      v1::ServiceInfo info;
      info.set_name(from_wire(req.service()).grouped_name());
      return pack(info);
    },
  };
}

/// One scripted node: its own actor system, its gateway published on a free loopback port.
struct scripted_node {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<script> sc = std::make_shared<script>();
  caf::actor gateway;
  std::uint16_t port = 0;

  scripted_node() {
    configure_system(cfg, defaults::caf_heartbeat_interval_ms, defaults::caf_connection_timeout_ms,
                     defaults::scheduler_threads_max);
    sys = std::make_unique<caf::actor_system>(cfg);
    gateway = sys->spawn(scripted_gateway, sc);
    auto p = sys->middleman().publish(gateway, 0, "127.0.0.1", true);
    REQUIRE(p);
    port = *p;
  }

  ~scripted_node() { stop(); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port); }

  /// The node "dies": its gateway and session go down, so clients move on.
  void stop() {
    if (!gateway)
      return;
    caf::actor session;
    {
      std::lock_guard<std::mutex> guard{sc->mtx};
      session = sc->session;
      sc->client = nullptr;
      sc->session = nullptr;
    }
    if (session)
      caf::anon_send_exit(session, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
    gateway = nullptr;
  }

  /// Sends (push_atom, SubscriptionDropped) to the client of the last hello.
  void drop_subscription(const std::string& service) {
    caf::actor client;
    {
      std::lock_guard<std::mutex> guard{sc->mtx};
      client = sc->client;
    }
    REQUIRE(client);
    v1::SubscriptionDropped msg;
    msg.mutable_service()->set_service(service);
    msg.set_reason("no push acknowledged for 60000 ms");
    caf::anon_send(client, push_atom_v, pack(msg));
  }
};

client::options options_for(const std::vector<std::string>& servers) {
  client::options o;
  o.servers = servers;
  o.update_interval = 60s; // the update task stays out of the way unless a test wants it
  o.update_backoff_max = 60s;
  o.redo_retry_interval = 200ms;
  return o;
}

registry::instance sample_instance() {
  registry::instance x;
  x.ip = "10.9.9.1";
  x.port = 80;
  return x;
}

} // namespace

TEST_CASE("a dropped subscription is told and subscribed again") {
  scripted_node node;
  client::naming_client c{options_for({node.address()})};
  c.subscribe("orders", "DEFAULT_GROUP", {}, [](const client::change_event&) {});
  // Every subscribe the opening session sent was answered when subscribe() returned.
  int before = node.sc->subs;
  REQUIRE(before >= 1);
  node.drop_subscription("orders");
  CHECK(wait_until([&] { return node.sc->subs == before + 1; }, 5s));
}

TEST_CASE("the update task subscribes again through the session") {
  scripted_node node;
  auto opts = options_for({node.address()});
  opts.update_interval = 200ms;
  client::naming_client c{opts};
  c.subscribe("orders", "DEFAULT_GROUP", {}, [](const client::change_event&) {});
  // No notice at all: the update task alone restores a subscription the node may have dropped.
  CHECK(wait_until([&] { return node.sc->subs >= 3; }, 5s));
}

TEST_CASE("a refused redo is retried until the new node acknowledges it") {
  scripted_node a;
  scripted_node b;
  b.sc->refuse_regs = 1;
  std::mutex mtx;
  std::vector<std::string> events;
  std::atomic<int> acks_at_redone{-1};
  auto opts = options_for({a.address(), b.address()});
  opts.on_session = [&](const client::session_event& ev) {
    std::lock_guard<std::mutex> guard{mtx};
    events.push_back(ev.kind == client::session_event::opened   ? "opened"
                     : ev.kind == client::session_event::lost   ? "lost"
                                                                : "redone");
    if (ev.kind == client::session_event::redone)
      acks_at_redone = b.sc->reg_acks.load();
  };
  client::naming_client c{opts};
  c.register_instance("orders", "DEFAULT_GROUP", sample_instance());
  REQUIRE(a.sc->reg_acks == 1);
  a.stop();
  // The first redo at B is refused; the retry is acknowledged; only then `redone`.
  CHECK(wait_until([&] { return b.sc->reg_acks == 1; }, 5s));
  CHECK(b.sc->regs == 2);
  CHECK(wait_until([&] { return acks_at_redone >= 0; }, 5s));
  CHECK(acks_at_redone == 1);
  std::lock_guard<std::mutex> guard{mtx};
  CHECK(events.back() == "redone");
}

TEST_CASE("registryctl register --hold prints its moved line only after the node acknowledged") {
  scripted_node a;
  scripted_node b;
  b.sc->refuse_regs = 1;
  auto dir = make_temp_dir();
  child_process holder{{REGISTRYCTL_PATH, "--node", a.address() + "," + b.address(),
                        "--redo-retry-ms", "300", "register", "orders", "10.9.9.2:80", "--hold"},
                       dir, "holder"};
  REQUIRE(holder.wait_for_output("registered", 5s));
  REQUIRE(a.sc->reg_acks == 1);
  a.stop();
  REQUIRE(holder.wait_for_output("moved", 5s));
  // By the time the line was printed, B had acknowledged the retried registration.
  CHECK(b.sc->reg_acks == 1);
  CHECK(b.sc->regs == 2);
  CHECK(holder.err().find("failed") != std::string::npos); // the refused attempt is logged
  holder.signal(SIGTERM);
  CHECK(holder.wait(5s) == 0);
  remove_tree(dir);
}

TEST_CASE("a batch registration is redone as one batch after a move") {
  scripted_node a;
  scripted_node b;
  client::naming_client c{options_for({a.address(), b.address()})};
  std::vector<registry::instance> xs;
  for (int i = 1; i <= 3; ++i) {
    auto x = sample_instance();
    x.port = static_cast<std::uint32_t>(80 + i);
    xs.push_back(x);
  }
  c.register_instances("orders", "DEFAULT_GROUP", xs);
  REQUIRE(a.sc->batch_regs == 1);
  // A single register in the same service joins the batch's redo; one in another service is
  // redone on its own.
  auto single = sample_instance();
  single.port = 90;
  c.register_instance("orders", "DEFAULT_GROUP", single);
  c.register_instance("billing", "DEFAULT_GROUP", single);
  // A second batch replaces the first: its instances alone (and later singles) are redone.
  xs.pop_back();
  c.register_instances("orders", "DEFAULT_GROUP", xs);
  REQUIRE(a.sc->batch_regs == 2);
  a.stop();
  CHECK(wait_until([&] { return b.sc->reg_acks == 2; }, 5s));
  CHECK(b.sc->regs == 2);
  CHECK(b.sc->batch_regs == 1);
  CHECK(b.sc->batch_instances == 2); // the second batch, without the single it replaced
}
