#pragma once
/// The timeline of one subscribed service's update task (plain C++, no CAF, no clock).
///
/// The task re-queries the service every `interval`; after a failure it waits
/// min(interval << failures, backoff_max) instead, and one success resets the failure count. Time is
/// always an argument (ms on any monotonic clock), so a test can drive it with a fake clock:
///
///     update_schedule s{10'000, 60'000};
///     auto due = s.start(now);          // now + 10 s
///     due = s.failed(due);              // + 20 s, then 40 s, then 60 s (capped) ...
///     due = s.succeeded(due);           // + 10 s again
///
/// The owner arms a timer for next_due() and ignores timers of older generations (CAF timers cannot be
/// cancelled): generation() changes on every start() and stop().

#include <cstdint>

#include "messages/model.hpp"

namespace registry::client {

class update_schedule {
public:
  /// Failures beyond this no longer grow the shift (the cap applies long before).
  static constexpr int failures_shift_max = 20;

  /// @pre interval_ms > 0, backoff_max_ms >= interval_ms
  update_schedule(std::int64_t interval_ms, std::int64_t backoff_max_ms);

  /// Starts (or restarts) the task: failures reset, first run after one interval. Returns the due time.
  time_ms start(time_ms now);

  /// Records a successful run at `now`; returns the next due time (now + interval).
  time_ms succeeded(time_ms now);

  /// Records a failed run at `now`; returns the next due time (now + the backed-off delay).
  time_ms failed(time_ms now);

  /// Stops the task; timers armed before are stale from now on.
  void stop();

  /// The delay the next run waits after the last one: min(interval << failures, backoff_max).
  std::int64_t delay_ms() const;

  bool active() const { return active_; }
  int failures() const { return failures_; }
  time_ms next_due() const { return next_due_; }
  std::uint64_t generation() const { return generation_; }

  /// True when a timer of generation `gen` firing now should run the task.
  bool is_current(std::uint64_t gen) const { return active_ && gen == generation_; }

private:
  std::int64_t interval_ms_;
  std::int64_t backoff_max_ms_;
  int failures_ = 0;
  bool active_ = false;
  time_ms next_due_ = 0;
  std::uint64_t generation_ = 0;
};

} // namespace registry::client
