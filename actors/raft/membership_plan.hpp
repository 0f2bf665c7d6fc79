#pragma once
/// How the Raft configuration follows the member list (no CAF, no I/O, no clock).
///
/// The raft actor of the leader asks `membership_planner::next` for the next single-server change
/// (raft_core::change_membership) that brings the configuration closer to the desired members,
/// proposes it, and asks again once it is committed. Followers keep the desired list only, so
/// they act if they become leader.
///
/// ## The order of steps (one at a time, never while a configuration entry is uncommitted)
/// 1. A learner that is not desired is removed.
/// 2. A desired learner that caught up (it acknowledged appends and its match index is close to
///    the leader's last index) is promoted to voter. One that has not caught up within catch_up_timeout_ms is removed and not
///    added again before learner_retry_delay_ms (logged once per attempt).
/// 3. A desired node that is not a member is added as a learner.
/// 4. While a desired learner is still catching up, voters are not removed (adding first keeps the
///    fault tolerance; the catch-up timeout bounds the wait).
/// 5. A voter that is not desired (other than the leader itself) is removed.
/// 6. When the leader itself is not desired, it transfers leadership to the most up-to-date other
///    voter; the new leader removes it.
/// A refused proposal (e.g. the leader has not committed an entry of its term yet) waits
/// retry_delay_ms before the next step.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "actors/raft/raft_types.hpp"
#include "config/defaults.hpp"

namespace registry::raft {

struct membership_plan_config {
  time_ms catch_up_timeout_ms = defaults::raft_catch_up_timeout_ms;
  time_ms retry_delay_ms = defaults::raft_membership_retry_ms;
  time_ms learner_retry_delay_ms = defaults::raft_learner_retry_ms;
};

class membership_planner {
public:
  /// One single-server change (or a leadership transfer, or nothing).
  struct step {
    enum class kind { none, add_learner, promote, remove, transfer };
    kind what = kind::none;
    node_id node;

    explicit operator bool() const {
      return what != kind::none;
    }
  };

  /// What the leader knows when it asks.
  struct view {
    node_id self;
    /// The configuration in force (the newest in the log).
    configuration config;
    /// A configuration entry is not committed yet.
    bool change_pending = false;
    /// Learners whose match index is close enough to the end of the log.
    std::set<node_id> caught_up;
    /// Members that acknowledged an AppendEntries of this leader (alive, match index real). A
    /// learner is promoted only when it is in both sets: with a short log a learner that never
    /// answered would look caught up.
    std::set<node_id> replicating;
    /// Match index of the other members (missing: unknown, taken as 0).
    std::map<node_id, index_t> match;
  };

  explicit membership_planner(membership_plan_config cfg = {});

  /// The desired members (the member list). An empty list means "no opinion": nothing changes.
  /// Returns false (and keeps the old list) when it has more than `members_max` entries.
  bool set_desired(const std::vector<node_id>& members, std::size_t members_max);
  const std::set<node_id>& desired() const {
    return desired_;
  }

  /// The next step for a leader; none when nothing is to be done or it must wait.
  step next(const view& v, time_ms now_ms);

  /// The core accepted the step returned by next().
  void proposed(const step& s, time_ms now_ms);
  /// The core refused it: no step before now + retry_delay_ms.
  void refused(time_ms now_ms);
  /// This node is not the leader (any more): forget the catch-up timers.
  void reset();

  /// Lines worth logging since the last call ("subject verb object").
  std::vector<std::string> take_log();

  /// The voter other than `v.self` with the highest match index (voters in `prefer` first; ties go
  /// to the smaller id); "" when there is none.
  static node_id transfer_target(const view& v, const std::set<node_id>& prefer);

private:
  membership_plan_config cfg_;
  std::set<node_id> desired_;
  /// No step before this time (after a refusal).
  time_ms retry_at_ms_ = 0;
  /// When this leader first saw each desired learner (catch-up timer).
  std::map<node_id, time_ms> learner_since_ms_;
  /// Nodes removed for not catching up: not added again before this time.
  std::map<node_id, time_ms> backoff_until_ms_;
  std::vector<std::string> log_;
};

/// "add_learner", "promote", "remove", "transfer", "none".
const char* to_string(membership_planner::step::kind x);

} // namespace registry::raft
