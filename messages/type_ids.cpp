#include "messages/type_ids.hpp"

#include <chrono>

#include <caf/io/middleman.hpp>

#include "config/defaults.hpp"

namespace registry::wire {

void register_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::registry>();
}

void configure_system(caf::actor_system_config& cfg, std::int64_t heartbeat_interval_ms,
                      std::int64_t connection_timeout_ms, int scheduler_threads) {
  register_types(cfg);
  cfg.load<caf::io::middleman>();
  cfg.set("middleman.app-identifiers", std::vector<std::string>{app_identifier});
  cfg.set("middleman.heartbeat-interval",
          caf::timespan{std::chrono::milliseconds(heartbeat_interval_ms)});
  cfg.set("middleman.connection-timeout",
          caf::timespan{std::chrono::milliseconds(connection_timeout_ms)});
  // Decoding in the I/O thread keeps CAF's connection table right (see config/defaults.hpp).
  cfg.set("middleman.workers", static_cast<std::size_t>(defaults::caf_middleman_worker_threads));
  if (scheduler_threads > 0)
    cfg.set("scheduler.max-threads", static_cast<std::size_t>(scheduler_threads));
}

} // namespace registry::wire
