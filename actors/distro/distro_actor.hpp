#pragma once
/// The DISTRO actor: drives this node's distro_protocol and member_tracker, owns one peer actor per
/// other member, and carries out their effects (see distro_protocol.hpp for the protocol and the
/// ordering rules of its effects).
///
/// Interface:
/// - (start_atom, actor gateway)                  wires the gateway and starts the protocol
/// - (sync_atom, client_id, uint64, client_services[, client_beats])  a local client changed
///   (empty = gone); a heartbeat client adds its beat clocks
/// - (reload_atom, vector<string> members)        the member list changed (config reload)
/// - (forward_atom, string node, envelope ForwardedRequest) -> envelope: a heartbeat write for the
///   responsible node, sent through that member's peer actor
/// From other nodes (see messages/PROTOCOL.md): peer_atom, sync_atom, verify_atom, snapshot_atom,
/// forward_atom (handed to the gateway, never forwarded again).
/// From peer actors: peer_up_atom, peer_fail_atom, peer_lost_atom, sync_res_atom, verify_res_atom,
/// snap_res_atom. INTERNAL: (tick_atom, uint64 generation).
/// To the gateway: (replica_atom, int32 op, client_id, uint64 revision, client_services, bool local,
/// client_beats) for every protocol `apply` op, and (view_atom, routing, ready, member addresses,
/// member states) whenever readiness, routing or member states change.

#include <functional>
#include <memory>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/member/peer_actor.hpp"
#include "config/node_config.hpp"

namespace registry {

/// Spawns the peer actor of one member (spawn_peer_actor; tests put a stand-in in its place).
using peer_spawner = std::function<caf::actor(caf::actor_system&, peer_settings, caf::actor)>;

caf::actor spawn_distro_actor(caf::actor_system& sys, std::shared_ptr<const node_config> cfg,
                              peer_spawner spawn_peer = spawn_peer_actor);

} // namespace registry
