#include <doctest/doctest.h>

#include "messages/convert.hpp"
#include "messages/validate.hpp"

using namespace registry;

namespace {

instance sample_instance() {
  instance x;
  x.instance_id = "10.0.0.1#8080#east#G@@orders";
  x.ip = "10.0.0.1";
  x.port = 8080;
  x.weight = 2.5;
  x.healthy = false;
  x.enabled = true;
  x.ephemeral = true;
  x.cluster = "east";
  x.metadata = {{"a", "1"}, {"m", "2"}, {"z", "3"}};
  return x;
}

} // namespace

TEST_CASE("convert: an instance survives a round trip") {
  auto x = sample_instance();
  v1::Instance w;
  to_wire(x, w);
  CHECK(w.ip() == "10.0.0.1");
  CHECK(w.port() == 8080);
  CHECK(w.weight() == 2.5);
  CHECK_FALSE(w.healthy());
  CHECK(w.cluster() == "east");
  CHECK(w.metadata_size() == 3);
  CHECK(w.metadata().at("m") == "2");
  CHECK(w.service_name().empty());
  // Through the encoding, too.
  v1::Instance parsed;
  REQUIRE(parsed.ParseFromString(w.SerializeAsString()));
  CHECK(from_wire(parsed) == x);
}

TEST_CASE("convert: instance defaults and metadata order") {
  v1::Instance w;
  w.set_ip("10.0.0.2");
  w.set_port(80);
  w.set_healthy(true);
  w.set_enabled(true);
  (*w.mutable_metadata())["zone"] = "b";
  (*w.mutable_metadata())["app"] = "x";
  (*w.mutable_metadata())["env"] = "prod";
  auto x = from_wire(w);
  CHECK(x.cluster == "DEFAULT");
  CHECK(x.weight == 1.0); // unset: Nacos's default
  CHECK(x.instance_id.empty());
  CHECK(x.metadata == metadata_map{{"app", "x"}, {"env", "prod"}, {"zone", "b"}});
  w.set_weight(1.0);
  w.set_cluster("c1");
  x = from_wire(w);
  CHECK(x.weight == 1.0);
  CHECK(x.cluster == "c1");
}

TEST_CASE("convert: to_wire overwrites what the message held") {
  v1::Instance w;
  (*w.mutable_metadata())["stale"] = "1";
  w.set_service_name("OLD@@old");
  instance x;
  x.ip = "h";
  x.port = 1;
  to_wire(x, w);
  CHECK(w.metadata_size() == 0);
  CHECK(w.service_name().empty());
}

TEST_CASE("convert: service references get defaults") {
  v1::ServiceRef r;
  r.set_service("orders");
  auto k = from_wire(r);
  CHECK(k == service_key{"public", "DEFAULT_GROUP", "orders"});
  r.set_namespace_id("dev");
  r.set_group("G");
  CHECK(from_wire(r) == service_key{"dev", "G", "orders"});
  v1::ServiceRef back;
  to_wire(service_key{"dev", "G", "orders"}, back);
  CHECK(back.namespace_id() == "dev");
  CHECK(back.group() == "G");
  CHECK(back.service() == "orders");
}

TEST_CASE("convert: service info has Nacos's shape") {
  service_info info;
  info.key = {"dev", "G", "orders"};
  info.clusters = "east,west";
  info.cache_millis = 10000;
  info.last_ref_time_ms = 1700000000123;
  info.reach_protection_threshold = true;
  info.hosts = {sample_instance(), sample_instance()};
  info.hosts[1].port = 8081;
  v1::ServiceInfo w;
  to_wire(info, w);
  CHECK(w.name() == "G@@orders");
  CHECK(w.group_name() == "G");
  CHECK(w.namespace_id() == "dev");
  CHECK(w.clusters() == "east,west");
  CHECK(w.cache_millis() == 10000);
  CHECK(w.last_ref_time() == 1700000000123);
  CHECK(w.reach_protection_threshold());
  REQUIRE(w.hosts_size() == 2);
  CHECK(w.hosts(0).service_name() == "G@@orders");
  CHECK(w.hosts(1).service_name() == "G@@orders");
  CHECK(w.hosts(1).port() == 8081);
  auto back = from_wire(w);
  CHECK(back.key == info.key);
  CHECK(back.clusters == info.clusters);
  CHECK(back.cache_millis == info.cache_millis);
  CHECK(back.last_ref_time_ms == info.last_ref_time_ms);
  CHECK(back.reach_protection_threshold);
  CHECK(back.hosts == info.hosts);
}

TEST_CASE("convert: service info from a bare grouped name") {
  v1::ServiceInfo w;
  w.set_name("G@@orders");
  auto info = from_wire(w);
  CHECK(info.key == service_key{"public", "G", "orders"});
  w.set_name("orders");
  CHECK(from_wire(w).key == service_key{"public", "DEFAULT_GROUP", "orders"});
}

TEST_CASE("convert: client data for Distro") {
  client_services services;
  services[{"public", "DEFAULT_GROUP", "a"}] = {sample_instance()};
  auto second = sample_instance();
  second.port = 9090;
  services[{"dev", "G", "b"}] = {sample_instance(), second};
  services[{"public", "DEFAULT_GROUP", "empty"}] = {};
  v1::ClientData w;
  w.set_owner("10.0.0.9:8848");
  to_wire("10.0.0.1:8080#true", 42, services, w);
  CHECK(w.client_id() == "10.0.0.1:8080#true");
  CHECK(w.revision() == 42);
  CHECK(w.owner() == "10.0.0.9:8848"); // left to the caller
  CHECK_FALSE(w.deleted());
  CHECK(w.services_size() == 2); // the empty service is not sent
  v1::ClientData parsed;
  REQUIRE(parsed.ParseFromString(w.SerializeAsString()));
  auto back = services_from_wire(parsed);
  services.erase({"public", "DEFAULT_GROUP", "empty"});
  CHECK(back == services);
  // Converting again replaces the services instead of appending.
  to_wire("10.0.0.1:8080#true", 43, {}, w);
  CHECK(w.services_size() == 0);
  CHECK(w.revision() == 43);
}

TEST_CASE("convert: a deleted client publishes nothing") {
  client_services services;
  services[{"public", "DEFAULT_GROUP", "a"}] = {sample_instance()};
  v1::ClientData w;
  to_wire("c", 7, services, w);
  w.set_deleted(true);
  CHECK(services_from_wire(w).empty());
}

TEST_CASE("convert: errors") {
  auto e = make_error(v1::Error::LIMIT_EXCEEDED, "instances", "too many");
  CHECK(e.code() == v1::Error::LIMIT_EXCEEDED);
  CHECK(e.field() == "instances");
  CHECK(e.message() == "too many");
  auto f = make_error(field_error{"port", "bad port"});
  CHECK(f.code() == v1::Error::INVALID_ARGUMENT);
  CHECK(f.field() == "port");
  CHECK(f.message() == "bad port");
}

TEST_CASE("convert: an instance without weight, healthy, enabled, ephemeral gets Nacos's defaults") {
  v1::Instance w;
  w.set_ip("10.0.0.1");
  w.set_port(8080);
  // Through the encoding: the unset fields are absent on the wire.
  v1::Instance parsed;
  REQUIRE(parsed.ParseFromString(w.SerializeAsString()));
  auto x = from_wire(parsed);
  CHECK(x.weight == 1.0);
  CHECK(x.healthy);
  CHECK(x.enabled);
  CHECK(x.ephemeral);
  CHECK_FALSE(validate_instance(x));
}

TEST_CASE("convert: explicit zero and false values are kept") {
  v1::Instance w;
  w.set_ip("10.0.0.1");
  w.set_port(8080);
  w.set_weight(0.0);
  w.set_healthy(false);
  w.set_enabled(false);
  w.set_ephemeral(false);
  v1::Instance parsed;
  REQUIRE(parsed.ParseFromString(w.SerializeAsString()));
  auto x = from_wire(parsed);
  CHECK(x.weight == 0.0);
  CHECK_FALSE(x.healthy);
  CHECK_FALSE(x.enabled);
  CHECK_FALSE(x.ephemeral);
  // A persistent instance is refused where only ephemeral ones go (sessions, beats, Distro),
  // naming the field, and accepted on the persistent path.
  auto err = validate_instance(x);
  REQUIRE(err);
  CHECK(err->field == "ephemeral");
  CHECK(err->message.find("through Raft") != std::string::npos);
  CHECK_FALSE(validate_instance(x, true));
}
