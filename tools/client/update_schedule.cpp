#include "tools/client/update_schedule.hpp"

#include <algorithm>
#include <cassert>

namespace registry::client {

update_schedule::update_schedule(std::int64_t interval_ms, std::int64_t backoff_max_ms)
  : interval_ms_(std::max<std::int64_t>(interval_ms, 1)),
    backoff_max_ms_(std::max(backoff_max_ms, std::max<std::int64_t>(interval_ms, 1))) {
  assert(interval_ms > 0);
}

time_ms update_schedule::start(time_ms now) {
  active_ = true;
  failures_ = 0;
  ++generation_;
  next_due_ = now + interval_ms_;
  return next_due_;
}

time_ms update_schedule::succeeded(time_ms now) {
  failures_ = 0;
  next_due_ = now + delay_ms();
  return next_due_;
}

time_ms update_schedule::failed(time_ms now) {
  if (failures_ < failures_shift_max)
    ++failures_;
  next_due_ = now + delay_ms();
  return next_due_;
}

void update_schedule::stop() {
  active_ = false;
  ++generation_;
}

std::int64_t update_schedule::delay_ms() const {
  // interval << failures, without overflowing: stop doubling once past the cap.
  std::int64_t delay = interval_ms_;
  for (int i = 0; i < failures_ && delay < backoff_max_ms_; ++i)
    delay *= 2;
  return std::min(delay, backoff_max_ms_);
}

} // namespace registry::client
