/// Unit tests of the membership planner (actors/raft/membership_plan.hpp): which single-server
/// change a leader proposes next for a desired member list.

#include <doctest/doctest.h>

#include "actors/raft/membership_plan.hpp"

using namespace registry;
using namespace registry::raft;

namespace {

using step = membership_planner::step;
using kind = step::kind;

membership_plan_config test_config() {
  membership_plan_config c;
  c.catch_up_timeout_ms = 1000;
  c.retry_delay_ms = 100;
  c.learner_retry_delay_ms = 5000;
  return c;
}

membership_planner::view make_view(std::set<node_id> voters, std::set<node_id> learners = {}) {
  membership_planner::view v;
  v.self = "a";
  v.config.voters = std::move(voters);
  v.config.learners = std::move(learners);
  return v;
}

bool is(const step& s, kind k, const node_id& n) {
  return s.what == k && s.node == n;
}

} // namespace

TEST_CASE("raft membership plan: nothing to do when the configuration matches the list") {
  membership_planner p{test_config()};
  REQUIRE(p.set_desired({"a", "b", "c"}, 16));
  CHECK(!p.next(make_view({"a", "b", "c"}), 0));
}

TEST_CASE("raft membership plan: an empty list is no opinion") {
  membership_planner p{test_config()};
  REQUIRE(p.set_desired({}, 16));
  CHECK(!p.next(make_view({"a", "b", "c"}), 0));
}

TEST_CASE("raft membership plan: a new member is added as learner, then promoted once caught up") {
  membership_planner p{test_config()};
  REQUIRE(p.set_desired({"a", "b", "c", "d"}, 16));
  auto s = p.next(make_view({"a", "b", "c"}), 0);
  REQUIRE(is(s, kind::add_learner, "d"));
  p.proposed(s, 0);
  // While the entry is uncommitted nothing else happens.
  auto v = make_view({"a", "b", "c"}, {"d"});
  v.change_pending = true;
  CHECK(!p.next(v, 10));
  // Committed, not caught up yet: wait.
  v.change_pending = false;
  CHECK(!p.next(v, 20));
  // Close to the end of a short log, but it never answered: not promoted.
  v.caught_up.insert("d");
  CHECK(!p.next(v, 30));
  v.replicating.insert("d");
  CHECK(is(p.next(v, 40), kind::promote, "d"));
}

TEST_CASE("raft membership plan: a learner that never catches up is removed and retried later") {
  membership_planner p{test_config()};
  REQUIRE(p.set_desired({"a", "b", "c", "d"}, 16));
  auto s = p.next(make_view({"a", "b", "c"}), 0);
  REQUIRE(is(s, kind::add_learner, "d"));
  p.proposed(s, 0);
  auto v = make_view({"a", "b", "c"}, {"d"});
  CHECK(!p.next(v, 999));
  CHECK(p.take_log().empty());
  s = p.next(v, 1000);
  REQUIRE(is(s, kind::remove, "d"));
  auto lines = p.take_log();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("did not catch up within 1000 ms") != std::string::npos);
  p.proposed(s, 1000);
  // Not added again before the learner retry delay.
  CHECK(!p.next(make_view({"a", "b", "c"}), 2000));
  CHECK(is(p.next(make_view({"a", "b", "c"}), 6000), kind::add_learner, "d"));
}

TEST_CASE("raft membership plan: a member no longer listed is removed") {
  membership_planner p{test_config()};
  REQUIRE(p.set_desired({"a", "b"}, 16));
  CHECK(is(p.next(make_view({"a", "b", "c"}), 0), kind::remove, "c"));
  // An unwanted learner goes first.
  CHECK(is(p.next(make_view({"a", "b", "c"}, {"e"}), 0), kind::remove, "e"));
}

TEST_CASE("raft membership plan: removals wait until the new members caught up (add first)") {
  membership_planner p{test_config()};
  // Replace c by d.
  REQUIRE(p.set_desired({"a", "b", "d"}, 16));
  auto s = p.next(make_view({"a", "b", "c"}), 0);
  REQUIRE(is(s, kind::add_learner, "d"));
  p.proposed(s, 0);
  auto v = make_view({"a", "b", "c"}, {"d"});
  CHECK(!p.next(v, 100));
  v.caught_up.insert("d");
  v.replicating.insert("d");
  REQUIRE(is(p.next(v, 200), kind::promote, "d"));
  CHECK(is(p.next(make_view({"a", "b", "c", "d"}), 300), kind::remove, "c"));
  // ... unless the learner gave up: then the removal goes ahead.
  membership_planner q{test_config()};
  REQUIRE(q.set_desired({"a", "b", "d"}, 16));
  auto w = make_view({"a", "b", "c"}, {"d"});
  CHECK(!q.next(w, 0));
  REQUIRE(is(q.next(w, 1000), kind::remove, "d"));
  CHECK(is(q.next(make_view({"a", "b", "c"}), 1001), kind::remove, "c"));
}

TEST_CASE("raft membership plan: a leader that is not listed transfers leadership, never removes "
          "itself") {
  membership_planner p{test_config()};
  REQUIRE(p.set_desired({"b", "c"}, 16));
  auto v = make_view({"a", "b", "c"});
  v.match = {{"b", 5}, {"c", 9}};
  CHECK(is(p.next(v, 0), kind::transfer, "c"));
  // Alone: the listed nodes are added first; a lone leader never hands over to a learner.
  CHECK(is(p.next(make_view({"a"}), 0), kind::add_learner, "b"));
  CHECK(!p.next(make_view({"a"}, {"b", "c"}), 0));
}

TEST_CASE("raft membership plan: a refused change waits for the retry delay") {
  membership_planner p{test_config()};
  REQUIRE(p.set_desired({"a", "b", "c", "d"}, 16));
  REQUIRE(is(p.next(make_view({"a", "b", "c"}), 0), kind::add_learner, "d"));
  p.refused(0);
  CHECK(!p.next(make_view({"a", "b", "c"}), 50));
  CHECK(is(p.next(make_view({"a", "b", "c"}), 100), kind::add_learner, "d"));
}

TEST_CASE("raft membership plan: a new list resets the retry and the learner back-off") {
  membership_planner p{test_config()};
  REQUIRE(p.set_desired({"a", "b", "c", "d"}, 16));
  p.refused(0);
  CHECK(!p.next(make_view({"a", "b", "c"}), 10));
  REQUIRE(p.set_desired({"a", "b", "c", "e"}, 16));
  CHECK(is(p.next(make_view({"a", "b", "c"}), 10), kind::add_learner, "e"));
}

TEST_CASE("raft membership plan: a list beyond members_max is refused and logged") {
  membership_planner p{test_config()};
  REQUIRE(p.set_desired({"a", "b"}, 2));
  CHECK(!p.set_desired({"a", "b", "c"}, 2));
  CHECK(p.desired() == std::set<node_id>{"a", "b"});
  CHECK(p.take_log().size() == 1);
}

TEST_CASE("raft membership plan: the transfer target is the most up-to-date voter") {
  auto v = make_view({"a", "b", "c", "d"}, {"e"});
  v.match = {{"b", 7}, {"c", 7}, {"d", 3}, {"e", 100}};
  // Ties go to the smaller id; learners never.
  CHECK(membership_planner::transfer_target(v, {}) == "b");
  // Preferred voters first.
  CHECK(membership_planner::transfer_target(v, {"d"}) == "d");
  CHECK(membership_planner::transfer_target(make_view({"a"}), {}).empty());
}

TEST_CASE("raft membership plan: a new leader restarts the catch-up timer") {
  membership_planner p{test_config()};
  REQUIRE(p.set_desired({"a", "b", "c", "d"}, 16));
  auto v = make_view({"a", "b", "c"}, {"d"});
  CHECK(!p.next(v, 0));
  p.reset();
  CHECK(!p.next(v, 1500)); // first seen again at 1500
  CHECK(is(p.next(v, 2500), kind::remove, "d"));
}
