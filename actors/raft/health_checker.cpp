#include "actors/raft/health_checker.hpp"

#include <algorithm>

namespace registry {

health_checker::health_checker(health_checker_config cfg) : cfg_(cfg) {
  // nop
}

std::string health_checker::key_of(const target& x) {
  return x.key.to_string() + "|" + instance_identity(x.ip, x.port, x.cluster);
}

void health_checker::set_targets(const std::vector<target>& xs, time_ms now_ms) {
  std::map<std::string, entry> next;
  for (const auto& x : xs) {
    if (x.check.type == raft::health_check_spec::kind::none)
      continue;
    auto k = key_of(x);
    auto i = targets_.find(k);
    if (i != targets_.end()) {
      auto e = i->second;
      if (e.what.healthy != x.healthy) {
        e.ok_count = 0;
        e.fail_count = 0;
      }
      e.what = x;
      next.emplace(k, std::move(e));
      continue;
    }
    entry e;
    e.what = x;
    e.normalized_ms = cfg_.interval_min_ms;
    e.next_ms = now_ms + cfg_.interval_min_ms;
    next.emplace(k, std::move(e));
  }
  for (auto i = running_.begin(); i != running_.end();)
    i = next.count(i->second) ? std::next(i) : running_.erase(i);
  targets_ = std::move(next);
}

std::vector<health_checker::check> health_checker::due(time_ms now_ms) {
  std::vector<check> result;
  for (auto& [k, e] : targets_) {
    if (running_.size() >= cfg_.in_flight_max)
      break;
    if (e.running != 0 || e.next_ms > now_ms)
      continue;
    e.running = next_id_++;
    running_.emplace(e.running, k);
    result.push_back(check{e.running, e.what});
  }
  return result;
}

void health_checker::adapt(entry& e, time_ms rt_ms) {
  auto x = cfg_.factor * static_cast<double>(e.normalized_ms)
           + (1.0 - cfg_.factor) * static_cast<double>(rt_ms);
  e.normalized_ms = std::clamp(static_cast<time_ms>(x), cfg_.interval_min_ms, cfg_.interval_max_ms);
}

std::optional<health_checker::flip> health_checker::on_result(std::uint64_t id, outcome x,
                                                              time_ms rt_ms, time_ms now_ms) {
  auto r = running_.find(id);
  if (r == running_.end())
    return std::nullopt;
  auto i = targets_.find(r->second);
  running_.erase(r);
  if (i == targets_.end())
    return std::nullopt;
  auto& e = i->second;
  e.running = 0;
  std::optional<flip> result;
  switch (x) {
    case outcome::ok:
      adapt(e, rt_ms);
      e.fail_count = 0;
      if (!e.what.healthy && ++e.ok_count >= cfg_.flip_count)
        result = flip{e.what, true};
      break;
    case outcome::fail:
      adapt(e, 2 * e.normalized_ms);
      e.ok_count = 0;
      if (e.what.healthy && ++e.fail_count >= cfg_.flip_count)
        result = flip{e.what, false};
      break;
    case outcome::fail_now:
      adapt(e, cfg_.interval_max_ms);
      e.ok_count = 0;
      if (e.what.healthy)
        result = flip{e.what, false};
      break;
  }
  if (result) {
    // Assume the write succeeds; set_targets brings the committed state back otherwise.
    e.what.healthy = result->healthy;
    e.ok_count = 0;
    e.fail_count = 0;
  }
  e.next_ms = now_ms + e.normalized_ms;
  return result;
}

void health_checker::cancel_running(time_ms now_ms) {
  for (auto& [id, k] : running_) {
    auto i = targets_.find(k);
    if (i != targets_.end()) {
      i->second.running = 0;
      i->second.next_ms = now_ms + i->second.normalized_ms;
    }
  }
  running_.clear();
}

std::optional<time_ms> health_checker::next_due() const {
  std::optional<time_ms> result;
  for (const auto& [k, e] : targets_)
    if (e.running == 0 && (!result || e.next_ms < *result))
      result = e.next_ms;
  return result;
}

time_ms health_checker::interval_of(const std::string& ip, std::uint32_t port) const {
  for (const auto& [k, e] : targets_)
    if (e.what.ip == ip && e.what.port == port)
      return e.normalized_ms;
  return 0;
}

} // namespace registry
