#pragma once
/// The instance index of one service over all clients, and discovery over it (no CAF).
///
/// The service actor owns one. Each client's contribution is replaced as a whole, which is also how
/// Distro replicas apply a synced client.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "messages/model.hpp"

namespace registry {

/// Query parameters.
struct selection {
  std::vector<std::string> clusters; ///< empty = all clusters
  bool healthy_only = false;
};

class service_index {
public:
  explicit service_index(service_key key);

  const service_key& key() const { return key_; }

  /// Replaces everything `client` publishes here with `xs` (empty removes the client). Returns true if
  /// the set of instances or any field changed; bumps revision() then.
  bool put(const client_id& client, instance_list xs);

  /// Removes everything `client` publishes here. Returns true if something was removed.
  bool remove_client(const client_id& client);

  std::size_t instance_count() const { return instance_count_; }
  /// How many instances `client` publishes here.
  std::size_t count_of(const client_id& client) const {
    auto i = by_client_.find(client);
    return i == by_client_.end() ? 0 : i->second.size();
  }
  std::size_t client_count() const { return by_client_.size(); }
  /// Whether persistent (client "ip:port#false") or ephemeral instances are here: a service is
  /// one or the other, decided by its first instance (Nacos 2.x). O(1): asked on every put.
  bool holds_persistent() const { return persistent_clients_ > 0; }
  bool holds_ephemeral() const { return by_client_.size() > persistent_clients_; }
  bool empty() const { return by_client_.empty(); }

  /// Bumped on every visible change; starts at 0.
  std::uint64_t revision() const { return revision_; }

  /// All instances of all clients, sorted by (cluster, ip, port).
  std::vector<instance> all() const;

  /// Every instance with the client that publishes it, sorted by (cluster, ip, port, client);
  /// unlike all(), an instance two clients publish shows twice (the console shows both owners).
  std::vector<std::pair<client_id, instance>> all_with_clients() const;

  /// Nacos's selectInstancesWithHealthyProtection (reference §4), enabledOnly always:
  /// - instances outside `sel.clusters` (when given), disabled ones and those with weight <= 0 are left
  ///   out;
  /// - with healthy_only, unhealthy ones are left out too;
  /// - protection: when `protect_threshold` >= 0 and the result is not empty and
  ///   healthy(result) / size(result) <= protect_threshold, reach_protection_threshold is set and the
  ///   result holds every instance, unhealthy ones marked healthy. A negative threshold switches
  ///   protection off (Nacos cannot, #11123).
  /// Hosts are sorted by (cluster, ip, port); clusters is the comma-joined sel.clusters.
  service_info select(const selection& sel, double protect_threshold, time_ms now_ms,
                      std::int64_t cache_millis) const;

private:
  service_key key_;
  /// Shared with the clients (see instance_list). A client's id is interned: its entries in every
  /// service it publishes hold one copy of the text, and lookups by a plain id need no interning.
  std::map<interned_string, instance_list, std::less<>> by_client_;
  std::size_t instance_count_ = 0;
  /// Clients "ip:port#false" in by_client_ (none holds an empty list).
  std::size_t persistent_clients_ = 0;
  std::uint64_t revision_ = 0;
};

/// Returns page `page` (1-based) of `size` items of a sorted list, and the total count.
struct page_result {
  std::uint32_t count = 0;
  std::vector<std::string> items;
};
page_result paginate(const std::vector<std::string>& sorted, std::uint32_t page, std::uint32_t size);

} // namespace registry
