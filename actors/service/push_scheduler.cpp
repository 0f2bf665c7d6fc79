#include "actors/service/push_scheduler.hpp"

#include <algorithm>
#include <utility>

namespace registry {

push_scheduler::push_scheduler(config cfg) : cfg_(cfg) {
  // nop
}

void push_scheduler::add_subscriber(subscriber_id id) {
  // The subscribe reply carried the current state: a fresh start, nothing owed to it.
  subscribers_[id] = subscriber{};
}

void push_scheduler::remove_subscriber(subscriber_id id) {
  subscribers_.erase(id);
}

void push_scheduler::push_or_owe(subscriber_id id, subscriber& sub, time_ms now, effects& fx) {
  if (sub.in_flight) {
    // Newest wins: the result of the push in flight releases the then current state.
    sub.owed = true;
    return;
  }
  sub.retry_at.reset(); // this push carries what a retry would
  sub.owed = false;
  sub.in_flight = true;
  sub.sent_at = now;
  fx.push_to.push_back(id);
}

push_scheduler::effects push_scheduler::on_change(time_ms now) {
  effects fx;
  if (subscribers_.empty()) {
    // Nobody to tell; a later subscriber gets the state in its subscribe reply.
    fx.wake_at = next_wake();
    return fx;
  }
  if (merged_push_at_) {
    // A merged push is pending: it will carry this change too.
  } else if (last_push_ms_ && now < *last_push_ms_ + cfg_.merge_window_ms) {
    merged_push_at_ = *last_push_ms_ + cfg_.merge_window_ms;
  } else {
    // Idle: push at once; the regular push replaces every pending retry.
    last_push_ms_ = now;
    for (auto& [id, sub] : subscribers_)
      push_or_owe(id, sub, now, fx);
  }
  fx.wake_at = next_wake();
  return fx;
}

push_scheduler::effects push_scheduler::on_push_result(subscriber_id id, bool ok, time_ms now) {
  effects fx;
  auto i = subscribers_.find(id);
  if (i != subscribers_.end() && i->second.in_flight) {
    auto& sub = i->second;
    sub.in_flight = false;
    if (ok) {
      sub.stalled_since.reset();
      if (sub.owed)
        push_or_owe(id, sub, now, fx); // the newest state, at once
    } else {
      if (!sub.stalled_since)
        sub.stalled_since = sub.sent_at;
      if (now - *sub.stalled_since >= cfg_.drop_after_ms) {
        fx.dropped.push_back(id);
        subscribers_.erase(i);
      } else {
        // The subscriber may lack any state since its last ack: the retry carries the current one.
        sub.owed = false;
        sub.retry_at = now + cfg_.retry_delay_ms;
      }
    }
  }
  fx.wake_at = next_wake();
  return fx;
}

push_scheduler::effects push_scheduler::on_tick(time_ms now) {
  effects fx;
  if (merged_push_at_ && *merged_push_at_ <= now) {
    // The merged push goes to everyone and replaces every pending retry.
    merged_push_at_.reset();
    last_push_ms_ = now;
    for (auto& [id, sub] : subscribers_)
      push_or_owe(id, sub, now, fx);
  } else {
    for (auto& [id, sub] : subscribers_)
      if (sub.retry_at && *sub.retry_at <= now)
        push_or_owe(id, sub, now, fx);
  }
  fx.wake_at = next_wake();
  return fx;
}

std::optional<time_ms> push_scheduler::next_wake() const {
  std::optional<time_ms> r = merged_push_at_;
  for (const auto& [id, sub] : subscribers_)
    if (sub.retry_at && (!r || *sub.retry_at < *r))
      r = sub.retry_at;
  return r;
}

} // namespace registry
