#pragma once
/// The NODE supervisor: spawns the node's top-level actors (gateway, and in a cluster the distro and
/// member actors), publishes the front door on the `listen` address, monitors them and restarts a
/// failed child, logging the restart.
///
/// Interface: `node_supervisor_actor` in actors/interfaces.hpp; start_atom answers the port, or an
/// error when the listen address cannot be published.
/// An exit message (e.g. from main on SIGTERM) stops the children and then the supervisor.

#include <memory>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "config/node_config.hpp"

namespace registry {

node_supervisor_actor spawn_node_supervisor(caf::actor_system& sys,
                                            std::shared_ptr<const node_config> cfg);

} // namespace registry
