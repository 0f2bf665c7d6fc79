#pragma once
/// The SERVICE actor: one per service. Holds the instance index over all clients (service_index),
/// the subscribers, and the pushes (push_scheduler). Thin: it decodes, calls the two classes and
/// carries out their effects.
///
/// Interface: `service_actor` in actors/interfaces.hpp (in-process; spawned by the gateway).
/// A subscriber that stays stalled past push.drop_after_ms gets (push_atom, envelope
/// SubscriptionDropped) and is forgotten.
/// It reports (svc_stats_atom, service_key, instances, subscribers) to its parent after changes.

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "messages/model.hpp"
#include "push_scheduler.hpp"

namespace registry {

struct service_settings {
  double protect_threshold = 0.0; ///< negative = protection off
  std::int64_t cache_millis = 10000;
  bool push_enabled = true; ///< false: subscribers get the state in the subscribe reply only
  std::int64_t push_timeout_ms = 3000;
  push_scheduler::config push;
  std::size_t instances_max = 100000;
  std::size_t subscribers_max = 10000;
};

/// Spawns a service actor reporting to `parent`.
service_actor spawn_service_actor(caf::actor_system& sys, service_key key,
                                  service_settings settings, gateway_actor parent);

} // namespace registry
