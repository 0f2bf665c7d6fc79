#pragma once
/// The two clocks actors read (protocol classes never read a clock: actors pass the time in).

#include <chrono>

#include "messages/model.hpp"

namespace registry {

/// Monotonic milliseconds: for expiry, merging and retries.
inline time_ms steady_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

/// The actor system's monotonic clock in milliseconds: real time in production, virtual time under
/// CAF's deterministic test scheduler. Actors use this for expiry, merging and retries.
template <class Self>
time_ms actor_now_ms(Self* self) {
  using namespace std::chrono;
  return duration_cast<milliseconds>(self->clock().now().time_since_epoch()).count();
}

/// Wall-clock milliseconds since the epoch: for lastRefTime in replies.
inline time_ms system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

} // namespace registry
