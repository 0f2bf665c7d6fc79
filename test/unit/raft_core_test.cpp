/// Unit tests of the Raft core (actors/raft/raft_core.hpp), each named after the property of the
/// paper (§ of "In Search of an Understandable Consensus Algorithm", "thesis" for Ongaro's
/// dissertation) it checks. A small fixture plays network and disk: messages are queued and
/// delivered in rounds (links can be cut), writes wait until a test syncs them (or every round).

#include <doctest/doctest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "actors/raft/raft_core.hpp"

using namespace registry;
using namespace registry::raft;

namespace {

using effects = raft_core::effects;
using change = raft_core::membership_change;

raft_config test_config() {
  raft_config c;
  c.election_timeout_ms = 100;
  c.heartbeat_interval_ms = 20;
  c.snapshot_timeout_ms = 300;
  c.append_entries_max = 8;
  c.inflight_appends_max = 3;
  c.snapshot_threshold_entries = 20;
  c.snapshot_trailing_entries = 4;
  c.log_entries_max = 100;
  c.uncommitted_entries_max = 30;
  c.catch_up_entries_max = 2;
  return c;
}

/// One node: the core, its disk (durable state and writes not yet synced) and what it applied.
struct box {
  std::unique_ptr<raft_core> core;
  bool up = true;
  hard_state hard;
  std::optional<snapshot> snap;
  index_t start = 0;
  term_t start_term = 0;
  std::vector<entry> log;
  std::deque<raft_core::persist_request> unsynced;
  std::vector<entry> applied;
  std::vector<snapshot> restored;
  std::vector<index_t> snapshot_wanted;
};

class cluster {
public:
  time_ms now = 1;
  /// Sync every disk before each delivery round.
  bool auto_sync = true;
  /// Messages sent and not yet delivered.
  std::deque<message> wire;
  /// Directed links that drop messages.
  std::set<std::pair<node_id, node_id>> cut;
  /// When set, sees every message before delivery: may change it, or drop it (false).
  std::function<bool(message&)> tamper;

  cluster(const std::vector<node_id>& voters, raft_config cfg = test_config(),
          const std::vector<node_id>& empty_nodes = {})
    : cfg_(cfg) {
    auto s = bootstrap_state(voters);
    for (const auto& id : voters) {
      auto& b = nodes_[id];
      b.hard = s.hard;
      b.log = s.entries;
      start_node(id);
    }
    for (const auto& id : empty_nodes)
      start_node(id);
  }

  raft_core& operator[](const node_id& id) {
    return *nodes_.at(id).core;
  }

  box& node(const node_id& id) {
    return nodes_.at(id);
  }

  void absorb(const node_id& id, effects fx) {
    auto& b = nodes_.at(id);
    if (fx.persist)
      b.unsynced.push_back(std::move(*fx.persist));
    for (auto& m : fx.messages)
      wire.push_back(std::move(m));
    if (fx.restore)
      b.restored.push_back(*fx.restore);
    for (auto& e : fx.committed)
      b.applied.push_back(e);
    if (fx.snapshot_wanted)
      b.snapshot_wanted.push_back(*fx.snapshot_wanted);
    auto problem = b.core->check_invariants();
    CHECK_MESSAGE(problem.empty(), id << ": " << problem);
  }

  /// Makes every queued write of `id` durable and acknowledges the last one.
  void sync(const node_id& id) {
    auto& b = nodes_.at(id);
    if (!b.up || b.unsynced.empty())
      return;
    std::uint64_t last = 0;
    while (!b.unsynced.empty()) {
      write_to_disk(b, b.unsynced.front());
      last = b.unsynced.front().id;
      b.unsynced.pop_front();
    }
    absorb(id, b.core->persisted(last, now));
  }

  void sync_all() {
    for (auto& [id, b] : nodes_)
      sync(id);
  }

  /// Delivers what is on the wire now (replies go out in the next round).
  void deliver_round() {
    auto batch = std::move(wire);
    wire.clear();
    for (auto& m : batch) {
      auto i = nodes_.find(m.to);
      if (i == nodes_.end() || !i->second.up || cut.count({m.from, m.to}) > 0)
        continue;
      if (tamper && !tamper(m))
        continue;
      absorb(m.to, i->second.core->step(m, now));
    }
  }

  /// Rounds of sync (when auto_sync) and delivery until nothing is left to deliver.
  void stabilize(int rounds_max = 200) {
    for (int r = 0; r < rounds_max; ++r) {
      if (auto_sync)
        sync_all();
      if (wire.empty())
        return;
      deliver_round();
    }
    FAIL("no quiet state after " << rounds_max << " rounds");
  }

  void tick(const node_id& id) {
    absorb(id, nodes_.at(id).core->tick(now));
  }

  /// Lets `id`'s election timer fire (only its own; time passes beyond every lease), then
  /// delivers until quiet.
  void campaign(const node_id& id) {
    now += 2 * cfg_.election_timeout_ms + 1;
    tick(id);
    stabilize();
  }

  /// Time passes; every node up is ticked (heartbeats, timeouts), then delivery until quiet.
  void elapse(time_ms ms, time_ms step_ms = 10) {
    for (time_ms t = 0; t < ms; t += step_ms) {
      now += step_ms;
      for (auto& [id, b] : nodes_)
        if (b.up)
          tick(id);
      stabilize();
    }
  }

  raft_core::propose_result propose(const node_id& id, std::string cmd) {
    auto r = nodes_.at(id).core->propose(std::move(cmd), now);
    auto fx = std::move(r.fx);
    r.fx = {};
    absorb(id, std::move(fx));
    return r;
  }

  raft_core::propose_result change_membership(const node_id& id, change x) {
    auto r = nodes_.at(id).core->change_membership(x, now);
    auto fx = std::move(r.fx);
    r.fx = {};
    absorb(id, std::move(fx));
    return r;
  }

  void isolate(const node_id& id) {
    for (const auto& [other, b] : nodes_)
      if (other != id) {
        cut.insert({id, other});
        cut.insert({other, id});
      }
  }

  /// The node stops; unsynced writes are lost.
  void crash(const node_id& id) {
    auto& b = nodes_.at(id);
    b.up = false;
    b.unsynced.clear();
  }

  /// A new core from what the disk holds.
  void restart(const node_id& id) {
    auto& b = nodes_.at(id);
    b.up = true;
    b.unsynced.clear();
    b.applied.clear();
    start_node(id);
  }

  persisted_state disk_state(const node_id& id) const {
    const auto& b = nodes_.at(id);
    persisted_state s;
    s.hard = b.hard;
    s.snap = b.snap;
    s.entries = b.log;
    s.prev_term = b.start_term;
    return s;
  }

  /// Terms of the log held in memory, from the log start on ("1 1 2 ...").
  std::string terms(const node_id& id) {
    const auto& c = *nodes_.at(id).core;
    std::string result;
    for (index_t i = c.log_start() + 1; i <= c.last_index(); ++i)
      result += (result.empty() ? "" : " ") + std::to_string(c.entry_at(i).term);
    return result;
  }

  /// Commands applied by `id`, in order.
  std::vector<std::string> commands(const node_id& id) {
    std::vector<std::string> result;
    for (const auto& e : nodes_.at(id).applied)
      if (e.kind == entry_kind::command)
        result.push_back(e.data);
    return result;
  }

  /// Messages of type T on the wire.
  template <class T>
  std::vector<message> on_wire() const {
    std::vector<message> result;
    for (const auto& m : wire)
      if (std::holds_alternative<T>(m.body))
        result.push_back(m);
    return result;
  }

private:
  void start_node(const node_id& id) {
    auto& b = nodes_[id];
    persisted_state s;
    s.hard = b.hard;
    s.snap = b.snap;
    s.entries = b.log;
    s.prev_term = b.start_term;
    std::uint64_t seed = std::hash<std::string>{}(id);
    b.core = std::make_unique<raft_core>(id, cfg_, std::move(s), seed);
    absorb(id, b.core->start(now));
  }

  static void write_to_disk(box& b, const raft_core::persist_request& w) {
    if (w.hard)
      b.hard = *w.hard;
    if (w.snap) {
      b.snap = w.snap;
      if (w.snapshot_resets_log) {
        b.log.clear();
        b.start = w.snap->meta.index;
        b.start_term = w.snap->meta.term;
      } else if (w.compact_to > b.start) {
        b.start_term = b.log[w.compact_to - b.start - 1].term;
        b.log.erase(b.log.begin(), b.log.begin() + static_cast<long>(w.compact_to - b.start));
        b.start = w.compact_to;
      }
    }
    for (const auto& e : w.entries) {
      REQUIRE(e.index > b.start);
      REQUIRE(e.index <= b.start + b.log.size() + 1);
      b.log.resize(e.index - b.start - 1);
      b.log.push_back(e);
    }
  }

  raft_config cfg_;
  std::map<node_id, box> nodes_;
};

const std::vector<node_id> three = {"a", "b", "c"};
const std::vector<node_id> five = {"s1", "s2", "s3", "s4", "s5"};

} // namespace

// -- §5.1, §5.2: terms and elections ---------------------------------------------------------

TEST_CASE("raft §5.2: a follower that hears nothing campaigns; a majority elects it") {
  cluster c{three};
  c.campaign("a");
  CHECK(c["a"].role() == role::leader);
  CHECK(c["a"].term() == 2);
  CHECK(c["b"].leader() == "a");
  CHECK(c["c"].leader() == "a");
  // §8: the new leader appends a no-op of its term, which commits everything before it.
  CHECK(c["a"].last_index() == 2);
  CHECK(c["a"].entry_at(2).kind == entry_kind::noop);
  CHECK(c["a"].commit_index() == 2);
  c.elapse(40);
  CHECK(c["b"].commit_index() == 2);
}

TEST_CASE("raft §5.2: election timeouts are random in [E, 2E) and differ between seeds") {
  auto cfg = test_config();
  std::set<time_ms> seen;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    raft_core x{"a", cfg, bootstrap_state({"a", "b", "c"}), seed};
    auto fx = x.start(0);
    REQUIRE(fx.wake_at);
    CHECK(*fx.wake_at >= cfg.election_timeout_ms);
    CHECK(*fx.wake_at < 2 * cfg.election_timeout_ms);
    seen.insert(*fx.wake_at);
  }
  CHECK(seen.size() > 10);
}

TEST_CASE("raft §5.2 election safety: one vote per term, so at most one leader per term") {
  auto cfg = test_config();
  cfg.pre_vote = false;
  cluster c{three, cfg};
  // a and b campaign in the same term at once; c hears a first.
  c.now += 2 * cfg.election_timeout_ms + 1;
  c.tick("a");
  c.tick("b");
  c.sync_all(); // the candidates' votes for themselves are durable: requests go out
  auto requests = c.on_wire<vote_request>();
  REQUIRE(requests.size() == 4);
  CHECK(c["a"].term() == 2);
  CHECK(c["b"].term() == 2);
  std::stable_sort(c.wire.begin(), c.wire.end(),
                   [](const message& x, const message& y) { return x.from < y.from; });
  c.stabilize();
  CHECK(c["c"].vote() == "a");
  CHECK(c["a"].role() == role::leader);
  CHECK(c["b"].role() == role::follower);
  CHECK(c["b"].leader() == "a");
}

TEST_CASE("raft Figure 2: a vote is durable before the reply leaves the voter") {
  auto cfg = test_config();
  cfg.pre_vote = false;
  cluster c{three, cfg};
  c.auto_sync = false;
  c.now += 2 * cfg.election_timeout_ms + 1;
  c.tick("a");
  // The candidate's own vote is not durable yet: no request leaves.
  CHECK(c.wire.empty());
  c.sync("a");
  REQUIRE(c.on_wire<vote_request>().size() == 2);
  c.deliver_round();
  // b and c voted, but their replies wait for the writes holding the vote.
  CHECK(c.wire.empty());
  REQUIRE(c.node("b").unsynced.size() == 1);
  const auto& w = c.node("b").unsynced.front();
  REQUIRE(w.hard);
  CHECK(w.hard->term == 2);
  CHECK(w.hard->vote == "a");
  CHECK(c["b"].held_messages() == 1);
  // A crash loses the vote and the reply with it: nothing was promised.
  c.crash("c");
  c.restart("c");
  CHECK(c["c"].term() == 1);
  c.sync("b");
  REQUIRE(c.on_wire<vote_response>().size() == 1);
  c.deliver_round();
  CHECK(c["a"].role() == role::leader);
}

TEST_CASE("raft §5.1: a stale term is rejected and a newer one adopted") {
  cluster c{three};
  c.campaign("a");
  REQUIRE(c["a"].role() == role::leader);
  // b is cut off, campaigns without pre-vote success... its term stays (pre-vote), so force a
  // higher term by a message: a stale leader hears of term 5 and steps down.
  message m{"b", "a", 5, append_response{false, 0, 0}};
  c.absorb("a", c["a"].step(m, c.now));
  CHECK(c["a"].role() == role::follower);
  CHECK(c["a"].term() == 5);
  // A request of an older term is answered with the newer term and changes nothing.
  message old{"c", "a", 3, append_request{2, 2, {}, 2}};
  c.absorb("a", c["a"].step(old, c.now));
  c.sync("a");
  auto replies = c.on_wire<append_response>();
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].term == 5);
  CHECK_FALSE(std::get<append_response>(replies[0].body).success);
  CHECK(c["a"].leader().empty());
}

// -- §5.4.1: the election restriction -----------------------------------------------------

TEST_CASE("raft §5.4.1 election restriction: a voter refuses a candidate whose log is behind") {
  auto cfg = test_config();
  cfg.pre_vote = false;
  cluster c{three, cfg};
  c.campaign("a");
  REQUIRE(c["a"].role() == role::leader);
  // c misses the next entries.
  c.cut.insert({"a", "c"});
  c.propose("a", "x");
  c.propose("a", "y");
  c.stabilize();
  CHECK(c["b"].last_index() == 4);
  CHECK(c["c"].last_index() == 2);
  CHECK(c["a"].commit_index() == 4);
  // c campaigns: b's log is more up-to-date (same last term, longer), so b refuses.
  c.cut.clear();
  c.isolate("a");
  c.campaign("c");
  CHECK(c["c"].role() != role::leader);
  CHECK(c["b"].vote() != "c");
  // b, whose log holds every committed entry, can win (c grants: b is up to date).
  c.campaign("b");
  CHECK(c["b"].role() == role::leader);
  CHECK(c["b"].commit_index() >= 4);
}

TEST_CASE("raft §5.4.1: a higher last term beats a longer log") {
  cluster c{three};
  raft_core& b = c["b"];
  // Give b a log (1, 1) (2, 3) via a leader of term 3; a voter with (1,1) (2,2) (3,2) (4,2)
  // must grant it: the last term decides first.
  message app{"x", "b", 3, append_request{1, 1, {entry{2, 3, entry_kind::noop, ""}}, 0}};
  c.absorb("b", b.step(app, c.now));
  c.sync("b");
  c.wire.clear();
  message vote_for_b{"b", "c", 4, vote_request{2, 3, false, false}};
  message app_c{"y", "c", 2,
                append_request{1, 1,
                               {entry{2, 2, entry_kind::noop, ""},
                                entry{3, 2, entry_kind::command, "p"},
                                entry{4, 2, entry_kind::command, "q"}},
                               0}};
  c.absorb("c", c["c"].step(app_c, c.now));
  c.sync("c");
  c.wire.clear();
  c.now += 1000; // beyond the lease
  c.absorb("c", c["c"].step(vote_for_b, c.now));
  c.sync("c");
  auto replies = c.on_wire<vote_response>();
  REQUIRE(replies.size() == 1);
  CHECK(std::get<vote_response>(replies[0].body).granted);
}

// -- §5.3: log replication and log matching -----------------------------------------------

TEST_CASE("raft §5.3 log matching: a follower rejects entries that do not follow its log") {
  cluster c{three};
  raft_core& b = c["b"];
  // prev (5, 1) does not exist at b (its log ends at 1).
  message m{"a", "b", 2, append_request{5, 1, {entry{6, 2, entry_kind::command, "x"}}, 0}};
  c.absorb("b", b.step(m, c.now));
  c.sync("b");
  auto replies = c.on_wire<append_response>();
  REQUIRE(replies.size() == 1);
  auto r = std::get<append_response>(replies[0].body);
  CHECK_FALSE(r.success);
  CHECK(r.index == 5);
  CHECK(r.hint == 2); // one past its last entry
  CHECK(b.last_index() == 1);
}

TEST_CASE("raft §5.3: a conflicting suffix is replaced, a matching one kept, reorders harmless") {
  cluster c{three};
  raft_core& b = c["b"];
  auto app = [&](term_t t, index_t prev, term_t pterm, std::vector<entry> xs, index_t commit) {
    message m{"a", "b", t, append_request{prev, pterm, std::move(xs), commit}};
    c.absorb("b", b.step(m, c.now));
    c.sync("b");
  };
  app(2, 1, 1,
      {entry{2, 2, entry_kind::noop, ""}, entry{3, 2, entry_kind::command, "x"},
       entry{4, 2, entry_kind::command, "y"}},
      0);
  CHECK(c.terms("b") == "1 2 2 2");
  // An old, reordered append of the same leader carrying only index 2: nothing is truncated.
  app(2, 1, 1, {entry{2, 2, entry_kind::noop, ""}}, 0);
  CHECK(c.terms("b") == "1 2 2 2");
  auto replies = c.on_wire<append_response>();
  REQUIRE(replies.size() == 2);
  CHECK(std::get<append_response>(replies[1].body).index == 2); // only what it verified
  // A leader of term 3 whose log differs from index 3 on: 3 and 4 are replaced by its entry.
  app(3, 2, 2, {entry{3, 3, entry_kind::noop, ""}}, 2);
  CHECK(c.terms("b") == "1 2 3");
  CHECK(b.commit_index() == 2);
}

TEST_CASE("raft §5.3: logs that diverged converge to the leader's") {
  auto cfg = test_config();
  cfg.pre_vote = false;
  cluster c{five, cfg};
  c.campaign("s1");
  REQUIRE(c["s1"].role() == role::leader);
  // s1 appends entries only s2 sees, then loses leadership; s3 leads and appends others.
  c.isolate("s1");
  c.cut.erase({"s1", "s2"});
  c.propose("s1", "only-s1-s2-1");
  c.propose("s1", "only-s1-s2-2");
  c.stabilize();
  c.cut.clear();
  c.isolate("s1");
  c.isolate("s2");
  c.cut.erase({"s3", "s4"});
  c.cut.erase({"s4", "s3"});
  c.cut.erase({"s3", "s5"});
  c.cut.erase({"s5", "s3"});
  c.cut.erase({"s4", "s5"});
  c.cut.erase({"s5", "s4"});
  c.campaign("s3");
  REQUIRE(c["s3"].role() == role::leader);
  c.propose("s3", "s3-1");
  c.stabilize();
  c.cut.clear();
  c.elapse(100);
  auto t = c.terms("s3");
  for (const auto& id : five) {
    CHECK(c.terms(id) == t);
    CHECK(c[id].commit_index() == c["s3"].last_index());
  }
  for (const auto& id : five)
    CHECK(c.commands(id) == std::vector<std::string>{"s3-1"});
}

TEST_CASE("raft §5.3: the leader pipelines up to inflight_appends_max appends per follower") {
  auto cfg = test_config();
  cfg.append_entries_max = 1;
  cfg.inflight_appends_max = 3;
  cluster c{three, cfg};
  c.campaign("a");
  REQUIRE(c["a"].progress_of("b")->state == raft_core::progress::mode::replicate);
  for (int i = 0; i < 6; ++i)
    c.propose("a", "x" + std::to_string(i));
  // One append per proposal until the window is full.
  int to_b = 0;
  for (const auto& m : c.on_wire<append_request>())
    to_b += m.to == "b" ? 1 : 0;
  CHECK(to_b == 3);
  CHECK(c["a"].progress_of("b")->inflight.size() == 3);
  c.stabilize();
  CHECK(c["a"].progress_of("b")->match == c["a"].last_index());
  CHECK(c["a"].commit_index() == c["a"].last_index());
  c.elapse(30); // heartbeats carry the commit index
  CHECK(c["b"].commit_index() == c["a"].last_index());
}

TEST_CASE("raft thesis §10.2.1: the leader counts itself only once its own write is durable") {
  cluster c{{"a"}};
  c.auto_sync = false;
  c.now += 300;
  c.tick("a");
  c.sync("a"); // the vote
  CHECK(c["a"].role() == role::leader);
  CHECK(c["a"].commit_index() == 0); // its no-op is not durable yet
  auto r = c.propose("a", "x");
  REQUIRE(r.accepted);
  CHECK(c["a"].commit_index() < r.index);
  c.sync("a");
  CHECK(c["a"].commit_index() == r.index);
  CHECK(c.commands("a") == std::vector<std::string>{"x"});
}

TEST_CASE("raft thesis §10.2.1: followers' acknowledgements commit while the leader's disk lags") {
  cluster c{three};
  c.campaign("a");
  c.auto_sync = false;
  auto r = c.propose("a", "x");
  c.deliver_round();
  c.sync("b");
  c.sync("c");
  c.deliver_round();
  CHECK(c["a"].stable_index() < r.index);
  CHECK(c["a"].commit_index() == r.index);
}

// -- §5.4.2: committing entries from previous terms (Figure 8) ------------------------------

namespace {

/// Figure 8 steps (a) and (b), shared by both endings: (a) s1 leads term 2, entry X at index 3
/// reaches s2 only, s1 crashes; (b) s5 leads term 3 with the votes of s3 and s4 and appends its
/// no-op and Y (indexes 3, 4) alone, then crashes.
void figure_8_a_b(cluster& c) {
  c.campaign("s1");
  REQUIRE(c["s1"].role() == role::leader);
  REQUIRE(c["s1"].commit_index() == 2);
  c.elapse(40); // everyone holds 1..2, committed
  c.isolate("s1");
  c.cut.erase({"s1", "s2"});
  c.cut.erase({"s2", "s1"});
  auto x = c.propose("s1", "X");
  REQUIRE(x.index == 3);
  c.stabilize();
  REQUIRE(c.terms("s2") == "1 2 2");
  REQUIRE(c["s1"].commit_index() == 2);
  c.crash("s1");
  c.cut.clear();
  c.isolate("s2");
  c.tamper = [](message& m) {
    return !(m.from == "s5" && std::holds_alternative<append_request>(m.body));
  };
  c.campaign("s5");
  REQUIRE(c["s5"].role() == role::leader);
  REQUIRE(c["s5"].term() == 3);
  c.propose("s5", "Y");
  c.stabilize();
  REQUIRE(c.terms("s5") == "1 2 3 3");
  REQUIRE(c.terms("s3") == "1 2");
  c.crash("s5");
  c.tamper = nullptr;
  c.cut.clear();
}

/// Campaigns until `id` leads (a voter that already voted in a term refuses; the next term works).
void campaign_until_leader(cluster& c, const node_id& id) {
  for (int i = 0; i < 4 && c[id].role() != role::leader; ++i)
    c.campaign(id);
  REQUIRE(c[id].role() == role::leader);
}

raft_config figure_8_config() {
  auto cfg = test_config();
  cfg.pre_vote = false;
  cfg.check_quorum = false;
  cfg.append_entries_max = 1;
  return cfg;
}

} // namespace

TEST_CASE("raft §5.4.2 Figure 8: an old term's entry on a majority is not committed by counting") {
  // The schedule of Figure 8 with this implementation's no-ops. (c) s1 comes back, leads term 4
  // and copies X to s3 and s4 (one entry per append), but its own no-op of term 4 reaches nobody:
  // X is stored on a majority, yet counting replicas must not commit it. (d) s5 comes back, wins
  // term 5 (its last term 3 beats their 2) and overwrites X everywhere: had X been committed and
  // applied, state machines would now differ.
  cluster c{five, figure_8_config()};
  figure_8_a_b(c);
  c.restart("s1");
  c.tamper = [](message& m) {
    if (auto a = std::get_if<append_request>(&m.body); a != nullptr && m.from == "s1") {
      auto& xs = a->entries;
      xs.erase(std::remove_if(xs.begin(), xs.end(), [](const entry& e) { return e.index > 3; }),
               xs.end());
    }
    return true;
  };
  campaign_until_leader(c, "s1");
  CHECK(c["s1"].term() == 4);
  c.elapse(40);
  REQUIRE(c.terms("s3") == "1 2 2");
  REQUIRE(c.terms("s4") == "1 2 2");
  REQUIRE(c["s1"].progress_of("s3")->match == 3);
  REQUIRE(c["s1"].progress_of("s4")->match == 3);
  REQUIRE(c["s1"].progress_of("s2")->match == 3);
  // X is stored on all but s5, but it is of term 2 (and s1, restarted, knows no commit at all).
  CHECK(c["s1"].commit_index() < 3);
  CHECK(c.commands("s1").empty());
  c.crash("s1");
  c.tamper = nullptr;
  c.wire.clear();
  c.restart("s5");
  campaign_until_leader(c, "s5");
  CHECK(c["s5"].term() == 5);
  c.elapse(60);
  for (const auto& id : {"s2", "s3", "s4", "s5"}) {
    CHECK(c.terms(id) == "1 2 3 3 5");
    CHECK(c.commands(id) == std::vector<std::string>{"Y"});
  }
}

TEST_CASE("raft §5.4.2 Figure 8 (e): once the leader's own entry is on a majority, X is safe") {
  cluster c{five, figure_8_config()};
  figure_8_a_b(c);
  c.restart("s1");
  campaign_until_leader(c, "s1");
  // Now s1's no-op of term 4 reaches the majority too: X and the no-op commit together.
  c.stabilize();
  CHECK(c["s1"].commit_index() == 4);
  CHECK(c.commands("s1") == std::vector<std::string>{"X"});
  // s5 cannot win any more: a majority holds a newer last term than its 3.
  c.crash("s1");
  c.restart("s5");
  for (int i = 0; i < 3; ++i)
    c.campaign("s5");
  CHECK(c["s5"].role() != role::leader);
}

// -- thesis §9.6 pre-vote, §6.2 check-quorum -------------------------------------------------

TEST_CASE("raft thesis §9.6 pre-vote: a node cut off does not raise its term, nor disrupt later") {
  cluster c{three};
  c.campaign("a");
  REQUIRE(c["a"].role() == role::leader);
  c.isolate("c");
  for (int i = 0; i < 5; ++i)
    c.campaign("c");
  CHECK(c["c"].term() == 2);
  CHECK(c["c"].role() == role::pre_candidate);
  c.cut.clear();
  c.elapse(50);
  CHECK(c["a"].role() == role::leader);
  CHECK(c["a"].term() == 2);
  CHECK(c["c"].leader() == "a");
}

TEST_CASE("raft thesis §4.2.3 leader lease: voters that hear from a leader ignore vote requests") {
  auto cfg = test_config();
  cluster c{three, cfg};
  c.campaign("a");
  REQUIRE(c["a"].role() == role::leader);
  // c, cut off from a only, campaigns; b heard from a recently and ignores it (no reply at all).
  c.cut.insert({"a", "c"});
  c.cut.insert({"c", "a"});
  c.now += 30;
  c.tick("a");
  c.stabilize();
  message pre{"c", "b", 3, vote_request{c["c"].last_index(), c["c"].last_term(), true, false}};
  message vote{"c", "b", 3, vote_request{c["c"].last_index(), c["c"].last_term(), false, false}};
  c.absorb("b", c["b"].step(pre, c.now));
  c.absorb("b", c["b"].step(vote, c.now));
  c.sync("b");
  CHECK(c.on_wire<vote_response>().empty());
  CHECK(c["b"].term() == 2);
  // Past the lease it answers.
  c.wire.clear();
  c.now += cfg.election_timeout_ms;
  c.absorb("b", c["b"].step(pre, c.now));
  c.sync("b");
  CHECK(c.on_wire<vote_response>().size() == 1);
}

TEST_CASE("raft thesis §6.2 check-quorum: a leader without a quorum's contact steps down") {
  auto cfg = test_config();
  cluster c{three, cfg};
  c.campaign("a");
  REQUIRE(c["a"].role() == role::leader);
  c.isolate("a");
  for (int i = 0; i < 3 * cfg.election_timeout_ms / 10; ++i) {
    c.now += 10;
    c.tick("a");
    c.stabilize();
  }
  CHECK(c["a"].role() == role::follower);
  CHECK(c["a"].term() == 2);
  auto r = c.propose("a", "x");
  CHECK_FALSE(r.accepted);
}

TEST_CASE("raft: a deposed leader learns the new term from its followers' answers") {
  cluster c{three};
  c.campaign("a");
  c.isolate("a");
  c.campaign("b");
  REQUIRE(c["b"].role() == role::leader);
  REQUIRE(c["b"].term() == 3);
  c.cut.clear();
  // a still thinks it leads term 2 (it was not ticked); its heartbeat is answered with term 3.
  c.now += 20;
  c.tick("a");
  c.stabilize();
  CHECK(c["a"].role() == role::follower);
  CHECK(c["a"].term() == 3);
}

// -- §7: snapshots and log compaction ---------------------------------------------------------

TEST_CASE("raft §7: the state machine is asked for snapshots; the log is compacted behind them") {
  auto cfg = test_config();
  cluster c{three, cfg};
  c.campaign("a");
  for (int i = 0; i < 25; ++i)
    c.propose("a", "x" + std::to_string(i));
  c.stabilize();
  auto& b = c.node("a");
  REQUIRE_FALSE(b.snapshot_wanted.empty());
  auto index = c["a"].applied_index();
  c.absorb("a", c["a"].snapshot_taken(index, std::make_shared<const std::string>("state"), c.now));
  CHECK(c["a"].latest_snapshot().meta.index == index);
  CHECK(c["a"].latest_snapshot().meta.config.voters.size() == 3);
  CHECK(c["a"].log_start() == index - cfg.snapshot_trailing_entries);
  REQUIRE(b.unsynced.size() == 1);
  CHECK(b.unsynced.front().snap);
  CHECK_FALSE(b.unsynced.front().snapshot_resets_log);
  CHECK(b.unsynced.front().compact_to == index - cfg.snapshot_trailing_entries);
  // Old or future snapshots are ignored.
  c.absorb("a", c["a"].snapshot_taken(index - 1, std::make_shared<const std::string>("s"), c.now));
  c.absorb("a", c["a"].snapshot_taken(index + 5, std::make_shared<const std::string>("s"), c.now));
  CHECK(c["a"].latest_snapshot().meta.index == index);
}

TEST_CASE("raft §7 InstallSnapshot: a follower far behind gets the snapshot, then entries") {
  auto cfg = test_config();
  cluster c{three, cfg};
  c.campaign("a");
  c.isolate("c");
  for (int i = 0; i < 25; ++i)
    c.propose("a", "x" + std::to_string(i));
  c.stabilize();
  auto index = c["a"].applied_index();
  c.absorb("a", c["a"].snapshot_taken(index, std::make_shared<const std::string>("S"), c.now));
  c.absorb("b", c["b"].snapshot_taken(c["b"].applied_index(),
                                       std::make_shared<const std::string>("S"), c.now));
  c.propose("a", "after");
  c.stabilize();
  c.cut.clear();
  c.elapse(60);
  auto& box_c = c.node("c");
  REQUIRE(box_c.restored.size() == 1);
  CHECK(*box_c.restored[0].data == "S");
  CHECK(box_c.restored[0].meta.index == index);
  CHECK(c["c"].log_start() == index);
  CHECK(c["c"].commit_index() == c["a"].last_index());
  CHECK(c.commands("c") == std::vector<std::string>{"after"});
  // The installed snapshot replaced the log on disk as well.
  CHECK(c.node("c").snap);
  CHECK(c.node("c").start == index);
  // A restart loads it.
  c.crash("c");
  c.restart("c");
  CHECK(c["c"].log_start() == index);
  CHECK(c["c"].commit_index() == index);
}

TEST_CASE("raft §7: a snapshot whose last entry the follower holds keeps the log after it") {
  cluster c{three};
  c.campaign("a");
  c.propose("a", "x");
  c.propose("a", "y");
  c.stabilize();
  // b holds (3, 2): an InstallSnapshot at 3 only commits, the log stays.
  snapshot_meta meta{3, 2, c["a"].membership()};
  message m{"a", "b", 2, install_snapshot{meta, std::make_shared<const std::string>("S")}};
  auto before = c.terms("b");
  auto commit = c["b"].commit_index();
  c.absorb("b", c["b"].step(m, c.now));
  CHECK(c.terms("b") == before);
  CHECK(c["b"].commit_index() == std::max<index_t>(commit, 3));
  CHECK(c.node("b").restored.empty());
}

TEST_CASE("raft restart: entries that do not continue the snapshot are dropped") {
  persisted_state s;
  s.hard = hard_state{5, ""};
  configuration cfg;
  cfg.voters = {"a", "b", "c"};
  s.snap = snapshot{snapshot_meta{10, 4, cfg}, std::make_shared<const std::string>("S")};
  // Old segments still hold entries 9..12 of another history (index 10 has term 3).
  for (index_t i = 9; i <= 12; ++i)
    s.entries.push_back(entry{i, 3, entry_kind::command, "old"});
  s.prev_term = 3;
  REQUIRE(check(s).empty());
  raft_core x{"a", test_config(), s, 1};
  CHECK(x.log_start() == 10);
  CHECK(x.last_index() == 10);
  CHECK(x.commit_index() == 10);
  CHECK(x.membership() == cfg);
  // Entries that continue it (trailing ones before it too) are kept.
  for (auto& e : s.entries)
    e.term = 4;
  s.prev_term = 4;
  raft_core y{"a", test_config(), s, 1};
  CHECK(y.log_start() == 8);
  CHECK(y.last_index() == 12);
  CHECK(y.commit_index() == 10);
  CHECK(y.check_invariants().empty());
}

TEST_CASE("raft restart: a stored state that cannot be right is named") {
  persisted_state s;
  s.hard = hard_state{1, ""};
  s.entries.push_back(entry{1, 1, entry_kind::noop, ""});
  s.entries.push_back(entry{3, 1, entry_kind::noop, ""});
  CHECK(check(s) == "log has a gap after index 1");
  s.entries.pop_back();
  s.entries.push_back(entry{2, 2, entry_kind::noop, ""});
  CHECK(check(s) == "log holds term 2 above the stored term 1");
}

// -- thesis §4.1, §4.2.1: membership changes ---------------------------------------------------

TEST_CASE("raft thesis §4.2.1: a learner catches up without voting, then is promoted") {
  auto cfg = test_config();
  cluster c{three, cfg, {"d"}};
  c.campaign("a");
  for (int i = 0; i < 5; ++i)
    c.propose("a", "x" + std::to_string(i));
  c.stabilize();
  // d starts empty: it knows no configuration and never campaigns.
  c.campaign("d");
  CHECK(c["d"].role() == role::follower);
  CHECK(c["d"].term() == 0);
  auto r = c.change_membership("a", {change::kind::add_learner, "d"});
  REQUIRE(r.accepted);
  CHECK(c["a"].membership().learners == std::set<node_id>{"d"});
  // Promotion waits for catching up; nothing is sent to d yet.
  c.cut.insert({"a", "d"});
  c.stabilize();
  auto early = c.change_membership("a", {change::kind::promote, "d"});
  CHECK_FALSE(early.accepted);
  CHECK(early.refused == "d has not caught up yet");
  c.cut.clear();
  c.elapse(60);
  CHECK(c["d"].last_index() == c["a"].last_index());
  CHECK(c.commands("d").size() == 5);
  // A learner's acknowledgement does not count toward commitment.
  CHECK(c["d"].membership().learners.count("d") == 1);
  REQUIRE(c["a"].caught_up("d"));
  auto p = c.change_membership("a", {change::kind::promote, "d"});
  REQUIRE(p.accepted);
  c.stabilize();
  CHECK(c["a"].membership().voters.size() == 4);
  CHECK(c["a"].membership().quorum() == 3);
  // With four voters, a and one other are not enough to commit.
  c.isolate("c");
  c.isolate("d");
  auto x = c.propose("a", "needs three");
  c.stabilize();
  CHECK(c["a"].commit_index() < x.index);
  c.cut.clear();
  c.elapse(40);
  CHECK(c["a"].commit_index() >= x.index);
}

TEST_CASE("raft thesis §4.1: one membership change at a time, after the leader's first commit") {
  cluster c{three, test_config(), {"d", "e"}};
  c.auto_sync = false;
  c.now += 300;
  c.tick("a");
  c.sync("a");
  c.stabilize(); // no syncs: the votes wait
  c.sync_all();
  c.stabilize();
  c.sync_all();
  c.deliver_round();
  REQUIRE(c["a"].role() == role::leader);
  // Its no-op is not committed yet.
  if (c["a"].commit_index() < c["a"].last_index()) {
    auto r = c.change_membership("a", {change::kind::add_learner, "d"});
    CHECK_FALSE(r.accepted);
    CHECK(r.refused == "the leader has not committed an entry of its term yet");
  }
  c.auto_sync = true;
  c.stabilize();
  auto r1 = c.change_membership("a", {change::kind::add_learner, "d"});
  REQUIRE(r1.accepted);
  auto r2 = c.change_membership("a", {change::kind::add_learner, "e"});
  CHECK_FALSE(r2.accepted);
  CHECK(r2.refused == "a membership change is in progress");
  c.stabilize();
  auto r3 = c.change_membership("a", {change::kind::add_learner, "e"});
  CHECK(r3.accepted);
  c.stabilize();
  auto self = c.change_membership("a", {change::kind::remove, "a"});
  CHECK_FALSE(self.accepted);
  CHECK(self.refused == "the leader does not remove itself: transfer leadership first");
}

TEST_CASE("raft thesis §4.1: a removed voter no longer counts; the rest go on") {
  cluster c{five};
  c.campaign("s1");
  auto r = c.change_membership("s1", {change::kind::remove, "s5"});
  REQUIRE(r.accepted);
  c.stabilize();
  CHECK(c["s1"].membership().voters.size() == 4);
  CHECK(c["s1"].progress_of("s5") == nullptr);
  c.isolate("s5");
  c.isolate("s4");
  auto x = c.propose("s1", "x");
  c.stabilize();
  CHECK(c["s1"].commit_index() >= x.index); // s1, s2, s3 of four
  // s5, cut off and removed, cannot disturb: pre-vote finds no support.
  c.cut.clear();
  c.campaign("s5");
  CHECK(c["s1"].role() == role::leader);
  CHECK(c["s1"].term() == 2);
}

TEST_CASE("raft thesis §4.1: a configuration takes effect when appended, and rolls back") {
  cluster c{three};
  raft_core& b = c["b"];
  configuration next;
  next.voters = {"a", "b", "c"};
  next.learners = {"d"};
  message m{"a", "b", 2,
            append_request{1, 1,
                           {entry{2, 2, entry_kind::noop, ""},
                            entry{3, 2, entry_kind::config, encode_configuration(next)}},
                           0}};
  c.absorb("b", b.step(m, c.now));
  CHECK(b.membership() == next);
  CHECK(b.membership_index() == 3);
  // A leader of term 3 without that entry truncates it: the old configuration is back.
  message t{"c", "b", 3, append_request{2, 2, {entry{3, 3, entry_kind::noop, ""}}, 0}};
  c.absorb("b", b.step(t, c.now));
  CHECK(b.membership().learners.empty());
  CHECK(b.membership_index() == 1);
}

// -- thesis §3.10: leadership transfer ---------------------------------------------------------

TEST_CASE("raft thesis §3.10: leadership transfer brings the target up to date, then TimeoutNow") {
  cluster c{three};
  c.campaign("a");
  c.cut.insert({"a", "c"});
  c.propose("a", "x");
  c.stabilize();
  c.cut.clear();
  auto r = c["a"].transfer_leadership("c", c.now);
  CHECK(r.refused.empty());
  c.absorb("a", std::move(r.fx));
  CHECK(c["a"].transfer_target() == "c");
  auto refused = c.propose("a", "during");
  CHECK_FALSE(refused.accepted);
  CHECK(refused.refused == "leadership transfer in progress");
  c.stabilize();
  CHECK(c["c"].role() == role::leader);
  CHECK(c["c"].term() == 3);
  CHECK(c["a"].role() == role::follower);
  CHECK(c["a"].leader() == "c");
  CHECK(c.commands("c") == std::vector<std::string>{"x"});
}

TEST_CASE("raft thesis §3.10: a transfer to an unreachable target is aborted after a timeout") {
  auto cfg = test_config();
  cluster c{three, cfg};
  c.campaign("a");
  c.cut.insert({"a", "c"});
  c.cut.insert({"c", "a"});
  auto r = c["a"].transfer_leadership("c", c.now);
  c.absorb("a", std::move(r.fx));
  CHECK(c["a"].transfer_target() == "c");
  c.elapse(cfg.election_timeout_ms + 20);
  CHECK(c["a"].transfer_target().empty());
  CHECK(c["a"].role() == role::leader);
  CHECK(c.propose("a", "y").accepted);
  CHECK(c["a"].transfer_leadership("a", c.now).refused == "already the leader");
  CHECK(c["b"].transfer_leadership("c", c.now).refused == "not the leader");
}

// -- bounds -------------------------------------------------------------------------------------

TEST_CASE("raft bounds: proposals beyond uncommitted_entries_max or to a follower are refused") {
  auto cfg = test_config();
  cfg.uncommitted_entries_max = 5;
  cfg.snapshot_threshold_entries = 10;
  cfg.log_entries_max = 20;
  cluster c{three, cfg};
  c.campaign("a");
  c.isolate("a");
  int accepted = 0;
  for (int i = 0; i < 10; ++i)
    accepted += c.propose("a", "x").accepted ? 1 : 0;
  CHECK(accepted == 5);
  auto r = c.propose("a", "x");
  CHECK(r.refused == "too many uncommitted entries");
  auto f = c.propose("b", "x");
  CHECK(f.refused == "not the leader");
  CHECK(f.leader == "a");
  CHECK(c.propose("a", std::string(cfg.command_bytes_max + 1, 'x')).refused
        == "command larger than command_bytes_max");
}

TEST_CASE("raft bounds: replies held for a slow disk are bounded") {
  auto cfg = test_config();
  cfg.held_messages_max = 3;
  cluster c{three, cfg};
  c.campaign("a");
  c.auto_sync = false;
  raft_core& b = c["b"];
  // b's disk never finishes: every append adds a write and a held reply.
  for (index_t i = 3; i < 10; ++i) {
    message m{"a", "b", 2, append_request{i - 1, 2, {entry{i, 2, entry_kind::command, "x"}}, 0}};
    c.absorb("b", b.step(m, c.now));
  }
  CHECK(b.held_messages() == 3);
  CHECK(b.dropped_count() == 4);
  CHECK(b.persists_in_flight() == 7);
}

TEST_CASE("raft config: impossible settings are named") {
  auto cfg = test_config();
  CHECK(validate(cfg).empty());
  cfg.election_timeout_ms = 2 * cfg.heartbeat_interval_ms;
  CHECK(validate(cfg) == "election_timeout_ms must be at least 3 x heartbeat_interval_ms");
  cfg = test_config();
  cfg.snapshot_trailing_entries = cfg.snapshot_threshold_entries;
  CHECK(validate(cfg) == "snapshot_trailing_entries must be below snapshot_threshold_entries");
  CHECK(validate(raft_config{}).empty());
}

TEST_CASE("raft types: configurations round-trip through their bytes; bad bytes are refused") {
  configuration x;
  x.voters = {"10.0.0.1:7848", "10.0.0.2:7848"};
  x.learners = {"10.0.0.3:7848"};
  auto bytes = encode_configuration(x);
  auto y = decode_configuration(bytes, 16);
  REQUIRE(y);
  CHECK(*y == x);
  CHECK_FALSE(decode_configuration(bytes.substr(0, bytes.size() - 1), 16));
  CHECK_FALSE(decode_configuration(bytes + "x", 16));
  CHECK_FALSE(decode_configuration(bytes, 2));
  configuration overlap;
  overlap.voters = {"a"};
  overlap.learners = {"a"};
  CHECK_FALSE(decode_configuration(encode_configuration(overlap), 16));
}
