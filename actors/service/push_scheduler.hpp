#pragma once
/// When to push a service's state to its subscribers (no CAF).
///
/// Merging: a change at an idle service pushes at once; further changes within `merge_window_ms` of
/// the last push are merged into one push at (last push + window). So bursts travel as one push per
/// window, and an idle node adds no delay.
///
/// One push in flight per subscriber: while a push to a subscriber awaits its result, later pushes
/// to it only mark its state as owed (newest wins: a push always carries the then current state).
/// The owed state goes out as soon as the result comes: at once after an ack, after
/// `retry_delay_ms` after a failure (a timeout or an error). So a slow subscriber costs one
/// request, never a queue.
///
/// Stalls: a subscriber whose pushes keep failing is retried with the current state every
/// `retry_delay_ms`. When it has not acknowledged anything for `drop_after_ms` (counted from the
/// first failed push of the row) it is dropped: the actor tells it (SubscriptionDropped) and
/// forgets it. A successful push ends the stall. A regular push to a subscriber with a retry
/// pending replaces the retry.

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
    time_ms drop_after_ms = 60000;
  };

  /// What the actor must do now.
  struct effects {
    std::vector<subscriber_id> push_to;  ///< push the current state to these, now
    std::vector<subscriber_id> dropped;  ///< stalled too long: tell them, then forget them
    std::optional<time_ms> wake_at;      ///< call on_tick() at this time (earliest pending event)
  };

  explicit push_scheduler(config cfg);

  /// A new subscriber: it got the current state in the subscribe reply, so nothing is pushed now.
  void add_subscriber(subscriber_id id);
  void remove_subscriber(subscriber_id id);

  /// The service's state changed.
  effects on_change(time_ms now);

  /// The result of the push in flight to `id` (ignored for unknown ids).
  effects on_push_result(subscriber_id id, bool ok, time_ms now);

  /// A timer fired; stale timers are harmless.
  effects on_tick(time_ms now);

  std::size_t subscriber_count() const { return subscribers_.size(); }
  bool has_subscriber(subscriber_id id) const { return subscribers_.count(id) > 0; }
  /// True while a push to `id` awaits its result.
  bool in_flight(subscriber_id id) const {
    auto i = subscribers_.find(id);
    return i != subscribers_.end() && i->second.in_flight;
  }

private:
  struct subscriber {
    bool in_flight = false;              ///< a push awaits its result
    bool owed = false;                   ///< the state changed since the push in flight was sent
    time_ms sent_at = 0;                 ///< when the push in flight was sent
    std::optional<time_ms> retry_at;     ///< a failed push is retried then
    std::optional<time_ms> stalled_since; ///< the first failed push of the current row was sent then
  };

  /// Pushes the current state to `sub` now, or marks it owed while a push is in flight.
  void push_or_owe(subscriber_id id, subscriber& sub, time_ms now, effects& fx);
  std::optional<time_ms> next_wake() const;

  config cfg_;
  std::map<subscriber_id, subscriber> subscribers_;
  std::optional<time_ms> last_push_ms_;
  std::optional<time_ms> merged_push_at_;
};

} // namespace registry
