#pragma once
/// When to push a service's state to its subscribers (no CAF).
///
/// Merging: a change at an idle service pushes at once; further changes within `merge_window_ms` of
/// the last push are merged into one push at (last push + window). So bursts travel as one push per
/// window, and an idle node adds no delay.
///
/// Retry: a failed push to one subscriber is retried after `retry_delay_ms` with the then current
/// state (never a stale one), at most `retries_max` times in a row; then the subscriber is dropped.
/// A successful push resets its failure count. A regular push to a subscriber with a retry pending
/// replaces the retry.

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "messages/model.hpp"

namespace registry {

using subscriber_id = std::uint64_t;

class push_scheduler {
public:
  struct config {
    time_ms merge_window_ms = 20;
    time_ms retry_delay_ms = 1000;
    int retries_max = 5;
  };

  /// What the actor must do now.
  struct effects {
    std::vector<subscriber_id> push_to;  ///< push the current state to these, now
    std::vector<subscriber_id> dropped;  ///< give up on these (too many failures); forget them
    std::optional<time_ms> wake_at;      ///< call on_tick() at this time (earliest pending event)
  };

  explicit push_scheduler(config cfg);

  /// A new subscriber: it got the current state in the subscribe reply, so nothing is pushed now.
  void add_subscriber(subscriber_id id);
  void remove_subscriber(subscriber_id id);

  /// The service's state changed.
  effects on_change(time_ms now);

  /// The result of a push to `id` (ignored for unknown ids).
  effects on_push_result(subscriber_id id, bool ok, time_ms now);

  /// A timer fired; stale timers are harmless.
  effects on_tick(time_ms now);

  std::size_t subscriber_count() const { return subscribers_.size(); }
  bool has_subscriber(subscriber_id id) const { return subscribers_.count(id) > 0; }

private:
  struct subscriber {
    int failures = 0;
    std::optional<time_ms> retry_at;
  };
  std::optional<time_ms> next_wake() const;

  config cfg_;
  std::map<subscriber_id, subscriber> subscribers_;
  std::optional<time_ms> last_push_ms_;
  std::optional<time_ms> merged_push_at_;
};

} // namespace registry
