#pragma once
/// The node's typed configuration, loaded once from YAML and checked strictly.
///
/// Precedence: defaults (config/defaults.hpp) < the YAML file < command-line flags (registryd
/// --log-level). Unknown keys, wrong types, bad addresses, impossible relations and missing files are
/// errors naming the file, the key and the problem; the node does not start then.
///
/// Every key but `listen` and one of `members` / `members_url` is optional.
///
/// YAML (durations are integers in ms; an empty string means "not set"):
///   listen: 127.0.0.1:7848            # HOST:PORT this node publishes on (CAF: peers, registryctl)
///   members: [127.0.0.1:7848]         # every node of the cluster, this one included
///   members_url: ""                   # instead of members: http://HOST:PORT/PATH, one HOST:PORT a line
///   members_poll_interval_ms: 5000    # how often members_url is fetched again
///   members_start_wait_ms: 30000      # how long the start retries members_url before giving up
///   cluster_name: default             # peers with another name are refused
///   cluster_secret: ""                # shared secret of the members, at least 16 bytes
///   cluster_secret_file: ""           # instead of cluster_secret: a file holding it (mode 0600)
///   data_dir: ""                      # Raft's log, vote and snapshots; "" = no persistent instances
///   raft:                             # persistent instances (the node id is `listen`)
///     election_timeout_ms: 1000       # >= 3 x heartbeat_interval_ms
///     heartbeat_interval_ms: 100
///     snapshot_threshold_entries: 1024 # applied entries between snapshots
///     snapshot_trailing_entries: 128  # entries kept behind a snapshot (< threshold)
///     write_timeout_ms: 5000          # a persistent write not committed within this fails
///   health_check:                     # server-side checks of persistent instances
///     interval_min_ms: 1000
///     interval_max_ms: 5000
///     timeout_ms: 500                 # < interval_max_ms
///     in_flight_max: 256
///   tls:                              # TLS on every CAF link (peers and clients); off when absent
///     anonymous: false                # true: TLS without certificates (encrypted, not authenticated)
///     certificate: ""                 # PEM certificate (chain) of this node; with key and ca_file
///     key: ""                         # its PEM private key (mode 0600)
///     key_passphrase_file: ""         # a file holding the key's passphrase when it is encrypted
///     ca_file: ""                     # PEM CA certificates that peers' and clients' certificates chain to
///   log:
///     level: info                     # trace, debug, info, warn, error, off
///     file: ""                        # empty = stderr
///     file_size_bytes_max: 104857600  # the file rotates at this size
///     files_max: 5                    # rotated files kept (FILE.1 ... FILE.N)
///     queue_lines_max: 8192           # lines queued for the writer; overflow drops the oldest
///     flush_interval_ms: 1000         # queued lines reach the file at least this often
///   heartbeat:                        # heartbeat clients (ip:port), Nacos 1.x semantics
///     interval_ms: 5000
///     unhealthy_timeout_ms: 15000
///     delete_timeout_ms: 30000
///     check_interval_ms: 1000
///   session:
///     caf_heartbeat_interval_ms: 1000 # CAF heartbeats (same on clients)
///     caf_connection_timeout_ms: 5000 # a frozen peer/client is dropped after this
///   push:
///     enabled: true                   # false: no pushes (subscribers rely on their update task)
///     merge_window_ms: 20
///     timeout_ms: 3000
///     retry_delay_ms: 1000
///     drop_after_ms: 60000            # a subscriber stalled this long is dropped and told
///   discovery:
///     cache_millis: 10000
///     protection_enabled: true        # false switches healthy protection off everywhere
///     protect_threshold: 0.0          # default per service, 0..1
///     service_thresholds:             # per service: "GROUP@@SERVICE" or "NS##GROUP@@SERVICE": 0..1 or -1 (off)
///       DEFAULT_GROUP@@orders: 0.5
///   limits:
///     clients_max: 200000
///     replica_clients_max: 800000
///     sessions_per_connection_max: 20000
///     services_max: 100000
///     instances_per_client_max: 1000
///     instances_per_service_max: 100000
///     subscribers_per_service_max: 10000
///   http:                             # Nacos's HTTP Open API and UDP push
///     listen: ""                      # HOST:PORT; "" = listen's host, port 8848; "off" = none; port 0 = any
///     connections_max: 16384
///     header_bytes_max: 16384
///     body_bytes_max: 1048576
///     request_timeout_ms: 10000       # a started request must arrive whole within this
///     idle_timeout_ms: 60000          # idle keep-alive connections are closed after this
///     threads: 1
///     udp_ack_timeout_ms: 1000        # a UDP push is resent when not acknowledged within this
///     udp_retries_max: 1
///     udp_subscriber_expiry_ms: 30000 # a UDP subscriber that stops querying is forgotten
///   grpc:                             # Nacos 2.x clients (gRPC); each connection is a session
///     listen: ""                      # HOST:PORT; "" = http.listen's host and port + 1000; "off" = none
///     connections_max: 16384
///     request_timeout_ms: 5000        # a call the node cannot answer within this fails
///     idle_timeout_ms: 20000          # an idle connection is probed (ClientDetectionRequest)
///     detection_timeout_ms: 5000      # ... and closed when the probe is not answered within this
///     setup_timeout_ms: 20000         # a peer that never opens its stream is forgotten after this
///   auth:                             # Nacos-style auth of the HTTP API (off by default)
///     enabled: false
///     secret: ""                      # token signing secret, >= 32 bytes, required when enabled
///     users_file: ""                  # USER:HASH lines (registryd --hash-password), required when enabled
///     token_ttl_ms: 18000000          # access tokens expire after this
///   distro:
///     sync_delay_ms: 10
///     sync_timeout_ms: 3000
///     sync_retry_delay_ms: 1000
///     verify_interval_ms: 5000
///     verify_timeout_ms: 3000
///     copy_expiry_verify_rounds: 3
///     snapshot_timeout_ms: 30000
///     snapshot_retry_delay_ms: 1000
///     lone_ready_wait_ms: 10000
///     reconnect_backoff_min_ms: 200
///     reconnect_backoff_max_ms: 5000
///     member_failures_until_down: 3

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "config/defaults.hpp"
#include "config/tls.hpp"

namespace registry {

/// HOST:PORT. Host is an IPv4 address, "localhost" or a DNS name; port 1..65535.
struct host_port {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const { return host + ":" + std::to_string(port); }
  friend bool operator==(const host_port& a, const host_port& b) {
    return a.host == b.host && a.port == b.port;
  }
  friend bool operator<(const host_port& a, const host_port& b) {
    return a.host < b.host || (a.host == b.host && a.port < b.port);
  }
};

/// Parses HOST:PORT; on error returns a message such as "port 70000 is out of range 1..65535".
std::variant<host_port, std::string> parse_host_port(const std::string& text);

struct node_config {
  std::string source_file; ///< the file it came from, for messages
  host_port listen;
  /// Sorted, unique, includes `listen`. Empty after loading when `members_url` is set: the node
  /// fills it from the address server before it starts.
  std::vector<host_port> members;
  /// The address server ("" = none): an http:// URL answering one HOST:PORT per line.
  std::string members_url;
  std::int64_t members_poll_interval_ms = defaults::members_poll_interval_ms;
  std::int64_t members_start_wait_ms = defaults::members_start_wait_ms;
  std::string cluster_name = "default";
  /// The members' shared secret ("" = none), from `cluster_secret` or `cluster_secret_file`. Never
  /// log it; log `cluster_secret_source` instead.
  std::string cluster_secret;
  /// Where the secret came from: "" (none), "cluster_secret" or the file's path.
  std::string cluster_secret_source;
  /// TLS on every CAF link (config/tls.hpp): off, anonymous (`tls.anonymous`) or certificate mode
  /// (`tls.certificate`, `tls.key`, `tls.ca_file`). Paths are resolved from the config file's
  /// directory and the files checked at load; the passphrase comes from `tls.key_passphrase_file`
  /// (never log it).
  tls_settings tls;
  std::string tls_key_passphrase_file; ///< "" = the key is not encrypted
  /// Things worth a warning that do not stop the start (e.g. a secret file others can read); the
  /// node logs each at start.
  std::vector<std::string> warnings;
  /// Raft's directory ("" = none: persistent instances are refused). A relative path is resolved
  /// from the config file's directory.
  std::string data_dir;

  /// Raft for persistent instances (actors/raft/). This node's Raft id is `listen`.
  struct raft_t {
    std::int64_t election_timeout_ms = defaults::raft_election_timeout_ms;
    std::int64_t heartbeat_interval_ms = defaults::raft_heartbeat_interval_ms;
    std::int64_t snapshot_threshold_entries =
      static_cast<std::int64_t>(defaults::raft_snapshot_threshold_entries);
    std::int64_t snapshot_trailing_entries =
      static_cast<std::int64_t>(defaults::raft_snapshot_trailing_entries);
    std::int64_t write_timeout_ms = defaults::raft_write_timeout_ms;
  } raft;

  /// Server-side health checks of persistent instances.
  struct health_check_t {
    std::int64_t interval_min_ms = defaults::health_check_interval_min_ms;
    std::int64_t interval_max_ms = defaults::health_check_interval_max_ms;
    std::int64_t timeout_ms = defaults::health_check_timeout_ms;
    std::int64_t in_flight_max = static_cast<std::int64_t>(defaults::health_checks_in_flight_max);
  } health_check;

  std::string log_level = "info";
  std::string log_file;

  struct log_t {
    std::int64_t file_size_bytes_max = defaults::log_file_size_bytes_max;
    int files_max = defaults::log_files_max;
    std::int64_t queue_lines_max = defaults::log_queue_lines_max;
    std::int64_t flush_interval_ms = defaults::log_flush_interval_ms;
  } log;

  struct heartbeat_t {
    std::int64_t interval_ms = defaults::beat_interval_ms;
    std::int64_t unhealthy_timeout_ms = defaults::beat_unhealthy_timeout_ms;
    std::int64_t delete_timeout_ms = defaults::beat_delete_timeout_ms;
    std::int64_t check_interval_ms = defaults::beat_check_interval_ms;
  } heartbeat;

  struct session_t {
    std::int64_t caf_heartbeat_interval_ms = defaults::caf_heartbeat_interval_ms;
    std::int64_t caf_connection_timeout_ms = defaults::caf_connection_timeout_ms;
  } session;

  struct push_t {
    bool enabled = true;
    std::int64_t merge_window_ms = defaults::push_merge_window_ms;
    std::int64_t timeout_ms = defaults::push_timeout_ms;
    std::int64_t retry_delay_ms = defaults::push_retry_delay_ms;
    std::int64_t drop_after_ms = defaults::push_drop_after_ms;
  } push;

  struct discovery_t {
    std::int64_t cache_millis = defaults::cache_millis;
    bool protection_enabled = true;
    double protect_threshold = defaults::protect_threshold;
    /// Keys normalised to "NS##GROUP@@SERVICE" (namespace "public" when not given).
    std::map<std::string, double> service_thresholds;
  } discovery;

  struct limits_t {
    std::size_t clients_max = defaults::clients_max;
    std::size_t replica_clients_max = defaults::replica_clients_max;
    std::size_t sessions_per_connection_max = defaults::sessions_per_connection_max;
    std::size_t services_max = defaults::services_max;
    std::size_t instances_per_client_max = defaults::instances_per_client_max;
    std::size_t instances_per_service_max = defaults::instances_per_service_max;
    std::size_t subscribers_per_service_max = defaults::subscribers_per_service_max;
  } limits;

  /// Nacos's HTTP Open API. `listen` "" (or absent) = the host of `listen` and port 8848; "off" =
  /// no HTTP; port 0 = any free port (the node reports the bound address in status).
  struct http_t {
    bool enabled = true;
    host_port listen;
    std::int64_t connections_max = defaults::http_connections_max;
    std::int64_t header_bytes_max = defaults::http_header_bytes_max;
    std::int64_t body_bytes_max = defaults::http_body_bytes_max;
    std::int64_t request_timeout_ms = defaults::http_request_timeout_ms;
    std::int64_t idle_timeout_ms = defaults::http_idle_timeout_ms;
    int threads = defaults::http_threads;
    std::int64_t udp_ack_timeout_ms = defaults::udp_ack_timeout_ms;
    int udp_retries_max = defaults::udp_retries_max;
    std::int64_t udp_subscriber_expiry_ms = defaults::udp_subscriber_expiry_ms;
  } http;
  /// Nacos 2.x's gRPC API. `listen` "" = the host of http.listen (or listen) and the HTTP port +
  /// 1000, as Nacos clients derive it; "off" = no gRPC; port 0 = any free port.
  struct grpc_t {
    bool enabled = true;
    host_port listen;
    std::int64_t connections_max = defaults::grpc_connections_max;
    std::int64_t request_timeout_ms = defaults::grpc_request_timeout_ms;
    std::int64_t idle_timeout_ms = defaults::grpc_idle_timeout_ms;
    std::int64_t detection_timeout_ms = defaults::grpc_detection_timeout_ms;
    std::int64_t setup_timeout_ms = defaults::grpc_setup_timeout_ms;
  } grpc;
  /// Nacos-style auth of the HTTP API (off by default, as in Nacos). With `enabled`, `secret`
  /// (>= 32 bytes; there is no default) and `users_file` (USER:HASH lines from registryd
  /// --hash-password, relative to the config file's directory) are required.
  struct auth_t {
    bool enabled = false;
    std::string secret;
    std::string users_file;
    std::int64_t token_ttl_ms = defaults::auth_token_ttl_ms;
  } auth;
  struct distro_t {
    std::int64_t sync_delay_ms = defaults::sync_delay_ms;
    std::int64_t sync_timeout_ms = defaults::sync_timeout_ms;
    std::int64_t sync_retry_delay_ms = defaults::sync_retry_delay_ms;
    std::int64_t verify_interval_ms = defaults::verify_interval_ms;
    std::int64_t verify_timeout_ms = defaults::verify_timeout_ms;
    int copy_expiry_verify_rounds = defaults::copy_expiry_verify_rounds;
    std::int64_t snapshot_timeout_ms = defaults::snapshot_timeout_ms;
    std::int64_t snapshot_retry_delay_ms = defaults::snapshot_retry_delay_ms;
    std::int64_t lone_ready_wait_ms = defaults::lone_ready_wait_ms;
    std::int64_t reconnect_backoff_min_ms = defaults::reconnect_backoff_min_ms;
    std::int64_t reconnect_backoff_max_ms = defaults::reconnect_backoff_max_ms;
    int member_failures_until_down = defaults::member_failures_until_down;
  } distro;

  /// True when persistent instances (Raft) are on: data_dir is set.
  bool raft_enabled() const { return !data_dir.empty(); }

  /// True when `members` holds only `listen`.
  bool standalone() const { return members.size() == 1 && members.front() == listen; }

  /// The threshold for a service: -1 (off) when protection is disabled, else the per-service value
  /// or the default.
  double threshold_for(const std::string& namespace_id, const std::string& grouped_name) const;
};

/// Loads and validates `path`. On error returns "FILE: KEY: PROBLEM" (e.g.
/// "node.yaml: heartbeat.interval_ms: expected an integer, got 'abc'").
std::variant<node_config, std::string> load_node_config(const std::string& path);

/// Same, from YAML text (`source_name` stands in for the file name in messages).
std::variant<node_config, std::string> parse_node_config(const std::string& yaml_text,
                                                         const std::string& source_name);

/// Relations between values (timeouts > intervals, listen in members, ...); "" when fine.
std::string validate(const node_config& cfg);

// -- member rules, shared by `members` and the address server ----------------------

/// "" when peers can connect to `member` (a host, a port, not 0.0.0.0), else the problem.
std::string check_member_address(const host_port& member);

/// "" when `count` members are within defaults::members_max, else the problem.
std::string check_member_count(std::size_t count);

/// "" when `listen` is among the sorted `members`, else the problem listing them.
std::string check_listen_in_members(const std::vector<host_port>& members, const host_port& listen);

/// "" when `url` is http://HOST[:PORT]/PATH (no user, query or fragment), else the problem.
std::string check_members_url(const std::string& url);

} // namespace registry
