// TLS on every CAF link: real registryd processes on loopback with certificates made by the openssl
// tool at test time, driven by registryctl with and without TLS.

#include <doctest/doctest.h>

#include <signal.h>

#include "test/support/node_fixture.hpp"
#include "test/support/test_pki.hpp"
#include "tools/client/registry_client.hpp"

using namespace registry::test;
using namespace std::chrono_literals;

namespace {

const std::string secret_yaml = "cluster_secret: tls-test-secret-0123456789\n";

/// CAF heartbeat settings of these tests: a TLS handshake must finish within the connection
/// timeout, and on a loaded 2-core machine (OpenSSL 3 builds a context per connection) one took
/// longer than the other tests' 1 s. Nothing here measures failure detection.
constexpr int caf_heartbeat_ms = 500;
constexpr int caf_timeout_ms = 5000;

/// A temporary directory holding a CA ("cluster") and what it issues; removed at the end.
struct pki_dir {
  std::string dir = make_temp_dir();
  test_pki ca{dir, "cluster"};
  ~pki_dir() { remove_tree(dir); }

  /// The tls section of a node with a certificate of its own.
  std::string node_yaml(const std::string& name) {
    auto files = ca.issue(name);
    return "tls:\n  certificate: " + files.certificate + "\n  key: " + files.key
           + "\n  ca_file: " + ca.ca_file() + "\n";
  }

  /// registryctl's flags with a client certificate of this CA.
  std::vector<std::string> ctl_flags(const std::string& name) {
    auto files = ca.issue(name);
    return {"--tls-ca", ca.ca_file(), "--tls-cert", files.certificate, "--tls-key", files.key};
  }
};

/// A cluster of `n` nodes, each with its own extra YAML.
std::unique_ptr<test_cluster> make_cluster(const std::vector<std::string>& extra_yaml) {
  auto c = std::make_unique<test_cluster>(0);
  for (std::size_t i = 0; i < extra_yaml.size(); ++i)
    c->ports.push_back(free_port());
  for (std::size_t i = 0; i < extra_yaml.size(); ++i) {
    c->nodes.push_back(
      std::make_unique<test_node>(c->ports[i], c->ports, cluster_timings + extra_yaml[i]));
    c->nodes.back()->set_caf_timing(caf_heartbeat_ms, caf_timeout_ms);
  }
  return c;
}

/// Client library options for `node` with the test's CAF heartbeat settings.
registry::client::options library_options(const test_node& node) {
  registry::client::options o;
  o.servers = {node.address()};
  o.caf_heartbeat_interval = std::chrono::milliseconds(caf_heartbeat_ms);
  o.caf_connection_timeout = std::chrono::milliseconds(caf_timeout_ms);
  return o;
}

/// registryctl status against `node` with `flags` (no others).
run_result bare_status(const test_node& node, std::vector<std::string> flags) {
  std::vector<std::string> argv{registryctl_path(),
                                "--node",
                                node.address(),
                                "--caf-heartbeat-ms",
                                std::to_string(caf_heartbeat_ms),
                                "--caf-timeout-ms",
                                std::to_string(caf_timeout_ms)};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("status");
  return run(std::move(argv), 10s);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("tls with certificates: three nodes replicate over TLS; registryctl needs TLS and says so") {
  pki_dir pki;
  auto c = make_cluster({secret_yaml + pki.node_yaml("node1"), secret_yaml + pki.node_yaml("node2"),
                         secret_yaml + pki.node_yaml("node3")});
  auto flags = pki.ctl_flags("registryctl");
  for (auto& n : c->nodes)
    n->set_ctl_flags(flags);
  REQUIRE(c->start()); // every node ready and every member UP, asked over TLS

  // status says that the links are TLS.
  auto st = (*c)[0].ctl_json({"status"});
  REQUIRE(st.is_object());
  CHECK(st["tls"] == "certificate");
  auto text = (*c)[1].ctl({"status"});
  REQUIRE(text.code == 0);
  CHECK(contains(text.out, "tls:         certificate (TLS links, mutual certificate authentication)"));
  CHECK(contains((*c)[2].log(), "(TLS (certificate))"));

  // A session registration at A reaches B and C over the TLS peer links; its close removes it.
  auto holder = (*c)[0].start_ctl({"register", "orders", "10.7.0.1:80", "--hold"}, "holder");
  REQUIRE(holder.wait_for_output("registered", 5s));
  CHECK(c->all_see({0, 1, 2}, "orders", {"10.7.0.1:80"}, 5s));
  // A heartbeat client registered at C too (forwarded to its responsible node when that is another).
  REQUIRE((*c)[2].ctl({"register", "pay", "10.7.0.2:80"}).code == 0);
  CHECK(c->all_see({0, 1, 2}, "pay", {"10.7.0.2:80"}, 5s));
  holder.signal(SIGTERM);
  REQUIRE(holder.wait(5s) == 0);
  CHECK(c->all_see({0, 1, 2}, "orders", {}, 5s));

  // The client library with options.tls: a session registration at B, seen everywhere.
  {
    auto lib = pki.ca.issue("library");
    auto o = library_options((*c)[1]);
    o.tls.ca_file = pki.ca.ca_file();
    o.tls.certificate = lib.certificate;
    o.tls.key = lib.key;
    registry::client::naming_client client{o};
    registry::instance x;
    x.ip = "10.7.0.3";
    x.port = 80;
    client.register_instance("library", "DEFAULT_GROUP", x);
    CHECK(c->all_see({0, 1, 2}, "library", {"10.7.0.3:80"}, 5s));
    // A CA without a client certificate cannot work with CAF: refused at construction.
    auto bad = library_options((*c)[1]);
    bad.tls.ca_file = pki.ca.ca_file();
    try {
      registry::client::naming_client refused{bad};
      FAIL("a CA file without a client certificate was accepted");
    } catch (const registry::client::error& e) {
      CHECK(e.code() == registry::client::error_code::invalid_argument);
      CHECK(e.field() == "tls.certificate");
      CHECK(contains(e.what(), "mutual authentication"));
    }
  }
  CHECK(c->all_see({0, 1, 2}, "library", {}, 5s));

  // A member killed with -9 and restarted loads a snapshot over TLS and rejoins.
  auto snap = (*c)[0].start_ctl({"register", "snap", "10.7.0.4:80", "--hold"}, "snap");
  REQUIRE(snap.wait_for_output("registered", 5s));
  REQUIRE(c->all_see({0, 1, 2}, "snap", {"10.7.0.4:80"}, 5s));
  (*c)[2].process().signal(SIGKILL);
  (*c)[2].process().wait(5s);
  (*c)[2].launch();
  REQUIRE((*c)[2].wait_ready(20s));
  CHECK(c->all_see({2}, "snap", {"10.7.0.4:80"}, 5s));
  CHECK(wait_until([&] { return (*c)[0].member_state((*c)[2].address()) == "UP"; }, 10s));
  snap.signal(SIGTERM);
  REQUIRE(snap.wait(5s) == 0);
  CHECK(c->all_see({0, 1, 2}, "snap", {}, 5s));

  // How often each node has logged a lost peer link so far.
  auto lost_links = [&](std::size_t i) {
    auto log = (*c)[i].log();
    std::size_t n = 0;
    for (auto at = log.find("lost the connection"); at != std::string::npos;
         at = log.find("lost the connection", at + 1))
      ++n;
    return n;
  };
  const std::size_t lost_before[] = {lost_links(0), lost_links(1), lost_links(2)};

  // Without TLS, with anonymous TLS, or with a certificate of another CA: exit 3 within 3 s,
  // naming the address and the TLS handshake.
  test_pki other{pki.dir, "other"};
  auto stranger = other.issue("stranger");
  const std::vector<std::pair<std::string, std::vector<std::string>>> wrong = {
    {"plain", {}},
    {"anonymous", {"--tls"}},
    {"other CA", {"--tls-ca", other.ca_file(), "--tls-cert", stranger.certificate, "--tls-key",
                  stranger.key}},
  };
  for (const auto& [what, wrong_flags] : wrong) {
    INFO("registryctl " << what);
    auto r = bare_status((*c)[0], wrong_flags);
    INFO("stderr: " << r.err);
    CHECK(r.code == 3);
    CHECK(r.elapsed < 3s);
    CHECK(contains(r.err, (*c)[0].address()));
    CHECK(contains(r.err, "handshake"));
    CHECK(contains(r.err, "TLS"));
  }

  // Those failed handshakes did not disturb the peer links (CAF's openssl module once let one
  // connection's handshake close the others: openssl_io.cpp).
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(lost_links(i) == lost_before[i]);
    for (std::size_t j = 0; j < 3; ++j)
      if (i != j)
        CHECK((*c)[i].member_state((*c)[j].address()) == "UP");
  }

  // Local mistakes are usage errors naming the flag, before any connection.
  auto r = bare_status((*c)[0], {"--tls-ca", pki.ca.ca_file()});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "--tls-cert: missing"));
  r = bare_status((*c)[0], {"--tls-ca", pki.dir + "/missing.pem", "--tls-cert", flags[3],
                            "--tls-key", flags[5]});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "--tls-ca: cannot read"));
  r = bare_status((*c)[0], {"--tls-ca", pki.ca.ca_file(), "--tls-cert", flags[3], "--tls-key",
                            stranger.key});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "--tls-key:"));
  CHECK(contains(r.err, "is not the key of the certificate"));
}

TEST_CASE("tls: a member without TLS and a member with TLS refuse each other and log why") {
  pki_dir pki;
  auto c = make_cluster({pki.node_yaml("tls-node"), ""});
  auto& tls_node = (*c)[0];
  auto& plain_node = (*c)[1];
  tls_node.set_ctl_flags(pki.ctl_flags("registryctl"));
  tls_node.launch();
  plain_node.launch();
  // Each becomes ready alone (lone_ready_wait_ms), the other member DOWN: nothing hangs.
  REQUIRE(tls_node.wait_ready(20s));
  REQUIRE(plain_node.wait_ready(20s));
  CHECK(tls_node.member_state(plain_node.address()) == "DOWN");
  CHECK(plain_node.member_state(tls_node.address()) == "DOWN");
  // Both say, as an error, what is wrong with the link.
  CHECK(wait_until(
    [&] {
      return contains(tls_node.log(), "error peer " + plain_node.address()
                                        + " cannot connect to the member: the TLS handshake failed");
    },
    10s));
  CHECK(wait_until(
    [&] {
      auto log = plain_node.log();
      return contains(log, "error peer " + tls_node.address() + " cannot connect to the member: the "
                                                          "connection closed during the handshake")
             && contains(log, "may require TLS");
    },
    10s));
}

TEST_CASE("tls anonymous: two nodes replicate over anonymous TLS; registryctl needs --tls") {
  const std::string anonymous = secret_yaml + "tls:\n  anonymous: true\n";
  auto c = make_cluster({anonymous, anonymous});
  for (auto& n : c->nodes)
    n->set_ctl_flags({"--tls"});
  REQUIRE(c->start());
  auto st = (*c)[1].ctl_json({"status"});
  REQUIRE(st.is_object());
  CHECK(st["tls"] == "anonymous");
  CHECK(wait_until([&] { return contains((*c)[0].log(), "uses anonymous TLS"); }, 5s));

  REQUIRE((*c)[0].ctl({"register", "orders", "10.8.0.1:80"}).code == 0);
  CHECK(c->all_see({0, 1}, "orders", {"10.8.0.1:80"}, 5s));

  auto r = bare_status((*c)[1], {});
  CHECK(r.code == 3);
  CHECK(r.elapsed < 3s);
  CHECK(contains(r.err, (*c)[1].address()));
  CHECK(contains(r.err, "may require TLS"));
}
