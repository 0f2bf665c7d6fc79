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

#include "actors/auth/user_auth.hpp"
#include "actors/interfaces.hpp"
#include "config/node_config.hpp"

namespace registry {

/// `users`: the node's authenticator when auth is on (the front door checks CAF writes).
/// `raft` is the node's raft actor (none without data_dir); the supervisor hands it the gateway
/// and the distro actor at every (re)start of those.
node_supervisor_actor spawn_node_supervisor(caf::actor_system& sys,
                                            std::shared_ptr<const node_config> cfg,
                                            std::shared_ptr<auth::authenticator> users = nullptr,
                                            raft_actor raft = {});

} // namespace registry
