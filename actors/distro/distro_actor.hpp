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

#include <memory>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "config/node_config.hpp"

namespace registry {

distro_actor spawn_distro_actor(caf::actor_system& sys, std::shared_ptr<const node_config> cfg);

} // namespace registry
