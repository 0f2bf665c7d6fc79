#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "config/defaults.hpp"
#include "messages/validate.hpp"

using namespace registry;

namespace {

service_key good_key() {
  return {"public", "DEFAULT_GROUP", "orders"};
}

instance good_instance() {
  instance x;
  x.ip = "10.0.0.1";
  x.port = 8080;
  return x;
}

/// The error's field, or "" when valid.
std::string field_of(const std::optional<field_error>& e) {
  return e ? e->field : std::string{};
}

} // namespace

TEST_CASE("validate: a well-formed service key passes") {
  CHECK_FALSE(validate_service_key(good_key()));
  CHECK_FALSE(validate_service_key({"dev-1_a", "g:1.x-y_z", "a@b.c:d"}));
  // Non-CJK Unicode is allowed in a service name.
  CHECK_FALSE(validate_service_key({"public", "DEFAULT_GROUP", "caf\xC3\xA9"}));
}

TEST_CASE("validate: empty names are errors, defaults fill them") {
  CHECK(field_of(validate_service_key({"", "g", "s"})) == "namespaceId");
  CHECK(field_of(validate_service_key({"public", "", "s"})) == "groupName");
  CHECK(field_of(validate_service_key({"public", "g", ""})) == "serviceName");
  service_key k{"", "", "s"};
  apply_defaults(k);
  CHECK(k.namespace_id == "public");
  CHECK(k.group == "DEFAULT_GROUP");
  CHECK(k.name == "s");
  CHECK_FALSE(validate_service_key(k));
  service_key kept{"ns", "g", "s"};
  apply_defaults(kept);
  CHECK(kept == service_key{"ns", "g", "s"});
}

TEST_CASE("validate: service name length uses Nacos's message") {
  auto k = good_key();
  k.name = std::string(512, 'a');
  CHECK_FALSE(validate_service_key(k));
  k.name = std::string(513, 'a');
  auto e = validate_service_key(k);
  REQUIRE(e);
  CHECK(e->field == "serviceName");
  CHECK(e->message == "Param 'serviceName' is illegal, the param length should not exceed 512.");
}

TEST_CASE("validate: service name characters") {
  auto bad = [](const std::string& name) {
    return field_of(validate_service_key({"public", "DEFAULT_GROUP", name})) == "serviceName";
  };
  CHECK(bad("@orders"));
  CHECK(bad("a@@b"));
  CHECK(bad("a@@"));
  CHECK(bad("or ders"));
  CHECK(bad("orders\t"));
  CHECK(bad("line\nbreak"));
  CHECK(bad("\xE4\xB8\x80"));           // U+4E00, first CJK
  CHECK(bad("svc-\xE6\x9C\x8D\xE5\x8A\xA1")); // 服务
  CHECK(bad("\xE9\xBE\xA5"));           // U+9FA5, last CJK
  CHECK(bad("\xE3\x80\x80x"));          // U+3000 ideographic space
  CHECK(bad("\xFF\xFE"));               // not UTF-8
  CHECK_FALSE(bad("\xE9\xBE\xA6"));     // U+9FA6, just past the range
  CHECK_FALSE(bad("\xE3\x82\xB5"));     // katakana, outside the range
  CHECK_FALSE(bad("a@b"));
  CHECK_FALSE(bad("a@"));
  auto e = validate_service_key({"public", "DEFAULT_GROUP", "a b"});
  REQUIRE(e);
  CHECK(e->message.rfind("Param 'serviceName' is illegal", 0) == 0);
}

TEST_CASE("validate: namespace and group limits") {
  CHECK_FALSE(validate_service_key({std::string(64, 'n'), "g", "s"}));
  auto e = validate_service_key({std::string(65, 'n'), "g", "s"});
  REQUIRE(e);
  CHECK(e->field == "namespaceId");
  CHECK(e->message == "Param 'namespaceId' is illegal, the param length should not exceed 64.");
  CHECK(field_of(validate_service_key({"dev.1", "g", "s"})) == "namespaceId");
  CHECK(field_of(validate_service_key({"dev 1", "g", "s"})) == "namespaceId");
  CHECK_FALSE(validate_service_key({"n", std::string(128, 'g'), "s"}));
  auto g = validate_service_key({"n", std::string(129, 'g'), "s"});
  REQUIRE(g);
  CHECK(g->field == "groupName");
  CHECK(g->message == "Param 'groupName' is illegal, the param length should not exceed 128.");
  CHECK(field_of(validate_service_key({"n", "g/x", "s"})) == "groupName");
  CHECK(field_of(validate_service_key({"n", "g@@x", "s"})) == "groupName");
}

TEST_CASE("validate: cluster names") {
  CHECK_FALSE(validate_cluster("DEFAULT"));
  CHECK_FALSE(validate_cluster("A-b_9"));
  CHECK_FALSE(validate_cluster(std::string(64, 'c')));
  for (const std::string& bad : std::vector<std::string>{"", "a.b", "a,b", "a b", "a:b", std::string(65, 'c')}) {
    CAPTURE(bad);
    auto e = validate_cluster(bad);
    REQUIRE(e);
    CHECK(e->field == "clusterName");
    CHECK(e->message.rfind("Param 'clusterName' is illegal, ", 0) == 0);
  }
  CHECK(validate_cluster(std::string(65, 'c'))->message
        == "Param 'clusterName' is illegal, the param length should not exceed 64.");
}

TEST_CASE("validate: a well-formed instance passes") {
  CHECK_FALSE(validate_instance(good_instance()));
  auto x = good_instance();
  x.ip = "fe80::1";
  x.port = 65535;
  x.weight = 10000.0;
  x.metadata = {{"env", "prod"}, {"zone", ""}};
  x.instance_id = std::string(256, 'i');
  CHECK_FALSE(validate_instance(x));
  x.port = 1;
  x.weight = 0.0;
  CHECK_FALSE(validate_instance(x));
}

TEST_CASE("validate: instance ip") {
  auto x = good_instance();
  x.ip = "";
  CHECK(field_of(validate_instance(x)) == "ip");
  x.ip = "10.0.0.1 ";
  CHECK(field_of(validate_instance(x)) == "ip");
  x.ip = "\xE4\xB8\xBB\xE6\x9C\xBA"; // 主机
  CHECK(field_of(validate_instance(x)) == "ip");
  x.ip = std::string(128, 'h');
  CHECK_FALSE(validate_instance(x));
  x.ip = std::string(129, 'h');
  auto e = validate_instance(x);
  REQUIRE(e);
  CHECK(e->message == "Param 'ip' is illegal, the param length should not exceed 128.");
}

TEST_CASE("validate: instance port 1..65535") {
  auto x = good_instance();
  for (std::uint32_t port : {0u, 65536u, 100000u}) {
    CAPTURE(port);
    x.port = port;
    auto e = validate_instance(x);
    REQUIRE(e);
    CHECK(e->field == "port");
    CHECK(e->message == "Param 'port' is illegal, the value should be between 1 and 65535.");
  }
}

TEST_CASE("validate: instance weight 0..10000 and finite") {
  auto x = good_instance();
  for (double w : {-0.1, 10000.5, std::nan(""), std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity()}) {
    CAPTURE(w);
    x.weight = w;
    auto e = validate_instance(x);
    REQUIRE(e);
    CHECK(e->field == "weight");
    CHECK(e->message == "The weights range from 0.0 to 10000.0");
  }
}

TEST_CASE("validate: instance cluster must be set and well-formed") {
  auto x = good_instance();
  x.cluster = "";
  CHECK(field_of(validate_instance(x)) == "clusterName");
  apply_defaults(x);
  CHECK(x.cluster == "DEFAULT");
  CHECK_FALSE(validate_instance(x));
  x.cluster = "us.east";
  CHECK(field_of(validate_instance(x)) == "clusterName");
  x.cluster = "us-east";
  apply_defaults(x);
  CHECK(x.cluster == "us-east");
}

TEST_CASE("validate: instance metadata bounds") {
  auto x = good_instance();
  SUBCASE("entries") {
    for (int i = 0; i < 64; ++i)
      x.metadata.emplace_back("k" + std::to_string(100 + i), "v");
    CHECK_FALSE(validate_instance(x));
    x.metadata.emplace_back("k999", "v");
    CHECK(field_of(validate_instance(x)) == "metadata");
  }
  SUBCASE("keys plus values at most 1024 characters") {
    x.metadata = {{"a", std::string(500, 'v')}, {"b", std::string(522, 'v')}};
    CHECK_FALSE(validate_instance(x));
    x.metadata[1].second = x.metadata[1].second + "v";
    auto e = validate_instance(x);
    REQUIRE(e);
    CHECK(e->field == "metadata");
    CHECK(e->message == "Param 'Metadata' is illegal, the param length should not exceed 1024.");
  }
  SUBCASE("characters, not bytes") {
    // 1000 two-byte characters plus "k" = 1001 characters (2001 bytes).
    std::string v;
    for (int i = 0; i < 1000; ++i)
      v += "\xC3\xA9";
    x.metadata = {{"k", v}};
    CHECK_FALSE(validate_instance(x));
  }
  SUBCASE("keys and values are UTF-8 text (the wire carries them as protobuf strings)") {
    x.metadata = {{"k\xC3", "v"}};
    auto e = validate_instance(x);
    REQUIRE(e);
    CHECK(e->field == "metadata");
    CHECK(e->message == "Param 'Metadata' is illegal, keys and values must be UTF-8 text.");
    x.metadata = {{"k", "v\xFF"}};
    CHECK(field_of(validate_instance(x)) == "metadata");
    x.metadata = {{"k\xC3\xA9", "v\xE2\x82\xAC"}};
    CHECK_FALSE(validate_instance(x));
  }
  SUBCASE("empty key") {
    x.metadata = {{"", "v"}};
    CHECK(field_of(validate_instance(x)) == "metadata");
  }
  SUBCASE("duplicate key") {
    x.metadata = {{"b", "1"}, {"a", "2"}, {"b", "3"}};
    CHECK(field_of(validate_instance(x)) == "metadata");
  }
}

TEST_CASE("validate: instance id length") {
  auto x = good_instance();
  x.instance_id = std::string(257, 'i');
  auto e = validate_instance(x);
  REQUIRE(e);
  CHECK(e->field == "instanceId");
  CHECK(e->message == "Param 'instanceId' is illegal, the param length should not exceed 256.");
  x.instance_id = "";
  CHECK_FALSE(validate_instance(x));
}

TEST_CASE("validate: paging") {
  CHECK_FALSE(validate_page(1, 1));
  CHECK_FALSE(validate_page(7, 20));
  CHECK_FALSE(validate_page(1, 500));
  CHECK(field_of(validate_page(0, 20)) == "page");
  CHECK(field_of(validate_page(1, 0)) == "size");
  auto e = validate_page(1, 501);
  REQUIRE(e);
  CHECK(e->field == "size");
  CHECK(e->message == "Param 'size' is illegal, the value should be between 1 and 500.");
}

TEST_CASE("validate: metadata entries k=v") {
  std::pair<std::string, std::string> kv;
  CHECK_FALSE(parse_metadata_entry("env=prod", kv));
  CHECK(kv == std::make_pair(std::string{"env"}, std::string{"prod"}));
  CHECK_FALSE(parse_metadata_entry("url=http://h/?a=b", kv));
  CHECK(kv.first == "url");
  CHECK(kv.second == "http://h/?a=b");
  CHECK_FALSE(parse_metadata_entry("flag=", kv));
  CHECK(kv.first == "flag");
  CHECK(kv.second.empty());
  for (const std::string& bad : std::vector<std::string>{"noequals", "=v", ""}) {
    CAPTURE(bad);
    auto e = parse_metadata_entry(bad, kv);
    REQUIRE(e);
    CHECK(e->field == "metadata");
    CHECK(e->message == "metadata format incorrect:" + bad);
  }
}

TEST_CASE("validate: a client's whole state as a peer sends it") {
  client_services services{{good_key(), {good_instance()}}};
  CHECK_FALSE(validate_client("10.0.0.9:8848/1/2", services, 1000));
  CHECK_FALSE(validate_client("10.0.0.1:8080#true", services, 1000));
  CHECK(field_of(validate_client("", services, 1000)) == "clientId");
  CHECK(field_of(validate_client(std::string(defaults::client_id_chars_max + 1, 'c'), services,
                                 1000)) == "clientId");
  // A heartbeat client holds only its own ip:port, as its registrations do.
  CHECK(field_of(validate_client("10.0.0.1:8081#true", services, 1000)) == "ip");
  // Each instance by the rules of a registration.
  auto bad = services;
  bad.begin()->second.mutate().front().weight = std::nan("");
  CHECK(field_of(validate_client("n/1/2", bad, 1000)) == "weight");
  bad = services;
  bad.begin()->second.mutate().front().ip.clear();
  CHECK(field_of(validate_client("n/1/2", bad, 1000)) == "ip");
  // Service keys too.
  client_services bad_key{{{"public", "DEFAULT_GROUP", "@orders"}, {good_instance()}}};
  CHECK(field_of(validate_client("n/1/2", bad_key, 1000)) == "serviceName");
  // The instance limit over every service of the client, and no instance twice.
  client_services two{{good_key(), {good_instance()}},
                      {{"public", "DEFAULT_GROUP", "pay"}, {good_instance()}}};
  CHECK_FALSE(validate_client("n/1/2", two, 2));
  CHECK(field_of(validate_client("n/1/2", two, 1)) == "instances");
  auto twice = services;
  twice.begin()->second.mutate().push_back(good_instance());
  CHECK(field_of(validate_client("n/1/2", twice, 1000)) == "instances");
  auto other_cluster = twice;
  other_cluster.begin()->second.mutate().back().cluster = "other";
  CHECK_FALSE(validate_client("n/1/2", other_cluster, 1000));
}

namespace {

std::vector<instance> batch_of(std::size_t n) {
  std::vector<instance> xs;
  for (std::size_t i = 0; i < n; ++i) {
    auto x = good_instance();
    x.port = static_cast<std::uint32_t>(1000 + i);
    xs.push_back(x);
  }
  return xs;
}

} // namespace

TEST_CASE("validate batch: a well-formed batch passes, up to the bound") {
  CHECK_FALSE(validate_instance_batch(batch_of(1)));
  CHECK_FALSE(validate_instance_batch(batch_of(defaults::batch_register_instances_max)));
  // The same ip and port in two clusters are two instances.
  auto xs = batch_of(1);
  xs.push_back(xs.front());
  xs.back().cluster = "other";
  CHECK_FALSE(validate_instance_batch(xs));
}

TEST_CASE("validate batch: empty and oversized batches are refused as a whole") {
  auto empty = validate_instance_batch({});
  REQUIRE(empty);
  CHECK(empty->field == "instances");
  CHECK(empty->message.find("at least one") != std::string::npos);
  auto big = validate_instance_batch(batch_of(defaults::batch_register_instances_max + 1));
  REQUIRE(big);
  CHECK(big->field == "instances");
  CHECK(big->message.find(std::to_string(defaults::batch_register_instances_max))
        != std::string::npos);
}

TEST_CASE("validate batch: every field of every instance is checked and named by position") {
  auto check = [](auto spoil, const std::string& field) {
    auto xs = batch_of(5);
    spoil(xs[3]);
    auto e = validate_instance_batch(xs);
    REQUIRE(e);
    CHECK(e->field == field);
    CHECK(e->message.rfind("instances[3]: ", 0) == 0);
  };
  check([](instance& x) { x.port = 0; }, "instances[3].port");
  check([](instance& x) { x.port = 70000; }, "instances[3].port");
  check([](instance& x) { x.ip.clear(); }, "instances[3].ip");
  check([](instance& x) { x.weight = -1; }, "instances[3].weight");
  check([](instance& x) { x.weight = std::nan(""); }, "instances[3].weight");
  check([](instance& x) { x.ephemeral = false; }, "instances[3].ephemeral");
  check([](instance& x) { x.cluster = "bad cluster"; }, "instances[3].clusterName");
  check([](instance& x) { x.metadata = {{"", "v"}}; }, "instances[3].metadata");
  check([](instance& x) { x.instance_id = std::string(300, 'i'); }, "instances[3].instanceId");
}

TEST_CASE("validate batch: a duplicate is refused (not merged), naming the later position") {
  auto xs = batch_of(5);
  xs[4].ip = xs[1].ip;
  xs[4].port = xs[1].port;
  xs[4].weight = 2; // other content, same identity: still the same instance
  auto e = validate_instance_batch(xs);
  REQUIRE(e);
  CHECK(e->field == "instances[4]");
  CHECK(e->message.find("instances[1]") != std::string::npos);
}
