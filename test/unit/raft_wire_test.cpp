/// Raft messages through raft.proto and back (actors/raft/raft_wire.hpp), and the rules a received
/// message must keep.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "actors/raft/raft_wire.hpp"

using namespace registry;
using namespace registry::raft;

namespace {

message round_trip(const message& x) {
  auto wire = to_wire(x);
  std::string bytes;
  REQUIRE(wire.SerializeToString(&bytes));
  v1::RaftMessage parsed;
  REQUIRE(parsed.ParseFromString(bytes));
  std::string error;
  auto result = from_wire(parsed, error);
  REQUIRE_MESSAGE(result, error);
  CHECK(result->from == x.from);
  CHECK(result->to == x.to);
  CHECK(result->term == x.term);
  CHECK(result->body.index() == x.body.index());
  return *result;
}

std::string refused(const v1::RaftMessage& x) {
  std::string error;
  auto result = from_wire(x, error);
  CHECK_FALSE(result);
  return error;
}

v1::RaftMessage append_with(std::vector<entry> xs) {
  return to_wire(message{"a", "b", 3, append_request{4, 2, std::move(xs), 4}});
}

} // namespace

TEST_CASE("raft wire: every message type survives the trip through raft.proto") {
  auto v = round_trip(message{"a", "b", 4, vote_request{9, 3, true, false}});
  auto vr = std::get<vote_request>(v.body);
  CHECK(vr.last_index == 9);
  CHECK(vr.last_term == 3);
  CHECK(vr.pre_vote);
  CHECK_FALSE(vr.transfer);
  auto g = std::get<vote_response>(round_trip(message{"b", "a", 4, vote_response{true, true}}).body);
  CHECK(g.granted);
  CHECK(g.pre_vote);
  std::vector<entry> xs = {entry{5, 2, entry_kind::noop, ""},
                           entry{6, 3, entry_kind::command, std::string("\0\1x", 3)},
                           entry{7, 3, entry_kind::config, "cfg"}};
  auto a = std::get<append_request>(
    round_trip(message{"a", "b", 3, append_request{4, 2, xs, 4}}).body);
  CHECK(a.prev_index == 4);
  CHECK(a.prev_term == 2);
  CHECK(a.commit == 4);
  CHECK(a.entries == xs);
  auto ar = std::get<append_response>(
    round_trip(message{"b", "a", 3, append_response{false, 7, 5}}).body);
  CHECK_FALSE(ar.success);
  CHECK(ar.index == 7);
  CHECK(ar.hint == 5);
  CHECK(std::get<heartbeat>(round_trip(message{"a", "b", 3, heartbeat{6}}).body).commit == 6);
  round_trip(message{"b", "a", 3, heartbeat_response{}});
  configuration c;
  c.voters = {"a", "b"};
  c.learners = {"d"};
  auto s = std::get<install_snapshot>(
    round_trip(message{"a", "d", 3,
                       install_snapshot{snapshot_meta{40, 3, c},
                                        std::make_shared<const std::string>("state")}})
      .body);
  CHECK(s.meta == snapshot_meta{40, 3, c});
  CHECK(*s.data == "state");
  CHECK(std::get<install_snapshot_response>(
          round_trip(message{"d", "a", 3, install_snapshot_response{40}}).body)
          .index
        == 40);
  round_trip(message{"a", "b", 3, timeout_now{}});
}

TEST_CASE("raft wire: a received message that breaks a rule is refused with the rule") {
  v1::RaftMessage x = to_wire(message{"a", "b", 3, heartbeat{1}});
  x.set_from("");
  CHECK(refused(x) == "from is empty");
  x = to_wire(message{"a", "b", 0, heartbeat{1}});
  CHECK(refused(x) == "term 0");
  x = to_wire(message{"a", "b", 3, heartbeat{1}});
  x.clear_heartbeat();
  CHECK(refused(x) == "no body");
  CHECK(refused(append_with({entry{6, 2, entry_kind::noop, ""}}))
        == "append_request: entry 1 has index 6, expected 5");
  CHECK(refused(append_with({entry{5, 4, entry_kind::noop, ""}}))
        == "append_request: entry 1 has term 4 after term 2 in term 3");
  CHECK(refused(append_with({entry{5, 1, entry_kind::noop, ""}}))
        == "append_request: entry 1 has term 1 after term 2 in term 3");
  auto unknown = append_with({entry{5, 2, entry_kind::noop, ""}});
  unknown.mutable_append_request()->mutable_entries(0)->set_kind(v1::RAFT_ENTRY_UNKNOWN);
  CHECK(refused(unknown) == "append_request: entry 1 has unknown kind 0");
  configuration c;
  c.voters = {"a"};
  auto snap = to_wire(message{"a", "b", 3, install_snapshot{snapshot_meta{9, 3, c},
                                                            std::make_shared<const std::string>()}});
  snap.mutable_install_snapshot()->mutable_meta()->mutable_config()->add_learners("a");
  CHECK(refused(snap) == "install_snapshot: a is voter and learner");
  snap.mutable_install_snapshot()->mutable_meta()->mutable_config()->clear_voters();
  CHECK(refused(snap) == "install_snapshot: snapshot configuration without voters");
  auto future = to_wire(message{"a", "b", 3, install_snapshot{snapshot_meta{9, 5, c},
                                                              std::make_shared<const std::string>()}});
  CHECK(refused(future) == "install_snapshot: snapshot 9/5 in term 3");
  wire_limits small;
  small.entries_max = 1;
  std::string error;
  CHECK_FALSE(from_wire(append_with({entry{5, 2, entry_kind::noop, ""},
                                     entry{6, 2, entry_kind::noop, ""}}),
                        error, small));
  CHECK(error == "append_request: 2 entries, above 1");
}
