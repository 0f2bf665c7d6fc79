// Nacos 2.x's gRPC protocol against a real registryd, with a C++ gRPC client built from the same
// unchanged .proto (test/support/nacos_grpc_client): each request type, malformed bodies, calls
// before the setup, idle detection, pushes, and 5k concurrent connections.

#include <doctest/doctest.h>

#include <sys/resource.h>

#include <set>
#include <string>
#include <vector>

#include "test/support/nacos_grpc_client.hpp"
#include "test/support/node_fixture.hpp"

using namespace registry::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

std::string grpc_address(const test_node& node) {
  auto st = node.ctl_json({"status"});
  return st.is_object() && st["grpc"].is_string() ? st["grpc"].get<std::string>() : "";
}

const std::string grpc_node_yaml = "distro:\n  lone_ready_wait_ms: 0\n";

bool is_ok(const grpc_message& m, const std::string& type) {
  return m.type == type && m.body.is_object() && m.body.value("resultCode", 0) == 200
         && m.body.value("errorCode", -1) == 0 && m.body.value("success", false);
}

int error_code(const grpc_message& m) {
  return m.type == "ErrorResponse" && m.body.is_object() ? m.body.value("errorCode", 0) : 0;
}

std::vector<std::string> hosts_of(const grpc_message& m) {
  std::vector<std::string> out;
  if (!m.body.is_object() || !m.body.contains("serviceInfo"))
    return out;
  for (auto& h : m.body["serviceInfo"]["hosts"])
    out.push_back(h["ip"].get<std::string>() + ":" + std::to_string(h["port"].get<int>()));
  std::sort(out.begin(), out.end());
  return out;
}

json query_body(const std::string& service) {
  return json{{"namespace", "public"}, {"serviceName", service}, {"groupName", "DEFAULT_GROUP"},
              {"cluster", ""}, {"healthyOnly", false}, {"module", "naming"}};
}

json subscribe_body(const std::string& service, bool on) {
  return json{{"namespace", "public"}, {"serviceName", service}, {"groupName", "DEFAULT_GROUP"},
              {"clusters", ""}, {"subscribe", on}, {"module", "naming"}};
}

} // namespace

TEST_CASE("grpc: the handshake, every naming request, and a push acknowledged") {
  test_node node{grpc_node_yaml};
  REQUIRE(node.start());
  REQUIRE(node.wait_ready(10s));
  auto address = grpc_address(node);
  REQUIRE(!address.empty());

  nacos_grpc_connection a{address};
  // Before the setup: ServerCheck answers, other calls get 301.
  // Until the node is ready, ServerCheck answers 300 (starting), as Nacos; clients retry.
  grpc_message check;
  REQUIRE(wait_until([&] {
    check = a.call("ServerCheckRequest", json{{"module", "internal"}});
    return is_ok(check, "ServerCheckResponse");
  }, 5s));
  CHECK(check.body["connectionId"].get<std::string>().find("_127.0.0.1_") != std::string::npos);
  CHECK(check.body["supportAbilityNegotiation"] == true);
  CHECK(error_code(a.call("HealthCheckRequest", json::object())) == 301);
  CHECK(error_code(a.call("InstanceRequest",
                          instance_request("demo", "registerInstance", "10.0.0.1", 8080)))
        == 301);
  // Setup with ability negotiation: SetupAckRequest comes on the stream.
  REQUIRE(a.open_stream(true));
  auto ack = a.wait_for([](auto& m) { return m.type == "SetupAckRequest"; }, 5s);
  REQUIRE(ack.type == "SetupAckRequest");
  CHECK(ack.body["abilityTable"].is_object());
  REQUIRE(wait_until([&] { return is_ok(a.call("HealthCheckRequest", json::object()),
                                        "HealthCheckResponse"); },
                     5s));

  auto reg = a.call("InstanceRequest",
                    instance_request("demo", "registerInstance", "10.0.0.1", 8080,
                                     json{{"metadata", {{"version", "1.0"}}}}));
  REQUIRE(is_ok(reg, "InstanceResponse"));
  CHECK(reg.body["type"] == "registerInstance");
  auto q = a.call("ServiceQueryRequest", query_body("demo"));
  REQUIRE(is_ok(q, "QueryServiceResponse"));
  CHECK(hosts_of(q) == std::vector<std::string>{"10.0.0.1:8080"});
  auto& info = q.body["serviceInfo"];
  CHECK(info["name"] == "demo");
  CHECK(info["groupName"] == "DEFAULT_GROUP");
  CHECK(info["hosts"][0]["metadata"]["version"] == "1.0");
  CHECK(info["hosts"][0]["serviceName"] == "DEFAULT_GROUP@@demo");
  // registryctl sees the same instance.
  auto hosts = node.hosts("demo");
  REQUIRE(hosts.is_array());
  CHECK(host_set(hosts) == std::vector<std::string>{"10.0.0.1:8080"});

  // Re-registering another instance replaces the connection's one in that service (Nacos).
  REQUIRE(is_ok(a.call("InstanceRequest",
                       instance_request("demo", "registerInstance", "10.0.0.1", 8081)),
                "InstanceResponse"));
  CHECK(hosts_of(a.call("ServiceQueryRequest", query_body("demo")))
        == std::vector<std::string>{"10.0.0.1:8081"});

  // Subscribe from a second connection; a change made by the first is pushed to it.
  nacos_grpc_connection b{address};
  REQUIRE(b.connect());
  auto sub = b.call("SubscribeServiceRequest", subscribe_body("demo", true));
  REQUIRE(is_ok(sub, "SubscribeServiceResponse"));
  CHECK(hosts_of(sub) == std::vector<std::string>{"10.0.0.1:8081"});
  auto sub_ref = sub.body["serviceInfo"]["lastRefTime"].get<std::int64_t>();
  REQUIRE(is_ok(a.call("BatchInstanceRequest",
                       json{{"namespace", "public"}, {"serviceName", "demo"},
                            {"groupName", "DEFAULT_GROUP"}, {"type", "batchRegisterInstance"},
                            {"instances", json::array({
                                            instance_request("", "", "10.0.0.2", 1)["instance"],
                                            instance_request("", "", "10.0.0.3", 1)["instance"]})}}),
                "BatchInstanceResponse"));
  // The batch replaces the connection's instance in one change: the subscriber is pushed the new
  // set and never a mix of old and new.
  std::set<std::vector<std::string>> pushed;
  auto push = b.wait_for(
    [&](auto& m) {
      if (m.type != "NotifySubscriberRequest")
        return false;
      pushed.insert(hosts_of(m));
      return hosts_of(m) == std::vector<std::string>{"10.0.0.2:1", "10.0.0.3:1"};
    },
    10s);
  REQUIRE(push.type == "NotifySubscriberRequest");
  CHECK(pushed.size() == 1);
  CHECK(push.body["requestId"].is_string());
  CHECK(push.body["headers"].is_object());
  CHECK(push.body["serviceInfo"]["lastRefTime"].get<std::int64_t>() > sub_ref);
  CHECK(push.body["serviceInfo"]["name"] == "demo");
  // The client acknowledged it (the test client answers NotifySubscriberResponse): /metrics
  // counts the push as acked.
  CHECK(wait_until([&] {
    auto text = node.metrics();
    return text.find("registry_pushes_total{result=\"acked\",transport=\"grpc\"}")
           != std::string::npos;
  }, 5s));

  // The service list pages bare names.
  REQUIRE(is_ok(a.call("InstanceRequest", instance_request("other", "registerInstance",
                                                           "10.0.0.9", 9)),
                "InstanceResponse"));
  auto list = a.call("ServiceListRequest", json{{"namespace", "public"}, {"groupName", "DEFAULT_GROUP"},
                                                {"pageNo", 1}, {"pageSize", 10}});
  REQUIRE(is_ok(list, "ServiceListResponse"));
  CHECK(list.body["count"] == 2);
  CHECK(list.body["serviceNames"] == json::array({"demo", "other"}));

  // Deregister: the connection's instances of the service go, whatever ip/port is named.
  auto dereg = a.call("InstanceRequest",
                      instance_request("demo", "deregisterInstance", "10.0.0.2", 1));
  REQUIRE(is_ok(dereg, "InstanceResponse"));
  CHECK(dereg.body["type"] == "deregisterInstance");
  CHECK(hosts_of(a.call("ServiceQueryRequest", query_body("demo"))).empty());
  // An unsubscribe still answers the ServiceInfo.
  CHECK(is_ok(b.call("SubscribeServiceRequest", subscribe_body("demo", false)),
              "SubscribeServiceResponse"));
  node.stop();
}

TEST_CASE("grpc: malformed payloads get error codes and change nothing") {
  test_node node{grpc_node_yaml};
  REQUIRE(node.start());
  REQUIRE(node.wait_ready(10s));
  nacos_grpc_connection a{grpc_address(node)};
  REQUIRE(a.connect());
  CHECK(error_code(a.call_raw("NoSuchRequest", "{}")) == 302);
  CHECK(error_code(a.call_raw("InstanceRequest", "{not json")) == 502);
  CHECK(error_code(a.call_raw("InstanceRequest", "[]")) == 502);
  auto wrong = a.call("InstanceRequest",
                      instance_request("demo", "registerInstance", "10.0.0.1", 8080,
                                       json{{"port", "8080"}}));
  CHECK(error_code(wrong) == 400);
  CHECK(wrong.body["message"].get<std::string>().find("instance.port") != std::string::npos);
  CHECK(wrong.body["resultCode"] != 200);
  CHECK(wrong.body["success"] == false);
  auto missing = a.call("InstanceRequest", json{{"serviceName", "demo"}, {"type", "registerInstance"}});
  CHECK(error_code(missing) == 400);
  CHECK(missing.body["message"].get<std::string>().find("instance") != std::string::npos);
  auto bad_name = a.call("InstanceRequest", instance_request("bad@@name", "registerInstance",
                                                             "10.0.0.1", 1));
  CHECK(error_code(bad_name) == 400);
  // A payload above the 10 MiB limit is refused by gRPC itself; the connection keeps working.
  auto huge = a.call_raw("InstanceRequest", std::string(11 << 20, 'x'), 20s);
  CHECK(huge.type.empty());
  // Stream-only messages are refused in unary calls.
  CHECK(error_code(a.call("ConnectionSetupRequest", json::object())) == 400);
  CHECK(is_ok(a.call("HealthCheckRequest", json::object()), "HealthCheckResponse"));
  // Nothing changed.
  auto hosts = node.hosts("demo");
  CHECK((hosts.is_null() || hosts.empty()));
  CHECK(node.process().running());
  node.stop();
}

TEST_CASE("grpc: a closed connection's instances go, and subscribers are told") {
  test_node node{grpc_node_yaml};
  REQUIRE(node.start());
  REQUIRE(node.wait_ready(10s));
  auto address = grpc_address(node);
  nacos_grpc_connection watcher{address};
  REQUIRE(watcher.connect());
  REQUIRE(is_ok(watcher.call("SubscribeServiceRequest", subscribe_body("svc", true)),
                "SubscribeServiceResponse"));
  {
    nacos_grpc_connection a{address};
    REQUIRE(a.connect());
    REQUIRE(is_ok(a.call("InstanceRequest",
                         instance_request("svc", "registerInstance", "10.1.0.1", 80)),
                  "InstanceResponse"));
    REQUIRE(watcher.wait_for([](auto& m) {
      return m.type == "NotifySubscriberRequest" && hosts_of(m).size() == 1;
    }, 10s).type == "NotifySubscriberRequest");
    a.close();
  }
  auto gone = watcher.wait_for(
    [](auto& m) { return m.type == "NotifySubscriberRequest" && hosts_of(m).empty(); }, 10s);
  CHECK(gone.type == "NotifySubscriberRequest");
  CHECK(wait_until([&] { auto h = node.hosts("svc"); return h.is_array() && h.empty(); }, 5s));
  node.stop();
}

TEST_CASE("grpc: an idle connection that does not answer detection is closed") {
  test_node node{grpc_node_yaml + "grpc:\n  idle_timeout_ms: 300\n  detection_timeout_ms: 300\n"};
  REQUIRE(node.start());
  REQUIRE(node.wait_ready(10s));
  auto address = grpc_address(node);
  // One answers probes and stays; the other does not and is closed, its instance removed.
  nacos_grpc_connection alive{address};
  REQUIRE(alive.connect());
  nacos_grpc_connection mute{address};
  REQUIRE(wait_until([&] {
    return mute.call("ServerCheckRequest", json::object()).type == "ServerCheckResponse";
  }, 5s));
  REQUIRE(mute.open_stream(false, true, false));
  REQUIRE(wait_until([&] { return is_ok(mute.call("HealthCheckRequest", json::object()),
                                        "HealthCheckResponse"); }, 5s));
  REQUIRE(is_ok(mute.call("InstanceRequest",
                          instance_request("idle", "registerInstance", "10.2.0.1", 1)),
                "InstanceResponse"));
  auto probe = mute.wait_for([](auto& m) { return m.type == "ClientDetectionRequest"; }, 5s);
  REQUIRE(probe.type == "ClientDetectionRequest");
  CHECK(probe.body["requestId"].is_string());
  CHECK(wait_until([&] { return mute.stream_ended(); }, 5s));
  CHECK(wait_until([&] { auto h = node.hosts("idle"); return h.is_array() && h.empty(); }, 5s));
  CHECK(error_code(mute.call("HealthCheckRequest", json::object())) == 301);
  // The one that answers was probed too, and is still registered.
  CHECK(alive.wait_for([](auto& m) { return m.type == "ClientDetectionRequest"; }, 5s).type
        == "ClientDetectionRequest");
  CHECK(is_ok(alive.call("HealthCheckRequest", json::object()), "HealthCheckResponse"));
  CHECK_FALSE(alive.stream_ended());
  node.stop();
}

TEST_CASE("grpc: a stopping node tells its clients to reconnect elsewhere") {
  test_node node{grpc_node_yaml};
  REQUIRE(node.start());
  REQUIRE(node.wait_ready(10s));
  nacos_grpc_connection a{grpc_address(node)};
  REQUIRE(a.connect());
  std::thread stopper([&] { node.stop(); });
  auto reset = a.wait_for([](auto& m) { return m.type == "ConnectResetRequest"; }, 10s);
  stopper.join();
  CHECK(reset.type == "ConnectResetRequest");
  CHECK(reset.body["requestId"].is_string());
}

TEST_CASE("grpc: 5000 concurrent connections on one node, each a session") {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  REQUIRE(lim.rlim_cur >= 6000);
  // These connections do not read their streams: no idle probe may close them during the test.
  test_node node{grpc_node_yaml + "grpc:\n  idle_timeout_ms: 3600000\n"};
  REQUIRE(node.start());
  REQUIRE(node.wait_ready(10s));
  auto address = grpc_address(node);
  constexpr int connections = 5000;
  std::vector<std::unique_ptr<nacos_grpc_connection>> conns;
  conns.reserve(connections);
  int registered = 0;
  std::string first_failure;
  for (int i = 0; i < connections; ++i) {
    auto c = std::make_unique<nacos_grpc_connection>(address);
    if (!wait_until([&] {
          return c->call("ServerCheckRequest", json::object()).type == "ServerCheckResponse";
        }, 5s))
      break;
    if (!c->open_stream(false, false))
      break;
    grpc_message r;
    // The setup is registered asynchronously to this client: retry a 301 as SDKs do, until the
    // node has taken the setup (a bounded wait: on a loaded machine it may take a while).
    wait_until([&] {
      r = c->call("InstanceRequest", instance_request("many", "registerInstance",
                                                      "10.3." + std::to_string(i / 250) + "."
                                                        + std::to_string(i % 250),
                                                      1000));
      return error_code(r) != 301;
    }, 10s);
    if (is_ok(r, "InstanceResponse"))
      ++registered;
    else if (first_failure.empty())
      first_failure = "connection " + std::to_string(i) + ": " + r.type + " " + r.body.dump();
    conns.push_back(std::move(c));
  }
  INFO("first failed registration: ", first_failure);
  CHECK(registered == connections);
  auto st = node.ctl_json({"status"});
  REQUIRE(st.is_object());
  CHECK(st["instances"].get<int>() == connections);
  CHECK(st["clients"].get<int>() >= connections);
  auto hosts = node.hosts("many");
  REQUIRE(hosts.is_array());
  CHECK(hosts.size() == static_cast<std::size_t>(connections));
  // Closing every connection removes every instance.
  conns.clear();
  CHECK(wait_until([&] {
    auto s = node.ctl_json({"status"});
    return s.is_object() && s["instances"].get<int>() == 0;
  }, 60s));
  CHECK(node.process().running());
  node.stop();
}

TEST_CASE("grpc: with auth on, naming requests need the accessToken header") {
  auto users = make_temp_dir();
  auto line = run({"/bin/sh", "-c", "printf wonderland | " + registryd_path() + " --hash-password alice"}, 20s);
  REQUIRE(line.code == 0);
  write_file(users + "/users", line.out);
  test_node node{grpc_node_yaml + "auth:\n  enabled: true\n  secret: 0123456789abcdef0123456789abcdef\n"
                 + "  users_file: " + users + "/users\n"};
  REQUIRE(node.start());
  REQUIRE(node.wait_ready(10s));
  nacos_grpc_connection a{grpc_address(node)};
  // The handshake and keep-alive need no token, as in Nacos.
  REQUIRE(a.connect());
  auto reg = instance_request("secured", "registerInstance", "10.4.0.1", 1);
  auto none = a.call("InstanceRequest", reg);
  CHECK(error_code(none) == 403);
  CHECK(error_code(a.call("InstanceRequest", reg, {{"accessToken", "forged.token"}})) == 403);
  CHECK(error_code(a.call("ServiceQueryRequest", query_body("secured"))) == 403);
  // A token from the HTTP login, as the SDKs get it.
  auto login = run({"/usr/bin/curl", "-s", "-X", "POST",
                    "http://" + node.http_address() + "/nacos/v1/auth/login?username=alice&password=wonderland"},
                   10s);
  auto token = json::parse(login.out, nullptr, false).value("accessToken", "");
  REQUIRE(!token.empty());
  CHECK(is_ok(a.call("InstanceRequest", reg, {{"accessToken", token}}), "InstanceResponse"));
  CHECK(hosts_of(a.call("ServiceQueryRequest", query_body("secured"), {{"accessToken", token}}))
        == std::vector<std::string>{"10.4.0.1:1"});
  // Refusals changed nothing; /metrics counts the gRPC requests and the open connection.
  auto metrics = node.metrics();
  CHECK(metrics.find("registry_grpc_connections 1") != std::string::npos);
  CHECK(metrics.find("registry_grpc_requests_total{result=\"error\",type=\"InstanceRequest\"} 2")
        != std::string::npos);
  CHECK(metrics.find("registry_grpc_requests_total{result=\"ok\",type=\"InstanceRequest\"} 1")
        != std::string::npos);
  node.stop();
  remove_tree(users);
}

TEST_CASE("grpc: PersistentInstanceRequest goes through Raft and outlives its connection") {
  test_node node{grpc_node_yaml + "data_dir: data\nraft:\n  election_timeout_ms: 300\n"
                 "  heartbeat_interval_ms: 50\nhealth_check:\n  interval_min_ms: 100\n"
                 "  interval_max_ms: 300\n  timeout_ms: 100\n"};
  REQUIRE(node.start());
  REQUIRE(node.wait_ready(10s));
  // A leader exists before the write (a lone member elects itself).
  REQUIRE(wait_until([&] { return node.ctl_json({"status"}).value("raftRole", "") == "leader"; },
                     10s));
  auto body = [](const std::string& type) {
    auto b = instance_request("db", type, "10.5.0.1", 3306, json{{"ephemeral", false}});
    return b;
  };
  {
    nacos_grpc_connection a{grpc_address(node)};
    REQUIRE(a.connect(true));
    // SetupAck says persistent instances go over gRPC on this node.
    auto ack = a.wait_for([](auto& m) { return m.type == "SetupAckRequest"; }, 5s);
    CHECK(ack.body["abilityTable"]["supportPersistentInstanceByGrpc"] == true);
    auto reg = a.call("PersistentInstanceRequest", body("registerInstance"));
    REQUIRE(is_ok(reg, "InstanceResponse"));
    // An ephemeral register into the persistent service is refused, as Nacos refuses it.
    CHECK(error_code(a.call("InstanceRequest",
                            instance_request("db", "registerInstance", "10.5.0.2", 3306)))
          == 400);
    a.close();
  }
  // The connection is gone; the persistent instance stays (ephemeral=false).
  nacos_grpc_connection b{grpc_address(node)};
  REQUIRE(b.connect());
  auto q = b.call("ServiceQueryRequest", query_body("db"));
  REQUIRE(is_ok(q, "QueryServiceResponse"));
  REQUIRE(hosts_of(q) == std::vector<std::string>{"10.5.0.1:3306"});
  CHECK(q.body["serviceInfo"]["hosts"][0]["ephemeral"] == false);
  REQUIRE(is_ok(b.call("PersistentInstanceRequest", body("deregisterInstance")), "InstanceResponse"));
  CHECK(hosts_of(b.call("ServiceQueryRequest", query_body("db"))).empty());
  node.stop();
}
