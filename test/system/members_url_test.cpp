// registryd with an address server (members_url): a test HTTP server of our own on loopback serves
// the member list; the node starts from it, follows its changes, keeps the last good list when the
// server fails, and cannot start without a list. Also the cluster secret's start-up checks.

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <string>

#include "test/support/http_server.hpp"
#include "test/support/node_fixture.hpp"

using namespace registry::test;
using namespace std::chrono_literals;

namespace {

/// A node configured with `members_url` (and no `members`), polling every 200 ms.
struct url_node {
  test_node node;
  explicit url_node(const std::string& url, const std::string& extra_yaml = "") {
    write_file(node.config_path(), "listen: " + node.address() + "\nmembers_url: " + url
                                     + "\nmembers_poll_interval_ms: 200\n"
                                     + "members_start_wait_ms: 2000\ncluster_name: test\n"
                                     + "log:\n  level: debug\n  file: " + node.dir()
                                     + "/node.log\n" + session_config() + cluster_timings
                                     + extra_yaml);
  }
};

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1))
    ++n;
  return n;
}

/// An address nobody listens on: a member that stays DOWN.
std::string ghost() {
  return "127.0.0.1:" + std::to_string(free_port());
}

} // namespace

TEST_CASE("a node with members_url starts with the served list and follows its changes") {
  http_test_server server;
  url_node n{server.url()};
  auto b = ghost(), c = ghost();
  server.respond(200, "\n  " + n.node.address() + "  \n" + b + "\r\n\n");
  REQUIRE(n.node.start());
  CHECK(n.node.member_state(b) != ""); // known from the first fetch
  CHECK(n.node.member_state(c) == "");
  // The list changes: the node follows within a few polls.
  server.respond(200, c + "\n" + n.node.address() + "\n");
  CHECK(wait_until([&] { return n.node.member_state(c) != "" && n.node.member_state(b) == ""; },
                   10s));
  auto log = n.node.log();
  CHECK(log.find("members_url=" + server.url()) != std::string::npos);
  CHECK(log.find("cluster_secret=none") != std::string::npos);
}

TEST_CASE("SIGHUP makes a members_url node fetch its list at once") {
  http_test_server server;
  url_node n{server.url()};
  // A poll interval of a minute: only SIGHUP can bring the change within the test.
  auto text = read_file(n.node.config_path());
  auto at = text.find("members_poll_interval_ms: 200");
  REQUIRE(at != std::string::npos);
  write_file(n.node.config_path(), text.replace(at, 29, "members_poll_interval_ms: 60000"));
  server.respond(200, n.node.address() + "\n");
  REQUIRE(n.node.start());
  auto b = ghost();
  server.respond(200, n.node.address() + "\n" + b + "\n");
  n.node.process().signal(SIGHUP);
  CHECK(wait_until([&] { return n.node.member_state(b) != ""; }, 5s));
}

TEST_CASE("when the address server fails the node keeps its last list and logs it once") {
  http_test_server server;
  url_node n{server.url()};
  auto b = ghost();
  server.respond(200, n.node.address() + "\n" + b + "\n");
  REQUIRE(n.node.start());
  REQUIRE(n.node.member_state(b) != "");

  // A failing server: logged once however many polls fail; the list stays.
  server.respond(503, "down for maintenance\n");
  auto seen = server.requests();
  REQUIRE(server.wait_requests(seen + 4, 10s));
  CHECK(wait_until([&] { return n.node.log().find("got 503") != std::string::npos; }, 5s));
  CHECK(count_of(n.node.log(), "got 503") == 1);
  CHECK(n.node.member_state(b) != "");

  // Garbage: another reason, logged once; the list stays.
  server.respond(200, "<html><body>not a list</body></html>\n");
  seen = server.requests();
  REQUIRE(server.wait_requests(seen + 4, 10s));
  CHECK(wait_until([&] { return n.node.log().find("members_url: LINE 1: ") != std::string::npos; },
                   5s));
  CHECK(count_of(n.node.log(), "members_url: LINE 1: ") == 1);
  CHECK(n.node.member_state(b) != "");

  // A list without this node is refused like garbage.
  server.respond(200, b + "\n");
  seen = server.requests();
  REQUIRE(server.wait_requests(seen + 3, 10s));
  CHECK(wait_until([&] { return n.node.log().find("listen address") != std::string::npos; }, 5s));
  CHECK(n.node.member_state(b) != "");

  // Connections closed without an answer.
  server.close_connections();
  seen = server.requests();
  REQUIRE(server.wait_requests(seen + 3, 10s));
  CHECK(n.node.member_state(b) != "");

  // The server recovers with a new list: logged once, and the node follows.
  server.respond(200, n.node.address() + "\n");
  CHECK(wait_until([&] { return n.node.member_state(b) == ""; }, 10s));
  auto again = "fetches the member list from " + server.url() + " again";
  CHECK(wait_until([&] { return count_of(n.node.log(), again) >= 1; }, 5s));
  CHECK(count_of(n.node.log(), again) == 1);
  CHECK(n.node.process().running());
}

TEST_CASE("a hanging address server times out, and SIGTERM is not delayed beyond the timeout") {
  http_test_server server;
  url_node n{server.url()};
  server.respond(200, n.node.address() + "\n");
  REQUIRE(n.node.start());
  server.hang();
  CHECK(wait_until([&] { return n.node.log().find("Timeout was reached") != std::string::npos; },
                   10s));
  // Stop while a GET is surely running (the server holds its request): the stop waits for it at
  // most its total timeout.
  auto seen = server.requests();
  REQUIRE(server.wait_requests(seen + 1, 5s));
  auto start = std::chrono::steady_clock::now();
  CHECK(n.node.stop() == 0);
  auto stop_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - start)
                   .count();
  MESSAGE("stop took " << stop_ms << " ms while the address server hangs");
  CHECK(stop_ms < 2000 + 1500); // the 2 s fetch timeout plus the node's own shutdown
}

TEST_CASE("without a list from members_url the node exits 2 naming the reason") {
  SUBCASE("nothing listens at the URL") {
    test_node node;
    write_file(node.config_path(),
               "listen: " + node.address() + "\nmembers_url: http://127.0.0.1:"
                 + std::to_string(free_port()) + "/nacos/serverlist\n"
                 + "members_poll_interval_ms: 100\nmembers_start_wait_ms: 300\n"
                 + "log:\n  file: " + node.dir() + "/node.log\n");
    auto start = std::chrono::steady_clock::now();
    node.launch();
    CHECK(node.process().wait(10s) == 2);
    auto err = node.process().err();
    INFO(err);
    CHECK(err.find(node.config_path() + ": members_url: ") != std::string::npos);
    CHECK(err.find("Couldn't connect") != std::string::npos);
    CHECK(err.find("members_start_wait_ms") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
  }
  SUBCASE("the served list does not hold the node") {
    http_test_server server;
    url_node n{server.url()};
    server.respond(200, ghost() + "\n");
    write_file(n.node.config_path(), "listen: " + n.node.address() + "\nmembers_url: "
                                       + server.url() + "\nmembers_start_wait_ms: 0\n");
    n.node.launch();
    CHECK(n.node.process().wait(10s) == 2);
    CHECK(n.node.process().err().find("listen address") != std::string::npos);
    CHECK(server.requests() == 1); // a start wait of 0: one attempt
  }
}

TEST_CASE("members with members_url, or a bad secret, stop the start-up naming the keys") {
  auto dir = make_temp_dir();
  auto path = dir + "/node.yaml";
  write_file(path, "listen: 127.0.0.1:1\nmembers: [127.0.0.1:1]\n"
                   "members_url: http://127.0.0.1:2/list\n");
  auto r = run({registryd_path(), "--config", path}, 10s);
  CHECK(r.code == 2);
  CHECK(r.err.find("members_url") != std::string::npos);
  CHECK(r.err.find("together with members") != std::string::npos);

  write_file(path, "listen: 127.0.0.1:1\nmembers: [127.0.0.1:1]\ncluster_secret: tooShort\n");
  r = run({registryd_path(), "--config", path}, 10s);
  CHECK(r.code == 2);
  CHECK(r.err.find("cluster_secret: expected at least 16 bytes") != std::string::npos);
  CHECK(r.err.find("tooShort") == std::string::npos);
  remove_tree(dir);
}

TEST_CASE("a secret file others can read is a warning; the secret never reaches the log") {
  const std::string secret = "system-test-secret-0123456789";
  test_node node;
  write_file(node.dir() + "/secret", secret + "\n");
  ::chmod((node.dir() + "/secret").c_str(), 0644);
  write_file(node.config_path(), "listen: " + node.address() + "\nmembers: [" + node.address()
                                   + "]\ncluster_secret_file: secret\nlog:\n  level: trace\n"
                                   + "  file: " + node.dir() + "/node.log\n" + session_config());
  REQUIRE(node.start());
  CHECK(node.stop() == 0);
  auto log = node.log();
  CHECK(log.find("accessible by others (mode 0644)") != std::string::npos);
  CHECK(log.find("cluster_secret=set (from " + node.dir() + "/secret)") != std::string::npos);
  CHECK(log.find(secret) == std::string::npos);
  CHECK(node.process().err().find(secret) == std::string::npos);
}
