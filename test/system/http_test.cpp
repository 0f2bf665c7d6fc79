// The HTTP Open API against a real node: every route's happy path and its bad parameters (status
// code, Nacos's text, and that nothing changed), and hostile HTTP (oversized headers and bodies,
// slowloris, 10k idle connections, garbage bytes) while other clients keep being served.

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <csignal>
#include <map>

#include <nlohmann/json.hpp>

#include "test/support/node_fixture.hpp"

using namespace registry::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

struct http_reply {
  int status = 0; ///< 0: no answer (connection closed or refused)
  std::string body;
};

/// A connected loopback TCP socket to "127.0.0.1:PORT" (-1 on failure).
int connect_to(const std::string& address) {
  auto colon = address.rfind(':');
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    auto n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0)
      return;
    off += static_cast<std::size_t>(n);
  }
}

/// Reads until the peer closes or `timeout` passes; returns what came.
std::string read_until_close(int fd, std::chrono::milliseconds timeout) {
  std::string result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[8192];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      break;
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    result.append(buf, static_cast<std::size_t>(n));
  }
  return result;
}

http_reply parse_reply(const std::string& raw) {
  http_reply r;
  if (raw.rfind("HTTP/1.1 ", 0) != 0)
    return r;
  r.status = std::stoi(raw.substr(9, 3));
  auto end = raw.find("\r\n\r\n");
  if (end != std::string::npos)
    r.body = raw.substr(end + 4);
  return r;
}

/// One request on its own connection (Connection: close).
http_reply call(const std::string& address, const std::string& method, const std::string& target,
                const std::string& body = "", const std::string& headers = "") {
  int fd = connect_to(address);
  if (fd < 0)
    return {};
  send_all(fd, method + " " + target + " HTTP/1.1\r\nHost: " + address
                 + "\r\nConnection: close\r\n" + headers
                 + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  auto raw = read_until_close(fd, 10s);
  ::close(fd);
  return parse_reply(raw);
}

/// The hosts of `service` (grouped name) as "ip:port" strings, through the HTTP list.
std::vector<std::string> hosts(const std::string& http, const std::string& query) {
  auto r = call(http, "GET", "/nacos/v1/ns/instance/list?" + query);
  if (r.status != 200)
    return {"error " + std::to_string(r.status)};
  return host_set(json::parse(r.body)["hosts"]);
}

struct bad_case {
  const char* method;
  const char* target;
  int status;
  const char* text;
};

} // namespace

TEST_CASE("http: every route's happy path") {
  test_node node{"distro:\n  lone_ready_wait_ms: 0\n"};
  REQUIRE(node.start());
  auto http = node.http_address();
  auto reg = call(http, "POST", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.1&port=8080"
                                "&metadata=%7B%22zone%22%3A%22z1%22%7D&weight=2");
  CHECK(reg.status == 200);
  CHECK(reg.body == "ok");
  // A form body works as well as the query string.
  auto form = call(http, "POST", "/nacos/v1/ns/instance", "serviceName=orders&ip=10.0.0.2&port=8080",
                   "Content-Type: application/x-www-form-urlencoded\r\n");
  CHECK(form.status == 200);
  CHECK(hosts(http, "serviceName=orders") == std::vector<std::string>{"10.0.0.1:8080", "10.0.0.2:8080"});

  auto list = call(http, "GET", "/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP%40%40orders&clusters=");
  REQUIRE(list.status == 200);
  auto info = json::parse(list.body);
  CHECK(info["name"] == "DEFAULT_GROUP@@orders");
  CHECK(info["dom"] == "DEFAULT_GROUP@@orders");
  CHECK(info["clusters"] == "");
  CHECK(info["hosts"][0]["port"] == 8080);
  CHECK(info["hosts"][0]["healthy"] == true);

  auto one = call(http, "GET", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.1&port=8080");
  REQUIRE(one.status == 200);
  CHECK(json::parse(one.body)["metadata"]["zone"] == "z1");
  CHECK(json::parse(one.body)["weight"] == 2.0);

  auto upd = call(http, "PUT", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.1&port=8080&weight=3");
  CHECK(upd.status == 200);
  CHECK(json::parse(call(http, "GET", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.1&port=8080").body)["weight"] == 3.0);

  auto beat = call(http, "PUT", "/nacos/v1/ns/instance/beat?serviceName=DEFAULT_GROUP%40%40orders"
                                "&beat=%7B%22ip%22%3A%2210.0.0.3%22%2C%22port%22%3A8080%2C%22scheduled%22%3Atrue%7D");
  REQUIRE(beat.status == 200);
  CHECK(json::parse(beat.body)["clientBeatInterval"] == 5000);
  CHECK(json::parse(beat.body)["code"] == 10200);
  CHECK(json::parse(beat.body)["lightBeatEnabled"] == true);
  CHECK(hosts(http, "serviceName=orders").size() == 3); // the beat re-created a missing instance

  auto services = call(http, "GET", "/nacos/v1/ns/service/list?pageNo=1&pageSize=10");
  REQUIRE(services.status == 200);
  CHECK(json::parse(services.body) == json{{"count", 1}, {"doms", {"orders"}}});
  auto metrics = call(http, "GET", "/nacos/v1/ns/operator/metrics");
  CHECK(json::parse(metrics.body)["status"] == "UP");
  CHECK(json::parse(call(http, "GET", "/nacos/v1/ns/ops/metrics?onlyStatus=true").body) == json{{"status", "UP"}});
  CHECK(call(http, "GET", "/nacos/v1/console/health/liveness").body == "OK");
  CHECK(call(http, "GET", "/nacos/v1/console/health/readiness").body == "OK");

  // v2: the same, wrapped.
  auto v2 = call(http, "POST", "/nacos/v2/ns/instance?serviceName=pay&ip=10.0.1.1&port=9000");
  CHECK(v2.status == 200);
  CHECK(json::parse(v2.body) == json{{"code", 0}, {"message", "success"}, {"data", "ok"}});
  auto v2list = json::parse(call(http, "GET", "/nacos/v2/ns/instance/list?serviceName=pay").body);
  CHECK(v2list["code"] == 0);
  CHECK(v2list["data"]["hosts"][0]["ip"] == "10.0.1.1");
  auto v2services = json::parse(call(http, "GET", "/nacos/v2/ns/service/list").body);
  CHECK(v2services["data"]["count"] == 2);
  auto v2beat = json::parse(call(http, "PUT", "/nacos/v2/ns/instance/beat?serviceName=pay&ip=10.0.1.1&port=9000").body);
  CHECK(v2beat["data"]["clientBeatInterval"] == 5000);

  // Services, the catalog, switches and the cluster.
  auto svc = call(http, "GET", "/nacos/v1/ns/service?serviceName=orders");
  REQUIRE(svc.status == 200);
  CHECK(json::parse(svc.body)["name"] == "orders");
  CHECK(json::parse(svc.body)["clusters"][0]["name"] == "DEFAULT");
  CHECK(json::parse(call(http, "GET", "/nacos/v2/ns/service?serviceName=orders").body)["data"]["serviceName"] == "orders");
  CHECK(call(http, "GET", "/nacos/v1/ns/service?serviceName=nope").status == 404);
  auto not_empty = call(http, "DELETE", "/nacos/v1/ns/service?serviceName=orders");
  CHECK(not_empty.status == 400);
  CHECK(not_empty.body.find("is not empty, can't be delete") != std::string::npos);
  // Thresholds are written through Raft: a node without data_dir refuses them, saying why.
  auto create = call(http, "POST", "/nacos/v1/ns/service?serviceName=newsvc&protectThreshold=0.5");
  CHECK(create.status == 400);
  CHECK(create.body.find("no data_dir") != std::string::npos);
  auto catalog = json::parse(call(http, "GET", "/nacos/v1/ns/catalog/services?pageNo=1&pageSize=10").body);
  CHECK(catalog["count"] == 2);
  CHECK(catalog["serviceList"].size() == 2);
  auto switches = json::parse(call(http, "GET", "/nacos/v1/ns/operator/switches").body);
  CHECK(switches["pushEnabled"] == true);
  CHECK(switches["clientBeatInterval"] == 5000);
  auto nodes = json::parse(call(http, "GET", "/nacos/v1/core/cluster/nodes").body);
  CHECK(nodes["code"] == 200);
  CHECK(nodes["data"][0]["state"] == "UP");
  CHECK(nodes["data"][0]["address"] == node.address());

  auto del = call(http, "DELETE", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.1&port=8080");
  CHECK(del.body == "ok");
  CHECK(call(http, "DELETE", "/nacos/v2/ns/instance?serviceName=pay&ip=10.0.1.1&port=9000").status == 200);
  CHECK(hosts(http, "serviceName=orders") == std::vector<std::string>{"10.0.0.2:8080", "10.0.0.3:8080"});
  CHECK(hosts(http, "serviceName=pay").empty());
  // An unknown service: 200 with no hosts.
  CHECK(hosts(http, "serviceName=nothing-here").empty());
  node.stop();
}

TEST_CASE("http: bad parameters are refused with Nacos's texts and change nothing") {
  test_node node{"distro:\n  lone_ready_wait_ms: 0\n"};
  REQUIRE(node.start());
  auto http = node.http_address();
  REQUIRE(call(http, "POST", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.1&port=8080").status == 200);
  auto before = hosts(http, "serviceName=orders");
  auto long_name = std::string(600, 'a');
  const bad_case cases[] = {
    // missing
    {"POST", "/nacos/v1/ns/instance?ip=10.0.0.9&port=1", 400, "Parameter 'serviceName' is missing"},
    {"POST", "/nacos/v1/ns/instance?serviceName=orders&port=1", 400, "Parameter 'ip' is missing"},
    {"POST", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.9", 400, "Parameter 'port' is missing"},
    {"DELETE", "/nacos/v1/ns/instance?serviceName=orders&port=8080", 400, "Parameter 'ip' is missing"},
    {"GET", "/nacos/v1/ns/instance/list", 400, "Parameter 'serviceName' is missing"},
    {"GET", "/nacos/v1/ns/service/list?pageSize=10", 400, "Parameter 'pageNo' is missing"},
    {"PUT", "/nacos/v1/ns/instance/beat?serviceName=orders", 400, "Parameter 'ip' is missing"},
    // wrong type
    {"POST", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.9&port=http", 400,
     "Param 'port' is illegal, expected an integer, got 'http'."},
    {"POST", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.9&port=1&weight=heavy", 400,
     "Param 'weight' is illegal, expected a number"},
    {"POST", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.9&port=1&healthy=maybe", 400,
     "Param 'healthy' is illegal"},
    {"POST", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.9&port=1&metadata=%7Bbroken", 400,
     "metadata format incorrect:{broken"},
    // bytes that are not UTF-8, echoed in a v2 JSON error (once crashed the JSON writer)
    {"POST", "/nacos/v2/ns/instance?serviceName=orders&ip=10.0.%D9.9&port=1", 400, "ip"},
    {"PUT", "/nacos/v1/ns/instance/beat?serviceName=orders&beat=%5B1%5D", 400, "Param 'beat' is illegal"},
    {"GET", "/nacos/v1/ns/instance/list?serviceName=orders&udpPort=x", 400, "Param 'udpPort' is illegal"},
    // over the limit
    {"POST", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.9&port=70000", 400,
     "Param 'port' is illegal, the value should be between 1 and 65535."},
    {"POST", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.9&port=1&weight=10001", 400,
     "weight"},
    {"GET", "/nacos/v1/ns/service/list?pageNo=1&pageSize=501", 400, "Param 'pageSize' is illegal"},
    // names, namespaces, clusters
    {"POST", "/nacos/v1/ns/instance?serviceName=@@x&ip=10.0.0.9&port=1", 400, "groupName can't be empty"},
    {"POST", "/nacos/v1/ns/instance?serviceName=a@@b@@c&ip=10.0.0.9&port=1", 400,
     "it should be format as 'groupName@@serviceName'"},
    {"POST", "/nacos/v1/ns/instance?namespaceId=bad%20ns&serviceName=orders&ip=10.0.0.9&port=1", 400,
     "Param 'namespaceId' is illegal"},
    {"GET", "/nacos/v1/ns/instance/list?namespaceId=no%2Fsuch&serviceName=orders", 400,
     "Param 'namespaceId' is illegal"},
    {"POST", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.9&port=1&clusterName=a%20b", 400,
     "illegal"},
    // A node without data_dir has no Raft: persistent instances are refused, saying why.
    {"POST", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.9&port=1&ephemeral=false", 400,
     "persistent instances are off"},
    // routes
    {"GET", "/nacos/v1/ns/service", 400, "Parameter 'serviceName' is missing"},
    {"GET", "/nacos/v1/ns/catalog/services?pageSize=0", 400, "Param 'pageSize' is illegal"},
    {"DELETE", "/nacos/v1/ns/service?serviceName=a@@b@@c", 400, "it should be format as"},
    {"GET", "/nacos/v1/ns/nothing", 404, "no such API"},
    {"PATCH", "/nacos/v1/ns/instance/list?serviceName=orders", 405, "not supported"},
  };
  for (auto& c : cases) {
    auto r = call(http, c.method, c.target);
    INFO(c.method << " " << c.target << " -> " << r.status << " " << r.body);
    CHECK(r.status == c.status);
    CHECK(r.body.find(c.text) != std::string::npos);
  }
  auto too_long = call(http, "POST", "/nacos/v1/ns/instance?serviceName=" + long_name + "&ip=10.0.0.9&port=1");
  CHECK(too_long.status == 400);
  CHECK(too_long.body.find("should not exceed 512") != std::string::npos);
  // v2 answers the same refusals as {"code","message","data"}.
  auto v2 = call(http, "POST", "/nacos/v2/ns/instance?serviceName=orders&port=1");
  CHECK(v2.status == 400);
  CHECK(json::parse(v2.body) == json{{"code", 10000}, {"message", "parameter missing"},
                                     {"data", "Parameter 'ip' is missing"}});
  // An unknown (valid) namespace holds nothing.
  CHECK(hosts(http, "namespaceId=ns-unknown&serviceName=orders").empty());
  // Nothing changed.
  CHECK(hosts(http, "serviceName=orders") == before);
  auto st = node.ctl_json({"status"});
  CHECK(st["instances"] == 1);
  CHECK(st["services"] == 1);
  node.stop();
}

TEST_CASE("http: hostile clients do not stop the node from serving others") {
  // Raise this process's descriptor limit for the 10k idle connections.
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
  test_node node{"distro:\n  lone_ready_wait_ms: 0\nhttp:\n  listen: 127.0.0.1:0\n"
                 "  request_timeout_ms: 500\n  header_bytes_max: 4096\n  body_bytes_max: 4096\n"};
  REQUIRE(node.start());
  auto http = node.http_address();
  auto healthy = [&] { return call(http, "GET", "/nacos/v1/console/health/liveness").body == "OK"; };

  // Oversized headers and body.
  auto big_header = call(http, "GET", "/nacos/v1/console/health/liveness", "",
                         "X-Big: " + std::string(8000, 'x') + "\r\n");
  CHECK(big_header.status == 431);
  auto big_body = call(http, "POST", "/nacos/v1/ns/instance", std::string(8000, 'a'),
                       "Content-Type: application/x-www-form-urlencoded\r\n");
  CHECK(big_body.status == 413);
  CHECK(healthy());

  // Garbage bytes: a 400 or a closed connection, never a crash.
  int garbage = connect_to(http);
  REQUIRE(garbage >= 0);
  std::string junk;
  for (int i = 0; i < 2000; ++i)
    junk.push_back(static_cast<char>((i * 7919) & 0xff));
  send_all(garbage, junk);
  auto answer = parse_reply(read_until_close(garbage, 3s));
  CHECK((answer.status == 400 || answer.status == 0));
  ::close(garbage);
  CHECK(healthy());

  // Slowloris: a request that never completes is cut after request_timeout_ms, and others are
  // served meanwhile.
  int slow = connect_to(http);
  REQUIRE(slow >= 0);
  send_all(slow, "GET /nacos/v1/console/health/liveness HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  CHECK(healthy());
  auto t0 = std::chrono::steady_clock::now();
  auto slow_answer = read_until_close(slow, 5s);
  auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(slow_answer.empty());
  CHECK(waited < 3s); // closed by the node, not by our 5 s read limit
  ::close(slow);

  // 10k idle keep-alive connections: the node keeps serving.
  std::vector<int> idle;
  for (int i = 0; i < 10000; ++i) {
    int fd = connect_to(http);
    if (fd < 0)
      break;
    idle.push_back(fd);
  }
  CHECK(idle.size() == 10000);
  CHECK(wait_until(healthy, 10s));
  auto reg = call(http, "POST", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.1&port=8080");
  CHECK(reg.status == 200);
  for (int fd : idle)
    ::close(fd);
  CHECK(node.process().running());
  CHECK(wait_until(healthy, 10s));
  node.stop();
}

namespace {

/// Parses the Prometheus text format strictly enough for a test: every line is a comment
/// (# HELP / # TYPE) or `name{labels} value`; returns sample -> value, empty on a bad line.
std::map<std::string, double> parse_prometheus(const std::string& text, std::string& problem) {
  std::map<std::string, double> samples;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    auto line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    start = end == std::string::npos ? text.size() : end + 1;
    if (line.empty())
      continue;
    if (line[0] == '#') {
      if (line.rfind("# HELP ", 0) != 0 && line.rfind("# TYPE ", 0) != 0) {
        problem = "bad comment: " + line;
        return {};
      }
      continue;
    }
    auto space = line.rfind(' ');
    if (space == std::string::npos || space == 0) {
      problem = "no value: " + line;
      return {};
    }
    auto name = line.substr(0, space);
    auto brace = name.find('{');
    auto bare = name.substr(0, brace);
    for (char c : bare)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':')) {
        problem = "bad name: " + line;
        return {};
      }
    if (brace != std::string::npos && name.back() != '}') {
      problem = "bad labels: " + line;
      return {};
    }
    try {
      samples[name] = std::stod(line.substr(space + 1));
    } catch (...) {
      problem = "bad value: " + line;
      return {};
    }
  }
  return samples;
}

} // namespace

TEST_CASE("http: /metrics parses as Prometheus text and its counters move with the traffic") {
  test_node node{"distro:\n  lone_ready_wait_ms: 0\n"};
  REQUIRE(node.start());
  auto http = node.http_address();
  auto scrape = [&] {
    auto r = call(http, "GET", "/metrics");
    REQUIRE(r.status == 200);
    std::string problem;
    auto samples = parse_prometheus(r.body, problem);
    INFO(problem);
    REQUIRE(problem.empty());
    return samples;
  };
  const std::string reg = "registry_http_requests_total{code=\"200\",route=\"POST /nacos/v1/ns/instance\"}";
  const std::string op = "registry_operations_total{op=\"register\"}";
  auto before = scrape();
  CHECK(before["registry_instances"] == 0);
  CHECK(before[op] == 0);
  for (int i = 1; i <= 3; ++i)
    REQUIRE(call(http, "POST", "/nacos/v1/ns/instance?serviceName=m&ip=10.0.0.1&port=" + std::to_string(i)).status == 200);
  REQUIRE(call(http, "POST", "/nacos/v1/ns/instance?serviceName=m&ip=10.0.0.1").status == 400);
  CHECK(hosts(http, "serviceName=m").size() == 3);
  auto after = scrape();
  CHECK(after[reg] == 3);
  CHECK(after[op] == 3);
  CHECK(after["registry_http_requests_total{code=\"400\",route=\"POST /nacos/v1/ns/instance\"}"] == 1);
  CHECK(after["registry_operations_total{op=\"query\"}"] >= 1);
  CHECK(after["registry_http_request_duration_seconds_count{route=\"POST /nacos/v1/ns/instance\"}"] == 4);
  CHECK(after["registry_instances"] == 3);
  CHECK(after["registry_services"] == 1);
  CHECK(after["registry_members{state=\"SELF\"}"] == 1);
  node.stop();
}

TEST_CASE("http: /metrics and status count Distro syncs and verifies per peer") {
  std::vector<int> ports{free_port(), free_port()};
  std::vector<std::unique_ptr<test_node>> nodes;
  for (auto p : ports)
    nodes.push_back(std::make_unique<test_node>(
      p, ports, "distro:\n  verify_interval_ms: 300\n  lone_ready_wait_ms: 1000\n"));
  for (auto& n : nodes)
    n->launch();
  for (auto& n : nodes)
    REQUIRE(n->wait_ready(20s));
  auto& a = *nodes[0];
  auto peer = nodes[1]->address();
  auto counter = [&](const std::string& name) {
    auto r = call(a.http_address(), "GET", "/metrics");
    std::string problem;
    auto samples = parse_prometheus(r.body, problem);
    return r.status == 200 && problem.empty() ? samples[name] : -1.0;
  };
  const std::string syncs_ok = "registry_distro_syncs_total{peer=\"" + peer + "\",result=\"ok\"}";
  const std::string verifies_ok = "registry_distro_verifies_total{peer=\"" + peer + "\",result=\"ok\"}";
  const std::string verifies_in = "registry_distro_received_total{kind=\"verify\",peer=\"" + peer + "\"}";
  // Verifies run on their own; a registration at node 0 is synced to node 1.
  REQUIRE(wait_until([&] { return counter(verifies_ok) >= 1 && counter(verifies_in) >= 1; }, 10s));
  auto before = counter(syncs_ok);
  auto held = a.start_ctl({"register", "orders", "10.0.0.1:8080", "--hold"}, "held");
  REQUIRE(wait_until([&] { return nodes[1]->ctl_json({"status"})["instances"] == 1; }, 10s));
  CHECK(wait_until([&] { return counter(syncs_ok) > before; }, 5s));
  // The same counters in status.
  auto st = a.ctl_json({"status"});
  REQUIRE(st["distroPeers"].is_array());
  REQUIRE(st["distroPeers"].size() == 1);
  CHECK(st["distroPeers"][0]["peer"] == peer);
  CHECK(st["distroPeers"][0]["syncsOk"].get<double>() >= 1);
  CHECK(st["distroPeers"][0]["verifiesOk"].get<double>() >= 1);
  held.signal(SIGTERM);
  held.wait(10s);
  for (auto& n : nodes)
    n->stop();
}

TEST_CASE("http: auth refuses no token, a bad and an expired token, and takes a good one") {
  auto users = make_temp_dir();
  // The password comes from stdin.
  auto line = run({"/bin/sh", "-c", "printf wonderland | " + registryd_path() + " --hash-password alice"}, 20s);
  REQUIRE(line.code == 0);
  write_file(users + "/users", line.out);
  const std::string secret = "0123456789abcdef0123456789abcdef";
  test_node node{"distro:\n  lone_ready_wait_ms: 0\nauth:\n  enabled: true\n  secret: " + secret
                 + "\n  users_file: " + users + "/users\n  token_ttl_ms: 1500\n"};
  REQUIRE(node.start());
  auto http = node.http_address();
  const std::string reg = "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.1&port=8080";
  auto none = call(http, "POST", reg);
  CHECK(none.status == 403);
  CHECK(none.body == "user not found!");
  auto bad = call(http, "POST", reg + "&accessToken=forged.token");
  CHECK(bad.status == 403);
  CHECK(bad.body == "token invalid!");
  CHECK(call(http, "GET", "/nacos/v1/ns/instance/list?serviceName=orders").status == 403);
  auto wrong = call(http, "POST", "/nacos/v1/auth/login?username=alice&password=nope");
  CHECK(wrong.status == 403);
  auto login = call(http, "POST", "/nacos/v1/auth/users/login", "username=alice&password=wonderland",
                    "Content-Type: application/x-www-form-urlencoded\r\n");
  REQUIRE(login.status == 200);
  auto token = json::parse(login.body)["accessToken"].get<std::string>();
  CHECK(call(http, "POST", reg + "&accessToken=" + token).body == "ok");
  CHECK(call(http, "GET", "/nacos/v1/ns/instance/list?serviceName=orders", "",
             "accessToken: " + token + "\r\n").status == 200);
  // The npm client's way: username and password on every request.
  CHECK(call(http, "GET", "/nacos/v1/ns/instance/list?serviceName=orders&username=alice&password=wonderland").status == 200);
  // Health stays open.
  CHECK(call(http, "GET", "/nacos/v1/console/health/liveness").status == 200);
  // The token expires (token_ttl_ms 1.5 s).
  CHECK(wait_until([&] { return call(http, "POST", reg + "&accessToken=" + token).body == "token expired!"; }, 5s));
  CHECK(node.ctl_json({"status"})["instances"] == 1);
  node.stop();
  remove_tree(users);
}

TEST_CASE("auth: the HTTP API's users and tokens guard registryctl's writes over CAF") {
  auto users = make_temp_dir();
  auto line = run({"/bin/sh", "-c", "printf wonderland | " + registryd_path() + " --hash-password alice"}, 20s);
  REQUIRE(line.code == 0);
  write_file(users + "/users", line.out);
  const std::string secret = "0123456789abcdef0123456789abcdef";
  test_node node{"distro:\n  lone_ready_wait_ms: 0\nauth:\n  enabled: true\n  secret: " + secret
                 + "\n  users_file: " + users + "/users\n"};
  REQUIRE(node.start());
  auto instances = [&] { return node.ctl_json({"status"})["instances"]; };

  // No credentials, a wrong password, a forged token: refused, nothing changes.
  auto none = node.ctl({"register", "orders", "10.0.0.2:9000"});
  CHECK(none.code == 1);
  CHECK(none.err.find("no access token") != std::string::npos);
  CHECK(none.err.find("access_token") != std::string::npos);
  auto wrong = node.ctl({"--user", "alice", "--password", "nope", "register", "orders", "10.0.0.2:9000"});
  CHECK(wrong.code == 1);
  CHECK(wrong.err.find("unknown user!") != std::string::npos);
  write_file(users + "/forged", "forged.token\n");
  auto forged = node.ctl({"--token-file", users + "/forged", "beat", "orders", "10.0.0.2:9000"});
  CHECK(forged.code == 1);
  CHECK(forged.err.find("token invalid!") != std::string::npos);
  CHECK(instances() == 0);

  // Reads stay open.
  CHECK(node.ctl({"instances", "orders"}).code == 0);

  // A user and password: registryctl logs in at the node, then writes.
  CHECK(node.ctl({"--user", "alice", "--password", "wonderland", "register", "orders", "10.0.0.2:9000"}).code == 0);
  CHECK(instances() == 1);
  // A token from the HTTP login, in a file.
  auto login = call(node.http_address(), "POST", "/nacos/v1/auth/login?username=alice&password=wonderland");
  REQUIRE(login.status == 200);
  write_file(users + "/token", json::parse(login.body)["accessToken"].get<std::string>() + "\n");
  CHECK(node.ctl({"--token-file", users + "/token", "deregister", "orders", "10.0.0.2:9000"}).code == 0);
  CHECK(instances() == 0);

  // A session (register --hold) says hello with a token, then writes on it.
  auto held = node.start_ctl({"--user", "alice", "--password", "wonderland", "register", "orders",
                              "10.0.0.3:9000", "--hold"}, "held");
  CHECK(wait_until([&] { return instances() == 1; }, 10s));
  held.signal(SIGTERM);
  CHECK(held.wait(10s) == 0);
  CHECK(instances() == 0);
  auto refused_hold = node.ctl({"register", "orders", "10.0.0.4:9000", "--hold"});
  CHECK(refused_hold.code == 1);
  CHECK(refused_hold.err.find("no access token") != std::string::npos);

  // Bad flags are usage errors that contact no node.
  auto half = node.ctl({"--user", "alice", "register", "orders", "10.0.0.2:9000"});
  CHECK(half.code == 2);
  CHECK(half.err.find("--user: given without --password") != std::string::npos);
  auto missing = node.ctl({"--token-file", users + "/absent", "register", "orders", "10.0.0.2:9000"});
  CHECK(missing.code == 2);
  CHECK(missing.err.find("--token-file: cannot read") != std::string::npos);
  CHECK(instances() == 0);
  node.stop();
  remove_tree(users);
}

TEST_CASE("http: a node with auth on and no secret refuses to start") {
  auto dir = make_temp_dir();
  auto port = free_port();
  write_file(dir + "/node.yaml", "listen: 127.0.0.1:" + std::to_string(port) + "\nmembers: [127.0.0.1:"
                                   + std::to_string(port) + "]\nhttp:\n  listen: 127.0.0.1:0\n"
                                   "auth:\n  enabled: true\n  users_file: users\n");
  auto r = run({registryd_path(), "--config", dir + "/node.yaml"}, 10s);
  CHECK(r.code == 2);
  CHECK(r.err.find("auth.secret: required when auth.enabled is true") != std::string::npos);
  remove_tree(dir);
}

TEST_CASE("http: ephemeral=false registers a persistent instance through Raft, and deregisters it") {
  test_node node{"distro:\n  lone_ready_wait_ms: 0\ndata_dir: data\n"
                 "raft:\n  election_timeout_ms: 300\n  heartbeat_interval_ms: 50\n"
                 "health_check:\n  interval_min_ms: 100\n  interval_max_ms: 300\n  timeout_ms: 100\n"};
  REQUIRE(node.start());
  REQUIRE(wait_until([&] { return node.ctl_json({"status"}).value("raftRole", "") == "leader"; },
                     10s));
  auto http = node.http_address();
  auto reg = call(http, "POST",
                  "/nacos/v1/ns/instance?serviceName=db&ip=10.6.0.1&port=5432&ephemeral=false");
  CHECK(reg.status == 200);
  CHECK(reg.body == "ok");
  auto list = json::parse(call(http, "GET", "/nacos/v1/ns/instance/list?serviceName=db").body);
  REQUIRE(list["hosts"].size() == 1);
  CHECK(list["hosts"][0]["ephemeral"] == false);
  // An ephemeral instance cannot join the persistent service.
  CHECK(call(http, "POST", "/nacos/v1/ns/instance?serviceName=db&ip=10.6.0.2&port=5432").status
        == 400);
  // An update goes through Raft too: weight, enabled and metadata change; the checks keep health.
  const std::string one = "/nacos/v1/ns/instance?serviceName=db&ip=10.6.0.1&port=5432&ephemeral=false";
  auto upd = call(http, "PUT", one + "&weight=3&metadata=%7B%22role%22%3A%22primary%22%7D");
  CHECK(upd.status == 200);
  CHECK(upd.body == "ok");
  list = json::parse(call(http, "GET", "/nacos/v1/ns/instance/list?serviceName=db").body);
  REQUIRE(list["hosts"].size() == 1);
  CHECK(list["hosts"][0]["weight"] == 3.0);
  CHECK(list["hosts"][0]["metadata"]["role"] == "primary");
  CHECK(call(http, "PUT", one + "&enabled=false").body == "ok");
  CHECK(json::parse(call(http, "GET", "/nacos/v1/ns/instance/list?serviceName=db").body)["hosts"]
          .empty()); // offline
  CHECK(call(http, "PUT", one + "&enabled=true").body == "ok");
  CHECK(json::parse(call(http, "GET", "/nacos/v1/ns/instance/list?serviceName=db").body)["hosts"]
          .size() == 1);
  auto missing = call(http, "PUT", "/nacos/v1/ns/instance?serviceName=db&ip=10.6.0.9&port=5432"
                                   "&ephemeral=false&weight=2");
  CHECK(missing.status == 400);
  CHECK(missing.body.find("instance not exist") != std::string::npos);
  // The persistent instance is not an ephemeral one of the same address.
  CHECK(call(http, "PUT", "/nacos/v1/ns/instance?serviceName=db&ip=10.6.0.1&port=5432&weight=2")
          .status == 400);
  CHECK(call(http, "DELETE",
             "/nacos/v1/ns/instance?serviceName=db&ip=10.6.0.1&port=5432&ephemeral=false")
          .body
        == "ok");
  CHECK(json::parse(call(http, "GET", "/nacos/v1/ns/instance/list?serviceName=db").body)["hosts"]
          .empty());
  node.stop();
}

TEST_CASE("http: a service's protect threshold is written through Raft and outlives a restart") {
  test_node node{"distro:\n  lone_ready_wait_ms: 0\ndata_dir: data\n"
                 "raft:\n  election_timeout_ms: 300\n  heartbeat_interval_ms: 50\n"};
  REQUIRE(node.start());
  REQUIRE(wait_until([&] { return node.ctl_json({"status"}).value("raftRole", "") == "leader"; },
                     10s));
  auto http = node.http_address();
  REQUIRE(call(http, "POST", "/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.1&port=8080").status
          == 200);
  auto reached = [&](const std::string& service) {
    auto r = call(http, "GET", "/nacos/v1/ns/instance/list?serviceName=" + service);
    return r.status == 200 && json::parse(r.body)["reachProtectionThreshold"] == true;
  };
  auto threshold_of = [&](const std::string& service) {
    auto r = call(http, "GET", "/nacos/v1/ns/service?serviceName=" + service);
    return r.status == 200 ? json::parse(r.body)["protectThreshold"].get<double>() : -2.0;
  };
  CHECK_FALSE(reached("orders"));
  CHECK(threshold_of("orders") == 0.0);

  // Every instance healthy: a threshold of 1 is reached (healthy/total = 1 <= 1).
  auto put = call(http, "PUT", "/nacos/v1/ns/service?serviceName=orders&protectThreshold=1");
  CHECK(put.status == 200);
  CHECK(put.body == "ok");
  CHECK(threshold_of("orders") == 1.0);
  CHECK(reached("orders"));

  // Bad writes name the field and change nothing.
  struct bad_case {
    const char* method;
    const char* target;
    int status;
    const char* text;
  };
  for (auto c : std::vector<bad_case>{
         {"PUT", "/nacos/v1/ns/service?serviceName=orders&protectThreshold=1.5", 400,
          "protectThreshold"},
         {"PUT", "/nacos/v1/ns/service?serviceName=orders&protectThreshold=-0.5", 400,
          "protectThreshold"},
         {"PUT", "/nacos/v1/ns/service?serviceName=orders&protectThreshold=abc", 400,
          "protectThreshold"},
         {"PUT", "/nacos/v1/ns/service?serviceName=orders", 400, "protectThreshold: required"},
         {"PUT", "/nacos/v1/ns/service?serviceName=orders&protectThreshold=0.2&metadata=k%3Dv", 400,
          "metadata"},
         {"PUT", "/nacos/v1/ns/service?serviceName=nope&protectThreshold=0.2", 404,
          "service DEFAULT_GROUP@@nope not found"},
       }) {
    auto r = call(http, c.method, c.target);
    CHECK_MESSAGE(r.status == c.status, std::string{c.target} << " -> " << r.status << " " << r.body);
    CHECK_MESSAGE(r.body.find(c.text) != std::string::npos, std::string{c.target} << " -> " << r.body);
  }
  CHECK(threshold_of("orders") == 1.0);

  // -1 switches protection off for the service; POST may set one before the service has instances.
  CHECK(call(http, "PUT", "/nacos/v2/ns/service?serviceName=orders&protectThreshold=-1").status == 200);
  CHECK_FALSE(reached("orders"));
  CHECK(call(http, "POST", "/nacos/v1/ns/service?serviceName=later&protectThreshold=1").status == 200);
  REQUIRE(call(http, "POST", "/nacos/v1/ns/instance?serviceName=later&ip=10.0.0.2&port=8080").status
          == 200);
  CHECK(reached("later"));

  // The thresholds are in the Raft log: a restarted node has them before any client returns.
  REQUIRE(node.stop() == 0);
  REQUIRE(node.start());
  REQUIRE(wait_until([&] { return node.ctl_json({"status"}).value("raftRole", "") == "leader"; },
                     10s));
  http = node.http_address();
  REQUIRE(call(http, "POST", "/nacos/v1/ns/instance?serviceName=later&ip=10.0.0.2&port=8080").status
          == 200);
  CHECK(wait_until([&] { return reached("later"); }, 5s));
  CHECK(threshold_of("later") == 1.0);
  CHECK(node.log().find("applied protect threshold 1 of service") != std::string::npos);
  node.stop();
}
