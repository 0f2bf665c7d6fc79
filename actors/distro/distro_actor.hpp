#pragma once
/// The DISTRO actor: drives this node's distro_protocol and member_tracker, owns one peer actor per
/// other member, and carries out their effects (see distro_protocol.hpp for the protocol and the
/// ordering rules of its effects).
///
/// Interface: `distro_actor` in actors/interfaces.hpp. Other nodes reach it through the front
/// door (the handshake) and the peer port (`peer_port_actor`), never directly.
/// To the gateway: (replica_atom, int32 op, client_id, uint64 revision, client_services, bool local,
/// client_beats) for every protocol `apply` op, and (view_atom, routing, ready, member addresses,
/// member states) whenever readiness, routing or member states change.

#include <functional>
#include <memory>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "actors/member/peer_actor.hpp"
#include "config/node_config.hpp"

namespace registry {

/// Spawns the peer actor of one member (spawn_peer_actor; tests put a stand-in in its place).
using peer_spawner = std::function<peer_actor(caf::actor_system&, peer_settings, distro_actor)>;

distro_actor spawn_distro_actor(caf::actor_system& sys, std::shared_ptr<const node_config> cfg,
                                peer_spawner spawn_peer = spawn_peer_actor);

} // namespace registry
