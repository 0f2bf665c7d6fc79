// Nacos 2.x's gRPC messages: what real clients send decodes (with their quirks: nulls, Python's
// "" namespace and "healthOnly", Rust's nulls), bad bodies are refused with Nacos's codes and a
// field name, and what the node writes has every field the strictest client requires.

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "actors/grpc/nacos_grpc_codec.hpp"
#include "messages/registry.pb.h"

using namespace registry;
using namespace registry::grpc_api;
using json = nlohmann::json;

namespace {

request ok(const std::string& type, const std::string& body) {
  auto r = decode(type, body, 1000);
  auto* f = std::get_if<failure>(&r);
  INFO(type << " " << body << " -> " << (f ? f->message : ""));
  REQUIRE(f == nullptr);
  return std::get<request>(r);
}

failure bad(const std::string& type, const std::string& body) {
  auto r = decode(type, body, 1000);
  INFO(type << " " << body);
  REQUIRE(std::holds_alternative<failure>(r));
  return std::get<failure>(r);
}

} // namespace

TEST_CASE("grpc codec: the Java client's InstanceRequest decodes with defaults") {
  auto r = ok("InstanceRequest",
              R"({"headers":{},"namespace":"public","serviceName":"demo","groupName":"DEFAULT_GROUP",
                  "type":"registerInstance","instance":{"ip":"10.0.0.1","port":8080,"weight":2.0,
                  "healthy":true,"enabled":false,"ephemeral":true,"clusterName":"c1",
                  "metadata":{"version":"1.0"},"instanceHeartBeatInterval":5000},"module":"naming"})");
  CHECK(r.what == kind::instance);
  CHECK(r.op == instance_op::register_instance);
  CHECK(r.key.to_string() == "public##DEFAULT_GROUP@@demo");
  REQUIRE(r.instances.size() == 1);
  auto& x = r.instances[0];
  CHECK(x.ip == "10.0.0.1");
  CHECK(x.port == 8080);
  CHECK(x.weight == 2.0);
  CHECK_FALSE(x.enabled);
  CHECK(x.cluster == "c1");
  CHECK(x.ephemeral);
  REQUIRE(x.metadata.size() == 1);
  CHECK(x.metadata[0].second == "1.0");
}

TEST_CASE("grpc codec: Rust's nulls and Python's empty namespace read as absent") {
  auto r = ok("InstanceRequest",
              R"({"namespace":"","serviceName":"demo","groupName":null,"type":"deregisterInstance",
                  "requestId":null,"instance":{"instanceId":null,"ip":"10.0.0.1","port":8080,
                  "clusterName":null,"metadata":null}})");
  CHECK(r.op == instance_op::deregister_instance);
  CHECK(r.key.namespace_id == "public");
  CHECK(r.key.group == "DEFAULT_GROUP");
  CHECK(r.instances[0].cluster == "DEFAULT");
  auto q = ok("ServiceQueryRequest",
              R"({"namespace":"public","serviceName":"demo","groupName":"g","cluster":"b,a",
                  "healthOnly":true,"udpPort":null})");
  CHECK(q.healthy_only);
  CHECK(q.clusters == "b,a");
  CHECK(q.cluster_list == std::vector<std::string>{"a", "b"});
}

TEST_CASE("grpc codec: every request type decodes") {
  CHECK(ok("ServerCheckRequest", R"({"headers":{},"module":"internal"})").what
        == kind::server_check);
  CHECK(ok("HealthCheckRequest", "").what == kind::health_check);
  auto setup = ok("ConnectionSetupRequest",
                  R"({"clientVersion":"Nacos-Java-Client:v2.5.1","labels":{"module":"naming"},
                      "abilityTable":{},"module":"internal"})");
  CHECK(setup.negotiates_abilities);
  CHECK_FALSE(ok("ConnectionSetupRequest", R"({"clientVersion":"Nacos-Rust-Client:0.8.0",
                                               "abilities":{}})")
                .negotiates_abilities);
  auto batch = ok("BatchInstanceRequest",
                  R"({"serviceName":"demo","type":"batchRegisterInstance","instances":[
                      {"ip":"10.0.0.1","port":1},{"ip":"10.0.0.2","port":1}]})");
  CHECK(batch.instances.size() == 2);
  CHECK(ok("BatchInstanceRequest", R"({"serviceName":"demo","type":"batchRegisterInstance",
                                       "instances":[]})")
          .instances.empty());
  auto persistent = ok("PersistentInstanceRequest",
                       R"({"serviceName":"db","type":"registerInstance",
                           "instance":{"ip":"10.0.0.9","port":3306,"ephemeral":false}})");
  CHECK_FALSE(persistent.instances[0].ephemeral);
  auto sub = ok("SubscribeServiceRequest",
                R"({"serviceName":"demo","groupName":"DEFAULT_GROUP","subscribe":false,"clusters":""})");
  CHECK_FALSE(sub.subscribe);
  CHECK(sub.cluster_list.empty());
  auto list = ok("ServiceListRequest", R"({"namespace":"public","groupName":"DEFAULT_GROUP",
                                          "pageNo":2,"pageSize":20,"selector":""})");
  CHECK(list.page_no == 2);
  CHECK(list.page_size == 20);
  auto ack = ok("NotifySubscriberResponse",
                R"({"resultCode":200,"errorCode":0,"message":"Response ok","requestId":"7"})");
  CHECK(ack.request_id == "7");
  CHECK(ack.result_code == 200);
  CHECK(ok("ClientDetectionResponse", R"({"requestId":"3","resultCode":200})").what
        == kind::client_detection_response);
}

TEST_CASE("grpc codec: malformed bodies are refused with a code and the field") {
  CHECK(bad("NoSuchRequest", "{}").code == code::no_handler);
  CHECK(bad("InstanceRequest", "{not json").code == code::bad_payload);
  CHECK(bad("InstanceRequest", "[1,2]").code == code::bad_payload);
  auto f = bad("InstanceRequest", R"({"serviceName":"demo","type":"registerInstance",
                                      "instance":{"ip":"10.0.0.1","port":"8080"}})");
  CHECK(f.code == code::bad_param);
  CHECK(f.message.find("instance.port") != std::string::npos);
  CHECK(bad("InstanceRequest", R"({"serviceName":"demo","type":"registerInstance"})").message.find(
          "instance")
        != std::string::npos);
  CHECK(bad("InstanceRequest", R"({"type":"registerInstance","instance":{"ip":"a","port":1}})")
          .message.find("serviceName")
        != std::string::npos);
  CHECK(bad("InstanceRequest", R"({"serviceName":"demo","type":"update",
                                   "instance":{"ip":"a","port":1}})")
          .message.find("type")
        != std::string::npos);
  CHECK(bad("InstanceRequest", R"({"serviceName":"demo","type":"registerInstance",
                                   "instance":{"ip":"a","port":70000}})")
          .message.find("instance.port")
        != std::string::npos);
  CHECK(bad("InstanceRequest", R"({"serviceName":"demo","type":"registerInstance",
                                   "instance":{"ip":"a","port":1,"weight":"x"}})")
          .message.find("instance.weight")
        != std::string::npos);
  CHECK(bad("InstanceRequest", R"({"serviceName":"demo","type":"registerInstance",
                                   "instance":{"ip":"a","port":1,"metadata":{"k":1}}})")
          .message.find("instance.metadata.k")
        != std::string::npos);
  CHECK(bad("InstanceRequest", R"({"serviceName":"demo","type":"registerInstance",
                                   "instance":{"ip":"a","port":1,"clusterName":"bad cluster"}})")
          .message.find("clusterName")
        != std::string::npos);
  // An ephemeral request cannot carry a persistent instance's flag through: it is ephemeral.
  CHECK(ok("InstanceRequest", R"({"serviceName":"demo","type":"registerInstance",
                                  "instance":{"ip":"a","port":1,"ephemeral":false}})")
          .instances[0]
          .ephemeral);
  CHECK(bad("SubscribeServiceRequest", R"({"serviceName":"demo","subscribe":"yes"})")
          .message.find("subscribe")
        != std::string::npos);
  CHECK(bad("ServiceListRequest", R"({"pageNo":0})").message.find("pageNo") != std::string::npos);
  CHECK(bad("ServiceListRequest", R"({"pageSize":100000})").message.find("pageSize")
        != std::string::npos);
  CHECK(bad("BatchInstanceRequest", R"({"serviceName":"d","type":"batchRegisterInstance",
                                        "instances":[{"ip":"a","port":1},{"ip":"a","port":1}]})")
          .message.find("instances[1]")
        != std::string::npos);
  auto big = decode("BatchInstanceRequest",
                    R"({"serviceName":"d","type":"batchRegisterInstance","instances":[{"ip":"a","port":1},{"ip":"a","port":2}]})",
                    1);
  REQUIRE(std::holds_alternative<failure>(big));
  CHECK(std::get<failure>(big).message.find("at most 1") != std::string::npos);
}

TEST_CASE("grpc codec: responses carry resultCode, errorCode and success") {
  for (auto& m : {health_check_response(), instance_response(kind::instance,
                                                             instance_op::register_instance),
                  server_check_response("1_127.0.0.1_5"), service_list_response(3, {"a"})}) {
    auto j = json::parse(m.body);
    CHECK(j["resultCode"] == 200);
    CHECK(j["errorCode"] == 0);
    CHECK(j["success"] == true);
  }
  auto err = json::parse(error_response(code::unregistered, "Connection is unregistered.").body);
  CHECK(err["resultCode"] == 301);
  CHECK(err["errorCode"] == 301);
  CHECK(err["success"] == false);
  CHECK(err["message"] == "Connection is unregistered.");
  CHECK(instance_response(kind::batch_instance, instance_op::register_instance).type
        == "BatchInstanceResponse");
  auto check = json::parse(server_check_response("1_127.0.0.1_5").body);
  CHECK(check["connectionId"] == "1_127.0.0.1_5");
  auto list = json::parse(service_list_response(3, {"a", "b"}).body);
  CHECK(list["count"] == 3);
  CHECK(list["serviceNames"] == json::array({"a", "b"}));
}

TEST_CASE("grpc codec: server requests carry headers and a string requestId") {
  for (auto& m : {client_detection_request("5"), connect_reset_request("6", "", "", "c"),
                  notify_subscriber_request("7", "{}")}) {
    auto j = json::parse(m.body);
    CHECK(j["headers"].is_object());
    CHECK(j["requestId"].is_string());
  }
  auto ack = json::parse(setup_ack_request(true).body);
  CHECK(ack["abilityTable"]["supportPersistentInstanceByGrpc"] == true);
}

TEST_CASE("grpc codec: a ServiceInfo has every field, a bare name, enabled hosts only") {
  v1::ServiceInfo info;
  info.set_name("DEFAULT_GROUP@@demo");
  info.set_group_name("DEFAULT_GROUP");
  info.set_reach_protection_threshold(true);
  auto* h = info.add_hosts();
  h->set_ip("10.0.0.1");
  h->set_port(8080);
  h->set_cluster("DEFAULT");
  (*h->mutable_metadata())["k"] = "<v>";
  auto* off = info.add_hosts();
  off->set_ip("10.0.0.2");
  off->set_port(8080);
  off->set_enabled(false);
  auto j = json::parse(service_info_json(info, "c1,c2", 1700000000123, 10000));
  CHECK(j["name"] == "demo");
  CHECK(j["groupName"] == "DEFAULT_GROUP");
  CHECK(j["clusters"] == "c1,c2");
  CHECK(j["cacheMillis"] == 10000);
  CHECK(j["lastRefTime"] == 1700000000123);
  CHECK(j["checksum"] == "");
  CHECK(j["allIPs"] == false);
  CHECK(j["allIps"] == false);
  CHECK(j["valid"] == true);
  CHECK(j["reachProtectionThreshold"] == true);
  REQUIRE(j["hosts"].size() == 1);
  auto& host = j["hosts"][0];
  for (auto* field : {"instanceId", "ip", "port", "weight", "healthy", "enabled", "ephemeral",
                      "clusterName", "serviceName", "metadata"})
    CHECK_MESSAGE(host.contains(field), field);
  CHECK(host["port"].is_number_unsigned());
  CHECK(host["serviceName"] == "DEFAULT_GROUP@@demo");
  CHECK(host["metadata"]["k"] == "<v>");
}

TEST_CASE("grpc codec: the cached ServiceInfo text equals the one written anew") {
  v1::ServiceInfo info;
  info.set_name("g@@svc");
  info.set_group_name("g");
  info.set_namespace_id("ns");
  info.set_last_ref_time(42);
  auto* h = info.add_hosts();
  h->set_ip("10.0.0.1");
  h->set_port(1);
  (*h->mutable_metadata())["note"] = "\"lastRefTime\":0,";
  auto payload = info.SerializeAsString();
  auto parts = cached_service_info(payload, "c1", 10000);
  REQUIRE(parts);
  CHECK(parts->text(1234) == service_info_json(info, "c1", 1234, 10000));
  CHECK(parts->key.to_string() == "ns##g@@svc");
  CHECK(parts->last_ref_time_ms == 42);
  // A second lookup is the same entry; another clusters text is another one.
  CHECK(cached_service_info(payload, "c1", 10000) == parts);
  CHECK(cached_service_info(payload, "c2", 10000) != parts);
  CHECK_FALSE(cached_service_info("\xff\xff garbage", "", 10000));
}
