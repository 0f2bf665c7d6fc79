#pragma once
/// The FRONT DOOR actor: the only actor published on the node's `listen` address. It answers
/// exactly the client protocol of messages/PROTOCOL.md and the first steps of the peer handshake,
/// handing each request to the gateway or the distro actor; any other message gets an error reply
/// and a log line, and changes nothing. The gateway's and the distro actor's in-process interfaces
/// are never reachable through it.
///
/// Interface: `front_door_actor` in actors/interfaces.hpp (from any process).

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"

namespace registry {

/// `distro` may be invalid (a node without distro): peer handshakes are refused then.
front_door_actor spawn_front_door_actor(caf::actor_system& sys, gateway_actor gateway,
                                        distro_actor distro);

} // namespace registry
