#pragma once
/// The CLIENT actor: one per client. Owns that client's instances, subscriptions, revision counter and
/// expiry (client_state); forwards its per-service instance lists to the service actors through the
/// gateway, and announces every change to the distro actor (when there is one).
///
/// Interface, from a session's remote process (session clients) or delegated by the gateway
/// (heartbeat clients), see messages/PROTOCOL.md:
/// - (reg_atom, envelope RegisterRequest)     -> envelope Ack | Error
/// - (dereg_atom, envelope DeregisterRequest) -> envelope Ack | Error
/// - (beat_atom, envelope BeatRequest)        -> envelope Ack | Error   (heartbeat clients)
/// - (sub_atom, envelope SubscribeRequest)    -> envelope ServiceInfo | Error (session clients)
/// - (unsub_atom, envelope SubscribeRequest)  -> envelope Ack
/// - (bye_atom)                               -> envelope Ack, then the session ends
/// - (rebuild_atom, service_key)              a service actor restarted: re-send what we hold there
/// - INTERNAL (tick_atom)                     heartbeat expiry check
/// A session ends when the remote client actor goes down (crash, or frozen past the CAF connection
/// timeout); a heartbeat client ends when its last instance is deregistered or expires.

#include <caf/fwd.hpp>

#include "actors/client/client_state.hpp"
#include "messages/model.hpp"

namespace registry {

struct client_settings {
  client_limits limits;
  time_ms check_interval_ms = 1000; ///< heartbeat expiry check period
  time_ms request_timeout_ms = 3000;
};

/// Spawns a client actor. `remote` is the session client's own actor (sessions only); `distro`
/// receives (sync_atom, client_id) on every change (may be invalid).
caf::actor spawn_client_actor(caf::actor_system& sys, client_id id, client_kind kind,
                              client_settings settings, caf::actor gateway, caf::actor remote,
                              caf::actor distro);

} // namespace registry
