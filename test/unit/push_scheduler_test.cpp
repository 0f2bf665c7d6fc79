#include <doctest/doctest.h>

#include <algorithm>

#include "actors/service/push_scheduler.hpp"

using namespace registry;

namespace {

using ids = std::vector<subscriber_id>;

push_scheduler make_scheduler(time_ms drop_after_ms = 60000) {
  push_scheduler::config cfg;
  cfg.merge_window_ms = 20;
  cfg.retry_delay_ms = 1000;
  cfg.drop_after_ms = drop_after_ms;
  return push_scheduler{cfg};
}

ids sorted(ids xs) {
  std::sort(xs.begin(), xs.end());
  return xs;
}

} // namespace

TEST_CASE("push_scheduler: subscribers") {
  auto s = make_scheduler();
  s.add_subscriber(1);
  s.add_subscriber(2);
  CHECK(s.subscriber_count() == 2);
  CHECK(s.has_subscriber(1));
  s.remove_subscriber(1);
  CHECK_FALSE(s.has_subscriber(1));
  CHECK(s.subscriber_count() == 1);
  s.remove_subscriber(42); // unknown: harmless
  CHECK(s.subscriber_count() == 1);
}

TEST_CASE("push_scheduler: a change at an idle service pushes at once") {
  auto s = make_scheduler();
  s.add_subscriber(1);
  s.add_subscriber(2);
  auto fx = s.on_change(1000);
  CHECK(sorted(fx.push_to) == ids{1, 2});
  CHECK(fx.dropped.empty());
  CHECK_FALSE(fx.wake_at);
  s.on_push_result(1, true, 1001);
  s.on_push_result(2, true, 1001);
  // Long after the window: at once again.
  fx = s.on_change(5000);
  CHECK(sorted(fx.push_to) == ids{1, 2});
  CHECK_FALSE(fx.wake_at);
}

TEST_CASE("push_scheduler: no subscribers, no push") {
  auto s = make_scheduler();
  auto fx = s.on_change(0);
  CHECK(fx.push_to.empty());
  CHECK_FALSE(fx.wake_at);
  // A later subscriber got the state in its reply; its first change pushes at once.
  s.add_subscriber(7);
  fx = s.on_change(5);
  CHECK(fx.push_to == ids{7});
}

TEST_CASE("push_scheduler: a burst within the window merges into one push at last + window") {
  auto s = make_scheduler();
  s.add_subscriber(1);
  CHECK(s.on_change(100).push_to == ids{1});
  s.on_push_result(1, true, 101);
  auto fx = s.on_change(105);
  CHECK(fx.push_to.empty());
  REQUIRE(fx.wake_at);
  CHECK(*fx.wake_at == 120);
  // More changes while the merged push is pending: no extra push, same wake time.
  for (time_ms t : {110, 115, 119}) {
    fx = s.on_change(t);
    CHECK(fx.push_to.empty());
    REQUIRE(fx.wake_at);
    CHECK(*fx.wake_at == 120);
  }
  // A stale or early tick does nothing.
  fx = s.on_tick(118);
  CHECK(fx.push_to.empty());
  CHECK(fx.wake_at == std::optional<time_ms>{120});
  // The merged push.
  fx = s.on_tick(120);
  CHECK(fx.push_to == ids{1});
  CHECK_FALSE(fx.wake_at);
  s.on_push_result(1, true, 121);
  // A repeated tick is stale.
  CHECK(s.on_tick(120).push_to.empty());
  // A change within the window of the merged push is merged again.
  fx = s.on_change(130);
  CHECK(fx.push_to.empty());
  CHECK(fx.wake_at == std::optional<time_ms>{140});
  CHECK(s.on_tick(140).push_to == ids{1});
}

TEST_CASE("push_scheduler: a change right at the end of the window pushes at once") {
  auto s = make_scheduler();
  s.add_subscriber(1);
  s.on_change(100);
  s.on_push_result(1, true, 101);
  auto fx = s.on_change(119);
  CHECK(fx.push_to.empty());
  CHECK(fx.wake_at == std::optional<time_ms>{120});
  CHECK(s.on_tick(120).push_to == ids{1});
  s.on_push_result(1, true, 121);
  fx = s.on_change(140); // 20 ms after the merged push
  CHECK(fx.push_to == ids{1});
  CHECK_FALSE(fx.wake_at);
}

TEST_CASE("push_scheduler: a failed push is retried after the delay, then succeeds") {
  auto s = make_scheduler();
  s.add_subscriber(1);
  s.add_subscriber(2);
  s.on_change(0);
  CHECK_FALSE(s.on_push_result(2, true, 5).wake_at);
  auto fx = s.on_push_result(1, false, 10);
  CHECK(fx.push_to.empty());
  CHECK(fx.dropped.empty());
  CHECK(fx.wake_at == std::optional<time_ms>{1010});
  CHECK(s.on_tick(1009).push_to.empty());
  fx = s.on_tick(1010);
  CHECK(fx.push_to == ids{1}); // only the failed one
  CHECK_FALSE(fx.wake_at);
  fx = s.on_push_result(1, true, 1020);
  CHECK(fx.push_to.empty());
  CHECK_FALSE(fx.wake_at);
  CHECK(s.has_subscriber(1));
}

TEST_CASE("push_scheduler: dropped when stalled for drop_after_ms") {
  auto s = make_scheduler(3000);
  s.add_subscriber(1);
  s.add_subscriber(2);
  s.on_change(0);
  CHECK(s.on_push_result(2, true, 5).push_to.empty());
  time_ms now = 10;
  // The push (sent at 0) and its retries fail: the stall counts from 0.
  for (int retry = 0; retry < 2; ++retry) {
    auto fx = s.on_push_result(1, false, now);
    CAPTURE(retry);
    CHECK(fx.dropped.empty());
    REQUIRE(fx.wake_at);
    CHECK(*fx.wake_at == now + 1000);
    now = *fx.wake_at;
    CHECK(s.on_tick(now).push_to == ids{1});
    now += 10;
  }
  CHECK(now < 3000);
  now = 3000;
  auto fx = s.on_push_result(1, false, now);
  CHECK(fx.dropped == ids{1});
  CHECK_FALSE(fx.wake_at);
  CHECK_FALSE(s.has_subscriber(1));
  CHECK(s.has_subscriber(2));
  // Results for a forgotten subscriber are ignored.
  fx = s.on_push_result(1, false, now + 1);
  CHECK(fx.dropped.empty());
  CHECK_FALSE(fx.wake_at);
  CHECK(s.on_change(now + 5000).push_to == ids{2});
}

TEST_CASE("push_scheduler: a failure after drop_after_ms of silence drops at once") {
  auto s = make_scheduler(100);
  s.add_subscriber(1);
  s.on_change(0);
  CHECK(s.on_push_result(1, false, 150).dropped == ids{1});
}

TEST_CASE("push_scheduler: a success ends the stall") {
  auto s = make_scheduler(2500);
  s.add_subscriber(1);
  s.on_change(0);
  time_ms now = 0;
  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    // Fail twice (2 s in all, within the bound), then succeed: never dropped.
    auto fx = s.on_push_result(1, false, now + 1);
    CHECK(fx.dropped.empty());
    CHECK(s.on_tick(*fx.wake_at).push_to == ids{1});
    fx = s.on_push_result(1, false, *fx.wake_at + 1);
    CHECK(fx.dropped.empty());
    now = *fx.wake_at;
    CHECK(s.on_tick(now).push_to == ids{1});
    CHECK_FALSE(s.on_push_result(1, true, now + 1).wake_at);
    now += 1;
    // The next round starts with a fresh push.
    CHECK(s.on_change(now + 100).push_to == ids{1});
    now += 100;
  }
  CHECK(s.has_subscriber(1));
}

TEST_CASE("push_scheduler: one push in flight; changes meanwhile go out newest-only on the ack") {
  auto s = make_scheduler();
  s.add_subscriber(1);
  CHECK(s.on_change(0).push_to == ids{1});
  CHECK(s.in_flight(1));
  // Changes while the push is in flight push nothing to it.
  for (time_ms t = 100; t <= 1000; t += 100) {
    auto fx = s.on_change(t);
    CHECK(fx.push_to.empty());
    if (fx.wake_at)
      CHECK(s.on_tick(*fx.wake_at).push_to.empty());
  }
  // The ack releases one push with the current state.
  auto fx = s.on_push_result(1, true, 1500);
  CHECK(fx.push_to == ids{1});
  CHECK(s.in_flight(1));
  // Its ack owes nothing more.
  CHECK(s.on_push_result(1, true, 1510).push_to.empty());
  CHECK_FALSE(s.in_flight(1));
}

TEST_CASE("push_scheduler: after a failure the retry carries the newest state") {
  auto s = make_scheduler();
  s.add_subscriber(1);
  s.on_change(0);
  s.on_change(100); // owed
  auto fx = s.on_push_result(1, false, 3000);
  CHECK(fx.push_to.empty());
  CHECK(fx.wake_at == std::optional<time_ms>{4000});
  CHECK(s.on_tick(4000).push_to == ids{1});
  CHECK(s.on_push_result(1, true, 4010).push_to.empty());
}

TEST_CASE("push_scheduler: a regular push replaces a pending retry") {
  auto s = make_scheduler();
  s.add_subscriber(1);
  s.add_subscriber(2);
  s.on_change(0);
  s.on_push_result(2, true, 1);
  auto fx = s.on_push_result(1, false, 10);
  CHECK(fx.wake_at == std::optional<time_ms>{1010});
  // A change before the retry is due pushes to everyone, with the current state.
  fx = s.on_change(500);
  CHECK(sorted(fx.push_to) == ids{1, 2});
  CHECK_FALSE(fx.wake_at); // the retry is gone
  CHECK(s.on_tick(1010).push_to.empty());
}

TEST_CASE("push_scheduler: a merged push also replaces pending retries") {
  auto s = make_scheduler();
  s.add_subscriber(1);
  s.add_subscriber(2);
  s.on_change(0);
  s.on_push_result(2, true, 1);
  auto fx = s.on_push_result(1, false, 5);
  CHECK(fx.wake_at == std::optional<time_ms>{1005});
  fx = s.on_change(10); // merged at 20
  CHECK(fx.push_to.empty());
  CHECK(fx.wake_at == std::optional<time_ms>{20}); // the earliest pending event
  fx = s.on_tick(20);
  CHECK(sorted(fx.push_to) == ids{1, 2});
  CHECK_FALSE(fx.wake_at);
}

TEST_CASE("push_scheduler: wake_at is the earliest pending time") {
  auto s = make_scheduler();
  for (subscriber_id id : {1, 2, 3})
    s.add_subscriber(id);
  s.on_change(0);
  CHECK(s.on_push_result(1, false, 300).wake_at == std::optional<time_ms>{1300});
  CHECK(s.on_push_result(2, false, 100).wake_at == std::optional<time_ms>{1100});
  CHECK(s.on_push_result(3, true, 200).wake_at == std::optional<time_ms>{1100});
  auto fx = s.on_tick(1100);
  CHECK(fx.push_to == ids{2});
  CHECK(fx.wake_at == std::optional<time_ms>{1300});
  // A tick later than several due retries serves them all.
  CHECK(s.on_push_result(2, false, 1150).wake_at == std::optional<time_ms>{1300});
  fx = s.on_tick(5000);
  CHECK(sorted(fx.push_to) == ids{1, 2});
  CHECK_FALSE(fx.wake_at);
}

TEST_CASE("push_scheduler: a removed subscriber's retry is forgotten") {
  auto s = make_scheduler();
  s.add_subscriber(1);
  s.on_change(0);
  CHECK(s.on_push_result(1, false, 10).wake_at);
  s.remove_subscriber(1);
  auto fx = s.on_tick(1010);
  CHECK(fx.push_to.empty());
  CHECK_FALSE(fx.wake_at);
}
