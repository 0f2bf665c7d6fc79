#include "actors/member/peer_actor.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/common/handlers.hpp"
#include "actors/common/log.hpp"
#include "actors/common/transport.hpp"
#include "actors/member/peer_auth.hpp"
#include "messages/convert.hpp"
#include "messages/type_ids.hpp"

namespace registry {

namespace {

using namespace wire;
using std::chrono::milliseconds;

struct peer_state {
  static inline const char* name = "peer";

  peer_settings settings;
  std::string address;
  distro_actor distro;
  peer_port_actor remote; ///< the member's peer port, when connected
  bool connecting = false;
  bool probing = false;
  /// This handshake's nonce (see peer_auth.hpp).
  std::string nonce;
  std::uint64_t generation = 0; ///< bumps on every (dis)connect; stale callbacks check it
  /// A failed TLS (or CAF) handshake was logged since the last connection.
  bool handshake_failure_logged = false;
};

using peer_actor_t = peer_actor::stateful_base<peer_state>;

void report_fail(peer_actor_t* self, const std::string& why) {
  self->send(self->state.distro, peer_fail_atom_v, self->state.address, why);
}

/// A dial's hello carries this connection attempt's nonce: the member must answer the challenge,
/// whether or not it trusts this process already. A probe's hello (over the authenticated peer
/// port) carries none.
v1::PeerHello make_hello(peer_actor_t* self, bool dial) {
  v1::PeerHello hello;
  hello.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  hello.set_cluster_name(self->state.settings.cluster_name);
  hello.set_address(self->state.settings.self_address);
  hello.set_node_id(self->state.settings.self_node_id);
  if (dial)
    hello.set_nonce(self->state.nonce);
  return hello;
}

/// Checks a PeerWelcome into `welcome`; "" when it is acceptable.
std::string check_welcome(peer_actor_t* self, const envelope& env, v1::PeerWelcome& welcome) {
  if (!unpack(env, welcome)) {
    v1::Error err;
    if (unpack(env, err))
      return "refused: " + err.message();
    return "malformed PeerWelcome";
  }
  if (welcome.cluster_name() != self->state.settings.cluster_name)
    return "belongs to cluster '" + welcome.cluster_name() + "', not '"
           + self->state.settings.cluster_name + "'";
  if (welcome.address().empty() || welcome.address().size() > defaults::address_chars_max)
    return "announced no usable listen address";
  return {};
}

/// Tells the distro actor that the member answered, naming the node that answered.
void report_up(peer_actor_t* self, const v1::PeerWelcome& welcome) {
  self->send(self->state.distro, peer_up_atom_v, self->state.address, welcome.address(),
             welcome.node_id().substr(0, defaults::address_chars_max));
}

/// The member answered the handshake with its peer-facing handle: connected.
void connected(peer_actor_t* self, const v1::PeerWelcome& welcome, const caf::actor& remote) {
  auto& st = self->state;
  st.remote = caf::actor_cast<peer_port_actor>(remote);
  st.handshake_failure_logged = false;
  self->monitor(remote);
  log().info("peer {} connected to node {} ({}{})", st.address, welcome.address(),
             welcome.node_id(), st.settings.cluster_secret.empty() ? ", unauthenticated" : "");
  report_up(self, welcome);
}

/// Step 3 (with a cluster secret): prove the secret; the answer carries the peer-facing handle.
void authenticate(peer_actor_t* self, front_door_actor front_door, const v1::PeerWelcome& welcome,
                  std::uint64_t gen) {
  auto& st = self->state;
  v1::PeerAuth auth;
  auth.set_nonce(welcome.nonce());
  auth.set_proof(peer_auth::hello_proof(st.settings.cluster_secret, welcome.nonce(), st.nonce,
                                        st.settings.self_address, welcome.address()));
  self->request(front_door, milliseconds(st.settings.request_timeout_ms), peer_atom_v, pack(auth))
    .then(
      [=](envelope& env, caf::actor& remote) {
        auto& st = self->state;
        st.connecting = false;
        if (gen != st.generation)
          return;
        v1::PeerWelcome again;
        auto why = check_welcome(self, env, again);
        if (why.empty() && !remote)
          why = "no peer handle after authentication";
        if (!why.empty()) {
          log().error("peer {} refused the member: {}", st.address, why);
          report_fail(self, why);
          return;
        }
        connected(self, again, remote);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        st.connecting = false;
        if (gen == st.generation)
          report_fail(self, "authentication failed: " + self->system().render(err));
      });
}

/// Step 2 of connecting: the handshake with the member's front door yields its peer-facing handle,
/// after both sides proved the cluster secret when there is one.
void hello(peer_actor_t* self, front_door_actor front_door, std::uint64_t gen) {
  auto& st = self->state;
  st.nonce = peer_auth::make_nonce();
  self->request(front_door, milliseconds(st.settings.request_timeout_ms), peer_atom_v,
                pack(make_hello(self, true)))
    .then(
      [=](envelope& env, caf::actor& remote) {
        auto& st = self->state;
        if (gen != st.generation) {
          st.connecting = false;
          return;
        }
        v1::PeerWelcome welcome;
        auto why = check_welcome(self, env, welcome);
        const auto& secret = st.settings.cluster_secret;
        if (why.empty() && secret.empty() && !welcome.proof().empty())
          why = "the member requires a cluster secret and this node has none";
        if (why.empty() && !secret.empty()) {
          if (welcome.proof().empty())
            why = "the member has no cluster secret";
          else if (!peer_auth::same_proof(welcome.proof(),
                                          peer_auth::welcome_proof(secret, st.nonce,
                                                                   welcome.nonce(),
                                                                   welcome.address(),
                                                                   st.settings.self_address)))
            why = "the member does not hold this cluster's secret";
        }
        if (why.empty() && secret.empty() && !remote)
          why = "no peer handle";
        if (!why.empty()) {
          st.connecting = false;
          log().error("peer {} refused the member: {}", st.address, why);
          report_fail(self, why);
          return;
        }
        if (!secret.empty()) {
          authenticate(self, front_door, welcome, gen);
          return;
        }
        st.connecting = false;
        connected(self, welcome, remote);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        st.connecting = false;
        if (gen == st.generation)
          report_fail(self, "handshake failed: " + self->system().render(err));
      });
}

/// Step 1 of connecting: the asynchronous connect with a timeout (never the blocking remote_actor),
/// over TLS when the node has TLS.
void dial(peer_actor_t* self) {
  auto& st = self->state;
  if (st.remote || st.connecting)
    return;
  st.connecting = true;
  auto gen = ++st.generation;
  auto mm = link_manager(self->system());
  self->request(mm, milliseconds(st.settings.connect_timeout_ms), caf::connect_atom::value,
                st.settings.member.host, st.settings.member.port)
    .then(
      [=](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
        auto gateway = caf::actor_cast<front_door_actor>(ptr);
        if (!gateway) {
          self->state.connecting = false;
          report_fail(self, "no actor published at the member's port");
          return;
        }
        hello(self, gateway, gen);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        st.connecting = false;
        if (gen != st.generation)
          return;
        auto why = explain_connect_error(self->system(), err, "the tls settings of every member");
        // A TLS mismatch does not heal by itself, and the failures of a member that never came
        // UP are logged at debug: say it once, as an error, until the member connects.
        if (handshake_failed(err) && !st.handshake_failure_logged) {
          st.handshake_failure_logged = true;
          log().error("peer {} cannot connect to the member: {}", st.address, why);
        }
        report_fail(self, "connect failed: " + why);
      });
}

void probe(peer_actor_t* self) {
  auto& st = self->state;
  self->delayed_send(self, milliseconds(st.settings.probe_interval_ms), tick_atom_v);
  if (!st.remote || st.probing)
    return;
  st.probing = true;
  auto gen = st.generation;
  self->request(st.remote, milliseconds(st.settings.request_timeout_ms), peer_atom_v,
                pack(make_hello(self, false)))
    .then(
      [=](envelope& env, caf::actor&) {
        auto& st = self->state;
        st.probing = false;
        if (gen != st.generation)
          return;
        v1::PeerWelcome welcome;
        if (auto why = check_welcome(self, env, welcome); !why.empty())
          report_fail(self, why);
        else
          report_up(self, welcome);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        st.probing = false;
        if (gen == st.generation)
          report_fail(self, "probe failed: " + self->system().render(err));
      });
}

peer_actor::behavior_type peer_behavior(peer_actor_t* self, peer_settings settings,
                                        distro_actor distro) {
  auto& st = self->state;
  st.address = settings.member.to_string();
  st.settings = std::move(settings);
  st.distro = std::move(distro);
  install_default_handlers(self, "peer");
  self->monitor(st.distro);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (!trusted_down(self, dm))
      return;
    if (dm.source == st.distro.address()) {
      self->quit(dm.reason);
      return;
    }
    if (st.remote && dm.source == st.remote.address()) {
      log().warn("peer {} lost the connection ({})", st.address, self->system().render(dm.reason));
      st.remote = peer_port_actor{};
      ++st.generation;
      self->send(st.distro, peer_lost_atom_v, st.address, self->system().render(dm.reason));
    }
  });
  self->send(self, tick_atom_v);
  return {
    [=](dial_atom) {
      if (local_only(self, "peer", "dial"))
        dial(self);
    },
    [=](tick_atom) {
      if (local_only(self, "peer", "tick"))
        probe(self);
    },
    [=](sync_atom, std::uint64_t id, envelope& batch) {
      if (!local_only(self, "peer", "sync"))
        return;
      auto& st = self->state;
      auto address = st.address;
      if (!st.remote) {
        self->send(st.distro, sync_res_atom_v, address, id, false);
        return;
      }
      self->request(st.remote, milliseconds(st.settings.sync_timeout_ms), sync_atom_v,
                    std::move(batch))
        .then(
          [=](const envelope& reply) {
            self->send(self->state.distro, sync_res_atom_v, address, id, holds<v1::Ack>(reply));
          },
          [=](caf::error& err) {
            log().warn("peer {} failed a sync batch: {}", address, self->system().render(err));
            self->send(self->state.distro, sync_res_atom_v, address, id, false);
          });
    },
    [=](verify_atom, std::uint64_t id, envelope& batch) {
      if (!local_only(self, "peer", "verify"))
        return;
      auto& st = self->state;
      auto address = st.address;
      if (!st.remote) {
        self->send(st.distro, verify_res_atom_v, address, id, false, envelope{});
        return;
      }
      self->request(st.remote, milliseconds(st.settings.verify_timeout_ms), verify_atom_v,
                    std::move(batch))
        .then(
          [=](envelope& reply) {
            auto ok = holds<v1::VerifyReply>(reply);
            self->send(self->state.distro, verify_res_atom_v, address, id, ok, std::move(reply));
          },
          [=](caf::error&) {
            self->send(self->state.distro, verify_res_atom_v, address, id, false, envelope{});
          });
    },
    [=](snapshot_atom, std::uint64_t id, envelope& request) {
      if (!local_only(self, "peer", "snapshot"))
        return;
      auto& st = self->state;
      auto address = st.address;
      if (!st.remote) {
        self->send(st.distro, snap_res_atom_v, address, id, std::int32_t{1}, envelope{});
        return;
      }
      self->request(st.remote, milliseconds(st.settings.snapshot_timeout_ms), snapshot_atom_v,
                    std::move(request))
        .then(
          [=](envelope& reply) {
            std::int32_t status = holds<v1::Snapshot>(reply) ? 0 : 2;
            self->send(self->state.distro, snap_res_atom_v, address, id, status, std::move(reply));
          },
          [=](caf::error& err) {
            log().warn("peer {} failed a snapshot request: {}", address,
                       self->system().render(err));
            self->send(self->state.distro, snap_res_atom_v, address, id, std::int32_t{1},
                       envelope{});
          });
    },
    [=](raft_atom, envelope& msg) {
      if (!local_only(self, "peer", "raft"))
        return;
      // One way: Raft retries what is lost, so a message for a disconnected member is dropped.
      if (self->state.remote)
        self->send(self->state.remote, raft_atom_v, std::move(msg));
    },
    [=](pwrite_atom, envelope& op) -> caf::result<envelope> {
      if (!local_only(self, "peer", "pwrite"))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request",
                               "not accepted from another process"));
      auto& st = self->state;
      if (!st.remote)
        return pack(make_error(v1::Error::UNAVAILABLE, "",
                               "the Raft leader " + st.address + " is not connected"));
      auto rp = self->make_response_promise<envelope>();
      auto address = st.address;
      self->request(st.remote, milliseconds(st.settings.write_timeout_ms), pwrite_atom_v,
                    std::move(op))
        .then([=](envelope& reply) mutable { rp.deliver(std::move(reply)); },
              [=](caf::error& err) mutable {
                rp.deliver(pack(make_error(v1::Error::UNAVAILABLE, "",
                                           "the Raft leader " + address + " did not answer: "
                                             + self->system().render(err))));
              });
      return rp;
    },
    [=](forward_atom, envelope& request) -> caf::result<envelope> {
      if (!local_only(self, "peer", "forward"))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request", "not accepted from another process"));
      auto& st = self->state;
      if (!st.remote)
        return pack(make_error(v1::Error::UNAVAILABLE, "",
                               "the responsible node " + st.address + " is not connected"));
      auto rp = self->make_response_promise<envelope>();
      auto address = st.address;
      self->request(st.remote, milliseconds(st.settings.request_timeout_ms), forward_atom_v,
                    std::move(request))
        .then([=](envelope& reply) mutable { rp.deliver(std::move(reply)); },
              [=](caf::error& err) mutable {
                rp.deliver(pack(make_error(v1::Error::UNAVAILABLE, "",
                                           "the responsible node " + address
                                             + " did not answer: "
                                             + self->system().render(err))));
              });
      return rp;
    },
  };
}

} // namespace

peer_actor spawn_peer_actor(caf::actor_system& sys, peer_settings settings, distro_actor distro) {
  return sys.spawn(peer_behavior, std::move(settings), std::move(distro));
}

} // namespace registry
