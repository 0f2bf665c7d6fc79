#pragma once
/// One client's instances, subscriptions, revision and expiry (no CAF).
///
/// The client actor owns one. Three kinds share it:
/// - session: instances live as long as the client's CAF session (no beat expiry);
/// - heartbeat: keyed by ip:port (Nacos 1.x). Each instance records its last beat; tick() marks it
///   unhealthy after unhealthy_timeout_ms and removes it after delete_timeout_ms without a beat;
/// - replica: a Distro copy of a client another node is responsible for; replaced as a whole by
///   replace(), never expired by beats (copy expiry is Distro's job).
/// Beat clocks travel with responsibility: the responsible node reports them (beat_marks(), on every
/// change and at most every unhealthy_timeout / defaults::beat_reports_per_unhealthy_timeout for
/// beats alone), and a node taking the client over continues them (adopt_beats()), so a dead
/// instance expires at its original deadline however often its owner changes.
/// Every visible change (put, remove, health flip, expiry, replace) bumps revision().

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/defaults.hpp"
#include "messages/model.hpp"

namespace registry {

enum class client_kind { session, heartbeat, replica };

const char* to_string(client_kind k);

struct client_limits {
  std::size_t instances_max = 1000;      ///< over all services of the client
  std::size_t subscriptions_max = 1000;
  time_ms unhealthy_timeout_ms = 15000;  ///< heartbeat clients only
  time_ms delete_timeout_ms = 30000;     ///< heartbeat clients only
};

/// A subscription: a service and the clusters asked for (comma-joined, "" = all).
struct subscription {
  service_key key;
  std::string clusters;
  friend bool operator<(const subscription& a, const subscription& b) {
    return a.key < b.key || (a.key == b.key && a.clusters < b.clusters);
  }
};

class client_state {
public:
  client_state(client_id id, client_kind kind, client_limits limits);

  const client_id& id() const { return id_; }
  client_kind kind() const { return kind_; }
  /// Responsibility moved (Distro take-over or hand-over): a replica becomes a heartbeat client or
  /// back. Beat clocks restart at the next renew_beats() or tick().
  void set_kind(client_kind k) {
    kind_ = k;
    announce_whole(); // what Distro holds may come from elsewhere now
  }

  /// Adds or replaces the instance with the same (ip, port, cluster) in `key`. `now_ms` is its beat
  /// time. Error (field "instances") when instances_max would be exceeded; nothing changes then.
  /// Returns whether anything changed (re-registering an identical instance changes nothing, but
  /// refreshes its beat time).
  struct put_result {
    std::optional<field_error> error;
    bool changed = false;
  };
  put_result put(const service_key& key, instance x, time_ms now_ms);

  /// A batch register: `xs` (distinct identities) become the client's instances in `key`, as one
  /// change (the revision moves once, and only when the content differs); what the client held
  /// there and `xs` leaves out goes. Empty `xs` removes the service (undoing a batch). `now_ms` is
  /// the beat time of every instance. Error (field "instances") when instances_max would be
  /// exceeded; nothing changes then.
  put_result put_all(const service_key& key, std::vector<instance> xs, time_ms now_ms);

  /// Removes the instance (ip, port, cluster) from `key`. Returns whether it existed.
  bool remove(const service_key& key, const std::string& ip, std::uint32_t port,
              const std::string& cluster);

  /// A heartbeat for `x` in `key`: an unknown instance is re-created from the beat's content; a known
  /// one gets its beat time refreshed and, if it was marked unhealthy by expiry, is healthy again.
  struct beat_result {
    std::optional<field_error> error;
    bool created = false;
    bool changed = false;
  };
  beat_result beat(const service_key& key, const instance& x, time_ms now_ms);

  /// Marks the instance (ip, port, cluster of `x`) in `key` as made unhealthy by expiry, so that the
  /// next beat heals it: used when a healing beat is undone because its service update failed.
  /// Does nothing for an unknown or healthy instance.
  void mark_expired_unhealthy(const service_key& key, const instance& x);

  /// Heartbeat expiry. Returns the services whose instances changed (health flips and removals).
  struct tick_result {
    std::vector<service_key> changed;
    std::vector<std::pair<service_key, instance>> marked_unhealthy;
    std::vector<std::pair<service_key, instance>> removed;
  };
  tick_result tick(time_ms now_ms);

  /// Restarts every beat clock at `now_ms` (a write reached a replica: the writer is alive).
  void renew_beats(time_ms now_ms);

  /// This node became responsible for the client: continues the beat clocks of `marks` (times on
  /// this node's clock, at most `now_ms`; a mark marked_unhealthy keeps an unhealthy instance healable
  /// by a beat). Instances without a mark start their clock at `now_ms`. With `keep_newer`, a clock
  /// already newer than its mark is kept (marks of a previous owner arriving after a take-over).
  void adopt_beats(const client_beats& marks, time_ms now_ms, bool keep_newer = false);

  /// The beat clocks of every instance (heartbeat clients; empty for the other kinds).
  client_beats beat_marks() const;

  /// Whether beats not yet reported are due for a report (heartbeat clients only).
  bool beat_report_due(time_ms now_ms) const;

  /// The marks were reported to Distro at `now_ms`.
  void beats_reported(time_ms now_ms);

  /// Replica: replaces the whole state and revision. Returns the services whose instances changed
  /// (including services that disappeared).
  std::vector<service_key> replace(const client_services& services, std::uint64_t revision);

  /// Everything this client publishes, by service (services with no instance are absent).
  const client_services& services() const { return services_; }
  std::size_t instance_count() const { return instance_count_; }
  bool empty() const { return services_.empty(); }
  std::uint64_t revision() const { return revision_; }

  /// What changed since the last announcement to Distro (every change records its service):
  /// `whole` when the whole client must go (nothing announced yet, or replace() set it all),
  /// else the services that changed with their instances now (an empty list: the service went).
  /// Taking it starts the next one.
  struct announcement {
    bool whole = false;
    client_services changed;
  };
  announcement take_announcement();
  /// The next announcement is the whole client (the receiver lost track of this one).
  void announce_whole() {
    unannounced_all_ = true;
    unannounced_.clear();
  }

  /// Subscriptions. add returns an error (field "subscriptions") over the bound.
  std::optional<field_error> subscribe(const subscription& s);
  bool unsubscribe(const subscription& s);
  const std::set<subscription>& subscriptions() const { return subscriptions_; }

private:
  client_id id_;
  client_kind kind_;
  client_limits limits_;
  client_services services_;
  /// Beat times (heartbeat clients), keyed by service then instance identity "ip:port:cluster".
  std::map<service_key, std::map<std::string, time_ms>> beats_;
  /// Instances that expiry marked unhealthy; a beat makes them healthy again.
  std::set<std::pair<service_key, std::string>> expired_unhealthy_;
  std::set<subscription> subscriptions_;
  std::size_t instance_count_ = 0;
  std::uint64_t revision_ = 0;
  /// Services changed since the last announcement (see take_announcement), at most one per
  /// service held plus one (past that: the whole client).
  std::set<service_key> unannounced_;
  bool unannounced_all_ = true; ///< nothing announced yet
  /// A visible change in `key`: bumps the revision, records the service for the announcement.
  void changed(const service_key& key);
  /// When beat marks were last reported; beats after it are not reported yet.
  time_ms beats_reported_ms_ = 0;
  bool beats_unreported_ = false;
};

} // namespace registry
