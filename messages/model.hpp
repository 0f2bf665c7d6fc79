#pragma once
/// The data model as the node and the client library hold it in memory (plain C++, no CAF, no
/// protobuf). messages/convert.hpp turns it into wire messages and back.

#include <cstdint>
#include <atomic>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "messages/interned_string.hpp"

namespace registry {

/// Milliseconds on a clock the caller chooses (steady for expiry, system for lastRefTime). Protocol
/// classes never read a clock themselves: time is always an argument.
using time_ms = std::int64_t;

/// Names a service: namespace, group, name (Nacos's identity, without the ephemeral flag).
/// The three parts are interned: a key is three pointers, and keys compare part by part by pointer
/// before any text is read.
struct service_key {
  interned_string namespace_id;
  interned_string group;
  interned_string name;

  /// GROUP@@SERVICE, as in Nacos's ServiceInfo.name.
  std::string grouped_name() const { return group + "@@" + name; }

  /// NAMESPACE##GROUP@@SERVICE: unique over namespaces, used for maps and logs.
  std::string to_string() const { return namespace_id + "##" + group + "@@" + name; }

  friend bool operator==(const service_key& a, const service_key& b) {
    return std::tie(a.namespace_id, a.group, a.name) == std::tie(b.namespace_id, b.group, b.name);
  }
  friend bool operator!=(const service_key& a, const service_key& b) { return !(a == b); }
  friend bool operator<(const service_key& a, const service_key& b) {
    return std::tie(a.namespace_id, a.group, a.name) < std::tie(b.namespace_id, b.group, b.name);
  }
};

/// Metadata as a sorted vector of pairs: smaller than a map and compared cheaply.
using metadata_map = std::vector<std::pair<interned_string, interned_string>>;

/// Nacos's default cluster name, interned once: every instance that names no cluster shares it.
inline const interned_string& default_cluster() {
  static const interned_string name{"DEFAULT"};
  return name;
}

/// One registered instance.
struct instance {
  interned_string instance_id; ///< empty for the default id (derived in replies)
  interned_string ip; ///< one host serves many services: its address is held once
  std::uint32_t port = 0;
  double weight = 1.0;
  bool healthy = true;
  bool enabled = true;
  bool ephemeral = true;
  interned_string cluster = default_cluster();
  metadata_map metadata;

  /// ip:port, the address part of the identity.
  std::string address() const { return ip + ":" + std::to_string(port); }

  /// Within one service, an instance is identified by (ip, port, cluster).
  bool same_identity(const instance& other) const {
    return port == other.port && ip == other.ip && cluster == other.cluster;
  }

  friend bool operator==(const instance& a, const instance& b) {
    return a.port == b.port && a.weight == b.weight && a.healthy == b.healthy &&
           a.enabled == b.enabled && a.ephemeral == b.ephemeral && a.ip == b.ip &&
           a.cluster == b.cluster && a.instance_id == b.instance_id && a.metadata == b.metadata;
  }
  friend bool operator!=(const instance& a, const instance& b) { return !(a == b); }
};

/// Nacos's "simple" instance id: ip#port#cluster#group@@service.
inline std::string make_instance_id(const instance& x, const service_key& key) {
  return x.ip + "#" + std::to_string(x.port) + "#" + x.cluster + "#" + key.grouped_name();
}

/// What a query or a push returns (Nacos's ServiceInfo).
struct service_info {
  service_key key;
  std::string clusters; ///< comma-separated, as asked
  std::int64_t cache_millis = 0;
  time_ms last_ref_time_ms = 0;
  bool reach_protection_threshold = false;
  std::vector<instance> hosts;
};

/// A client id: heartbeat clients are "ip:port#true" (Nacos's ip-port client), session clients are
/// "<node address>/<node start ms>/<counter>" (the owner is the text before the first '/').
using client_id = std::string;

inline client_id heartbeat_client_id(const std::string& ip, std::uint32_t port) {
  return ip + ":" + std::to_string(port) + "#true";
}

inline bool is_heartbeat_client(const client_id& id) {
  return id.size() > 5 && id.compare(id.size() - 5, 5, "#true") == 0;
}

/// The client of persistent instances at ip:port (Nacos's "ip:port#false"): it lives in the Raft
/// state machine, never in a client actor or in Distro.
inline client_id persistent_client_id(const std::string& ip, std::uint32_t port) {
  return ip + ":" + std::to_string(port) + "#false";
}

inline bool is_persistent_client(const client_id& id) {
  return id.size() > 6 && id.compare(id.size() - 6, 6, "#false") == 0;
}

/// The instances one client publishes in one service, as one immutable list that every holder
/// shares: the client actor, the service index and Distro's record point to the same memory, and
/// copying a list (into a message, a record, an index) copies a pointer. A change goes through
/// mutate(), which copies the list first when anybody else holds it (copy on write), so a holder
/// never sees another's change.
class instance_list {
public:
  using value_type = instance;
  using const_iterator = std::vector<instance>::const_iterator;
  using iterator = const_iterator;
  using size_type = std::size_t;

  instance_list() = default;
  instance_list(std::vector<instance> xs) { // NOLINT: implicit, a list is made from a vector
    if (!xs.empty())
      p_ = std::make_shared<block>(std::move(xs));
  }
  instance_list(std::initializer_list<instance> xs) : instance_list(std::vector<instance>(xs)) {}

  /// The instances (an empty vector for an empty list).
  const std::vector<instance>& get() const { return p_ ? p_->xs : empty_vector(); }
  operator const std::vector<instance>&() const { return get(); } // NOLINT: reads as a vector

  const_iterator begin() const { return get().begin(); }
  const_iterator end() const { return get().end(); }
  std::size_t size() const { return p_ ? p_->xs.size() : 0; }
  bool empty() const { return size() == 0; }
  const instance& operator[](std::size_t i) const { return p_->xs[i]; }
  const instance& front() const { return p_->xs.front(); }
  const instance& back() const { return p_->xs.back(); }

  /// The list to change, this holder's own: copied first when another holder shares it.
  std::vector<instance>& mutate() {
    if (!p_) {
      p_ = std::make_shared<block>(std::vector<instance>{});
    } else if (p_.use_count() > 1) {
      p_ = std::make_shared<block>(p_->xs);
    } else {
      // The last other holder let go on another thread: see its reads before writing.
      std::atomic_thread_fence(std::memory_order_acquire);
      p_->digest.store(0, std::memory_order_relaxed);
    }
    return p_->xs;
  }

  /// `compute(instances)`, computed once per version of the list and kept with it (never 0): the
  /// content hash that Distro takes of a client on every change, so an unchanged service is not
  /// hashed again. One function only may be used with it (there is one slot).
  template <class Compute>
  std::uint64_t digest(Compute&& compute) const {
    if (!p_)
      return nonzero(compute(empty_vector()));
    auto d = p_->digest.load(std::memory_order_relaxed);
    if (d == 0) { // holders on other threads may compute it too: they store the same value
      d = nonzero(compute(p_->xs));
      p_->digest.store(d, std::memory_order_relaxed);
    }
    return d;
  }

  /// Whether both hold the same memory (then they are equal without comparing).
  bool shares_with(const instance_list& other) const { return p_ == other.p_; }

  friend bool operator==(const instance_list& a, const instance_list& b) {
    return a.p_ == b.p_ || a.get() == b.get();
  }
  friend bool operator!=(const instance_list& a, const instance_list& b) { return !(a == b); }
  friend bool operator==(const instance_list& a, const std::vector<instance>& b) {
    return a.get() == b;
  }
  friend bool operator!=(const instance_list& a, const std::vector<instance>& b) {
    return !(a == b);
  }

private:
  struct block {
    explicit block(std::vector<instance> x) : xs(std::move(x)) {}
    std::vector<instance> xs;
    std::atomic<std::uint64_t> digest{0}; ///< see digest(); 0 = not computed
  };
  static const std::vector<instance>& empty_vector() {
    static const std::vector<instance> none;
    return none;
  }
  static std::uint64_t nonzero(std::uint64_t x) { return x == 0 ? 1 : x; }
  std::shared_ptr<block> p_;
};

/// The instances one client publishes, per service.
using client_services = std::map<service_key, instance_list>;

/// The identity of an instance within a service as one key: "ip:port:cluster".
inline std::string instance_identity(const std::string& ip, std::uint32_t port,
                                     const std::string& cluster) {
  return ip + ":" + std::to_string(port) + ":" + cluster;
}

/// A heartbeat instance's beat clock as one node holds it.
struct beat_mark {
  time_ms last_beat_ms = 0;      ///< on the holder's own steady clock (never sent as such)
  bool marked_unhealthy = false; ///< missed beats turned it unhealthy; a beat heals it
  friend bool operator==(const beat_mark& a, const beat_mark& b) {
    return a.last_beat_ms == b.last_beat_ms && a.marked_unhealthy == b.marked_unhealthy;
  }
  friend bool operator!=(const beat_mark& a, const beat_mark& b) { return !(a == b); }
};

/// The beat clocks of one heartbeat client: service -> instance_identity -> mark. An instance
/// without a mark has no known beat time (its clock starts when a node takes it over).
using client_beats = std::map<service_key, std::map<std::string, beat_mark>>;

/// A field error: which field and what is wrong with it.
struct field_error {
  std::string field;
  std::string message;
};

} // namespace registry

template <>
struct std::hash<registry::service_key> {
  std::size_t operator()(const registry::service_key& k) const noexcept {
    std::size_t h = k.namespace_id.hash();
    h = h * 31 + k.group.hash();
    return h * 31 + k.name.hash();
  }
};
