#include "actors/service/service_index.hpp"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

namespace registry {

namespace {

/// (cluster, ip, port) first, then every other field, so that sorting is deterministic and two
/// lists with the same contents sort the same way.
bool instance_less(const instance& a, const instance& b) {
  return std::tie(a.cluster, a.ip, a.port, a.instance_id, a.weight, a.healthy, a.enabled,
                  a.ephemeral, a.metadata)
         < std::tie(b.cluster, b.ip, b.port, b.instance_id, b.weight, b.healthy, b.enabled,
                    b.ephemeral, b.metadata);
}

std::string join(const std::vector<std::string>& xs, char sep) {
  std::string r;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (i > 0)
      r += sep;
    r += xs[i];
  }
  return r;
}

} // namespace

service_index::service_index(service_key key) : key_(std::move(key)) {
  // nop
}

bool service_index::put(const client_id& client, instance_list xs) {
  if (xs.empty())
    return remove_client(client);
  // A client's list comes sorted (client_state keeps this order) and is kept shared with it.
  if (!std::is_sorted(xs.begin(), xs.end(), instance_less)) {
    std::vector<instance> sorted = xs;
    std::sort(sorted.begin(), sorted.end(), instance_less);
    xs = std::move(sorted);
  }
  auto i = by_client_.find(client);
  if (i != by_client_.end()) {
    if (i->second == xs)
      return false;
    instance_count_ -= i->second.size();
    instance_count_ += xs.size();
    i->second = std::move(xs);
  } else {
    instance_count_ += xs.size();
    by_client_.emplace(client, std::move(xs));
    if (is_persistent_client(client))
      ++persistent_clients_;
  }
  ++revision_;
  return true;
}

bool service_index::remove_client(const client_id& client) {
  auto i = by_client_.find(client);
  if (i == by_client_.end())
    return false;
  instance_count_ -= i->second.size();
  if (is_persistent_client(client))
    --persistent_clients_;
  by_client_.erase(i);
  ++revision_;
  return true;
}

std::vector<instance> service_index::all() const {
  std::vector<instance> r;
  r.reserve(instance_count_);
  for (const auto& [client, xs] : by_client_)
    r.insert(r.end(), xs.begin(), xs.end());
  std::sort(r.begin(), r.end(), instance_less);
  // Two clients may publish the same (ip, port, cluster) for a while: a session that moved to
  // another node re-registers before the copy of its old session expires. Show it once, healthy if
  // any publisher says so.
  auto out = r.begin();
  for (auto i = r.begin(); i != r.end(); ++i) {
    if (out != r.begin() && std::prev(out)->same_identity(*i)) {
      if (i->healthy && !std::prev(out)->healthy)
        *std::prev(out) = std::move(*i);
      continue;
    }
    if (out != i)
      *out = std::move(*i);
    ++out;
  }
  r.erase(out, r.end());
  return r;
}

std::vector<std::pair<client_id, instance>> service_index::all_with_clients() const {
  std::vector<std::pair<client_id, instance>> r;
  r.reserve(instance_count_);
  for (const auto& [client, xs] : by_client_)
    for (const auto& x : xs)
      r.emplace_back(client, x);
  std::sort(r.begin(), r.end(), [](const auto& a, const auto& b) {
    if (instance_less(a.second, b.second))
      return true;
    if (instance_less(b.second, a.second))
      return false;
    return a.first < b.first;
  });
  return r;
}

service_info service_index::select(const selection& sel, double protect_threshold,
                                   time_ms now_ms, std::int64_t cache_millis) const {
  service_info r;
  r.key = key_;
  r.clusters = join(sel.clusters, ',');
  r.cache_millis = cache_millis;
  r.last_ref_time_ms = now_ms;
  const std::set<std::string> wanted(sel.clusters.begin(), sel.clusters.end());
  std::size_t healthy_count = 0;
  for (auto& h : all()) {
    if (!wanted.empty() && wanted.count(h.cluster) == 0)
      continue;
    if (!h.enabled || !(h.weight > 0.0))
      continue;
    if (h.healthy)
      ++healthy_count;
    if (h.healthy || !sel.healthy_only)
      r.hosts.push_back(std::move(h));
  }
  // Without a selector the selected list is the filtered one, so Nacos's ratio is
  // healthyCount / size(result). With healthy_only it is 1.0 and fires only at a threshold >= 1.
  if (protect_threshold >= 0.0 && !r.hosts.empty()) {
    double ratio = static_cast<double>(healthy_count) / static_cast<double>(r.hosts.size());
    if (ratio <= protect_threshold) {
      r.reach_protection_threshold = true;
      for (auto& h : r.hosts)
        h.healthy = true;
    }
  }
  return r;
}

page_result paginate(const std::vector<std::string>& sorted, std::uint32_t page,
                     std::uint32_t size) {
  page_result r;
  r.count = static_cast<std::uint32_t>(sorted.size());
  if (page == 0 || size == 0)
    return r;
  std::uint64_t start = static_cast<std::uint64_t>(page - 1) * size;
  if (start >= sorted.size())
    return r;
  std::uint64_t end = std::min<std::uint64_t>(sorted.size(), start + size);
  r.items.assign(sorted.begin() + static_cast<std::ptrdiff_t>(start),
                 sorted.begin() + static_cast<std::ptrdiff_t>(end));
  return r;
}

} // namespace registry
