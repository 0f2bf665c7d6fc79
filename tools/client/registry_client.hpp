#pragma once
/// The registry client library: what applications link to register and discover services.
///
/// No CAF type appears here; the library runs its own small CAF system inside. Behaviour follows the
/// Nacos client described in the second seed document:
/// - reads go to failover files first (when the failover switch is on), then to the local cache, then
///   to a node (a miss subscribes and queries);
/// - every subscribed service has an update task that re-queries at `update_interval`, backing off as
///   min(interval << failures, 60 s) on errors and resetting after a success;
/// - nodes push changes of subscribed services; listeners fire only on real changes, in order, on the
///   library's own thread;
/// - every change of the cache is written to `cache_dir` as one JSON file per service;
/// - the client holds one session with one node from `servers`; when that node fails it moves to the
///   next one and re-registers its instances and re-subscribes (redo).
/// - reads honour the failover switch (`<cache_dir>/failover/...`, checked every
///   failover_check_interval and at construction): while it is on, get_service, select_instances,
///   query and subscribe's initial state come from the failover files when they hold the service, even
///   with every node down.
/// Errors come back as `registry::client::error` exceptions with clear messages, never as silent
/// empty results.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/defaults.hpp"
#include "messages/model.hpp"

namespace registry::client {

/// What went wrong, as a category the caller can branch on.
enum class error_code {
  invalid_argument, ///< a field is bad (see error::field)
  not_found,
  limit_exceeded,
  unavailable,      ///< no node answered (within the timeout), or the node is not ready
  unauthorized,     ///< auth is on at the node: no token, a bad or expired one, or a bad password
  refused,          ///< the node refused for another reason
};

class error : public std::runtime_error {
public:
  error(error_code code, std::string field, const std::string& message, bool from_node = false)
    : std::runtime_error(message), code_(code), field_(std::move(field)), from_node_(from_node) {}
  error_code code() const noexcept { return code_; }
  /// The request field the node complained about ("" when none).
  const std::string& field() const noexcept { return field_; }
  /// True when a node answered with this error; false when the library gave up by itself (no node
  /// reachable, timeout, bad argument caught locally).
  bool from_node() const noexcept { return from_node_; }

private:
  error_code code_;
  std::string field_;
  bool from_node_;
};

/// The session of the client moved: opened (first time or again, after a loss), lost, or redone:
/// after a re-opened session, every registration and subscription was acknowledged by the node
/// (redo; failed redo requests are retried every options.redo_retry_interval until they succeed).
struct session_event {
  enum kind_t { opened, lost, redone } kind = opened;
  std::string node;   ///< the node's address (host:port as in options.servers)
  std::string reason; ///< why it was lost ("" for opened)
  bool first = false; ///< opened for the first time
};

/// TLS on the links to the nodes (README, TLS). The nodes' `tls` section decides the mode and every
/// client must match it: for anonymous TLS set `enabled` alone; for certificate mode give
/// ca_file, certificate and key (CAF's openssl module authenticates both sides, so the node asks
/// this client for a certificate its CA file accepts). Any file implies `enabled`. The files are
/// checked when the client is constructed and kept open while it lives.
struct tls_options {
  bool enabled = false;
  std::string ca_file;        ///< PEM CA certificates the node's certificate must chain to
  std::string certificate;    ///< PEM certificate (chain) of this client
  std::string key;            ///< its PEM private key
  std::string key_passphrase; ///< decrypts `key` ("" = not encrypted)
};

struct options {
  /// Nodes as "host:port"; the client connects to the first reachable one, in order.
  std::vector<std::string> servers;
  std::string namespace_id = "public";
  std::string client_name = "registry-client";
  std::chrono::milliseconds request_timeout{3000};
  std::chrono::milliseconds connect_timeout{2000};
  /// Update task period for subscribed services; the backoff ceiling is update_backoff_max.
  std::chrono::milliseconds update_interval{10000};
  std::chrono::milliseconds update_backoff_max{60000};
  /// How often the failover switch file is checked.
  std::chrono::milliseconds failover_check_interval{5000};
  /// How often a lost session is retried and redo is run.
  std::chrono::milliseconds redo_interval{500};
  /// A redo request (re-register, re-subscribe on a new session) the node refused or did not answer
  /// is retried this often, with the failure written to stderr, until it succeeds.
  std::chrono::milliseconds redo_retry_interval{defaults::client_redo_retry_interval_ms};
  /// Disk cache directory ("" = none). Failover files live in `<cache_dir>/failover/`, the switch is
  /// `<cache_dir>/failover/00-00---000-VIPSRV_FAILOVER_SWITCH-000---00-00` holding 1 (on) or 0 (off).
  std::string cache_dir;
  /// CAF heartbeats; must match the nodes' session.caf_* settings.
  std::chrono::milliseconds caf_heartbeat_interval{1000};
  std::chrono::milliseconds caf_connection_timeout{5000};
  /// Validate names and instances locally (messages/validate.hpp) before contacting a node; bad input
  /// then throws error(invalid_argument) without a request. Off: the node decides (registryctl's hidden
  /// --no-local-check, to prove that the node refuses bad input itself).
  bool check_locally = true;
  /// Called on the library's event thread whenever the session opens or is lost (never on the caller's
  /// thread). Optional.
  std::function<void(const session_event&)> on_session;
  /// TLS to the nodes; off by default (plain TCP).
  tls_options tls;
  /// Auth on at the nodes (auth.enabled): sessions and heartbeat writes need an access token.
  /// Either give one (`access_token`, e.g. from POST /nacos/v1/auth/login), or a user and password
  /// that the library trades for tokens at the node (and renews at half their life).
  std::string access_token;
  std::string username;
  std::string password;
};

/// A service list page.
struct service_list {
  std::uint32_t count = 0;
  std::vector<std::string> services;
};

struct member_state {
  std::string address; ///< as written in the node's member list
  std::string state;   ///< UP, SUSPICIOUS, DOWN, SELF, CONFLICT
  std::string node;    ///< the listen address the node at `address` announced ("" = not yet)
  std::string problem; ///< why a CONFLICT member is left out
};

struct node_status {
  std::string address;
  std::string cluster_name;
  std::string version;
  bool ready = false;
  std::string security; ///< standalone, authenticated cluster or unauthenticated cluster
  std::string http_address; ///< HOST:PORT of the node's HTTP Open API (empty: none)
  std::string grpc_address; ///< HOST:PORT of the node's gRPC API (Nacos 2.x; empty: none)
  /// The transport of the node's links (peers and clients): off, anonymous or certificate ("" from
  /// a node that predates TLS).
  std::string tls;
  std::vector<member_state> members;
  std::uint64_t clients = 0;
  std::uint64_t services = 0;
  std::uint64_t instances = 0;
  std::uint64_t subscribers = 0;
  /// Distro traffic with each peer since the node's distro actor started.
  struct distro_peer {
    std::string peer;
    std::uint64_t syncs_ok = 0, syncs_failed = 0, verifies_ok = 0, verifies_failed = 0,
                  repairs = 0, syncs_received = 0, verifies_received = 0;
  };
  std::vector<distro_peer> distro_peers;
  /// Raft (persistent instances): this node's role ("off" without data_dir) and its leader.
  std::string raft_role;
  std::string raft_leader;
};

/// One member as the node's Raft sees it (match and next index known to the leader only).
struct raft_member {
  std::string id;
  bool voter = false;
  std::uint64_t match_index = 0;
  std::uint64_t next_index = 0;
  std::string state;
};

/// A node's Raft state (registryctl raft).
struct raft_status {
  bool enabled = false;
  std::string id;
  std::string role;
  std::uint64_t term = 0;
  std::string leader;
  std::uint64_t commit_index = 0;
  std::uint64_t applied_index = 0;
  std::uint64_t last_index = 0;
  std::uint64_t snapshot_index = 0;
  std::uint64_t persistent_instances = 0;
  std::string data_dir;
  std::vector<raft_member> members;
};

/// A change of a subscribed service: the new state and what differs from the previous one.
struct change_event {
  service_info info;
  std::vector<instance> added;
  std::vector<instance> removed;
  std::vector<instance> modified; ///< same identity, other fields changed (new values)
};

using listener = std::function<void(const change_event&)>;
using listener_id = std::uint64_t;

class naming_client {
public:
  /// Throws error(invalid_argument) on bad options. Does not connect yet: the first call that needs a
  /// node connects (and throws error(unavailable) if no node answers).
  explicit naming_client(options opts);
  ~naming_client(); ///< deregisters (clean close) and stops the library's threads

  naming_client(const naming_client&) = delete;
  naming_client& operator=(const naming_client&) = delete;

  // -- session-based registration (the instance lives while this client lives) -----------------

  /// With x.ephemeral = false the instance is persistent: it takes the persistent path
  /// (register_persistent_instance with a TCP check), not the session.
  void register_instance(const std::string& service, const std::string& group, const instance& x);
  /// Registers `xs` in the service as one batch through the session: the client's instances in the
  /// service become exactly `xs` (Nacos's batchRegisterInstance; those it held there and `xs`
  /// leaves out are removed). One change at the node (one push to each subscriber), all or nothing:
  /// a bad instance throws error(invalid_argument) naming it by position ("instances[3].port") and
  /// nothing changes. 1..defaults::batch_register_instances_max ephemeral instances, each once.
  /// Redone after a reconnect like register_instance (as one batch per service).
  void register_instances(const std::string& service, const std::string& group,
                          const std::vector<instance>& xs);
  /// With x.ephemeral = false: deregister_persistent_instance.
  void deregister_instance(const std::string& service, const std::string& group,
                           const instance& x);

  // -- persistent instances (through Raft; they never expire and belong to no session) --------

  /// Answers once the write is committed; a write without a leader or quorum fails with
  /// error(unavailable) (never a silent success). `check`: "tcp", "none" or "http:/PATH".
  void register_persistent_instance(const std::string& service, const std::string& group,
                                    instance x, const std::string& check = "tcp");
  void deregister_persistent_instance(const std::string& service, const std::string& group,
                                      const instance& x);

  // -- heartbeat clients (Nacos 1.x: the instance expires unless beats arrive) -------------------

  void register_heartbeat_instance(const std::string& service, const std::string& group,
                                   const instance& x);
  void beat(const std::string& service, const std::string& group, const instance& x);
  void deregister_heartbeat_instance(const std::string& service, const std::string& group,
                                     const instance& x);

  // -- discovery -------------------------------------------------------------------------------

  /// All instances (as the node returns them). With subscribe, the service is subscribed and later
  /// reads come from the cache.
  service_info get_service(const std::string& service, const std::string& group,
                           const std::vector<std::string>& clusters = {}, bool subscribe = true);

  /// A direct query with the node's healthy-only filter, never cached.
  service_info query(const std::string& service, const std::string& group,
                     const std::vector<std::string>& clusters, bool healthy_only);

  /// The seed's selection: keeps instances with healthy == `healthy`, enabled and weight > 0.
  std::vector<instance> select_instances(const std::string& service, const std::string& group,
                                         const std::vector<std::string>& clusters, bool healthy,
                                         bool subscribe = true);

  service_list list_services(const std::string& group, std::uint32_t page, std::uint32_t size);

  /// Subscribes and calls `fn` with the current state at once, then on every real change.
  listener_id subscribe(const std::string& service, const std::string& group,
                        const std::vector<std::string>& clusters, listener fn);
  /// Removes a listener (no call reaches it after this returns, except one already running). The
  /// last listener of a service ends its subscription, update task included, as in Nacos; a later
  /// read with subscribe subscribes again.
  void unsubscribe(listener_id id);

  // -- operations ------------------------------------------------------------------------------

  node_status status();
  std::vector<member_state> members();
  /// The connected node's Raft state.
  raft_status raft();
  /// Asks the connected node, the Raft leader, to hand leadership to voter `target` ("": the most
  /// up-to-date one); returns once it stepped down (the node's detail). Throws like a write.
  std::string raft_transfer(const std::string& target);

  /// The node this client is connected to now ("" when none).
  std::string connected_node() const;
  /// True while the failover switch is on.
  bool failover_active() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

/// The seed's filter, exposed for tests and callers holding a service_info.
std::vector<instance> select_healthy(const std::vector<instance>& hosts, bool healthy);

/// Diff of two host lists by identity (ip, port, cluster).
change_event diff_hosts(const service_info& before, const service_info& after);

/// Nacos's ServiceInfo JSON (name GROUP@@SERVICE, groupName, clusters, cacheMillis, lastRefTime,
/// reachProtectionThreshold, hosts[] with instanceId, ip, port, weight, healthy, enabled, ephemeral,
/// clusterName, serviceName, metadata), compact when indent < 0: the disk cache's file format.
std::string to_json(const service_info& x, int indent = -1);

/// Turns the failover switch `<cache_dir>/failover/00-00---000-VIPSRV_FAILOVER_SWITCH-000---00-00` on
/// ("1") or off ("0"). Throws error(invalid_argument, "cache_dir") when it cannot be written.
void write_failover_switch(const std::string& cache_dir, bool on);

} // namespace registry::client
