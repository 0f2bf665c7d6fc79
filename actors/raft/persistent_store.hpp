#pragma once
/// The state machine of persistent instances (no CAF): what every node applies from the Raft log,
/// in log order, with Nacos 2.x's semantics (reference/raft.md §3.3).
///
/// * REGISTER puts an instance into its service (replacing one with the same ip, port and cluster).
///   A persistent instance never expires and belongs to no session.
/// * DEREGISTER removes it; a missing one is not an error ("no such instance").
/// * HEALTH sets `healthy` of an instance that exists, and only then: a late health flip cannot
///   bring back a deregistered instance (Nacos #8653).
/// * UPDATE sets weight, enabled and metadata of an instance that exists (Nacos's PUT /instance);
///   its health (the checks') and check stay; a missing one is refused ("instance not exist").
/// * THRESHOLD sets a service's protect threshold (0..1, or -1: protection off). It is a setting of
///   the service, kept while the service has no instances, and at most
///   defaults::persistent_thresholds_max services hold one.
/// Apply is deterministic and total: a malformed command is refused with a reason and changes
/// nothing (it never wedges the log, unlike Nacos #6877).
///
/// The raft actor feeds the service actors from here exactly as client actors feed them: per
/// (service, client) the whole list of instances, with the Nacos client id "ip:port#false".

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "messages/model.hpp"

namespace registry::raft {

/// How the responsible node checks a persistent instance.
struct health_check_spec {
  enum class kind : std::uint8_t { tcp = 0, http = 1, none = 2 };
  kind type = kind::tcp;
  std::string path; ///< http: starts with '/'

  friend bool operator==(const health_check_spec& x, const health_check_spec& y) {
    return x.type == y.type && x.path == y.path;
  }
};

/// "tcp", "http:/PATH", "none".
std::string to_string(const health_check_spec& x);

/// Parses the CLI form ("tcp", "none", "http:/PATH"); nothing for anything else.
std::optional<health_check_spec> parse_health_check(const std::string& text);

/// One command of the log.
struct persistent_op {
  enum class kind : std::uint8_t { reg = 1, dereg = 2, health = 3, threshold = 4, update = 5 };
  kind what = kind::reg;
  service_key service;
  instance inst; ///< dereg, health and update: ip, port and cluster name the instance
  health_check_spec check;
  double protect_threshold = 0.0; ///< threshold
};

/// Why a protect threshold cannot be stored, or nothing: 0..1, or -1 (off).
std::optional<std::string> check_protect_threshold(double value);

/// Bytes of a command (PersistentOp in messages/raft.proto) and back; decode gives nothing for
/// malformed bytes or an unknown kind.
std::string encode(const persistent_op& x);
std::optional<persistent_op> decode(const std::string& bytes);

class persistent_store {
public:
  // -- member types -------------------------------------------------------------------

  struct record {
    instance inst;
    health_check_spec check;
    /// The REGISTER PersistentOp that recreates this record, encoded: kept up to date on every
    /// change so that a snapshot only concatenates bytes (its cost stays a copy as the state grows).
    std::string encoded;
  };

  /// What one apply did.
  struct apply_result {
    bool ok = true;
    std::string detail;                ///< refused: why; ok: e.g. "no such instance"
    std::optional<service_key> changed; ///< the service whose instances changed
    client_id client;                   ///< the client whose instances in it changed
    std::optional<bool> healthy_now;    ///< health: the new state when it changed
    /// threshold: the service and its new value, when it changed
    std::optional<std::pair<service_key, double>> threshold_now;
  };

  // -- commands -----------------------------------------------------------------------

  apply_result apply(const persistent_op& x);

  /// Applies encoded bytes (a log entry).
  apply_result apply(const std::string& bytes);

  // -- snapshots ----------------------------------------------------------------------

  /// The whole state (PersistentSnapshot).
  std::string snapshot() const;

  /// Replaces the whole state; false (and nothing changed) when the bytes do not parse.
  bool restore(const std::string& bytes);

  // -- queries ------------------------------------------------------------------------

  /// What `client` publishes in `key` (sorted by cluster, ip, port).
  std::vector<instance> instances_of(const service_key& key, const client_id& client) const;

  /// Every (service, client) pair with its instances (sorted as instances_of), in one pass.
  std::vector<std::tuple<service_key, client_id, std::vector<instance>>> all_client_instances() const;

  /// Every (service, client) pair that has instances.
  std::vector<std::pair<service_key, client_id>> all_clients() const;

  /// Every instance with its check, in service order.
  std::vector<std::pair<service_key, record>> all_records() const;

  /// The record of one instance, if present.
  const record* find(const service_key& key, const std::string& ip, std::uint32_t port,
                     const std::string& cluster) const;

  /// The protect thresholds written through Raft.
  const std::map<service_key, double>& thresholds() const {
    return thresholds_;
  }

  /// Persistent instances held (counted on every change, O(1)).
  std::size_t instance_count() const {
    return instances_;
  }
  std::size_t service_count() const {
    return services_.size();
  }

private:
  /// service -> instance_identity(ip, port, cluster) -> record.
  std::map<service_key, std::map<std::string, record>> services_;
  std::map<service_key, double> thresholds_;
  std::size_t instances_ = 0;
};

/// Whether a snapshot asked for after `entries_since` applied entries is worth taking for a state
/// of `instances` (see defaults::raft_snapshot_instances_per_entry); `threshold` is the
/// configured raft.snapshot_threshold_entries.
bool snapshot_worthwhile(std::size_t entries_since, std::size_t instances, std::size_t threshold);

} // namespace registry::raft
