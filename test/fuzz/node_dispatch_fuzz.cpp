// Fuzz target: envelopes delivered to a real standalone node in this process.
//
// One actor system and one node (spawn_node_supervisor, published on a free loopback port) are
// started once. The target then talks to the node only through what it publishes, as a `caf::actor`
// and the message shapes of messages/PROTOCOL.md: the gateway (from the published port), a session
// actor (from Welcome) and the distro actor (from PeerWelcome). For each input it sends
// (atom, envelope) for every atom each of them accepts, once with the envelope kind picked by the
// input's first byte and once with the kind the atom expects, both with the rest of the input as
// payload. Every request must get a reply or an error before its timeout, no node actor may die, and
// afterwards the node must still answer a status request.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <variant>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <google/protobuf/stubs/logging.h>

#include "actors/common/log.hpp"
#include "actors/node/node_supervisor.hpp"
#include "config/node_config.hpp"
#include "messages/registry.pb.h"
#include "messages/type_ids.hpp"
#include "test/fuzz/fuzz_check.hpp"
#include "test/fuzz/wire_kinds.hpp"

namespace {

using namespace registry;
using namespace registry::wire;
using registry::fuzz::kind_name;
using registry::fuzz::wire_kind;

/// Far above any reply time of a healthy node, far below libFuzzer's per-input timeout.
constexpr auto request_timeout = std::chrono::seconds(5);

/// Short timings and small limits, so that expiry, retries and limits happen while fuzzing.
std::string node_yaml(int port) {
  const std::string self = "127.0.0.1:" + std::to_string(port);
  return "listen: " + self + "\n"
         "members: [" + self + "]\n"
         "log:\n  level: error\n"
         "heartbeat:\n  interval_ms: 50\n  unhealthy_timeout_ms: 200\n"
         "  delete_timeout_ms: 400\n  check_interval_ms: 50\n"
         "push:\n  merge_window_ms: 5\n  timeout_ms: 500\n  retry_delay_ms: 50\n  drop_after_ms: 2000\n"
         "limits:\n  clients_max: 500\n  services_max: 200\n  instances_per_client_max: 20\n"
         "  instances_per_service_max: 100\n  subscribers_per_service_max: 20\n"
         "distro:\n  sync_delay_ms: 5\n  verify_interval_ms: 100\n  lone_ready_wait_ms: 0\n"
         // The fuzzer talks CAF only; HTTP (and its UDP timing rule) stays off.
         "http:\n  listen: \"off\"\n";
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  FUZZ_CHECK(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct node_under_fuzz {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  registry::node_supervisor_actor supervisor;
  caf::actor gateway; ///< as published
  caf::actor distro;  ///< from PeerWelcome
  caf::actor client;  ///< stands in for a client process: acknowledges pushes
};

node_under_fuzz* the_node = nullptr;

/// What came back for one request.
struct reply {
  bool ok = false;
  envelope env;
  caf::actor handle;
  caf::error err;
};

template <class... Ts>
reply ask(caf::actor_system& sys, const caf::actor& dest, Ts&&... xs) {
  reply r;
  caf::scoped_actor self{sys};
  self->request(dest, request_timeout, std::forward<Ts>(xs)...)
    .receive([&](caf::error& err) { r.err = std::move(err); },
             caf::others >> [&](caf::message_view& view) -> caf::result<caf::message> {
               // Replies are (envelope), (envelope, actor) or, from handlers without a result, ().
               auto msg = view.copy_content_to_message();
               r.ok = true;
               if (msg.match_elements<envelope>()) {
                 r.env = msg.get_as<envelope>(0);
               } else if (msg.match_elements<envelope, caf::actor>()) {
                 r.env = msg.get_as<envelope>(0);
                 r.handle = msg.get_as<caf::actor>(1);
               }
               return caf::message{};
             });
  return r;
}

/// A reply or an error must come back in time; the node's own actors must not die.
void check(const reply& r, const char* what, bool node_actor) {
  if (r.ok)
    return;
  if (r.err == caf::sec::request_timeout) {
    std::fprintf(stderr, "no reply to %s within %lld s\n", what,
                 static_cast<long long>(request_timeout.count()));
    std::abort();
  }
  if (node_actor && r.err == caf::sec::request_receiver_down) {
    std::fprintf(stderr, "the node actor died while handling %s\n", what);
    std::abort();
  }
}

node_under_fuzz* start_node() {
  auto* n = new node_under_fuzz; // lives until the process exits
  int port = free_port();
  auto loaded = parse_node_config(node_yaml(port), "fuzz-node.yaml");
  if (auto* err = std::get_if<std::string>(&loaded)) {
    std::fprintf(stderr, "bad fuzz node config: %s\n", err->c_str());
    std::abort();
  }
  auto cfg = std::make_shared<node_config>(std::get<node_config>(loaded));
  FUZZ_CHECK(init_logging(cfg->log_level, "").empty());
  configure_system(n->cfg, cfg->session.caf_heartbeat_interval_ms,
                   cfg->session.caf_connection_timeout_ms, 2);
  n->sys = std::make_unique<caf::actor_system>(n->cfg);
  auto& sys = *n->sys;
  n->supervisor = spawn_node_supervisor(sys, cfg);
  {
    caf::scoped_actor self{sys};
    bool started = false;
    self->request(n->supervisor, std::chrono::seconds(15), start_atom_v)
      .receive([&](std::uint16_t) { started = true; },
               [&](caf::error& err) {
                 std::fprintf(stderr, "node did not start: %s\n", sys.render(err).c_str());
               });
    FUZZ_CHECK(started);
  }
  // The published handle, as a remote client gets it (for this process's own port: the local actor).
  auto gw = sys.middleman().remote_actor<registry::front_door_actor>(
    "127.0.0.1", static_cast<std::uint16_t>(port));
  FUZZ_CHECK(gw);
  n->gateway = caf::actor_cast<caf::actor>(*gw); // untyped: the fuzzer sends anything

  v1::PeerHello hello;
  hello.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  hello.set_cluster_name(cfg->cluster_name);
  hello.set_address("127.0.0.1:1");
  auto welcome = ask(sys, n->gateway, peer_atom_v, pack(hello));
  FUZZ_CHECK(welcome.ok && holds<v1::PeerWelcome>(welcome.env) && welcome.handle);
  n->distro = welcome.handle;
  // CAF 0.17.6 dereferences a null argument tuple when an actor is spawned without arguments
  // (UBSan: reference binding to null pointer), so this one takes a name it does not need.
  n->client = sys.spawn(
    [](const std::string&) -> caf::behavior {
      return {[](push_atom, const envelope&) { return pack(v1::Ack{}); }};
    },
    std::string{"fuzz client"});
  return n;
}

/// Sends `atom` with the input's envelope and, when it differs, with the atom's own kind.
template <class Atom>
void both(caf::actor_system& sys, const caf::actor& dest, Atom atom, const envelope& picked,
          wire_kind own, const char* what, bool node_actor = true) {
  check(ask(sys, dest, atom, picked), what, node_actor);
  envelope mine{kind_name(own), picked.payload};
  if (mine.kind != picked.kind)
    check(ask(sys, dest, atom, mine), what, node_actor);
}

void session(caf::actor_system& sys, const envelope& hello_env, const envelope& picked) {
  auto& n = *the_node;
  auto welcome = ask(sys, n.gateway, hello_atom_v, hello_env, n.client);
  check(welcome, "hello", true);
  if (!welcome.ok || !welcome.handle)
    return;
  auto s = welcome.handle;
  both(sys, s, reg_atom_v, picked, wire_kind::register_request, "session reg", false);
  if (picked.kind != kind_name(wire_kind::batch_register_request))
    check(ask(sys, s, reg_atom_v, envelope{kind_name(wire_kind::batch_register_request),
                                           picked.payload}),
          "session batch reg", false);
  both(sys, s, sub_atom_v, picked, wire_kind::subscribe_request, "session sub", false);
  both(sys, s, unsub_atom_v, picked, wire_kind::subscribe_request, "session unsub", false);
  both(sys, s, dereg_atom_v, picked, wire_kind::deregister_request, "session dereg", false);
  check(ask(sys, s, bye_atom_v), "session bye", false);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr); // a payload with bad UTF-8 is refused, not logged
  the_node = start_node();
  // CAF's threads keep running at exit: leave without running static destructors under them.
  std::atexit([] { std::_Exit(0); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  auto& n = *the_node;
  auto& sys = *n.sys;
  const envelope picked{kind_name(fuzz::kind_of_byte(data[0])),
                        std::string{reinterpret_cast<const char*>(data + 1), size - 1}};
  // -- the gateway ------------------------------------------------------------------------------
  both(sys, n.gateway, reg_atom_v, picked, wire_kind::register_request, "reg");
  // A batch register belongs to a session: the gateway refuses it.
  check(ask(sys, n.gateway, reg_atom_v,
            envelope{kind_name(wire_kind::batch_register_request), picked.payload}),
        "batch reg", true);
  both(sys, n.gateway, beat_atom_v, picked, wire_kind::beat_request, "beat");
  both(sys, n.gateway, query_atom_v, picked, wire_kind::query_request, "query");
  both(sys, n.gateway, list_atom_v, picked, wire_kind::list_services_request, "list");
  both(sys, n.gateway, dereg_atom_v, picked, wire_kind::deregister_request, "dereg");
  both(sys, n.gateway, status_atom_v, picked, wire_kind::status_request, "status");
  both(sys, n.gateway, members_atom_v, picked, wire_kind::members_request, "members");
  both(sys, n.gateway, forward_atom_v, picked, wire_kind::forwarded_request, "forward");
  both(sys, n.gateway, peer_atom_v, picked, wire_kind::peer_hello, "peer");
  // -- a session (the hello shape: envelope plus the client's actor) ------------------------------
  session(sys, picked, picked);
  session(sys, envelope{kind_name(wire_kind::hello), picked.payload}, picked);
  // -- the distro actor -------------------------------------------------------------------------
  both(sys, n.distro, sync_atom_v, picked, wire_kind::sync_batch, "sync");
  both(sys, n.distro, verify_atom_v, picked, wire_kind::verify_batch, "verify");
  both(sys, n.distro, snapshot_atom_v, picked, wire_kind::snapshot_request, "snapshot");
  both(sys, n.distro, forward_atom_v, picked, wire_kind::forwarded_request, "distro forward");
  both(sys, n.distro, peer_atom_v, picked, wire_kind::peer_hello, "distro peer");
  // -- still alive ------------------------------------------------------------------------------
  auto status = ask(sys, n.gateway, status_atom_v, pack(v1::StatusRequest{}));
  check(status, "status after the input", true);
  FUZZ_CHECK(holds<v1::Status>(status.env));
  return 0;
}
