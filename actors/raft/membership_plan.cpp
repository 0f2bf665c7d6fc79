#include "actors/raft/membership_plan.hpp"

namespace registry::raft {

using step = membership_planner::step;

const char* to_string(step::kind x) {
  switch (x) {
    case step::kind::add_learner:
      return "add_learner";
    case step::kind::promote:
      return "promote";
    case step::kind::remove:
      return "remove";
    case step::kind::transfer:
      return "transfer";
    default:
      return "none";
  }
}

membership_planner::membership_planner(membership_plan_config cfg) : cfg_(cfg) {
}

bool membership_planner::set_desired(const std::vector<node_id>& members,
                                     std::size_t members_max) {
  std::set<node_id> xs;
  for (const auto& m : members)
    if (!m.empty())
      xs.insert(m);
  if (xs.size() > members_max) {
    log_.push_back("ignores a member list of " + std::to_string(xs.size())
                   + " members: Raft holds at most " + std::to_string(members_max));
    return false;
  }
  if (xs != desired_) {
    desired_ = std::move(xs);
    // A new list is a new plan: act on it at once, and give removed learners a fresh chance.
    retry_at_ms_ = 0;
    backoff_until_ms_.clear();
  }
  return true;
}

step membership_planner::next(const view& v, time_ms now_ms) {
  step none;
  if (desired_.empty() || v.change_pending || now_ms < retry_at_ms_)
    return none;
  const auto& cfg = v.config;
  // Timers of learners that left the configuration.
  for (auto i = learner_since_ms_.begin(); i != learner_since_ms_.end();)
    i = cfg.learners.count(i->first) > 0 ? std::next(i) : learner_since_ms_.erase(i);
  // 1. Learners that are not wanted.
  for (const auto& l : cfg.learners)
    if (desired_.count(l) == 0)
      return step{step::kind::remove, l};
  // 2. Wanted learners: promote when caught up, give up after the timeout.
  bool catching_up = false;
  for (const auto& l : cfg.learners) {
    auto since = learner_since_ms_.emplace(l, now_ms).first->second;
    if (v.caught_up.count(l) > 0 && v.replicating.count(l) > 0)
      return step{step::kind::promote, l};
    if (now_ms - since >= cfg_.catch_up_timeout_ms) {
      backoff_until_ms_[l] = now_ms + cfg_.learner_retry_delay_ms;
      log_.push_back("gives up on learner " + l + ": it did not catch up within "
                     + std::to_string(cfg_.catch_up_timeout_ms) + " ms; removing it, next try in "
                     + std::to_string(cfg_.learner_retry_delay_ms) + " ms");
      return step{step::kind::remove, l};
    }
    catching_up = true;
  }
  // 3. Wanted nodes that are not members.
  for (const auto& d : desired_) {
    if (cfg.contains(d))
      continue;
    auto b = backoff_until_ms_.find(d);
    if (b != backoff_until_ms_.end()) {
      if (now_ms < b->second)
        continue;
      backoff_until_ms_.erase(b);
    }
    return step{step::kind::add_learner, d};
  }
  // 4. Removals wait for the learners being added.
  if (catching_up)
    return none;
  // 5. Voters that are not wanted, the leader last.
  for (const auto& x : cfg.voters)
    if (x != v.self && desired_.count(x) == 0)
      return step{step::kind::remove, x};
  // 6. The leader itself is not wanted: hand over, the next leader removes it.
  if (cfg.is_voter(v.self) && desired_.count(v.self) == 0) {
    auto target = transfer_target(v, desired_);
    if (!target.empty())
      return step{step::kind::transfer, target};
  }
  return none;
}

void membership_planner::proposed(const step& s, time_ms now_ms) {
  if (s.what == step::kind::add_learner)
    learner_since_ms_[s.node] = now_ms;
  else if (s.what == step::kind::promote || s.what == step::kind::remove)
    learner_since_ms_.erase(s.node);
}

void membership_planner::refused(time_ms now_ms) {
  retry_at_ms_ = now_ms + cfg_.retry_delay_ms;
}

void membership_planner::reset() {
  learner_since_ms_.clear();
  retry_at_ms_ = 0;
}

std::vector<std::string> membership_planner::take_log() {
  auto result = std::move(log_);
  log_.clear();
  return result;
}

node_id membership_planner::transfer_target(const view& v, const std::set<node_id>& prefer) {
  node_id best;
  bool best_preferred = false;
  index_t best_match = 0;
  for (const auto& x : v.config.voters) {
    if (x == v.self)
      continue;
    auto i = v.match.find(x);
    index_t match = i == v.match.end() ? 0 : i->second;
    bool preferred = prefer.count(x) > 0;
    bool better = best.empty() || (preferred && !best_preferred)
                  || (preferred == best_preferred && match > best_match);
    if (better) {
      best = x;
      best_preferred = preferred;
      best_match = match;
    }
  }
  return best;
}

} // namespace registry::raft
