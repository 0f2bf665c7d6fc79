#pragma once
/// The client library's service cache and its disk form (plain C++, no CAF).
///
/// - `service_cache` holds one service_info per key `GROUP@@SERVICE[@@clusters]` and decides, for every
///   update, whether it is newer than what it holds (by last_ref_time; Nacos does not order updates) and
///   what listeners see change. A failover overlay (data read from the failover directory while the
///   switch is on) hides the stored state of the keys it covers: listeners see the overlay then, and a
///   toggle of the switch yields diff events too.
/// - The disk form is Nacos's ServiceInfo JSON, one file per key named by the URL-encoded key
///   (java.net.URLEncoder rules), written atomically (temporary file + rename).

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/model.hpp"
#include "tools/client/registry_client.hpp"

namespace registry::client {

// -- keys and file names ------------------------------------------------------------------------

/// Clusters comma-joined in the order given ("" for none).
std::string join_clusters(const std::vector<std::string>& clusters);

/// Nacos's ServiceInfo.getKey: `grouped_name` plus `@@clusters` when clusters is not empty.
std::string cache_key(const std::string& grouped_name, const std::string& clusters);

/// The cache key of a service_info (its grouped name and clusters).
std::string cache_key(const service_info& x);

/// java.net.URLEncoder.encode(text, "UTF-8"): [A-Za-z0-9.*_-] kept, ' ' -> '+', other bytes %XX.
std::string url_encode(const std::string& text);

/// The inverse of url_encode; malformed escapes are kept as they are.
std::string url_decode(const std::string& text);

/// `<cache_dir>/naming/<namespace_id>`: the directory of the disk cache.
std::string naming_cache_dir(const std::string& cache_dir, const std::string& namespace_id);

/// `<cache_dir>/failover`: the directory of the failover files and of the switch.
std::string failover_dir(const std::string& cache_dir);

// -- JSON -------------------------------------------------------------------------------------

/// Nacos's ServiceInfo JSON: name (GROUP@@SERVICE), groupName, clusters, cacheMillis, lastRefTime,
/// reachProtectionThreshold, hosts[] with instanceId, ip, port, weight, healthy, enabled, ephemeral,
/// clusterName, serviceName, metadata. Keys in that order.
nlohmann::ordered_json to_nacos_json(const service_info& x);

/// Parses Nacos's ServiceInfo JSON. The namespace is not part of it: `out.key.namespace_id` is set to
/// `namespace_id`. Returns a description of the first problem, or nothing on success. Missing optional
/// fields take Nacos's defaults (weight 1, healthy, enabled, ephemeral, cluster DEFAULT).
std::optional<std::string> from_nacos_json(const nlohmann::json& j, const std::string& namespace_id,
                                           service_info& out);

// -- files ------------------------------------------------------------------------------------

/// Writes `content` to `path` through a temporary file in the same directory and a rename, creating
/// the directory if needed. Returns a description of the problem, or nothing on success.
std::optional<std::string> write_file_atomically(const std::string& path, const std::string& content);

/// Writes `x` as `<dir>/<url_encode(cache_key(x))>`.
std::optional<std::string> write_service_file(const std::string& dir, const service_info& x);

/// Reads every service file in `dir` (the failover switch and unreadable files are skipped and
/// reported in `problems` when given). Keys come from the files' content.
std::map<std::string, service_info> read_service_files(const std::string& dir,
                                                       const std::string& namespace_id,
                                                       std::vector<std::string>* problems = nullptr);

// -- the cache --------------------------------------------------------------------------------

class service_cache {
public:
  /// What apply() did.
  struct update {
    /// False when the update was older than the stored state (and not forced): nothing changed.
    bool accepted = false;
    /// The stored state changed (new key, hosts or protection flag): write it to disk.
    bool stored_changed = false;
    /// What listeners of the key see change (nothing when the view is equal or hidden by failover).
    std::optional<change_event> event;
  };

  /// Applies a state from the node. Updates with a last_ref_time older than the stored one are ignored
  /// unless `force` (used for the first state from a new session). The key is cache_key(info).
  update apply(const service_info& info, bool force = false);

  /// What readers see for `key`: failover data when the switch is on and it has hosts for the key,
  /// else the stored state.
  std::optional<service_info> view(const std::string& key) const;

  /// The stored state from the nodes, ignoring failover.
  const service_info* stored(const std::string& key) const;

  /// Forgets the stored state of `key` (the disk file stays).
  void erase(const std::string& key);

  /// Switches the failover overlay on (with `data`) or off. Returns the events of every key whose view
  /// changed, in key order.
  std::vector<std::pair<std::string, change_event>>
  set_failover(bool on, std::map<std::string, service_info> data);

  bool failover_on() const { return failover_on_; }

  /// True when failover is on and holds non-empty data for `key`.
  bool failover_covers(const std::string& key) const;

  std::size_t size() const { return stored_.size(); }

private:
  std::map<std::string, service_info> stored_;
  std::map<std::string, service_info> failover_;
  bool failover_on_ = false;
};

/// An event describing a whole state as new (every host added): what a new listener gets first.
change_event initial_event(const service_info& x);

} // namespace registry::client
