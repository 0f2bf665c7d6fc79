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
/// The responsible node reports a heartbeat client's beat clocks to Distro on every change of the
/// client and, for beats alone, at most once per unhealthy_timeout / this (5 s with the defaults;
/// the last beat before a silence is reported at the next check). A node taking the client over
/// continues from the reported age, so a live client never looks silent there for longer than
/// beat_interval_ms + that report interval (checked below), and a dead one is not kept alive by
/// responsibility moves.
inline constexpr std::int64_t beat_reports_per_unhealthy_timeout = 3;
/// A received beat age above this is taken as this (it only means "long ago"; keeps the
/// arithmetic on the receiver's clock far from overflow).
inline constexpr std::int64_t beat_age_ms_max = 7LL * 24 * 3600 * 1000;

// -- sessions and CAF transport ----------------------------------------------
/// CAF heartbeats, the same on every process (node and client): a frozen peer is dropped after the
/// connection timeout.
inline constexpr std::int64_t caf_heartbeat_interval_ms = 1000;
inline constexpr std::int64_t caf_connection_timeout_ms = 5000;
inline constexpr std::int64_t request_timeout_ms = 3000;
inline constexpr std::int64_t connect_timeout_ms = 2000;
inline constexpr int scheduler_threads_max = 2;
/// CAF's `middleman.workers`: threads that decode incoming remote messages beside the I/O thread.
/// Must stay 0 on every process. With a decoding thread, CAF 0.17 forgets a connection that the
/// other side closed only after the message being decoded at that moment is delivered; a new
/// connection that gets the closed one's socket number meanwhile (the OS hands out the lowest free
/// one, so this is common) loses its entry in CAF's table of connections to nodes. Every message
/// that arrives over it then has no sender: the peer handshake is refused as anonymous and nothing
/// it asks is ever answered, until that connection happens to close (over 100 s seen under faults).
/// With 0 the I/O thread decodes each message itself, and a closed connection is forgotten before
/// any new one is read (test/system/cluster_test.cpp: "a node restarted while its peer decodes a large message").
inline constexpr int caf_middleman_worker_threads = 0;

// -- discovery and push ------------------------------------------------------
/// Encoded query views a service keeps per index revision (one per cluster filter); more, and
/// they are all dropped: one-off filters must not grow them without limit.
inline constexpr std::size_t encoded_views_per_service_max = 64;
inline constexpr std::int64_t cache_millis = 10000;
/// Changes closer together than this are merged into one push; an idle service pushes at once.
inline constexpr std::int64_t push_merge_window_ms = 20;
inline constexpr std::int64_t push_timeout_ms = 3000;
inline constexpr std::int64_t push_retry_delay_ms = 1000;
/// A subscriber that acknowledged no push for this long (from its first failed push in a row) is
/// dropped and told so (SubscriptionDropped); its client subscribes again. One push at most is in
/// flight per subscriber, so a stall costs one request, not a queue.
inline constexpr std::int64_t push_drop_after_ms = 60000;
inline constexpr double protect_threshold = 0.0;
inline constexpr std::uint32_t page_size_default = 20;
inline constexpr std::uint32_t page_size_max = 500;
/// A service without instances and subscribers that got no message for this long is removed.
inline constexpr std::int64_t service_idle_sweep_ms = 30000;

// -- logging -----------------------------------------------------------------
/// The log file rotates at this size, keeping this many older files (`FILE.1` ... `FILE.N`).
inline constexpr std::int64_t log_file_size_bytes_max = 100LL * 1024 * 1024;
inline constexpr int log_files_max = 5;
/// Lines queued for the log writer thread. Overflow policy: the oldest queued line is dropped (the
/// actors never block on the log); dropped lines are counted and reported at the next flush.
inline constexpr std::int64_t log_queue_lines_max = 8192;
/// Queued lines reach the file at least this often; warnings and errors at once.
inline constexpr std::int64_t log_flush_interval_ms = 1000;
/// Names from outside (services, ips, client names, metadata) are cut to this many bytes in log lines,
/// with a marker saying how much was cut.
inline constexpr std::size_t log_name_chars_max = 128;

// -- client library ----------------------------------------------------------
/// A redo (re-register, re-subscribe on a new session) that failed is retried this often.
inline constexpr std::int64_t client_redo_retry_interval_ms = 3000;

// -- bounds (overflow policy: the request is refused with LIMIT_EXCEEDED) ----
/// This node's own clients (sessions and heartbeat clients it is responsible for).
inline constexpr std::size_t clients_max = 200000;
/// Copies of other nodes' clients, bounded apart from clients_max so that local sessions cannot
/// crowd out replication (and the reverse).
inline constexpr std::size_t replica_clients_max = 800000;
/// Sessions one client process (one CAF connection) may hold at once.
inline constexpr std::size_t sessions_per_connection_max = 20000;
inline constexpr std::size_t services_max = 100000;
inline constexpr std::size_t instances_per_client_max = 1000;
inline constexpr std::size_t instances_per_service_max = 100000;
/// Instances one BatchRegisterRequest may carry (a bigger batch is refused, field "instances",
/// and changes nothing). The client's instances_per_client_max applies to the result as well.
inline constexpr std::size_t batch_register_instances_max = 1000;
inline constexpr std::size_t subscribers_per_service_max = 10000;
inline constexpr std::size_t subscriptions_per_client_max = 1000;
/// Service actors one client actor talks to directly, each resolved once through the gateway and
/// cached (actors/client/service_routes.hpp). Overflow: a cached route of a service where the
/// client holds nothing is forgotten (resolved again when needed); with none such, the update is
/// refused (LIMIT_EXCEEDED).
inline constexpr std::size_t client_service_routes_max = 4096;
/// Updates of one client for one service waiting while its route resolves. A resolution blocks
/// the client actor, so only the updates of one message wait (a rebuild: one put and a subscribe
/// per subscription). Overflow: the update is refused (LIMIT_EXCEEDED), or logged when no one
/// waits for it.
inline constexpr std::size_t client_route_updates_queued_max = subscriptions_per_client_max + 8;

// -- cluster (Distro) ----------------------------------------------------------
inline constexpr std::int64_t sync_delay_ms = 10;
inline constexpr std::int64_t sync_timeout_ms = 3000;
inline constexpr std::int64_t sync_retry_delay_ms = 1000;
inline constexpr std::size_t sync_batch_clients_max = 1000;
inline constexpr std::int64_t verify_interval_ms = 5000;
inline constexpr std::int64_t verify_timeout_ms = 3000;
inline constexpr int copy_expiry_verify_rounds = 3;
/// A verify round sends one 8-byte digest per bucket instead of every client's (id, revision), so
/// its size does not grow with the clients; only buckets whose digest differs are listed in full.
inline constexpr std::uint32_t verify_buckets = 1024;
/// The most buckets a received verify may name (a bound on the digests it carries and the reply).
inline constexpr std::uint32_t verify_buckets_max = 65536;
/// A copy whose source is alive and ready expires after copy_expiry_verify_rounds verifies from it
/// that do not list it; a source that sends no verify at all (it does not see this node alive)
/// leaves its copies for this many times copy_expiry_verify_rounds of the node's own expiry sweeps
/// (one per verify interval) after its last verify.
inline constexpr int copy_expiry_silent_source_factor = 4;
/// A SnapshotRequest (one chunk of a snapshot load) without result after this is failed, and the
/// load with it (it is retried from the start, see snapshot_retry_delay_ms).
inline constexpr std::int64_t snapshot_timeout_ms = 30000;
/// A snapshot travels in chunks of at most this many clients, and of at most about this many
/// instances (a chunk holds at least one client, and a client is never split), so that no message
/// grows with the cluster and the joining node applies one chunk while the next is on its way.
inline constexpr std::size_t snapshot_chunk_clients_max = 1000;
inline constexpr std::size_t snapshot_chunk_instances_max = 100000;
inline constexpr std::int64_t snapshot_retry_delay_ms = 1000;
/// A node whose peers are all down becomes ready after this wait.
inline constexpr std::int64_t lone_ready_wait_ms = 10000;
inline constexpr std::int64_t reconnect_backoff_min_ms = 200;
inline constexpr std::int64_t reconnect_backoff_max_ms = 5000;
inline constexpr int member_failures_until_down = 3;
inline constexpr std::int64_t member_check_interval_ms = 1000;
inline constexpr std::size_t members_max = 64;
/// Deletions (tombstones) a node keeps until every alive peer acknowledged them, so also the bound
/// on deletions pending per peer. Overflow: the oldest tombstone is dropped. Deletions pending for a
/// peer that goes DOWN are dropped at once, and none are queued for a DOWN peer. Either way a peer
/// that still holds the deleted client's copy removes it by copy expiry (no verify renews it), and a
/// restarted peer loads only live clients. Tombstones never count toward clients_max, which bounds
/// live clients (local and copies).
inline constexpr std::size_t tombstones_max = 50000;
/// Peer handshakes waiting for the dialer's proof (overflow: the handshake is refused), and how
/// long one may wait.
inline constexpr std::size_t pending_peer_handshakes_max = 64;
inline constexpr std::int64_t peer_handshake_timeout_ms = 10000;
/// Peer processes remembered as authenticated (overflow: the longest unseen is forgotten and must
/// authenticate again).
inline constexpr std::size_t trusted_peer_processes_max = 4 * members_max;
/// Longest HOST:PORT or node id a peer may announce; longer ones are refused.
inline constexpr std::size_t address_chars_max = 256;
/// Longest client id in peer data: a session id is "<node address>/<start ms>/<counter>", a
/// heartbeat client "ip:port#true". A longer one is dropped from the message.
inline constexpr std::size_t client_id_chars_max = address_chars_max + 64;
/// A client dropped from peer data (it breaks a rule of messages/validate.hpp) is logged at most
/// once per this interval per peer (the first at once); every drop is counted.
inline constexpr std::int64_t peer_drop_log_interval_ms = 10000;
/// The distro actor hands its per-peer counters (Status.distro_peers, /metrics) to the gateway at
/// most this often.
inline constexpr std::int64_t distro_counters_interval_ms = 1000;

// -- member sources (members_url, Nacos's address server) ----------------------
inline constexpr std::int64_t members_poll_interval_ms = 5000;
inline constexpr std::int64_t members_poll_interval_ms_min = 100;
/// At start the node retries members_url for this long, then exits.
inline constexpr std::int64_t members_start_wait_ms = 30000;
/// Delay between start-up attempts (shorter when the poll interval is).
inline constexpr std::int64_t members_start_retry_ms = 1000;
/// One fetch: connect within this, finish within the total (also the longest SIGTERM delay).
inline constexpr std::int64_t members_fetch_connect_timeout_ms = 1000;
inline constexpr std::int64_t members_fetch_timeout_ms = 2000;
/// A longer response is refused (64 members of 253-character names fit well).
inline constexpr std::size_t members_response_bytes_max = 64 * 1024;
inline constexpr std::size_t members_url_chars_max = 2048;

// -- HTTP front end (Nacos's Open API) ------------------------------------------
/// Nacos clients are configured with HOST:8848 (and derive the gRPC port as +1000).
inline constexpr std::uint16_t http_port = 8848;
/// The CAF port (`listen`) of the example configs and registryctl's default: HTTP's port - 1000,
/// where Nacos has its cluster port, clear of 8848 and of the gRPC ports 9848/9849 clients derive.
inline constexpr std::uint16_t caf_port = 7848;
/// Open connections; beyond it a new connection is closed at once. Above 10k idle clients.
inline constexpr std::int64_t http_connections_max = 16384;
inline constexpr std::int64_t http_header_bytes_max = 16 * 1024;
inline constexpr std::int64_t http_body_bytes_max = 1024 * 1024;
/// A request must arrive whole within this once its first byte came (slowloris bound).
inline constexpr std::int64_t http_request_timeout_ms = 10000;
/// An idle keep-alive connection is closed after this.
inline constexpr std::int64_t http_idle_timeout_ms = 60000;
/// I/O threads of the HTTP server (each serves many connections).
inline constexpr int http_threads = 1;
/// UDP push to Nacos 1.x subscribers: wait this long for the push-ack, resend at most this many
/// times (Nacos: once), then report the push failed to the service actor, which retries later.
inline constexpr std::int64_t udp_ack_timeout_ms = 1000;
inline constexpr int udp_retries_max = 1;
/// A UDP subscriber that queried nothing for this long is forgotten (clients poll every
/// cacheMillis, 10 s: three polls missed).
inline constexpr std::int64_t udp_subscriber_expiry_ms = 30000;
/// UDP subscriptions held (address and service); beyond it a subscribing query is answered
/// without subscribing.
inline constexpr std::size_t udp_subscriptions_max = 100000;

// -- gRPC front end (Nacos 2.x clients) -------------------------------------------
/// Nacos 2.x clients dial the HTTP port + 1000 (9848).
inline constexpr std::uint16_t grpc_port_offset = 1000;
/// Open gRPC connections (each is a session); beyond it a new stream is refused.
inline constexpr std::int64_t grpc_connections_max = 16384;
/// A message larger than this is refused by gRPC (Nacos: 10 MiB inbound).
inline constexpr std::int64_t grpc_message_bytes_max = 10 * 1024 * 1024;
/// A connection without any request or stream answer for this long is probed with a
/// ClientDetectionRequest (Nacos: 20 s); no answer within the detection timeout closes it.
inline constexpr std::int64_t grpc_idle_timeout_ms = 20000;
inline constexpr std::int64_t grpc_detection_timeout_ms = 5000;
/// A call the node cannot answer within this fails (above raft's write timeout: persistent writes).
inline constexpr std::int64_t grpc_request_timeout_ms = 5000;
/// A connection that answered ServerCheck but never opened its stream is forgotten after this.
inline constexpr std::int64_t grpc_setup_timeout_ms = 20000;
/// Unary calls of one connection waiting behind the one in progress; more get 503.
inline constexpr std::size_t grpc_calls_queued_max = 1024;
/// Server requests (pushes, probes, resets) queued on one stream; beyond it the connection is closed
/// (a client that reads nothing must not hold the node's memory).
inline constexpr std::size_t grpc_stream_writes_queued_max = 4096;
/// Instances in one BatchInstanceRequest.
inline constexpr std::size_t grpc_batch_instances_max = 1000;
/// Services a connection subscribes to (lastRefTime is tracked per subscribed service).
inline constexpr std::size_t grpc_subscriptions_per_connection_max = 10000;
/// ServiceInfo texts the gRPC API keeps for queries of unchanged services (one per service and
/// clusters asked; the cache starts over when full).
inline constexpr std::size_t grpc_service_info_cache_entries_max = 4096;
/// Nacos 2.x's cacheMillis of a pushed or queried ServiceInfo.
inline constexpr std::int64_t grpc_cache_millis = 10000;
// -- web console (actors/http/console_api) --------------------------------------
/// Services per console page; each listed service costs one detail query, so the page is bounded.
inline constexpr std::uint32_t console_page_size_default = 20;
inline constexpr std::uint32_t console_page_size_max = 100;
/// Service names one listing examines (a search filters them); beyond it the rest are not shown.
inline constexpr std::uint32_t console_services_scanned_max = 10000;
inline constexpr std::size_t console_search_chars_max = 512;
/// The pages poll their JSON endpoint this often (the live view).
inline constexpr std::int64_t console_poll_interval_ms = 1000;

// -- HTTP auth (Nacos style) ----------------------------------------------------
/// Access tokens live this long (Nacos: 18000 s).
inline constexpr std::int64_t auth_token_ttl_ms = 18000LL * 1000;
/// The token signing secret: there is no default, and a short one is refused.
inline constexpr std::size_t auth_secret_bytes_min = 32;
/// Logins (CAF login_atom) checked at once per node; more are refused (Argon2 is slow on purpose).
inline constexpr std::size_t auth_logins_in_flight_max = 8;
inline constexpr std::size_t auth_username_bytes_max = 256;
inline constexpr std::size_t auth_password_bytes_max = 1024;
/// CAF writes refused for lack of a valid token are logged at most once per this interval, with
/// their count.
inline constexpr std::int64_t auth_refusal_log_interval_ms = 10000;

// -- cluster secret --------------------------------------------------------------
inline constexpr std::size_t cluster_secret_bytes_min = 16;
inline constexpr std::size_t cluster_secret_bytes_max = 4096;

// -- persistent instances (Raft: actors/raft/) ----------------------------------
/// A follower that hears from no leader for a random time in [this, 2 x this) starts an election
/// (pre-vote first); a leader that heard from no quorum for this long steps down (check-quorum);
/// a voter that heard from its leader within this refuses to help depose it (leader lease).
inline constexpr std::int64_t raft_election_timeout_ms = 1000;
/// A leader sends heartbeats (and retries stalled probes) this often.
inline constexpr std::int64_t raft_heartbeat_interval_ms = 100;
/// A snapshot sent to a follower without answer after this is sent again.
inline constexpr std::int64_t raft_snapshot_timeout_ms = 30000;
/// Entries and bytes of one AppendEntries (at least one entry is always sent).
inline constexpr std::size_t raft_append_entries_max = 256;
inline constexpr std::size_t raft_append_bytes_max = 1024 * 1024;
/// AppendEntries in flight per follower while pipelining. Overflow: sending pauses until an answer
/// (or a heartbeat answer) frees a slot.
inline constexpr std::size_t raft_inflight_appends_max = 64;
/// The state machine is asked for a snapshot after this many applied entries; that many minus
/// the trailing entries are then dropped from the log (trailing ones stay for slow followers).
inline constexpr std::size_t raft_snapshot_threshold_entries = 1024;
inline constexpr std::size_t raft_snapshot_trailing_entries = 128;
/// A larger state is snapshotted less often: a snapshot is taken once the applied entries since
/// the last one reach the persistent instances divided by this (at least the threshold above, at
/// most raft_snapshot_interval_entries_max), so that writing snapshots costs about this many
/// instances per entry however large the state grows.
inline constexpr std::size_t raft_snapshot_instances_per_entry = 8;
/// The longest snapshot interval the state size can ask for (keeps the log far from full).
inline constexpr std::size_t raft_snapshot_interval_entries_max = 8192;
/// Entries a leader holds in memory (since the log start). Overflow: proposals are refused until a
/// snapshot compacts the log.
inline constexpr std::size_t raft_log_entries_max = 16384;
/// Entries a leader holds uncommitted. Overflow: proposals are refused.
inline constexpr std::size_t raft_uncommitted_entries_max = 1024;
/// One command; larger proposals are refused.
inline constexpr std::size_t raft_command_bytes_max = 1024 * 1024;
/// Persistent instances handed to the gateway (svc_put) and not yet answered. Overflow: the feeds
/// wait in the raft actor, newest state per (service, client) only.
inline constexpr std::size_t raft_feeds_in_flight_max = 256;
/// Writes handed to the disk and not yet durable. Overflow: proposals are refused and messages that
/// need a write are dropped (as if lost: the sender retries).
inline constexpr std::size_t raft_persists_in_flight_max = 256;
/// Replies held until the write they depend on is durable. Overflow: the newest is dropped.
inline constexpr std::size_t raft_held_messages_max = 1024;
/// A learner is promoted only when its log is at most this many entries behind the leader's.
inline constexpr std::size_t raft_catch_up_entries_max = 64;
/// Voters plus learners.
inline constexpr std::size_t raft_members_max = 16;
/// On disk: a log segment is closed once it holds this many bytes; the term/vote file is rewritten
/// once it holds this many records.
inline constexpr std::size_t raft_segment_bytes_max = 8 * 1024 * 1024;
inline constexpr std::size_t raft_vote_records_max = 1024;
/// A record (entry, snapshot) larger than this is taken as corruption when read.
inline constexpr std::size_t raft_record_bytes_max = 256 * 1024 * 1024;
/// A persistent write (register, deregister, update, health flip) not committed within this fails
/// with UNAVAILABLE ("no leader" or "no quorum"); the caller retries.
inline constexpr std::int64_t raft_write_timeout_ms = 5000;
/// Persistent writes waiting for their commit on one node. Overflow: refused with UNAVAILABLE.
inline constexpr std::size_t raft_pending_writes_max = 10000;
/// Services with a protect threshold written through Raft (PUT /nacos/v1/ns/service, the console).
/// A constant, not a setting: the state machine must refuse the same commands on every member.
inline constexpr std::size_t persistent_thresholds_max = services_max;
/// Membership changes (actors/raft/membership_plan.hpp): a learner that has not caught up within
/// this is removed again, and added again only after raft_learner_retry_ms; a refused change is
/// retried after raft_membership_retry_ms.
inline constexpr std::int64_t raft_catch_up_timeout_ms = 30000;
inline constexpr std::int64_t raft_learner_retry_ms = 30000;
inline constexpr std::int64_t raft_membership_retry_ms = 1000;
/// A leader that stops hands leadership over first, waiting at most this many election timeouts.
inline constexpr std::int64_t raft_handover_wait_election_timeouts = 1;
/// ... and never longer than this (the whole shutdown has 10 s).
inline constexpr std::int64_t raft_handover_wait_max_ms = 5000;
/// A starting node with data_dir reports ready once it applied what the leader had committed, or
/// after this many election timeouts without hearing from a leader.
inline constexpr std::int64_t raft_ready_wait_election_timeouts = 3;

// -- server-side health checks of persistent instances (actors/raft/health_checker) --
/// Check interval bounds per instance; the interval follows the response time (Nacos: TCP
/// 1000..5000 ms, factor 0.75).
inline constexpr std::int64_t health_check_interval_min_ms = 1000;
inline constexpr std::int64_t health_check_interval_max_ms = 5000;
/// One check (a TCP connect, an HTTP GET) fails after this.
inline constexpr std::int64_t health_check_timeout_ms = 500;
/// Checks running at once on one node. Overflow: a due check waits for the next round.
inline constexpr std::size_t health_checks_in_flight_max = 256;
/// Consecutive results in the other direction that flip an instance's health (Nacos checkTimes).
inline constexpr int health_check_flip_count = 3;
/// Longest HTTP check path.
inline constexpr std::size_t health_check_path_chars_max = 256;

// -- TLS (config/tls.hpp) -------------------------------------------------------
/// Largest certificate, key or CA file accepted (a system CA bundle is about 200 KiB).
inline constexpr std::size_t tls_file_bytes_max = 1024 * 1024;
/// Longest key passphrase: OpenSSL hands CAF's passphrase callback a 1024-byte buffer
/// (PEM_BUFSIZE), which CAF fills with a terminating NUL, so a longer one would be cut silently.
inline constexpr std::size_t tls_key_passphrase_bytes_max = 1023;

// -- relations ---------------------------------------------------------------
static_assert(raft_election_timeout_ms >= 3 * raft_heartbeat_interval_ms);
static_assert(snapshot_chunk_clients_max >= 1 && snapshot_chunk_instances_max >= 1);
// A chunk always fits one client of the largest size whole.
static_assert(snapshot_chunk_instances_max >= instances_per_client_max);
static_assert(raft_write_timeout_ms > raft_election_timeout_ms);
static_assert(health_check_interval_min_ms <= health_check_interval_max_ms);
static_assert(health_check_timeout_ms < health_check_interval_max_ms);
static_assert(raft_snapshot_timeout_ms > raft_heartbeat_interval_ms);
static_assert(raft_snapshot_trailing_entries < raft_snapshot_threshold_entries);
static_assert(raft_snapshot_interval_entries_max >= raft_snapshot_threshold_entries);
static_assert(raft_snapshot_interval_entries_max + raft_uncommitted_entries_max
              < raft_log_entries_max);
static_assert(raft_snapshot_instances_per_entry > 0);
static_assert(raft_snapshot_threshold_entries + raft_uncommitted_entries_max < raft_log_entries_max);
static_assert(raft_command_bytes_max <= raft_append_bytes_max);
static_assert(raft_append_bytes_max < raft_record_bytes_max);
static_assert(raft_inflight_appends_max >= 1 && raft_append_entries_max >= 1);
static_assert(raft_catch_up_entries_max < raft_uncommitted_entries_max);
static_assert(beat_unhealthy_timeout_ms > beat_interval_ms);
static_assert(beat_delete_timeout_ms >= beat_unhealthy_timeout_ms);
static_assert(beat_age_ms_max > beat_delete_timeout_ms);
static_assert(beat_interval_ms + beat_unhealthy_timeout_ms / beat_reports_per_unhealthy_timeout
              < beat_unhealthy_timeout_ms);
static_assert(caf_connection_timeout_ms > caf_heartbeat_interval_ms);
static_assert(page_size_default <= page_size_max);
static_assert(client_service_routes_max > instances_per_client_max + subscriptions_per_client_max);
static_assert(client_route_updates_queued_max > subscriptions_per_client_max + 1);
static_assert(reconnect_backoff_min_ms <= reconnect_backoff_max_ms);
static_assert(members_fetch_connect_timeout_ms <= members_fetch_timeout_ms);
static_assert(members_poll_interval_ms >= members_poll_interval_ms_min);
static_assert(members_max * 260 <= members_response_bytes_max); // 253-char host, ':', port, newline
static_assert(cluster_secret_bytes_min <= cluster_secret_bytes_max);
static_assert(client_id_chars_max >= ip_chars_max + 1 + 5 + 5); // "ip:port#true"
static_assert(push_drop_after_ms > push_timeout_ms + push_retry_delay_ms);
static_assert(udp_ack_timeout_ms * (udp_retries_max + 1) < push_timeout_ms);
static_assert(http_port != caf_port);
static_assert(log_files_max >= 1 && log_file_size_bytes_max >= 1024);

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
