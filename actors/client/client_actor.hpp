#pragma once
/// The CLIENT actor: one per client. Owns that client's instances, subscriptions, revision counter and
/// expiry (client_state); forwards its per-service instance lists to the service actors through the
/// gateway, and announces every change to the distro actor (when there is one).
///
/// Interface: `client_actor` in actors/interfaces.hpp. A session's requests come from its own
/// process (the handle in its Welcome); a heartbeat client's are delegated by the gateway; the
/// rest is in-process.
/// A session ends when the remote client actor goes down (crash, or frozen past the CAF connection
/// timeout); a heartbeat client ends when its last instance is deregistered or expires.

#include <memory>

#include <caf/fwd.hpp>

#include "actors/client/client_state.hpp"
#include "actors/interfaces.hpp"
#include "messages/model.hpp"

namespace registry {

struct client_settings {
  client_limits limits;
  time_ms check_interval_ms = 1000; ///< heartbeat expiry check period
  time_ms request_timeout_ms = 3000;
};

/// The content a client actor created by a Distro op starts with. The gateway hands it to the
/// service actors itself (the new clients of a batch of ops in one message per service), so the
/// actor does not publish it: it starts as if it had applied a `replace` op.
struct client_seed {
  std::uint64_t revision = 0;
  client_services services;
  client_beats beats; ///< a heartbeat client this node is responsible for: the clocks to continue
};

/// Spawns a client actor. `remote` is the session client's own actor (sessions only); `distro`
/// receives (sync_atom, client_id) on every change (may be invalid). `seed`: the content of a
/// replica or heartbeat client created by Distro (nullptr: an empty client).
client_actor spawn_client_actor(caf::actor_system& sys, client_id id, client_kind kind,
                                client_settings settings, gateway_actor gateway,
                                subscriber_actor remote, distro_actor distro,
                                std::shared_ptr<const client_seed> seed = nullptr);

} // namespace registry
