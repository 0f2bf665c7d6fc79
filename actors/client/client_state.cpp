#include "actors/client/client_state.hpp"

#include <algorithm>
#include <tuple>
#include <utility>

namespace registry {

namespace {

/// The identity of an instance within a service, as a key: "ip:port:cluster". Unambiguous even for
/// IPv6 addresses, because the port is numeric and a cluster holds no ':'.
std::string identity(const std::string& ip, std::uint32_t port, const std::string& cluster) {
  return instance_identity(ip, port, cluster);
}

std::string identity(const instance& x) {
  return identity(x.ip, x.port, x.cluster);
}

/// (cluster, ip, port): the order instances keep within a service.
bool identity_less(const instance& a, const instance& b) {
  return std::tie(a.cluster, a.ip, a.port) < std::tie(b.cluster, b.ip, b.port);
}

/// Full order, so that lists with the same contents compare equal after sorting.
bool instance_less(const instance& a, const instance& b) {
  return std::tie(a.cluster, a.ip, a.port, a.instance_id, a.weight, a.healthy, a.enabled,
                  a.ephemeral, a.metadata)
         < std::tie(b.cluster, b.ip, b.port, b.instance_id, b.weight, b.healthy, b.enabled,
                    b.ephemeral, b.metadata);
}

std::vector<instance>::const_iterator find_same(const std::vector<instance>& xs,
                                                const std::string& ip, std::uint32_t port,
                                                const std::string& cluster) {
  return std::find_if(xs.begin(), xs.end(), [&](const instance& y) {
    return y.port == port && y.ip == ip && y.cluster == cluster;
  });
}

} // namespace

const char* to_string(client_kind k) {
  switch (k) {
    case client_kind::session:
      return "session";
    case client_kind::heartbeat:
      return "heartbeat";
    case client_kind::replica:
      return "replica";
  }
  return "unknown";
}

client_state::client_state(client_id id, client_kind kind, client_limits limits)
  : id_(std::move(id)), kind_(kind), limits_(limits) {
  // nop
}

client_state::put_result client_state::put(const service_key& key, instance x, time_ms now_ms) {
  put_result r;
  const std::string ident = identity(x);
  auto si = services_.find(key);
  if (si != services_.end()) {
    const auto& xs = si->second.get();
    auto i = find_same(xs, x.ip, x.port, x.cluster);
    if (i != xs.end()) {
      if (kind_ == client_kind::heartbeat) { // only heartbeat clients expire by beats
        beats_[key][ident] = now_ms;
        beats_unreported_ = true;
      }
      // The registered content is authoritative again, whatever expiry did to its health.
      expired_unhealthy_.erase({key, ident});
      if (*i != x) {
        auto at = i - xs.begin();
        si->second.mutate()[static_cast<std::size_t>(at)] = std::move(x);
        r.changed = true;
        changed(key);
      }
      return r;
    }
  }
  if (instance_count_ + 1 > limits_.instances_max) {
    r.error = field_error{"instances", "client " + id_ + " holds " + std::to_string(instance_count_)
                                         + " instances, the limit is "
                                         + std::to_string(limits_.instances_max)};
    return r;
  }
  auto& xs = services_[key].mutate();
  xs.insert(std::upper_bound(xs.begin(), xs.end(), x, identity_less), std::move(x));
  if (kind_ == client_kind::heartbeat) {
    beats_[key][ident] = now_ms;
    beats_unreported_ = true;
  }
  expired_unhealthy_.erase({key, ident});
  ++instance_count_;
  changed(key);
  r.changed = true;
  return r;
}

client_state::put_result client_state::put_all(const service_key& key, std::vector<instance> xs,
                                               time_ms now_ms) {
  put_result r;
  auto si = services_.find(key);
  std::size_t held = si == services_.end() ? 0 : si->second.size();
  if (instance_count_ - held + xs.size() > limits_.instances_max) {
    r.error = field_error{"instances", "client " + id_ + " would hold "
                                         + std::to_string(instance_count_ - held + xs.size())
                                         + " instances, the limit is "
                                         + std::to_string(limits_.instances_max)};
    return r;
  }
  std::sort(xs.begin(), xs.end(), identity_less);
  // Beat clocks and expiry marks of the service start over: the batch's content is authoritative.
  for (auto i = expired_unhealthy_.lower_bound({key, std::string{}});
       i != expired_unhealthy_.end() && i->first == key;)
    i = expired_unhealthy_.erase(i);
  beats_.erase(key);
  if (kind_ == client_kind::heartbeat && !xs.empty()) {
    auto& beats = beats_[key];
    for (const auto& x : xs)
      beats[identity(x)] = now_ms;
    beats_unreported_ = true;
  }
  r.changed = si == services_.end() ? !xs.empty() : si->second != xs;
  instance_count_ = instance_count_ - held + xs.size();
  if (xs.empty()) {
    if (si != services_.end())
      services_.erase(si);
  } else if (si == services_.end()) {
    services_.emplace(key, std::move(xs));
  } else {
    si->second = std::move(xs);
  }
  if (r.changed)
    changed(key);
  return r;
}

bool client_state::remove(const service_key& key, const std::string& ip, std::uint32_t port,
                          const std::string& cluster) {
  auto si = services_.find(key);
  if (si == services_.end())
    return false;
  auto i = find_same(si->second, ip, port, cluster);
  if (i == si->second.end())
    return false;
  auto at = i - si->second.begin(); // mutate() may copy: find the instance by position
  auto& xs = si->second.mutate();
  xs.erase(xs.begin() + at);
  --instance_count_;
  const std::string ident = identity(ip, port, cluster);
  expired_unhealthy_.erase({key, ident});
  if (auto bi = beats_.find(key); bi != beats_.end()) {
    bi->second.erase(ident);
    if (bi->second.empty())
      beats_.erase(bi);
  }
  if (xs.empty())
    services_.erase(si);
  changed(key);
  return true;
}

void client_state::mark_expired_unhealthy(const service_key& key, const instance& x) {
  auto si = services_.find(key);
  if (si == services_.end())
    return;
  auto i = find_same(si->second, x.ip, x.port, x.cluster);
  if (i == si->second.end() || i->healthy)
    return;
  expired_unhealthy_.emplace(key, identity(x));
}

client_state::beat_result client_state::beat(const service_key& key, const instance& x,
                                             time_ms now_ms) {
  beat_result r;
  auto si = services_.find(key);
  if (si != services_.end()) {
    auto i = find_same(si->second, x.ip, x.port, x.cluster);
    if (i != si->second.end()) {
      const std::string ident = identity(x);
      beats_[key][ident] = now_ms;
      beats_unreported_ = true;
      if (expired_unhealthy_.erase({key, ident}) > 0 && !i->healthy) {
        auto at = static_cast<std::size_t>(i - si->second.begin()); // before mutate() copies
        si->second.mutate()[at].healthy = true;
        r.changed = true;
        changed(key);
      }
      return r;
    }
  }
  // Unknown: a full beat re-registers from its content.
  auto p = put(key, x, now_ms);
  r.error = std::move(p.error);
  r.created = !r.error;
  r.changed = p.changed;
  return r;
}

client_state::tick_result client_state::tick(time_ms now_ms) {
  tick_result r;
  if (kind_ != client_kind::heartbeat)
    return r;
  for (auto si = services_.begin(); si != services_.end();) {
    const service_key& key = si->first;
    auto& beats = beats_[key];
    bool service_changed = false;
    // Copied (when shared) only for a change: most ticks change nothing.
    auto due = [&](const instance& x) {
      auto bi = beats.find(identity(x));
      if (bi == beats.end())
        return false;
      time_ms silent = now_ms - bi->second;
      return silent > limits_.delete_timeout_ms
             || (silent > limits_.unhealthy_timeout_ms && x.healthy);
    };
    if (std::none_of(si->second.begin(), si->second.end(), due)) {
      for (const auto& x : si->second) // no beat known yet: its clock starts now
        beats.emplace(identity(x), now_ms);
      ++si;
      continue;
    }
    auto& xs = si->second.mutate();
    for (auto i = xs.begin(); i != xs.end();) {
      const std::string ident = identity(*i);
      auto [bi, fresh] = beats.emplace(ident, now_ms); // no beat known yet: its clock starts now
      time_ms silent = now_ms - bi->second;
      if (!fresh && silent > limits_.delete_timeout_ms) {
        r.removed.emplace_back(key, std::move(*i));
        beats.erase(bi);
        expired_unhealthy_.erase({key, ident});
        i = xs.erase(i);
        --instance_count_;
        service_changed = true;
        continue;
      }
      if (!fresh && silent > limits_.unhealthy_timeout_ms && i->healthy) {
        i->healthy = false;
        expired_unhealthy_.emplace(key, ident);
        r.marked_unhealthy.emplace_back(key, *i);
        service_changed = true;
      }
      ++i;
    }
    if (service_changed)
      r.changed.push_back(key);
    if (xs.empty()) {
      beats_.erase(si->first);
      si = services_.erase(si);
    } else {
      ++si;
    }
  }
  for (const auto& key : r.changed)
    changed(key);
  return r;
}

void client_state::renew_beats(time_ms now_ms) {
  beats_.clear();
  for (const auto& [key, xs] : services_) {
    auto& beats = beats_[key];
    for (const auto& x : xs)
      beats[identity(x)] = now_ms;
  }
}

void client_state::adopt_beats(const client_beats& marks, time_ms now_ms, bool keep_newer) {
  std::map<service_key, std::map<std::string, time_ms>> beats;
  for (const auto& [key, xs] : services_) {
    auto mi = marks.find(key);
    auto bi = beats_.find(key);
    for (const auto& x : xs) {
      const std::string ident = identity(x);
      time_ms at = now_ms; // unknown: the clock starts now, as for a fresh take-over
      const beat_mark* mark = nullptr;
      if (mi != marks.end())
        if (auto i = mi->second.find(ident); i != mi->second.end())
          mark = &i->second;
      if (mark != nullptr) {
        at = std::min(mark->last_beat_ms, now_ms);
        if (mark->marked_unhealthy && !x.healthy)
          expired_unhealthy_.emplace(key, ident);
      }
      if (keep_newer && bi != beats_.end())
        if (auto ti = bi->second.find(ident); ti != bi->second.end())
          at = std::max(at, ti->second);
      beats[key][ident] = at;
    }
  }
  beats_ = std::move(beats);
}

client_beats client_state::beat_marks() const {
  client_beats result;
  if (kind_ != client_kind::heartbeat)
    return result;
  for (const auto& [key, beats] : beats_) {
    auto si = services_.find(key);
    if (si == services_.end())
      continue;
    for (const auto& x : si->second) {
      const std::string ident = identity(x);
      auto ti = beats.find(ident);
      if (ti == beats.end())
        continue;
      result[key][ident] = beat_mark{ti->second, expired_unhealthy_.count({key, ident}) > 0};
    }
  }
  return result;
}

bool client_state::beat_report_due(time_ms now_ms) const {
  auto interval = limits_.unhealthy_timeout_ms / defaults::beat_reports_per_unhealthy_timeout;
  return kind_ == client_kind::heartbeat && beats_unreported_
         && now_ms - beats_reported_ms_ >= interval;
}

void client_state::beats_reported(time_ms now_ms) {
  beats_reported_ms_ = now_ms;
  beats_unreported_ = false;
}

std::vector<service_key> client_state::replace(const client_services& services,
                                               std::uint64_t revision) {
  client_services next;
  std::size_t count = 0;
  for (const auto& [key, xs] : services) {
    if (xs.empty())
      continue;
    count += xs.size();
    if (std::is_sorted(xs.begin(), xs.end(), instance_less)) {
      next.emplace(key, xs); // shared with the sender (Distro's record)
      continue;
    }
    std::vector<instance> sorted = xs;
    std::sort(sorted.begin(), sorted.end(), instance_less);
    next.emplace(key, std::move(sorted));
  }
  // Compare with the current state (sorted the same way) per service, over both key sets.
  std::vector<service_key> changed;
  auto equal_sorted = [](const instance_list& a, const instance_list& b) {
    if (a.shares_with(b) || std::is_sorted(a.begin(), a.end(), instance_less))
      return a == b;
    std::vector<instance> sorted = a;
    std::sort(sorted.begin(), sorted.end(), instance_less);
    return b == sorted;
  };
  for (const auto& [key, xs] : services_) {
    auto ni = next.find(key);
    if (ni == next.end() || !equal_sorted(xs, ni->second))
      changed.push_back(key);
  }
  for (const auto& [key, xs] : next)
    if (services_.count(key) == 0)
      changed.push_back(key);
  std::sort(changed.begin(), changed.end());
  // Keep beat clocks and expiry marks only for instances that still exist.
  std::map<service_key, std::map<std::string, time_ms>> beats;
  std::set<std::pair<service_key, std::string>> expired;
  for (const auto& [key, xs] : next) {
    for (const auto& x : xs) {
      const std::string ident = identity(x);
      if (auto bi = beats_.find(key); bi != beats_.end())
        if (auto ti = bi->second.find(ident); ti != bi->second.end())
          beats[key][ident] = ti->second;
      if (!x.healthy && expired_unhealthy_.count({key, ident}) > 0)
        expired.emplace(key, ident);
    }
  }
  services_ = std::move(next);
  beats_ = std::move(beats);
  expired_unhealthy_ = std::move(expired);
  instance_count_ = count;
  revision_ = revision;
  unannounced_all_ = true;
  unannounced_.clear();
  return changed;
}

void client_state::changed(const service_key& key) {
  ++revision_;
  if (unannounced_all_)
    return;
  if (unannounced_.size() >= services_.size() + 1) { // bounded: past every service, say all
    unannounced_all_ = true;
    unannounced_.clear();
    return;
  }
  unannounced_.insert(key);
}

client_state::announcement client_state::take_announcement() {
  announcement a;
  a.whole = unannounced_all_;
  if (!a.whole)
    for (const auto& key : unannounced_) {
      auto i = services_.find(key);
      a.changed.emplace(key, i == services_.end() ? instance_list{} : i->second);
    }
  unannounced_.clear();
  unannounced_all_ = false;
  return a;
}

std::optional<field_error> client_state::subscribe(const subscription& s) {
  if (subscriptions_.count(s) > 0)
    return std::nullopt;
  if (subscriptions_.size() >= limits_.subscriptions_max)
    return field_error{"subscriptions", "client " + id_ + " holds "
                                          + std::to_string(subscriptions_.size())
                                          + " subscriptions, the limit is "
                                          + std::to_string(limits_.subscriptions_max)};
  subscriptions_.insert(s);
  return std::nullopt;
}

bool client_state::unsubscribe(const subscription& s) {
  return subscriptions_.erase(s) > 0;
}

} // namespace registry
