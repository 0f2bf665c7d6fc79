// Raw wire requests to a real registryd, as a client of another implementation would send them.

#include <doctest/doctest.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/interfaces.hpp"
#include "messages/convert.hpp"
#include "messages/type_ids.hpp"
#include "test/support/node_fixture.hpp"

using namespace registry;
using namespace registry::test;
using namespace registry::wire;
using namespace std::chrono_literals;

TEST_CASE("a raw RegisterRequest without weight, healthy, enabled, ephemeral gets Nacos's defaults") {
  test_node node;
  REQUIRE(node.start());
  caf::actor_system_config cfg;
  // The test nodes' CAF heartbeat settings (see node_fixture.cpp).
  configure_system(cfg, 200, 1000, 1);
  caf::actor_system sys{cfg};
  auto gateway = sys.middleman().remote_actor<front_door_actor>("127.0.0.1",
                                                                static_cast<std::uint16_t>(node.port()));
  REQUIRE_MESSAGE(gateway, sys.render(gateway.error()));
  caf::scoped_actor self{sys};
  auto ask = [&](const v1::RegisterRequest& req) {
    envelope result;
    self->request(*gateway, 5s, reg_atom_v, pack(req))
      .receive([&](envelope& env) { result = std::move(env); },
               [&](caf::error& err) { FAIL(sys.render(err)); });
    return result;
  };

  // Only the service, ip and port: weight, healthy, enabled and ephemeral are absent on the wire.
  v1::RegisterRequest req;
  req.mutable_service()->set_service("orders");
  req.mutable_instance()->set_ip("10.0.0.1");
  req.mutable_instance()->set_port(8080);
  auto reply = ask(req);
  REQUIRE_MESSAGE(holds<v1::Ack>(reply), reply.kind);
  auto hosts = node.hosts("orders");
  REQUIRE(hosts.size() == 1);
  CHECK(hosts[0]["weight"] == 1.0);
  CHECK(hosts[0]["healthy"] == true);
  CHECK(hosts[0]["enabled"] == true);
  CHECK(hosts[0]["ephemeral"] == true);

  // A persistent instance is refused, naming the field, and nothing changes.
  req.mutable_instance()->set_port(8081);
  req.mutable_instance()->set_ephemeral(false);
  v1::Error err;
  REQUIRE(unpack(ask(req), err));
  CHECK(err.code() == v1::Error::INVALID_ARGUMENT);
  CHECK(err.field() == "ephemeral");
  CHECK(err.message().find("persistent instances are not supported yet") != std::string::npos);
  CHECK(host_set(node.hosts("orders")) == std::vector<std::string>{"10.0.0.1:8080"});
}
