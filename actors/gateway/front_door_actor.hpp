#pragma once
/// The FRONT DOOR actor: the only actor published on the node's `listen` address. It answers
/// exactly the client protocol of messages/PROTOCOL.md and the first steps of the peer handshake,
/// handing each request to the gateway or the distro actor; any other message gets an error reply
/// and a log line, and changes nothing. The gateway's and the distro actor's in-process interfaces
/// are never reachable through it.
///
/// Interface (from any process):
/// - (hello_atom, envelope Hello, actor client) -> (envelope Welcome, actor session)   [gateway]
/// - (reg_atom | beat_atom | dereg_atom | query_atom | list_atom | status_atom | members_atom,
///    envelope) -> envelope                                                           [gateway]
/// - (peer_atom, envelope PeerHello | PeerAuth) -> (envelope PeerWelcome | Error, actor) [distro]

#include <caf/fwd.hpp>

namespace registry {

/// `distro` may be invalid (a node without distro): peer handshakes are refused then.
caf::actor spawn_front_door_actor(caf::actor_system& sys, caf::actor gateway, caf::actor distro);

} // namespace registry
