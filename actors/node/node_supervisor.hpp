#pragma once
/// The NODE supervisor: spawns the node's top-level actors (gateway, and in a cluster the distro and
/// member actors), publishes the gateway on the `listen` address, monitors them and restarts a failed
/// child, logging the restart.
///
/// Interface:
/// - (start_atom) -> uint16 port, or an error when the listen address cannot be published
/// - (get_atom) -> actor: the current gateway (in-process: the HTTP front end asks)
/// An exit message (e.g. from main on SIGTERM) stops the children and then the supervisor.

#include <memory>

#include <caf/fwd.hpp>

#include "config/node_config.hpp"

namespace registry {

caf::actor spawn_node_supervisor(caf::actor_system& sys, std::shared_ptr<const node_config> cfg);

} // namespace registry
