#include "actors/node/node_supervisor.hpp"

#include <algorithm>
#include <optional>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/common/handlers.hpp"
#include "actors/common/log.hpp"
#include "actors/common/transport.hpp"
#include "actors/distro/distro_actor.hpp"
#include "actors/gateway/front_door_actor.hpp"
#include "actors/gateway/gateway_actor.hpp"
#include "config/defaults.hpp"
#include "messages/type_ids.hpp"

namespace registry {

namespace {

using namespace wire;

struct supervisor_state {
  static inline const char* name = "supervisor";

  std::shared_ptr<const node_config> cfg;
  /// Auth on: the users the front door checks CAF writes against; nullptr: auth off.
  std::shared_ptr<auth::authenticator> users;
  gateway_actor gateway;
  distro_actor distro;
  /// The published actor: the client protocol and the peer handshake, nothing else.
  front_door_actor front_door;
  /// The raft actor (none without data_dir); it outlives restarts of the others.
  raft_actor raft;
  std::uint16_t published_port = 0;
  bool stopping = false;
  /// The member list of the last reload, replayed to a restarted distro actor.
  std::optional<std::vector<std::string>> reloaded_members;
};

using supervisor_t = node_supervisor_actor::stateful_base<supervisor_state>;

/// Publishes the front door on `listen` without blocking (over TLS when the node has TLS); calls
/// `done` with the port or an error.
template <class Done>
void publish_gateway(supervisor_t* self, Done done) {
  auto& st = self->state;
  auto mm = link_manager(self->system());
  self->request(mm, std::chrono::seconds(10), caf::publish_atom::value,
                static_cast<std::uint16_t>(st.cfg->listen.port),
                caf::actor_cast<caf::strong_actor_ptr>(st.front_door),
                self->system().message_types(st.front_door),
                st.cfg->listen.host, true)
    .then([=](std::uint16_t port) mutable { done(port, caf::error{}); },
          [=](caf::error& err) mutable { done(std::uint16_t{0}, std::move(err)); });
}

/// The distro actor and the gateway depend on each other and are started (and restarted) together.
void start_children(supervisor_t* self) {
  auto& st = self->state;
  st.distro = spawn_distro_actor(self->system(), st.cfg);
  st.gateway = spawn_gateway_actor(self->system(), st.cfg, st.distro,
                                   caf::actor_cast<raft_port_actor>(st.raft));
  st.front_door = spawn_front_door_actor(self->system(), st.gateway, st.distro, st.users);
  self->monitor(st.front_door);
  self->monitor(st.distro);
  self->monitor(st.gateway);
  self->send(st.distro, start_atom_v, st.gateway);
  if (st.raft)
    self->send(st.raft, start_atom_v, st.gateway, st.distro);
  if (st.reloaded_members)
    self->send(st.distro, reload_atom_v, *st.reloaded_members);
}

node_supervisor_actor::behavior_type supervisor_behavior(supervisor_t* self,
                                                       std::shared_ptr<const node_config> cfg,
                                                       std::shared_ptr<auth::authenticator> users,
                                                       raft_actor raft) {
  self->state.cfg = std::move(cfg);
  self->state.users = std::move(users);
  self->state.raft = std::move(raft);
  install_default_handlers(self, "supervisor");
  start_children(self);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (!trusted_down(self, dm))
      return;
    bool is_gateway = dm.source == st.gateway.address();
    bool is_distro = dm.source == st.distro.address();
    bool is_front_door = dm.source == st.front_door.address();
    if ((!is_gateway && !is_distro && !is_front_door) || st.stopping)
      return; // a child of an earlier generation
    // The old front door's port is closed first: publishing again before that fails.
    auto republish = [=](caf::actor_addr old_front_door) {
      auto publish = [=] {
        publish_gateway(self, [=](std::uint16_t port, const caf::error& err) {
          if (err)
            log().error("supervisor failed to publish the restarted front door: {}",
                        self->system().render(err));
          else
            self->state.published_port = port;
        });
      };
      auto mm = link_manager(self->system());
      self->request(mm, std::chrono::seconds(10), caf::unpublish_atom::value, old_front_door,
                    self->state.published_port)
        .then([=]() mutable { publish(); }, [=](caf::error&) mutable { publish(); });
    };
    if (is_front_door) {
      // Another process can kill any actor whose handle it holds (CAF always honours an exit
      // message with reason kill): the front door alone is replaced, the data stays.
      log().error("supervisor restarted the front door ({})", self->system().render(dm.reason));
      st.front_door = spawn_front_door_actor(self->system(), st.gateway, st.distro, st.users);
      self->monitor(st.front_door);
      republish(dm.source);
      return;
    }
    log().error("supervisor restarted gateway and distro after the {} failed ({})",
                is_gateway ? "gateway" : is_distro ? "distro" : "front door",
                self->system().render(dm.reason));
    auto old_front_door = st.front_door.address();
    for (auto child : {st.gateway.address(), st.distro.address(), st.front_door.address()})
      if (child != dm.source)
        self->send_exit(child, caf::exit_reason::user_shutdown);
    start_children(self);
    republish(old_front_door);
  });
  self->set_exit_handler([=](caf::exit_msg& em) {
    auto& st = self->state;
    if (!from_this_node(self)) {
      log_foreign("supervisor", "an exit message", sender_text(self));
      return;
    }
    if (st.stopping)
      return;
    st.stopping = true;
    log().info("supervisor stopping children ({})", self->system().render(em.reason));
    auto reason = em.reason;
    auto stop_children = [=] {
      auto& st = self->state;
      self->send_exit(st.front_door, caf::exit_reason::user_shutdown);
      self->send_exit(st.gateway, caf::exit_reason::user_shutdown);
      self->send_exit(st.distro, caf::exit_reason::user_shutdown);
      if (st.raft)
        self->send_exit(st.raft, caf::exit_reason::user_shutdown);
      self->quit(reason);
    };
    if (!st.raft) {
      stop_children();
      return;
    }
    // A Raft leader hands leadership over first (through the distro actor's links, so those
    // stay up meanwhile): a rolling restart then costs no election timeout.
    auto wait_ms = std::min<std::int64_t>(st.cfg->raft.election_timeout_ms
                                            * defaults::raft_handover_wait_election_timeouts,
                                          defaults::raft_handover_wait_max_ms)
                   + defaults::request_timeout_ms;
    self->request(st.raft, std::chrono::milliseconds(wait_ms), bye_atom_v)
      .then([=](bool) { stop_children(); },
            [=](caf::error& err) {
              log().warn("supervisor: the raft actor did not answer the handover: {}",
                         self->system().render(err));
              stop_children();
            });
  });
  return {
    [=](start_atom) -> caf::result<std::uint16_t> {
      if (!local_only(self, "supervisor", "start"))
        return caf::sec::unexpected_message;
      auto rp = self->make_response_promise<std::uint16_t>();
      publish_gateway(self, [=](std::uint16_t port, const caf::error& err) mutable {
        if (err) {
          rp.deliver(err);
          return;
        }
        self->state.published_port = port;
        rp.deliver(port);
      });
      return rp;
    },
    // The current gateway, for the HTTP front end's bridge (actors/http/gateway_bridge.hpp).
    [=](caf::get_atom) -> gateway_actor {
      if (!local_only(self, "supervisor", "get"))
        return gateway_actor{};
      return self->state.gateway;
    },
    [=](reload_atom, const std::vector<std::string>& members) {
      if (!local_only(self, "supervisor", "reload"))
        return;
      self->state.reloaded_members = members;
      self->send(self->state.distro, reload_atom_v, members);
      if (self->state.raft)
        self->send(self->state.raft, reload_atom_v, members);
    },
  };
}

} // namespace

node_supervisor_actor spawn_node_supervisor(caf::actor_system& sys,
                                            std::shared_ptr<const node_config> cfg,
                                            std::shared_ptr<auth::authenticator> users,
                                            raft_actor raft) {
  return sys.spawn(supervisor_behavior, std::move(cfg), std::move(users), std::move(raft));
}

} // namespace registry
