#pragma once
/// The GATEWAY actor. It is the node's directory: it
/// spawns and monitors the client actors and the service actors, routes client requests to them,
/// answers service lists, status and members, and keeps the per-service counts for them.
///
/// Interface: `gateway_actor` in actors/interfaces.hpp. Client processes reach it only through
/// the front door; everything else is in-process.
/// A service actor that fails is restarted and rebuilt from the client actors (the source of truth);
/// a client actor that fails has its instances removed.

#include <memory>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "config/node_config.hpp"

namespace registry {

gateway_actor spawn_gateway_actor(caf::actor_system& sys, std::shared_ptr<const node_config> cfg,
                                  distro_actor distro);

} // namespace registry
