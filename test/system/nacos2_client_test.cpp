// The real Nacos 2.x client against registryd's gRPC API: the official Rust SDK 0.8.0 through its
// Node binding (npm nacos-sdk-rust-binding-node, a prebuilt linux-x64 module), installed with npm
// at test time into a temporary directory and driven by nacos2_rust_client.js. The client dials
// the HTTP port + 1000, as every Nacos 2.x SDK does.

#include <doctest/doctest.h>

#include <csignal>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test/support/node_fixture.hpp"

using namespace registry::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* rust_sdk_package = "nacos-sdk-rust-binding-node@0.8.0";

/// node_modules holding nacos-sdk-rust-binding-node, installed once per run ("" on failure).
const std::string& sdk_modules(std::string& why) {
  static std::string failure;
  static std::string dir = npm_install(rust_sdk_package, failure);
  why = failure;
  return dir;
}

bool sdk_ready() {
  std::string why;
  auto ok = !sdk_modules(why).empty();
  INFO(why);
  return ok;
}

std::vector<std::string> driver(const std::vector<std::string>& args) {
  std::string why;
  std::vector<std::string> argv{which("env"), "NODE_PATH=" + sdk_modules(why),
                                which("node"),
                                std::string{SOURCE_DIR} + "/test/system/nacos2_rust_client.js"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

void check_steps(const std::string& out, int code, const std::vector<std::string>& steps) {
  INFO("driver output:\n" << out);
  CHECK(code == 0);
  for (auto& s : steps)
    CHECK(out.find("ok " + s + "\n") != std::string::npos);
}

bool port_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

/// A free HTTP port whose gRPC port (+1000) is free too.
int free_http_port() {
  for (int i = 0; i < 100; ++i) {
    auto p = free_port();
    if (p + 1000 <= 65535 && port_free(p + 1000))
      return p;
  }
  return 0;
}

std::string http_yaml(int port) {
  return "http:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n";
}

/// registry_grpc_connections of a node (-1 when /metrics does not answer).
int grpc_connections(const test_node& node) {
  auto text = node.metrics();
  if (text.empty())
    return -1;
  auto at = text.find("\nregistry_grpc_connections ");
  if (at == std::string::npos)
    return 0;
  return std::atoi(text.c_str() + at + 27);
}

} // namespace

TEST_CASE("nacos 2.x rust sdk: register, query, subscribe, pushes on arrival and exit, deregister") {
  REQUIRE(sdk_ready());
  auto http_port = free_http_port();
  REQUIRE(http_port != 0);
  test_node node{"distro:\n  lone_ready_wait_ms: 0\n" + http_yaml(http_port)};
  REQUIRE(node.start());
  REQUIRE(node.wait_ready(10s));
  auto r = run(driver({"basic", "127.0.0.1:" + std::to_string(http_port)}), 120s);
  check_steps(r.out + r.err, r.code,
              {"register", "query", "subscribe", "push-arrive", "push-leave", "batch",
               "deregister", "push-deregister"});
  // The pushes went over gRPC and were acknowledged by the SDK.
  CHECK(node.metrics().find("registry_pushes_total{result=\"acked\",transport=\"grpc\"}")
        != std::string::npos);
  node.stop();
}

TEST_CASE("nacos 2.x rust sdk: moves to another node when its node is killed") {
  REQUIRE(sdk_ready());
  std::vector<int> ports{free_port(), free_port()};
  std::vector<int> http_ports{free_http_port(), free_http_port()};
  REQUIRE(http_ports[0] != 0);
  REQUIRE(http_ports[1] != 0);
  REQUIRE(http_ports[0] != http_ports[1]);
  std::vector<std::unique_ptr<test_node>> nodes;
  for (int i = 0; i < 2; ++i)
    nodes.push_back(std::make_unique<test_node>(
      ports[i], ports,
      "distro:\n  verify_interval_ms: 500\n  lone_ready_wait_ms: 1000\n"
      "  reconnect_backoff_min_ms: 100\n  reconnect_backoff_max_ms: 500\n"
        + http_yaml(http_ports[i])));
  for (auto& n : nodes)
    n->launch();
  for (auto& n : nodes)
    REQUIRE(n->wait_ready(20s));
  auto dir = make_temp_dir();
  auto flag = dir + "/killed";
  child_process sdk{driver({"failover",
                            "127.0.0.1:" + std::to_string(http_ports[0]) + ",127.0.0.1:"
                              + std::to_string(http_ports[1]),
                            flag}),
                    dir, "sdk"};
  REQUIRE(sdk.wait_for_output("ok registered", 60s));
  // The node that holds the SDK's connection is killed.
  int holder = -1;
  REQUIRE(wait_until([&] {
    for (int i = 0; i < 2; ++i)
      if (grpc_connections(*nodes[i]) == 1)
        holder = i;
    return holder >= 0;
  }, 10s));
  auto& survivor = *nodes[1 - holder];
  nodes[holder]->process().signal(SIGKILL);
  nodes[holder]->process().wait(5s);
  write_file(flag, "");
  CHECK(sdk.wait_for_output("ok register-after-move", 60s));
  // The SDK is connected to the survivor now, which holds its latest registration only (the
  // dead node's copy of the first one is gone).
  CHECK(grpc_connections(survivor) == 1);
  CHECK(wait_until([&] {
    auto h = survivor.hosts("moving");
    return h.is_array() && host_set(h) == std::vector<std::string>{"10.9.0.2:9000"};
  }, 20s));
  write_file(flag + ".done", "");
  auto code = sdk.wait(30s);
  check_steps(sdk.out(), code, {"query-after-move", "register-after-move"});
  survivor.stop();
  remove_tree(dir);
}
