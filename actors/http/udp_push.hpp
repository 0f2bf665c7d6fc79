#pragma once
/// UDP push to Nacos 1.x subscribers, as a plain class (no CAF, no sockets, time as an argument).
///
/// A subscriber is an address (ip, UDP port) subscribed to services (namespace, group, name) for a
/// cluster filter; every /instance/list with `udpPort` renews it. One that queried nothing for
/// `subscriber_expiry_ms` expires (as Nacos prunes silent push clients).
///
/// A push is a datagram `{"type":"dom","data":"<ServiceInfo JSON>","lastRefTime":N}`; the client
/// answers `{"type":"push-ack","lastRefTime":N}` from the port it was pushed to. N is unique per
/// push and below 2^53 (it round-trips through a JavaScript double). A push not acknowledged within
/// `ack_timeout_ms` is resent, at most `retries_max` times, and then reported failed; the service
/// actor that asked for it retries later with the then current state, as for CAF subscribers.
///
/// Bounds: `subscriptions_max` subscriptions (beyond: refused), and one push in flight per
/// address and service (a newer push replaces an older one, which is reported failed).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "messages/model.hpp"

namespace registry::http {

struct udp_address {
  std::string ip;
  std::uint16_t port = 0;
  std::string to_string() const { return ip + ":" + std::to_string(port); }
  friend bool operator<(const udp_address& a, const udp_address& b) {
    return std::tie(a.ip, a.port) < std::tie(b.ip, b.port);
  }
  friend bool operator==(const udp_address& a, const udp_address& b) {
    return a.ip == b.ip && a.port == b.port;
  }
};

class udp_push_table {
public:
  struct config {
    std::int64_t ack_timeout_ms = 1000;
    int retries_max = 1;
    std::int64_t subscriber_expiry_ms = 30000;
    std::size_t subscriptions_max = 100000;
  };

  /// One subscription of an address.
  struct subscription {
    service_key key;
    std::string clusters; ///< as the client wrote them
    friend bool operator<(const subscription& a, const subscription& b) {
      return std::tie(a.key, a.clusters) < std::tie(b.key, b.clusters);
    }
  };

  /// What the driver must do after a tick.
  struct effects {
    /// Datagrams to send again.
    std::vector<std::pair<udp_address, std::string>> resend;
    /// Pushes that failed (no ack after every resend): report them failed.
    std::vector<std::uint64_t> failed;
    /// Subscriptions that expired: unsubscribe them at the service.
    std::vector<std::pair<udp_address, subscription>> expired;
    /// Addresses left without subscriptions: their receiving actor can go.
    std::vector<udp_address> idle;
    /// When the next push is due (expiries are found by the periodic tick).
    std::optional<std::int64_t> wake_at_ms;
  };

  explicit udp_push_table(config cfg);

  /// Adds or renews a subscription at `now_ms`; false when subscriptions_max is reached.
  bool subscribe(const udp_address& addr, const subscription& sub, std::int64_t now_ms);
  /// Forgets a subscription (e.g. the service dropped it). True when the address has none left.
  bool unsubscribe(const udp_address& addr, const subscription& sub);
  bool subscribed(const udp_address& addr, const subscription& sub) const;
  std::size_t subscription_count() const { return subscription_count_; }

  /// A new lastRefTime: unique, increasing, `now_us` when that is larger (epoch microseconds keep it
  /// below 2^53 until the year 2255).
  std::int64_t next_ref_time(std::int64_t now_us);

  /// Starts a push of `datagram` (carrying `ref_time`) to `addr` for `key`; returns its id. An
  /// older push to the same address for the same service that is still waiting is superseded:
  /// its id is returned in `superseded` (report it failed).
  std::uint64_t start_push(const udp_address& addr, const service_key& key, std::int64_t ref_time,
                           std::string datagram, std::int64_t now_ms,
                           std::optional<std::uint64_t>& superseded);
  /// An ack from `addr` for `ref_time`: the id of the acknowledged push, if one waits.
  std::optional<std::uint64_t> on_ack(const udp_address& addr, std::int64_t ref_time);
  /// Resends, failures and expiries due at `now_ms`.
  effects on_tick(std::int64_t now_ms);

  std::size_t pushes_in_flight() const { return pushes_.size(); }

private:
  struct push {
    udp_address addr;
    service_key key;
    std::int64_t ref_time = 0;
    std::string datagram;
    int sent = 1;
    std::int64_t due_ms = 0;
  };

  std::optional<std::int64_t> next_wake() const;

  config cfg_;
  /// address -> subscription -> last query time.
  std::map<udp_address, std::map<subscription, std::int64_t>> subs_;
  std::size_t subscription_count_ = 0;
  std::map<std::uint64_t, push> pushes_;
  std::uint64_t next_id_ = 1;
  std::int64_t last_ref_time_ = 0;
};

/// The push datagram for a ServiceInfo JSON text.
std::string make_push_datagram(const std::string& service_info_json, std::int64_t ref_time);

/// Parses a client's datagram; true and `ref_time` when it is a push-ack (lastRefTime as a number
/// or a string).
bool parse_push_ack(const std::string& datagram, std::int64_t& ref_time);

} // namespace registry::http
