#pragma once
/// Every default timing and every limit of the project, with units in the names.
///
/// The node config (config/node_config.hpp) starts from these values; YAML overrides the timings.
/// Limits that protect the node (map and queue bounds) are here too, each with its overflow policy.

#include <cstddef>
#include <cstdint>

namespace registry::defaults {

// -- data model (Nacos's defaults and validation limits) ---------------------
inline constexpr const char* namespace_id = "public";
inline constexpr const char* group = "DEFAULT_GROUP";
inline constexpr const char* cluster = "DEFAULT";
inline constexpr const char* group_separator = "@@";
inline constexpr std::size_t namespace_chars_max = 64;
inline constexpr std::size_t service_chars_max = 512;
inline constexpr std::size_t group_chars_max = 128;
inline constexpr std::size_t cluster_chars_max = 64;
inline constexpr std::size_t ip_chars_max = 128;
inline constexpr std::size_t metadata_chars_max = 1024; // keys plus values of one instance
inline constexpr std::size_t metadata_entries_max = 64;
inline constexpr double weight_max = 10000.0;
inline constexpr std::size_t instance_id_chars_max = 256;

// -- heartbeat clients (Nacos 1.x semantics) ---------------------------------
inline constexpr std::int64_t beat_interval_ms = 5000;
inline constexpr std::int64_t beat_unhealthy_timeout_ms = 15000;
inline constexpr std::int64_t beat_delete_timeout_ms = 30000;
/// How often a heartbeat client checks its instances for missed beats.
inline constexpr std::int64_t beat_check_interval_ms = 1000;

// -- sessions and CAF transport ----------------------------------------------
/// CAF heartbeats, the same on every process (node and client): a frozen peer is dropped after the
/// connection timeout.
inline constexpr std::int64_t caf_heartbeat_interval_ms = 1000;
inline constexpr std::int64_t caf_connection_timeout_ms = 5000;
inline constexpr std::int64_t request_timeout_ms = 3000;
inline constexpr std::int64_t connect_timeout_ms = 2000;
inline constexpr int scheduler_threads_max = 2;

// -- discovery and push ------------------------------------------------------
inline constexpr std::int64_t cache_millis = 10000;
/// Changes closer together than this are merged into one push; an idle service pushes at once.
inline constexpr std::int64_t push_merge_window_ms = 20;
inline constexpr std::int64_t push_timeout_ms = 3000;
inline constexpr std::int64_t push_retry_delay_ms = 1000;
inline constexpr int push_retries_max = 5;
inline constexpr double protect_threshold = 0.0;
inline constexpr std::uint32_t page_size_default = 20;
inline constexpr std::uint32_t page_size_max = 500;
/// A service without instances and subscribers that got no message for this long is removed.
inline constexpr std::int64_t service_idle_sweep_ms = 30000;

// -- bounds (overflow policy: the request is refused with LIMIT_EXCEEDED) ----
inline constexpr std::size_t clients_max = 200000;
inline constexpr std::size_t services_max = 100000;
inline constexpr std::size_t instances_per_client_max = 1000;
inline constexpr std::size_t instances_per_service_max = 100000;
inline constexpr std::size_t subscribers_per_service_max = 10000;
inline constexpr std::size_t subscriptions_per_client_max = 1000;

// -- cluster (Distro) ----------------------------------------------------------
inline constexpr std::int64_t sync_delay_ms = 10;
inline constexpr std::int64_t sync_timeout_ms = 3000;
inline constexpr std::int64_t sync_retry_delay_ms = 1000;
inline constexpr std::size_t sync_batch_clients_max = 1000;
inline constexpr std::int64_t verify_interval_ms = 5000;
inline constexpr std::int64_t verify_timeout_ms = 3000;
inline constexpr int copy_expiry_verify_rounds = 3;
inline constexpr std::int64_t snapshot_timeout_ms = 30000;
inline constexpr std::int64_t snapshot_retry_delay_ms = 1000;
/// A node whose peers are all down becomes ready after this wait.
inline constexpr std::int64_t lone_ready_wait_ms = 10000;
inline constexpr std::int64_t reconnect_backoff_min_ms = 200;
inline constexpr std::int64_t reconnect_backoff_max_ms = 5000;
inline constexpr int member_failures_until_down = 3;
inline constexpr std::int64_t member_check_interval_ms = 1000;
inline constexpr std::size_t members_max = 64;
/// Longest HOST:PORT or node id a peer may announce; longer ones are refused.
inline constexpr std::size_t address_chars_max = 256;

// -- relations ---------------------------------------------------------------
static_assert(beat_unhealthy_timeout_ms > beat_interval_ms);
static_assert(beat_delete_timeout_ms >= beat_unhealthy_timeout_ms);
static_assert(caf_connection_timeout_ms > caf_heartbeat_interval_ms);
static_assert(page_size_default <= page_size_max);
static_assert(reconnect_backoff_min_ms <= reconnect_backoff_max_ms);

} // namespace registry::defaults

/// Limits and timings of the fault-injection test tier (test/fault/).
namespace registry::defaults::fault {

// -- the pausable TCP proxy between node pairs --------------------------------
/// Bytes buffered per direction of one connection; a full buffer stops reading from its source.
inline constexpr std::size_t proxy_buffer_bytes_max = 256 * 1024;
inline constexpr std::size_t proxy_connections_max = 64;
/// Longest wait of the proxy's poll loop (a mode change wakes it at once).
inline constexpr std::int64_t proxy_poll_ms = 200;

// -- the checker ---------------------------------------------------------------
/// After the faults stop, every node must return the expected instance lists within this.
inline constexpr std::int64_t convergence_timeout_ms = 10000;
/// Restarted nodes must be ready, and load processes settled, within this.
inline constexpr std::int64_t recovery_timeout_ms = 60000;

// -- the load process (test/fault/fault_load.cpp) ------------------------------
inline constexpr std::int64_t load_request_timeout_ms = 5000;
inline constexpr std::int64_t load_connect_timeout_ms = 2000;
/// A lost session or a refused request is retried after this.
inline constexpr std::int64_t load_retry_delay_ms = 200;
inline constexpr std::size_t load_inflight_per_session_max = 4;
/// Requests (hellos, registrations) in flight over a whole load process: thousands of clients
/// starting or moving at once queue for these instead of timing out together.
inline constexpr std::size_t load_inflight_per_process_max = 256;
inline constexpr std::size_t load_instances_per_session_max = 100;

static_assert(load_instances_per_session_max <= instances_per_client_max);
static_assert(load_retry_delay_ms < convergence_timeout_ms);

} // namespace registry::defaults::fault
