// Writes the seed corpus of the fuzz targets (test/fuzz/corpus/<target>/), run once by hand:
//
//   build-san/test/fuzz/make_corpus SOURCE_ROOT    (SOURCE_ROOT: the repository root)
//
// envelope_decode and node_dispatch get valid envelopes of every wire kind (first byte: the kind,
// see wire_kinds.hpp; rest: the payload); node_config the example configs and a few variants;
// registryctl_args typical command lines (arguments separated by NUL bytes).

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "messages/distro.pb.h"
#include "messages/registry.pb.h"
#include "test/fuzz/wire_kinds.hpp"

namespace {

using namespace registry;
using registry::fuzz::wire_kind;

std::string root;
int written = 0;

void write(const std::string& target, const std::string& name, const std::string& bytes) {
  auto path = root + "/test/fuzz/corpus/" + target + "/" + name;
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  if (!out) {
    std::cerr << "make_corpus: cannot write " << path << " (does the directory exist?)\n";
    std::exit(1);
  }
  out << bytes;
  ++written;
}

std::string read(const std::string& path) {
  std::ifstream in{root + "/" + path, std::ios::binary};
  if (!in) {
    std::cerr << "make_corpus: cannot read " << path << "\n";
    std::exit(1);
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// One envelope seed for both envelope targets.
template <class Message>
void envelope_seed(wire_kind kind, const std::string& name, const Message& msg) {
  std::string bytes(1, static_cast<char>(kind));
  bytes += msg.SerializeAsString();
  write("envelope_decode", name, bytes);
  write("node_dispatch", name, bytes);
}

void service_ref(v1::ServiceRef& r, const std::string& service, const std::string& group = "") {
  r.set_service(service);
  r.set_group(group);
}

void an_instance(v1::Instance& x, const std::string& ip, std::uint32_t port) {
  x.set_ip(ip);
  x.set_port(port);
  x.set_weight(1.0);
  x.set_healthy(true);
  x.set_enabled(true);
  x.set_ephemeral(true);
  x.set_cluster("DEFAULT");
  (*x.mutable_metadata())["version"] = "1.2";
}

void client_data(v1::ClientData& c, const std::string& id, bool deleted) {
  c.set_client_id(id);
  c.set_revision(42);
  c.set_deleted(deleted);
  c.set_owner("127.0.0.1:8850");
  if (deleted)
    return;
  auto* s = c.add_services();
  service_ref(*s->mutable_service(), "orders");
  an_instance(*s->add_instances(), "10.0.0.7", 8080);
}

void envelopes() {
  v1::RegisterRequest reg;
  service_ref(*reg.mutable_service(), "orders");
  an_instance(*reg.mutable_instance(), "10.0.0.1", 8080);
  envelope_seed(wire_kind::register_request, "register", reg);
  reg.mutable_instance()->set_weight(-1); // refused: names the weight
  envelope_seed(wire_kind::register_request, "register-bad-weight", reg);
  reg.mutable_instance()->set_weight(2.5);
  reg.mutable_service()->set_namespace_id("dev");
  reg.mutable_instance()->set_instance_id("custom-id");
  envelope_seed(wire_kind::register_request, "register-namespace", reg);

  v1::BatchRegisterRequest batch;
  service_ref(*batch.mutable_service(), "orders");
  for (std::uint32_t port = 8080; port < 8083; ++port)
    an_instance(*batch.add_instances(), "10.0.0.2", port);
  envelope_seed(wire_kind::batch_register_request, "batch-register", batch);
  batch.mutable_instances(1)->set_port(0); // refused: names instances[1].port
  envelope_seed(wire_kind::batch_register_request, "batch-register-bad-port", batch);

  v1::DeregisterRequest dereg;
  service_ref(*dereg.mutable_service(), "orders");
  dereg.set_ip("10.0.0.1");
  dereg.set_port(8080);
  envelope_seed(wire_kind::deregister_request, "deregister", dereg);

  v1::BeatRequest beat;
  service_ref(*beat.mutable_service(), "pay", "GROUP_A");
  an_instance(*beat.mutable_instance(), "10.0.0.2", 9090);
  envelope_seed(wire_kind::beat_request, "beat", beat);

  v1::QueryRequest query;
  service_ref(*query.mutable_service(), "orders");
  envelope_seed(wire_kind::query_request, "query", query);
  query.add_clusters("DEFAULT");
  query.add_clusters("east");
  query.set_healthy_only(true);
  envelope_seed(wire_kind::query_request, "query-clusters", query);

  v1::ListServicesRequest list;
  list.set_page(1);
  list.set_size(10);
  envelope_seed(wire_kind::list_services_request, "list", list);
  list.set_size(100000); // refused: page size
  envelope_seed(wire_kind::list_services_request, "list-bad-size", list);

  v1::SubscribeRequest sub;
  service_ref(*sub.mutable_service(), "orders");
  sub.add_clusters("DEFAULT");
  envelope_seed(wire_kind::subscribe_request, "subscribe", sub);

  envelope_seed(wire_kind::status_request, "status-request", v1::StatusRequest{});
  envelope_seed(wire_kind::members_request, "members-request", v1::MembersRequest{});

  v1::Hello hello;
  hello.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  hello.set_client_name("seed");
  envelope_seed(wire_kind::hello, "hello", hello);
  hello.set_protocol_version(7);
  envelope_seed(wire_kind::hello, "hello-other-version", hello);

  v1::ServiceInfo info;
  info.set_name("DEFAULT_GROUP@@orders");
  info.set_group_name("DEFAULT_GROUP");
  info.set_clusters("DEFAULT");
  info.set_cache_millis(10000);
  info.set_last_ref_time(1700000000000);
  an_instance(*info.add_hosts(), "10.0.0.1", 8080);
  envelope_seed(wire_kind::service_info, "service-info", info);

  v1::ServiceList services;
  services.set_count(2);
  services.add_services("orders");
  services.add_services("pay");
  envelope_seed(wire_kind::service_list, "service-list", services);

  v1::MemberList members;
  auto* m = members.add_members();
  m->set_address("127.0.0.1:8848");
  m->set_state("SELF");
  envelope_seed(wire_kind::member_list, "member-list", members);

  v1::Status status;
  status.set_address("127.0.0.1:8848");
  status.set_ready(true);
  status.set_clients(3);
  status.set_cluster_name("default");
  envelope_seed(wire_kind::status, "status", status);

  v1::Welcome welcome;
  welcome.set_session_id("127.0.0.1:8848/1700000000000/1");
  welcome.set_node_address("127.0.0.1:8848");
  welcome.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  envelope_seed(wire_kind::welcome, "welcome", welcome);

  v1::Ack ack;
  ack.set_detail("no such instance");
  envelope_seed(wire_kind::ack, "ack", ack);

  v1::Error error;
  error.set_code(v1::Error::INVALID_ARGUMENT);
  error.set_field("port");
  error.set_message("Param 'port' is illegal");
  envelope_seed(wire_kind::error, "error", error);

  v1::PeerHello peer;
  peer.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  peer.set_cluster_name("default");
  peer.set_address("127.0.0.1:8850");
  envelope_seed(wire_kind::peer_hello, "peer-hello", peer);
  peer.set_cluster_name("other");
  envelope_seed(wire_kind::peer_hello, "peer-hello-other-cluster", peer);

  v1::PeerWelcome peer_welcome;
  peer_welcome.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  peer_welcome.set_cluster_name("default");
  peer_welcome.set_address("127.0.0.1:8848");
  envelope_seed(wire_kind::peer_welcome, "peer-welcome", peer_welcome);

  v1::SyncBatch sync;
  sync.set_source("127.0.0.1:8850");
  client_data(*sync.add_clients(), "10.0.0.7:8080#true", false);
  client_data(*sync.add_clients(), "127.0.0.1:8850/1700000000000/4", true);
  envelope_seed(wire_kind::sync_batch, "sync-batch", sync);

  v1::VerifyBatch verify;
  verify.set_source("127.0.0.1:8850");
  auto* rev = verify.add_clients();
  rev->set_client_id("10.0.0.7:8080#true");
  rev->set_revision(42);
  envelope_seed(wire_kind::verify_batch, "verify-batch", verify);

  v1::VerifyBatch digest;
  digest.set_source("127.0.0.1:8850");
  digest.set_buckets(4);
  for (std::uint64_t d : {0ULL, 42ULL, 0ULL, 7ULL})
    digest.add_digests(d);
  envelope_seed(wire_kind::verify_batch, "verify-digest", digest);

  v1::VerifyBatch detail;
  detail.set_source("127.0.0.1:8850");
  detail.set_buckets(4);
  detail.add_listed(1);
  auto* listed = detail.add_clients();
  listed->set_client_id("10.0.0.7:8080#true");
  listed->set_revision(42);
  envelope_seed(wire_kind::verify_batch, "verify-detail", detail);

  v1::VerifyReply verify_reply;
  verify_reply.add_missing("10.0.0.7:8080#true");
  verify_reply.add_differing(1);
  envelope_seed(wire_kind::verify_reply, "verify-reply", verify_reply);

  v1::SnapshotRequest snap_req;
  snap_req.set_source("127.0.0.1:8850");
  envelope_seed(wire_kind::snapshot_request, "snapshot-request", snap_req);
  snap_req.set_after("10.0.0.7:8080#true");
  snap_req.set_clients_max(1000);
  snap_req.set_instances_max(100000);
  envelope_seed(wire_kind::snapshot_request, "snapshot-request-chunk", snap_req);

  v1::Snapshot snap;
  snap.set_source("127.0.0.1:8850");
  client_data(*snap.add_clients(), "10.0.0.8:8080#true", false);
  envelope_seed(wire_kind::snapshot, "snapshot", snap);
  snap.set_more(true);
  snap.set_last("10.0.0.8:8080#true");
  envelope_seed(wire_kind::snapshot, "snapshot-chunk", snap);

  v1::ForwardedRequest fwd;
  fwd.set_source("127.0.0.1:8850");
  *fwd.mutable_register_() = reg;
  envelope_seed(wire_kind::forwarded_request, "forward-register", fwd);
  *fwd.mutable_beat() = beat;
  envelope_seed(wire_kind::forwarded_request, "forward-beat", fwd);
  *fwd.mutable_deregister() = dereg;
  envelope_seed(wire_kind::forwarded_request, "forward-deregister", fwd);
}

void configs() {
  write("node_config", "standalone.yaml", read("config/standalone.yaml"));
  for (auto n : {"node1", "node2", "node3"})
    write("node_config", std::string{"cluster-3-"} + n + ".yaml",
          read(std::string{"config/cluster-3/"} + n + ".yaml"));
  write("node_config", "minimal.yaml", "listen: 127.0.0.1:8848\nmembers: [127.0.0.1:8848]\n");
  write("node_config", "thresholds.yaml",
        "listen: localhost:8848\nmembers: [localhost:8848, localhost:8850]\n"
        "discovery:\n  protect_threshold: 0.5\n"
        "  service_thresholds: {\"DEFAULT_GROUP@@orders\": 0.8, \"dev##G@@pay\": -1}\n");
  write("node_config", "bad-relation.yaml",
        "listen: 127.0.0.1:8848\nmembers: [127.0.0.1:8848]\n"
        "heartbeat: {interval_ms: 5000, unhealthy_timeout_ms: 100}\n");
  write("node_config", "bad-key.yaml", "listen: 127.0.0.1:8848\nmembers: [127.0.0.1:8848]\nlimit: 3\n");
  write("node_config", "two-documents.yaml", "listen: 127.0.0.1:8848\n---\nmembers: []\n");
  write("node_config", "tls-anonymous.yaml",
        "listen: 127.0.0.1:8848\nmembers: [127.0.0.1:8848]\ntls: {anonymous: true}\n");
  write("node_config", "tls-missing-files.yaml",
        "listen: 127.0.0.1:8848\nmembers: [127.0.0.1:8848]\ntls:\n  certificate: /nonexistent/node.pem\n"
        "  key: /nonexistent/node.key\n  ca_file: /nonexistent/ca.pem\n");
}

void command_line(const std::string& name, const std::vector<std::string>& args) {
  std::string bytes;
  for (auto& a : args) {
    bytes += a;
    bytes += '\0';
  }
  write("registryctl_args", name, bytes);
}

void command_lines() {
  command_line("register", {"register", "orders", "10.0.0.1:8080"});
  command_line("register-options",
               {"--node", "127.0.0.1:8848,127.0.0.1:8850", "register", "orders", "10.0.0.1:8080",
                "--namespace", "dev", "--group", "G", "--cluster", "east", "--weight", "2.5",
                "--meta", "k=v", "--meta", "zone=a", "--disabled"});
  command_line("register-hold", {"register", "orders", "[::1]:8080", "--hold", "--json"});
  command_line("register-batch", {"register", "orders", "10.0.0.1:8080", "10.0.0.2:8080",
                                  "[::1]:8081", "--hold", "--cluster", "east"});
  command_line("register-batch-twice", {"register", "orders", "10.0.0.1:8080", "10.0.0.1:8080",
                                        "--hold"});
  command_line("register-batch-no-hold", {"register", "orders", "10.0.0.1:8080", "10.0.0.2:8080"});
  command_line("beat", {"beat", "orders", "10.0.0.1:8080", "--every-ms", "500"});
  command_line("deregister", {"deregister", "orders", "10.0.0.1:8080", "--group", "G"});
  command_line("instances", {"instances", "orders", "--cluster", "a,b", "--healthy-only"});
  command_line("services", {"--json", "services", "--page", "2", "--size", "5"});
  command_line("subscribe", {"subscribe", "orders", "--count", "3", "--timeout-ms", "500"});
  command_line("status", {"status", "--node", "localhost:8848"});
  command_line("members", {"--caf-heartbeat-ms", "100", "--caf-timeout-ms", "500", "members"});
  command_line("failover", {"--cache-dir", "/tmp/x", "failover", "on", "--namespace", "dev"});
  command_line("help", {"--help"});
  command_line("help-register", {"register", "--help"});
  command_line("bad-port", {"register", "orders", "10.0.0.1:99999"});
  command_line("unknown", {"frobnicate"});
  command_line("status-tls", {"--tls-ca", "/tmp/ca.pem", "--tls-cert", "/tmp/ctl.pem", "--tls-key",
                              "/tmp/ctl.key", "--tls-key-passphrase-file", "/tmp/pass", "status"});
  command_line("members-tls-anonymous", {"members", "--tls"});
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_corpus SOURCE_ROOT\n";
    return 2;
  }
  root = argv[1];
  envelopes();
  configs();
  command_lines();
  std::cout << "make_corpus: wrote " << written << " files under " << root
            << "/test/fuzz/corpus/\n";
  return 0;
}
