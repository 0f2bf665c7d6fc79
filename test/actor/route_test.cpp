// Client actors talk to their service actors directly: the first update of a service goes through
// the gateway and names the service actor; the rest go straight to it, in the client's order.

#include <doctest/doctest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/gateway/gateway_actor.hpp"
#include "config/defaults.hpp"
#include "messages/convert.hpp"
#include "messages/model_inspect.hpp"
#include "messages/type_ids.hpp"
#include "test/support/deterministic_system.hpp"

using namespace registry;
using namespace registry::wire;
using namespace std::chrono_literals;

namespace {

struct route_fixture : test::deterministic_system {
  caf::actor gateway;
  caf::actor remote;
  std::shared_ptr<node_config> node_cfg = std::make_shared<node_config>();

  route_fixture() {
    node_cfg->listen = host_port{"127.0.0.1", 8848};
    node_cfg->members = {node_cfg->listen};
    gateway = caf::actor_cast<caf::actor>(spawn_gateway_actor(*sys, node_cfg, distro_actor{}));
    remote = sys->spawn(acking, 0);
    sched->run();
  }

  ~route_fixture() {
    (*self)->send_exit(remote, caf::exit_reason::user_shutdown);
    (*self)->send_exit(gateway, caf::exit_reason::user_shutdown);
    sched->run();
  }

  /// A client process's push receiver (the unused argument: see client_actor_test.cpp).
  static caf::behavior acking(caf::event_based_actor*, int) {
    return {[](push_atom, const envelope&) { return pack(v1::Ack{}); }};
  }

  caf::actor open_session() { return hello(gateway, remote).second; }

  static envelope reg(const std::string& service, const std::string& ip) {
    v1::RegisterRequest req;
    req.mutable_service()->set_service(service);
    req.mutable_instance()->set_ip(ip);
    req.mutable_instance()->set_port(80);
    return pack(req);
  }

  static envelope dereg(const std::string& service, const std::string& ip) {
    v1::DeregisterRequest req;
    req.mutable_service()->set_service(service);
    req.set_ip(ip);
    req.set_port(80);
    return pack(req);
  }

  /// The ips the service holds, sorted.
  std::vector<std::string> hosts(const std::string& service) {
    v1::QueryRequest req;
    req.mutable_service()->set_service(service);
    v1::ServiceInfo info;
    REQUIRE(unpack(ask(gateway, query_atom_v, pack(req)), info));
    std::vector<std::string> result;
    for (auto& h : info.hosts())
      result.push_back(h.ip());
    std::sort(result.begin(), result.end());
    return result;
  }

  /// A session holding 10.0.0.1 in "orders" and subscribed to that service.
  caf::actor session_in_orders() {
    auto session = open_session();
    REQUIRE(session);
    REQUIRE(holds<v1::Ack>(ask(session, reg_atom_v, reg("orders", "10.0.0.1"))));
    v1::SubscribeRequest sub;
    sub.mutable_service()->set_service("orders");
    REQUIRE(holds<v1::ServiceInfo>(ask(session, sub_atom_v, pack(sub))));
    return session;
  }

  caf::actor service_of(const std::string& service) {
    caf::actor result;
    auto h = (*self)->request(gateway, caf::infinite, caf::get_atom::value,
                              service_key{"public", "DEFAULT_GROUP", service});
    sched->run();
    h.receive([&](service_actor& x) { result = caf::actor_cast<caf::actor>(x); },
              [&](caf::error& err) { FAIL(sys->render(err)); });
    return result;
  }

};

using strings = std::vector<std::string>;

} // namespace

TEST_CASE_FIXTURE(route_fixture, "a session's updates keep their order while the route resolves") {
  auto session = open_session();
  REQUIRE(session);
  // All in the session's mailbox at once: the first resolves the route, the rest wait behind it.
  auto h1 = (*self)->request(session, caf::infinite, reg_atom_v, reg("orders", "10.0.0.1"));
  auto h2 = (*self)->request(session, caf::infinite, reg_atom_v, reg("orders", "10.0.0.2"));
  auto h3 = (*self)->request(session, caf::infinite, dereg_atom_v, dereg("orders", "10.0.0.1"));
  auto h4 = (*self)->request(session, caf::infinite, reg_atom_v, reg("orders", "10.0.0.3"));
  sched->run();
  int acks = 0;
  for (auto* h : {&h1, &h2, &h3, &h4})
    h->receive([&](envelope& env) { acks += holds<v1::Ack>(env) ? 1 : 0; },
               [&](caf::error& err) { FAIL(sys->render(err)); });
  CHECK(acks == 4);
  CHECK(hosts("orders") == strings{"10.0.0.2", "10.0.0.3"});
  // Later updates go straight to the same service actor.
  auto service = service_of("orders");
  REQUIRE(holds<v1::Ack>(ask(session, dereg_atom_v, dereg("orders", "10.0.0.2"))));
  CHECK(hosts("orders") == strings{"10.0.0.3"});
  CHECK(service_of("orders") == service);
}

TEST_CASE_FIXTURE(route_fixture, "a drop right after a put leaves no instance") {
  auto session = open_session();
  REQUIRE(session);
  // A register in a service without a route, and the session's end right behind it.
  auto h1 = (*self)->request(session, caf::infinite, reg_atom_v, reg("orders", "10.0.0.1"));
  auto h2 = (*self)->request(session, caf::infinite, reg_atom_v, reg("billing", "10.0.0.1"));
  auto h3 = (*self)->request(session, caf::infinite, bye_atom_v);
  sched->run();
  for (auto* h : {&h1, &h2, &h3})
    h->receive([](envelope&) {}, [&](caf::error& err) { FAIL(sys->render(err)); });
  CHECK(hosts("orders").empty());
  CHECK(hosts("billing").empty());
  // The same for a heartbeat client: register, then deregister right behind it.
  auto g1 = (*self)->request(gateway, caf::infinite, reg_atom_v, reg("orders", "10.0.0.9"));
  auto g2 = (*self)->request(gateway, caf::infinite, dereg_atom_v, dereg("orders", "10.0.0.9"));
  sched->run();
  for (auto* h : {&g1, &g2})
    h->receive([](envelope& env) { CHECK(holds<v1::Ack>(env)); },
               [&](caf::error& err) { FAIL(sys->render(err)); });
  CHECK(hosts("orders").empty());
}

TEST_CASE_FIXTURE(route_fixture, "a service actor that goes away is found again") {
  auto session = session_in_orders();
  auto first = service_of("orders");
  REQUIRE(first);
  // Stopped as an idle sweep stops it: the gateway forgets it; the client notices at its next
  // update, which goes to a successor with the client's whole list.
  (*self)->send_exit(first, caf::exit_reason::user_shutdown);
  sched->run();
  REQUIRE(holds<v1::Ack>(ask(session, reg_atom_v, reg("orders", "10.0.0.2"))));
  auto second = service_of("orders");
  REQUIRE(second);
  CHECK(second != first);
  CHECK(hosts("orders") == strings{"10.0.0.1", "10.0.0.2"});
  // A failed one is restarted by the gateway: one successor, the same content.
  (*self)->send_exit(second, caf::exit_reason::unhandled_exception);
  sched->run();
  CHECK(hosts("orders") == strings{"10.0.0.1", "10.0.0.2"});
  // The subscription moved along: the successor counts it.
  v1::ServiceDetailRequest detail_req;
  detail_req.mutable_service()->set_service("orders");
  v1::ServiceDetail detail;
  REQUIRE(unpack(ask(gateway, query_atom_v, pack(detail_req)), detail));
  CHECK(detail.subscribers_size() == 1);
  REQUIRE(holds<v1::Ack>(ask(session, dereg_atom_v, dereg("orders", "10.0.0.1"))));
  CHECK(hosts("orders") == strings{"10.0.0.2"});
}

TEST_CASE_FIXTURE(route_fixture,
                  "updates waiting behind a first update that gets no answer still reach the service") {
  auto session = session_in_orders();
  auto first = service_of("orders");
  REQUIRE(first);
  // The service actor fails; the gateway starts a successor and tells the client, which sends its
  // list there through the gateway (the new route's first update) with its subscription waiting
  // behind it. The gateway then stalls (a busy node) until the first update times out.
  (*self)->send_exit(first, caf::exit_reason::unhandled_exception);
  auto has_job = [&](const caf::actor& x) {
    for (auto* job : sched->jobs)
      if (dynamic_cast<caf::abstract_actor*>(job) == caf::actor_cast<caf::abstract_actor*>(x))
        return true;
    return false;
  };
  for (int i = 0; i < 100 && !has_job(session); ++i)
    sched->run_once(); // the failure reaches the gateway, which sends the rebuild
  REQUIRE(has_job(session));
  sched->prioritize(session);
  sched->run_once(); // the client takes the rebuild; the gateway holds its first update
  REQUIRE(has_job(gateway));
  sched->advance_time(std::chrono::milliseconds(defaults::request_timeout_ms + 1));
  REQUIRE(has_job(session));
  sched->prioritize(session);
  sched->run_once(); // the first update timed out at the client
  sched->run();      // the gateway catches up
  CHECK(hosts("orders") == strings{"10.0.0.1"});
  // The subscription that waited behind it reached the successor too.
  v1::ServiceDetailRequest detail_req;
  detail_req.mutable_service()->set_service("orders");
  v1::ServiceDetail detail;
  REQUIRE(unpack(ask(gateway, query_atom_v, pack(detail_req)), detail));
  CHECK(detail.subscribers_size() == 1);
}

TEST_CASE_FIXTURE(route_fixture, "an ending client leaves no instance in any service") {
  auto session = open_session();
  REQUIRE(session);
  for (auto name : {"a", "b", "c"})
    REQUIRE(holds<v1::Ack>(ask(session, reg_atom_v, reg(name, "10.0.0.1"))));
  // One more service whose route is still resolving when the process goes down.
  (*self)->send(session, reg_atom_v, reg("d", "10.0.0.1"));
  caf::anon_send_exit(remote, caf::exit_reason::remote_link_unreachable);
  sched->run();
  for (auto name : {"a", "b", "c", "d"})
    CHECK_MESSAGE(hosts(name).empty(), name);
  // The gateway forgot the client too.
  v1::StatusRequest status_req;
  v1::Status status;
  REQUIRE(unpack(ask(gateway, status_atom_v, pack(status_req)), status));
  CHECK(status.clients() == 0);
}
