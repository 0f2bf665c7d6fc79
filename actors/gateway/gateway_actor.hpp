#pragma once
/// The GATEWAY actor. It is the node's directory: it
/// spawns and monitors the client actors and the service actors, routes client requests to them,
/// answers service lists, status and members, and keeps the per-service counts for them.
///
/// Interface: `gateway_actor` in actors/interfaces.hpp. Client processes reach it only through
/// the front door; everything else is in-process.
/// A service actor that fails is restarted and rebuilt from the client actors (the source of truth);
/// a client actor that fails has its instances removed; persistent instances come from the raft
/// actor (actors/raft/raft_actor.hpp), which feeds them again when the gateway restarts.

#include <memory>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "config/node_config.hpp"

namespace registry {

/// `raft` is the node's raft actor (none without data_dir: persistent writes are refused). A
/// persistent write (a stateless RegisterRequest with instance.ephemeral = false, a
/// DeregisterRequest with persistent = true) is checked here, refused when the service holds
/// ephemeral instances, and handed to the raft actor as a PersistentOp; the answer comes once it
/// is committed. A status request whose envelope is a RaftStatusRequest gets the RaftStatus.
gateway_actor spawn_gateway_actor(caf::actor_system& sys, std::shared_ptr<const node_config> cfg,
                                  distro_actor distro, raft_port_actor raft = {});

} // namespace registry
