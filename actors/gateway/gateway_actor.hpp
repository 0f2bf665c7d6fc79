#pragma once
/// The GATEWAY actor: published on the node's `listen` address. It is the node's directory: it
/// spawns and monitors the client actors and the service actors, routes client requests to them,
/// answers service lists, status and members, and keeps the per-service counts for them.
///
/// Interface from client processes: see messages/PROTOCOL.md (hello, reg, beat, dereg, query, list,
/// status, members). From its children (in-process):
/// - (svc_put_atom, service_key, client_id, vector<instance>) -> delegated to the service actor
/// - (svc_drop_atom, service_key, client_id)
/// - (svc_sub_atom, service_key, client_id, string clusters, actor subscriber) -> delegated
/// - (svc_unsub_atom, service_key, client_id, string clusters)                -> delegated
/// - (svc_stats_atom, service_key, uint64 instances, uint64 subscribers)
/// - (client_gone_atom, client_id)
/// - (get_atom, service_key) -> actor: the service actor (introspection for tests)
/// A service actor that fails is restarted and rebuilt from the client actors (the source of truth);
/// a client actor that fails has its instances removed.

#include <memory>

#include <caf/fwd.hpp>

#include "config/node_config.hpp"

namespace registry {

caf::actor spawn_gateway_actor(caf::actor_system& sys, std::shared_ptr<const node_config> cfg,
                               caf::actor distro);

} // namespace registry
