/// A seeded, deterministic simulation of 3 to 5 Raft cores (actors/raft/raft_core.hpp) over an
/// in-memory network and disk, in virtual time (no actors, no clock, no sleeping).
///
/// Faults during a chaos phase: message loss, duplication and reordering; partitions (a split, an
/// isolated node, one-way cuts); crashes that lose every write the disk did not make durable (a
/// random prefix of the queued writes survives, the next one possibly torn: its hard state, its
/// snapshot and a prefix of its entries), and restarts from what is durable; slow disks; leadership
/// transfers; single-server membership changes (add a learner, promote it once caught up, remove a
/// voter). A heal phase then stops the faults: every node comes back and the cluster must settle
/// (one leader every member follows, everything committed and applied).
///
/// Clients propose reads and writes of a few keys at the node they think leads, and record when
/// each was called and how it ended: acknowledged when the proposing node applies it (a read
/// returns the value at that point of the log), failed when another entry took its index, unknown
/// when the node crashed or the client timed out. Each key's history must be linearizable
/// (test/support/linearizability.hpp).
///
/// Checked after every step: at most one leader per term (Election Safety); a leader's log holds
/// every entry applied anywhere so far (Leader Completeness); an (index, term) pair always names
/// the same entry with the same predecessor term (Log Matching, by induction); no two nodes apply
/// different entries at one index and every node applies in order, and a restored snapshot equals
/// the state every other node had at its index (State Machine Safety); a node's durable term never
/// goes down and its durable vote never changes within a term; the core's own invariants.
///
/// Seeds: CI runs a fixed list (a few hundred in a few seconds). REGISTRY_RAFT_SEEDS=N runs seeds
/// 1..N in each case, REGISTRY_RAFT_SEEDS=17,42 exactly those; a failure prints its seed, the
/// replay command and the tail of a trace (the run is repeated with tracing on); a failed
/// assertion inside the core prints the seed before the process aborts.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unistd.h>
#include <vector>

#include "actors/raft/raft_core.hpp"
#include "test/support/linearizability.hpp"

using namespace registry;
using namespace registry::raft;
namespace lin = registry::testing;

namespace {

raft_config sim_config() {
  raft_config c;
  c.election_timeout_ms = 150;
  c.heartbeat_interval_ms = 30;
  c.snapshot_timeout_ms = 400;
  c.append_entries_max = 8;
  c.append_bytes_max = 4096;
  c.inflight_appends_max = 4;
  c.snapshot_threshold_entries = 40;
  c.snapshot_trailing_entries = 8;
  c.log_entries_max = 100;
  c.uncommitted_entries_max = 30;
  c.command_bytes_max = 1024;
  c.persists_in_flight_max = 32;
  c.held_messages_max = 64;
  c.catch_up_entries_max = 5;
  c.members_max = 8;
  return c;
}

struct sim_options {
  std::uint32_t seed = 1;
  int nodes = 3;          ///< nodes in the pool
  int initial_voters = 3; ///< the founding voters (the rest start empty, to be added)
  int rounds = 2;         ///< chaos + heal phases
  time_ms chaos_ms = 2500;
  time_ms heal_ms = 2000;
  double loss = 0.05;
  double duplicate = 0.03;
  double reorder = 0.1;
  bool crashes = true;
  bool partitions = true;
  bool slow_disks = true;
  bool transfers = true;
  bool membership = false;
  int clients = 3;
  int keys = 2;
  time_ms client_timeout_ms = 1500;
  bool trace = false; ///< keep a trace of every event (for a failure's report)
  raft_config cfg = sim_config();
};

#if defined(__SANITIZE_ADDRESS__)
#  define RAFT_SIM_SANITIZED 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define RAFT_SIM_SANITIZED 1
#  endif
#endif

/// The seeds of one case: REGISTRY_RAFT_SEEDS=N runs N seeds from `base`, a list with commas
/// ("17," or "17,42") exactly those; unset, `count_default` seeds from `base` (a quarter of them
/// under the sanitizers, which run several times slower).
std::vector<std::uint32_t> case_seeds(std::uint32_t base, std::uint32_t count_default) {
#ifdef RAFT_SIM_SANITIZED
  count_default = std::max<std::uint32_t>(1, count_default / 4);
#endif
  const char* env = std::getenv("REGISTRY_RAFT_SEEDS");
  std::string x = env != nullptr ? env : "";
  std::vector<std::uint32_t> result;
  if (x.find(',') != std::string::npos) {
    std::stringstream in{x};
    std::string item;
    while (std::getline(in, item, ','))
      if (!item.empty())
        result.push_back(static_cast<std::uint32_t>(std::strtoul(item.c_str(), nullptr, 10)));
    return result;
  }
  auto n = count_default;
  if (!x.empty() && std::strtoul(x.c_str(), nullptr, 10) > 0)
    n = static_cast<std::uint32_t>(std::strtoul(x.c_str(), nullptr, 10));
  for (std::uint32_t i = 0; i < n; ++i)
    result.push_back(base + i);
  return result;
}

/// Lines of trace printed for a failure: REGISTRY_RAFT_TRACE_LINES, else 400.
std::size_t trace_lines_max() {
  static const std::size_t n = [] {
    const char* x = std::getenv("REGISTRY_RAFT_TRACE_LINES");
    auto v = x != nullptr ? std::strtoul(x, nullptr, 10) : 0;
    return v > 0 ? static_cast<std::size_t>(v) : std::size_t{400};
  }();
  return n;
}

/// The seed being simulated, for the abort handler.
volatile std::uint32_t current_seed = 0;
const char* current_case = "";

extern "C" void on_abort(int) {
  char buf[256];
  int len = std::snprintf(buf, sizeof(buf),
                          "raft sim: a check failed in case \"%s\", seed %u; replay with "
                          "REGISTRY_RAFT_SEEDS=%u,\n",
                          current_case, static_cast<unsigned>(current_seed),
                          static_cast<unsigned>(current_seed));
  if (len > 0)
    (void)!write(2, buf, static_cast<std::size_t>(len));
}

std::uint64_t fnv(const std::string& x, std::uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : x) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

/// The replicated state machine: a map of keys to integers.
struct kv_machine {
  std::map<std::string, std::int64_t> kv;
  index_t applied = 0;

  std::string encode() const {
    std::string result;
    for (const auto& [k, v] : kv)
      result += k + "=" + std::to_string(v) + ";";
    return result;
  }

  static kv_machine decode(const std::string& x, index_t applied) {
    kv_machine result;
    result.applied = applied;
    std::stringstream in{x};
    std::string item;
    while (std::getline(in, item, ';')) {
      auto eq = item.find('=');
      result.kv[item.substr(0, eq)] = std::stoll(item.substr(eq + 1));
    }
    return result;
  }

  std::uint64_t hash() const {
    return fnv(encode());
  }
};

/// A client command: "w CLIENT SEQ KEY VALUE" or "r CLIENT SEQ KEY".
struct command {
  bool write = false;
  int client = 0;
  std::uint64_t seq = 0;
  std::string key;
  std::int64_t value = 0;

  std::string encode() const {
    std::ostringstream out;
    out << (write ? "w " : "r ") << client << " " << seq << " " << key;
    if (write)
      out << " " << value;
    return out.str();
  }

  static command decode(const std::string& x) {
    command result;
    std::istringstream in{x};
    std::string kind;
    in >> kind >> result.client >> result.seq >> result.key;
    result.write = kind == "w";
    if (result.write)
      in >> result.value;
    return result;
  }
};

/// What a run exercised (to see that the faults and features were reached).
struct sim_stats {
  std::size_t steps = 0;
  std::size_t operations = 0;
  std::size_t leaders = 0;
  std::size_t crashes = 0;
  std::size_t torn_writes = 0;
  std::size_t lost_writes = 0;
  std::size_t snapshots_taken = 0;
  std::size_t snapshots_installed = 0;
  std::size_t transfers = 0;
  std::size_t membership_changes = 0;
  std::size_t unknown_outcomes = 0;

  void add(const sim_stats& x) {
    steps += x.steps;
    operations += x.operations;
    leaders += x.leaders;
    crashes += x.crashes;
    torn_writes += x.torn_writes;
    lost_writes += x.lost_writes;
    snapshots_taken += x.snapshots_taken;
    snapshots_installed += x.snapshots_installed;
    transfers += x.transfers;
    membership_changes += x.membership_changes;
    unknown_outcomes += x.unknown_outcomes;
  }
};

class simulation {
public:
  explicit simulation(sim_options opts) : opts_(opts), rng_(opts.seed), cfg_(opts.cfg) {
    nodes_.resize(static_cast<std::size_t>(opts_.nodes));
    for (int i = 0; i < opts_.nodes; ++i)
      nodes_[i].id = "n" + std::to_string(i + 1);
    clients_.resize(static_cast<std::size_t>(opts_.clients));
  }

  /// Runs every round; "" when every check passed, else the first failure.
  std::string run() {
    std::vector<node_id> founders;
    for (int i = 0; i < opts_.initial_voters; ++i)
      founders.push_back(nodes_[i].id);
    for (int i = 0; i < opts_.nodes; ++i) {
      auto& n = nodes_[i];
      if (i < opts_.initial_voters) {
        auto s = bootstrap_state(founders);
        n.disk.hard = s.hard;
        n.disk.entries = s.entries;
      }
      restart(i);
    }
    for (int c = 0; c < opts_.clients; ++c)
      schedule(now_ + 1 + pick(50), [this, c] { client_issue(c); });
    for (int round = 0; round < opts_.rounds && error_.empty(); ++round) {
      chaos_ = true;
      clients_on_ = true;
      auto chaos_end = now_ + opts_.chaos_ms;
      schedule(now_ + 50 + pick(200), [this, chaos_end] { fault(chaos_end); });
      run_until(chaos_end);
      heal();
      run_until(now_ + opts_.heal_ms - 600);
      clients_on_ = false; // let the last operations finish, then the cluster go quiet
      run_until(now_ + 600);
      if (error_.empty())
        check_settled(round);
      clients_on_ = true;
      for (int c = 0; c < opts_.clients; ++c)
        if (!clients_[c].busy)
          schedule(now_ + 1 + pick(50), [this, c] { client_issue(c); });
    }
    if (error_.empty())
      finish_history();
    if (error_.empty())
      check_history();
    return error_;
  }

  sim_stats stats() const {
    auto result = stats_;
    result.steps = steps_;
    result.operations = history_.size();
    result.leaders = leaders_.size();
    return result;
  }
  const std::deque<std::string>& trace() const {
    return trace_;
  }

private:
  // -- model --------------------------------------------------------------------------

  /// What a node's disk holds durably.
  struct disk_state {
    hard_state hard;
    std::optional<snapshot> snap;
    index_t start = 0;      ///< index before the first entry
    term_t start_term = 0;  ///< its term
    std::vector<entry> entries;
  };

  struct node {
    node_id id;
    bool up = false;
    unsigned inc = 0; ///< incarnation: bumped on every crash
    std::unique_ptr<raft_core> core;
    disk_state disk;
    std::deque<raft_core::persist_request> queue; ///< writes not yet durable
    bool disk_busy = false;
    bool slow_disk = false;
    bool crash_on_write = false; ///< crash just after the next write is queued
    bool crash_on_grant = false; ///< crash just after granting a vote, restart at once
    kv_machine fsm;
    std::set<time_ms> ticks;
  };

  struct pending_op {
    int client = 0;
    command cmd;
    time_ms call = 0;
    int node = 0;
    unsigned inc = 0;
    index_t index = 0;
    term_t term = 0;
  };

  struct client {
    bool busy = false;
    int target = -1; ///< the node it thinks leads
    std::uint64_t seq = 0;
  };

  struct recorded {
    std::string key;
    lin::operation<lin::register_model> op;
  };

  struct event {
    time_ms at;
    std::uint64_t seq;
    std::function<void()> fn;
  };

  struct later {
    bool operator()(const event& x, const event& y) const {
      return std::tie(x.at, x.seq) > std::tie(y.at, y.seq);
    }
  };

  // -- randomness and events ---------------------------------------------------------

  bool coin(double p) {
    return std::uniform_real_distribution<double>{0.0, 1.0}(rng_) < p;
  }

  int pick(int n) {
    return n <= 1 ? 0 : std::uniform_int_distribution<int>{0, n - 1}(rng_);
  }

  void schedule(time_ms at, std::function<void()> fn) {
    queue_.push(event{at, seq_++, std::move(fn)});
  }

  void run_until(time_ms end) {
    while (!queue_.empty() && queue_.top().at <= end && error_.empty()) {
      auto e = std::move(const_cast<event&>(queue_.top()));
      queue_.pop();
      now_ = std::max(now_, e.at);
      e.fn();
      ++steps_;
    }
    now_ = std::max(now_, end);
  }

  bool alive(int i, unsigned inc) const {
    return nodes_[i].up && nodes_[i].inc == inc;
  }

  int index_of(const node_id& id) const {
    for (int i = 0; i < opts_.nodes; ++i)
      if (nodes_[i].id == id)
        return i;
    return -1;
  }

  void fail(const std::string& what) {
    if (!error_.empty())
      return;
    std::ostringstream out;
    out << "seed " << opts_.seed << " (" << opts_.nodes << " nodes), t=" << now_ << " ms: " << what;
    error_ = out.str();
  }

  void note(const std::string& line) {
    if (!opts_.trace)
      return;
    trace_.push_back("t=" + std::to_string(now_) + " " + line);
    if (trace_.size() > trace_lines_max())
      trace_.pop_front();
  }

  // -- nodes --------------------------------------------------------------------------

  persisted_state durable_state(const node& n) const {
    persisted_state s;
    s.hard = n.disk.hard;
    s.snap = n.disk.snap;
    s.entries = n.disk.entries;
    s.prev_term = n.disk.start_term;
    return s;
  }

  void restart(int i) {
    auto& n = nodes_[i];
    auto state = durable_state(n);
    if (auto problem = check(state); !problem.empty())
      return fail(n.id + " cannot restart from its disk: " + problem);
    n.up = true;
    n.queue.clear();
    n.disk_busy = false;
    n.slow_disk = false;
    n.ticks.clear();
    n.fsm = kv_machine{};
    if (n.disk.snap) {
      n.fsm = kv_machine::decode(*n.disk.snap->data, n.disk.snap->meta.index);
      check_restored(i, n.disk.snap->meta.index);
    }
    std::uint64_t seed = (std::uint64_t{opts_.seed} << 20) ^ (std::uint64_t(i) << 12) ^ n.inc;
    n.core = std::make_unique<raft_core>(n.id, cfg_, std::move(state), seed);
    note(n.id + " starts");
    process(i, n.core->start(now_));
  }

  void crash(int i) {
    auto& n = nodes_[i];
    if (!n.up)
      return;
    // The disk keeps a random prefix of the writes it had not acknowledged; the next one may be
    // torn (its parts are written in order: hard state, snapshot, entries).
    auto keep = static_cast<std::size_t>(pick(static_cast<int>(n.queue.size()) + 1));
    for (std::size_t k = 0; k < keep; ++k)
      apply_write(n, n.queue[k], SIZE_MAX);
    ++stats_.crashes;
    if (keep < n.queue.size() && coin(0.5)) {
      ++stats_.torn_writes;
      const auto& w = n.queue[keep];
      apply_write(n, w, static_cast<std::size_t>(pick(static_cast<int>(w.entries.size()) + 3)));
    }
    note(n.id + " crashes, " + std::to_string(keep) + " of " + std::to_string(n.queue.size())
         + " pending writes survive");
    stats_.lost_writes += n.queue.size() - keep;
    n.up = false;
    ++n.inc;
    n.queue.clear();
    n.core.reset();
    // Operations proposed there end with unknown outcome.
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.node == i) {
        end_unknown(it->second);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // -- effects ------------------------------------------------------------------------

  void process(int i, raft_core::effects fx) {
    auto& n = nodes_[i];
    if (!n.up || !error_.empty())
      return;
    for (auto& line : fx.log)
      note(line);
    if (fx.role_changed)
      on_role(i, *fx.role_changed);
    if (fx.persist) {
      check_new_entries(i, fx.persist->entries);
      n.queue.push_back(std::move(*fx.persist));
      if (!n.disk_busy)
        schedule_disk(i);
      if (n.crash_on_write) {
        n.crash_on_write = false;
        auto inc = n.inc;
        schedule(now_, [this, i, inc] {
          if (alive(i, inc))
            crash_and_restart(i, 50 + pick(1200));
        });
      }
    }
    for (auto& m : fx.messages) {
      check_durable_before_reply(n, m);
      auto v = std::get_if<vote_response>(&m.body);
      if (n.crash_on_grant && v != nullptr && v->granted && !v->pre_vote) {
        // The vote is out: a restart must remember it, even if the candidate asks again or
        // another one of the same term asks.
        n.crash_on_grant = false;
        auto inc = n.inc;
        schedule(now_, [this, i, inc] {
          if (alive(i, inc))
            crash_and_restart(i, 1 + pick(30));
        });
      }
      send(i, std::move(m));
    }
    if (fx.restore)
      restore(i, *fx.restore);
    for (const auto& e : fx.committed)
      apply(i, e);
    if (fx.snapshot_wanted) {
      auto inc = n.inc;
      schedule(now_ + 1 + pick(30), [this, i, inc] {
        if (!alive(i, inc))
          return;
        auto& m = nodes_[i];
        auto data = std::make_shared<const std::string>(m.fsm.encode());
        ++stats_.snapshots_taken;
        process(i, m.core->snapshot_taken(m.fsm.applied, data, now_));
      });
    }
    if (fx.wake_at && n.ticks.insert(*fx.wake_at).second) {
      auto inc = n.inc;
      auto at = *fx.wake_at;
      schedule(at, [this, i, inc, at] {
        if (!alive(i, inc))
          return;
        nodes_[i].ticks.erase(at);
        process(i, nodes_[i].core->tick(now_));
      });
    }
    if (n.up && error_.empty())
      if (auto problem = n.core->check_invariants(); !problem.empty())
        fail(n.id + ": " + problem);
  }

  void on_role(int i, const raft_core::role_change& x) {
    const auto& n = nodes_[i];
    note(n.id + " is " + to_string(x.role) + " in term " + std::to_string(x.term) + ", leader "
         + (x.leader.empty() ? "-" : x.leader));
    if (x.role != role::leader)
      return;
    auto [it, fresh] = leaders_.emplace(x.term, n.id);
    if (!fresh && it->second != n.id)
      return fail("two leaders in term " + std::to_string(x.term) + ": " + it->second + " and "
                  + n.id);
    // Leader Completeness (§5.4): every entry applied anywhere is in the new leader's log.
    const auto& c = *n.core;
    for (auto a = applied_.upper_bound(c.log_start()); a != applied_.end(); ++a) {
      auto t = c.term_at(a->first);
      if (!t || *t != a->second.first)
        return fail("leader " + n.id + " of term " + std::to_string(x.term) + " lacks applied entry "
                    + std::to_string(a->first));
    }
  }

  /// Figure 2: a vote, and an acknowledged entry, are on stable storage before the reply leaves.
  void check_durable_before_reply(const node& n, const message& m) {
    const auto& d = n.disk;
    if (auto v = std::get_if<vote_response>(&m.body); v != nullptr && v->granted && !v->pre_vote) {
      // (A later term may be durable already: writes are acknowledged in groups.)
      if (d.hard.term < m.term || (d.hard.term == m.term && d.hard.vote != m.to))
        fail(n.id + " grants its vote in term " + std::to_string(m.term) + " to " + m.to
             + " before the vote is durable");
      return;
    }
    index_t acked = 0;
    if (auto a = std::get_if<append_response>(&m.body); a != nullptr && a->success)
      acked = a->index;
    else if (auto r = std::get_if<install_snapshot_response>(&m.body))
      acked = r->index;
    // Only within the durable term: a later term's leader may have truncated the acknowledged
    // entries since, by a write made durable in the same group.
    auto durable = std::max<index_t>(d.start + d.entries.size(), d.snap ? d.snap->meta.index : 0);
    if (acked > durable && m.term == d.hard.term)
      fail(n.id + " acknowledges index " + std::to_string(acked) + " holding only "
           + std::to_string(durable) + " durably");
    auto pre_vote_request = std::get_if<vote_request>(&m.body);
    auto pre_vote_response = std::get_if<vote_response>(&m.body);
    bool pre_vote = (pre_vote_request != nullptr && pre_vote_request->pre_vote)
                    || (pre_vote_response != nullptr && pre_vote_response->pre_vote);
    if (m.term > d.hard.term && !pre_vote) // pre-votes name a term not yet taken
      fail(n.id + " replies in term " + std::to_string(m.term) + " before the term is durable");
  }

  /// Log Matching by induction: an (index, term) always holds the same entry after the same term.
  void check_new_entries(int i, const std::vector<entry>& xs) {
    const auto& c = *nodes_[i].core;
    for (const auto& e : xs) {
      if (c.term_at(e.index) != e.term)
        continue;
      auto prev = c.term_at(e.index - 1);
      auto content = fnv(e.data, static_cast<std::uint64_t>(e.kind));
      auto [it, fresh] = entries_.emplace(std::make_pair(e.index, e.term),
                                          std::make_pair(content, prev.value_or(UINT64_MAX)));
      if (fresh)
        continue;
      if (it->second.first != content)
        return fail("two different entries at index " + std::to_string(e.index) + " term "
                    + std::to_string(e.term));
      if (prev && it->second.second != UINT64_MAX && it->second.second != *prev)
        return fail("entry " + std::to_string(e.index) + "/" + std::to_string(e.term)
                    + " follows different terms on different nodes");
      if (prev && it->second.second == UINT64_MAX)
        it->second.second = *prev;
    }
  }

  void apply(int i, const entry& e) {
    auto& n = nodes_[i];
    if (e.index != n.fsm.applied + 1)
      return fail(n.id + " applies " + std::to_string(e.index) + " after "
                  + std::to_string(n.fsm.applied));
    auto content = fnv(e.data, static_cast<std::uint64_t>(e.kind));
    auto [it, fresh] = applied_.emplace(e.index, std::make_pair(e.term, content));
    if (!fresh && (it->second.first != e.term || it->second.second != content))
      return fail("state machine safety: " + n.id + " applies a different entry at "
                  + std::to_string(e.index));
    std::int64_t read_value = 0;
    command cmd;
    if (e.kind == entry_kind::command) {
      cmd = command::decode(e.data);
      if (cmd.write)
        n.fsm.kv[cmd.key] = cmd.value;
      auto kv = n.fsm.kv.find(cmd.key);
      read_value = kv == n.fsm.kv.end() ? 0 : kv->second;
    }
    n.fsm.applied = e.index;
    auto [st, st_fresh] = states_.emplace(e.index, n.fsm.hash());
    if (!st_fresh && st->second != n.fsm.hash())
      return fail(n.id + " holds another state after " + std::to_string(e.index));
    // The client waiting for this index at this node learns the outcome.
    auto p = pending_.find({i, e.index});
    if (p == pending_.end())
      return;
    auto op = p->second;
    pending_.erase(p);
    if (op.inc != n.inc)
      return end_unknown(op);
    if (op.term != e.term) {
      end_failed(op);
    } else {
      if (!(e.kind == entry_kind::command && cmd.client == op.client && cmd.seq == op.cmd.seq))
        return fail("index " + std::to_string(e.index) + " of term " + std::to_string(e.term)
                    + " holds another command than the one proposed");
      end_ok(op, read_value);
    }
  }

  void restore(int i, const snapshot& s) {
    auto& n = nodes_[i];
    ++stats_.snapshots_installed;
    n.fsm = kv_machine::decode(*s.data, s.meta.index);
    check_restored(i, s.meta.index);
    // Operations waiting for indexes the snapshot covers will never be seen applied here.
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.node == i && it->first.second <= s.meta.index) {
        end_unknown(it->second);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void check_restored(int i, index_t index) {
    auto it = states_.find(index);
    if (it != states_.end() && it->second != nodes_[i].fsm.hash())
      fail(nodes_[i].id + " restores a snapshot at " + std::to_string(index)
           + " that differs from the state applied there");
  }

  // -- disk ---------------------------------------------------------------------------

  void schedule_disk(int i) {
    auto& n = nodes_[i];
    n.disk_busy = true;
    time_ms latency = n.slow_disk ? 20 + pick(250) : 1 + pick(4);
    auto inc = n.inc;
    schedule(now_ + latency, [this, i, inc] {
      if (alive(i, inc))
        disk_done(i);
    });
  }

  void disk_done(int i) {
    auto& n = nodes_[i];
    // Group commit: several queued writes become durable with one sync.
    auto group = std::min<std::size_t>(n.queue.size(), 4);
    auto k = 1 + static_cast<std::size_t>(pick(static_cast<int>(group)));
    std::uint64_t id = 0;
    for (std::size_t j = 0; j < k && error_.empty(); ++j) {
      apply_write(n, n.queue.front(), SIZE_MAX);
      id = n.queue.front().id;
      n.queue.pop_front();
    }
    n.disk_busy = false;
    if (!n.queue.empty())
      schedule_disk(i);
    process(i, n.core->persisted(id, now_));
  }

  /// Carries out the first `parts` parts of a write (hard state, snapshot, entries one by one).
  void apply_write(node& n, const raft_core::persist_request& w, std::size_t parts) {
    auto& d = n.disk;
    if (parts == 0)
      return;
    --parts;
    if (w.hard) {
      if (w.hard->term < d.hard.term)
        return fail(n.id + ": durable term goes down");
      if (w.hard->term == d.hard.term && !d.hard.vote.empty() && w.hard->vote != d.hard.vote)
        return fail(n.id + ": votes twice in term " + std::to_string(d.hard.term));
      d.hard = *w.hard;
    }
    if (parts == 0)
      return;
    --parts;
    if (w.snap) {
      if (!d.snap || w.snap->meta.index > d.snap->meta.index)
        d.snap = w.snap;
      if (w.snapshot_resets_log) {
        d.entries.clear();
        d.start = w.snap->meta.index;
        d.start_term = w.snap->meta.term;
      } else if (w.compact_to > d.start && coin(0.7)) {
        // Segments go whole: sometimes nothing is deleted yet.
        auto upto = std::min<index_t>(w.compact_to, d.start + d.entries.size());
        d.start_term = d.entries[upto - d.start - 1].term;
        d.entries.erase(d.entries.begin(), d.entries.begin() + static_cast<long>(upto - d.start));
        d.start = upto;
      }
    }
    for (const auto& e : w.entries) {
      if (parts == 0)
        return;
      --parts;
      auto last = d.start + d.entries.size();
      if (e.index > last + 1 || e.index <= d.start)
        return fail(n.id + ": a write of entry " + std::to_string(e.index) + " does not fit the log "
                    + std::to_string(d.start) + ".." + std::to_string(last));
      d.entries.resize(e.index - d.start - 1);
      d.entries.push_back(e);
    }
  }

  // -- network ------------------------------------------------------------------------

  void send(int from, message m) {
    int to = index_of(m.to);
    if (to < 0)
      return fail("message to unknown node " + m.to);
    if (cut_.count({from, to}) > 0)
      return;
    if (chaos_ && coin(opts_.loss))
      return;
    int copies = chaos_ && coin(opts_.duplicate) ? 2 : 1;
    for (int k = 0; k < copies; ++k) {
      time_ms delay = 1 + pick(8);
      if (chaos_ && coin(opts_.reorder))
        delay += 10 + pick(120);
      schedule(now_ + delay, [this, from, to, m] {
        if (!nodes_[to].up || cut_.count({from, to}) > 0)
          return;
        if (opts_.trace)
          note("deliver " + to_string(m));
        process(to, nodes_[to].core->step(m, now_));
      });
    }
  }

  // -- faults -------------------------------------------------------------------------

  void fault(time_ms chaos_end) {
    if (now_ >= chaos_end || !error_.empty())
      return;
    int kind = pick(10);
    int i = pick(opts_.nodes);
    if (kind <= 1 && opts_.crashes) {
      // Some crashes hit a node just after it queued a write (so writes get lost), some just
      // after it granted a vote (and it comes back at once).
      int how = pick(3);
      if (how == 0)
        nodes_[i].crash_on_write = true;
      else if (how == 1)
        nodes_[i].crash_on_grant = true;
      else
        crash_and_restart(i, 50 + pick(1200));
    } else if (kind <= 4 && opts_.partitions) {
      partition();
    } else if (kind == 5 && opts_.slow_disks) {
      nodes_[i].slow_disk = !nodes_[i].slow_disk;
      note(nodes_[i].id + (nodes_[i].slow_disk ? " disk slow" : " disk normal"));
    } else if (kind == 6 && opts_.transfers) {
      transfer();
    } else if (kind >= 7 && opts_.membership) {
      change_membership();
    }
    schedule(now_ + 50 + pick(250), [this, chaos_end] { fault(chaos_end); });
  }

  void crash_and_restart(int i, time_ms down_ms) {
    if (!nodes_[i].up)
      return;
    crash(i);
    auto inc = nodes_[i].inc;
    schedule(now_ + down_ms, [this, i, inc] {
      if (!nodes_[i].up && nodes_[i].inc == inc)
        restart(i);
    });
  }

  void partition() {
    int shape = pick(4);
    cut_.clear();
    std::ostringstream what;
    if (shape == 0) {
      // heal
      what << "network heals";
    } else if (shape == 1) {
      int i = pick(opts_.nodes);
      for (int j = 0; j < opts_.nodes; ++j)
        if (j != i) {
          cut_.insert({i, j});
          cut_.insert({j, i});
        }
      what << nodes_[i].id << " isolated";
    } else if (shape == 2) {
      std::vector<int> side(static_cast<std::size_t>(opts_.nodes));
      for (auto& s : side)
        s = pick(2);
      for (int a = 0; a < opts_.nodes; ++a)
        for (int b = 0; b < opts_.nodes; ++b)
          if (side[a] != side[b])
            cut_.insert({a, b});
      what << "split";
    } else {
      // One-way cuts: a node hears but is not heard, or the other way round.
      int i = pick(opts_.nodes);
      bool deaf = coin(0.5);
      for (int j = 0; j < opts_.nodes; ++j)
        if (j != i)
          cut_.insert(deaf ? std::make_pair(j, i) : std::make_pair(i, j));
      what << nodes_[i].id << (deaf ? " deaf" : " mute");
    }
    note(what.str());
  }

  int current_leader() const {
    int result = -1;
    for (int i = 0; i < opts_.nodes; ++i)
      if (nodes_[i].up && nodes_[i].core->role() == role::leader
          && (result < 0 || nodes_[i].core->term() > nodes_[result].core->term()))
        result = i;
    return result;
  }

  void transfer() {
    int l = current_leader();
    if (l < 0)
      return;
    const auto& voters = nodes_[l].core->membership().voters;
    std::vector<node_id> others;
    for (const auto& v : voters)
      if (v != nodes_[l].id)
        others.push_back(v);
    if (others.empty())
      return;
    auto target = others[static_cast<std::size_t>(pick(static_cast<int>(others.size())))];
    auto r = nodes_[l].core->transfer_leadership(target, now_);
    if (r.refused.empty())
      ++stats_.transfers;
    note(nodes_[l].id + " asked to transfer to " + target
         + (r.refused.empty() ? "" : ": " + r.refused));
    process(l, std::move(r.fx));
  }

  void change_membership() {
    int l = current_leader();
    if (l < 0)
      return;
    auto& core = *nodes_[l].core;
    const auto& cfg = core.membership();
    using kind = raft_core::membership_change::kind;
    raft_core::membership_change ch;
    std::vector<node_id> outsiders;
    for (const auto& n : nodes_)
      if (!cfg.contains(n.id))
        outsiders.push_back(n.id);
    if (!cfg.learners.empty() && core.caught_up(*cfg.learners.begin())) {
      ch = {kind::promote, *cfg.learners.begin()};
    } else if (!outsiders.empty() && cfg.learners.empty() && coin(0.6)) {
      auto k = static_cast<std::size_t>(pick(static_cast<int>(outsiders.size())));
      ch = {kind::add_learner, outsiders[k]};
    } else if (cfg.voters.size() > 3) {
      std::vector<node_id> others;
      for (const auto& v : cfg.voters)
        if (v != nodes_[l].id)
          others.push_back(v);
      ch = {kind::remove, others[static_cast<std::size_t>(pick(static_cast<int>(others.size())))]};
    } else {
      return;
    }
    auto r = core.change_membership(ch, now_);
    if (r.accepted)
      ++stats_.membership_changes;
    note(nodes_[l].id + " membership change " + std::to_string(static_cast<int>(ch.what)) + " "
         + ch.node + (r.refused.empty() ? "" : ": " + r.refused));
    process(l, std::move(r.fx));
  }

  void heal() {
    chaos_ = false;
    cut_.clear();
    note("heal");
    for (int i = 0; i < opts_.nodes; ++i) {
      if (!nodes_[i].up)
        restart(i);
      nodes_[i].slow_disk = false;
      nodes_[i].crash_on_write = false;
      nodes_[i].crash_on_grant = false;
    }
  }

  /// After a heal: one leader that every member follows, everything committed and applied.
  void check_settled(int round) {
    int l = current_leader();
    std::string where = "after heal " + std::to_string(round + 1) + ": ";
    if (l < 0)
      return fail(where + "no leader");
    const auto& lc = *nodes_[l].core;
    for (int i = 0; i < opts_.nodes; ++i) {
      const auto& c = *nodes_[i].core;
      if (!lc.membership().contains(c.self()))
        continue;
      if (c.term() != lc.term() || c.leader() != lc.self())
        return fail(where + c.self() + " is in term " + std::to_string(c.term()) + " following '"
                    + c.leader() + "', not leader " + lc.self() + " of term "
                    + std::to_string(lc.term()));
      if (nodes_[i].fsm.applied != lc.commit_index())
        return fail(where + c.self() + " applied " + std::to_string(nodes_[i].fsm.applied)
                    + ", the leader committed " + std::to_string(lc.commit_index()));
    }
    if (lc.commit_index() != lc.last_index())
      return fail(where + "the leader has uncommitted entries");
  }

  // -- clients ------------------------------------------------------------------------

  void client_issue(int c) {
    auto& cl = clients_[c];
    cl.busy = false;
    if (!clients_on_ || !error_.empty())
      return;
    int i = cl.target >= 0 && nodes_[cl.target].up ? cl.target : pick(opts_.nodes);
    if (!nodes_[i].up) {
      cl.target = -1;
      schedule(now_ + 5 + pick(20), [this, c] { client_issue(c); });
      cl.busy = true;
      return;
    }
    command cmd;
    cmd.client = c;
    cmd.seq = ++cl.seq;
    cmd.write = coin(0.5);
    cmd.key = "k" + std::to_string(pick(opts_.keys));
    if (cmd.write)
      cmd.value = ++next_value_;
    auto r = nodes_[i].core->propose(cmd.encode(), now_);
    cl.busy = true;
    if (!r.accepted) {
      int hint = r.leader.empty() ? -1 : index_of(r.leader);
      cl.target = hint >= 0 && hint != i ? hint : pick(opts_.nodes);
      process(i, std::move(r.fx));
      schedule(now_ + 5 + pick(20), [this, c] { client_issue(c); });
      return;
    }
    cl.target = i;
    pending_op op{c, cmd, now_, i, nodes_[i].inc, r.index, r.term};
    if (auto old = pending_.find({i, r.index}); old != pending_.end()) {
      // This node proposes at that index again as leader of a later term, so the entry proposed
      // there before was truncated without being committed (Leader Completeness): it failed.
      auto gone = old->second;
      pending_.erase(old);
      end_failed(gone);
    }
    pending_[{i, r.index}] = op;
    auto index = r.index;
    auto inc = nodes_[i].inc;
    schedule(now_ + opts_.client_timeout_ms, [this, i, index, inc, seq = cmd.seq, c] {
      auto p = pending_.find({i, index});
      if (p == pending_.end() || p->second.inc != inc || p->second.client != c
          || p->second.cmd.seq != seq)
        return;
      auto op = p->second;
      pending_.erase(p);
      end_unknown(op);
    });
    process(i, std::move(r.fx));
  }

  void next_op(int c) {
    schedule(now_ + 1 + pick(30), [this, c] { client_issue(c); });
  }

  void end_ok(const pending_op& op, std::int64_t read_value) {
    lin::operation<lin::register_model> x;
    x.input = {op.cmd.write, op.cmd.value};
    x.output = op.cmd.write ? 0 : read_value;
    x.call = op.call;
    x.ret = now_;
    history_.push_back(recorded{op.cmd.key, x});
    next_op(op.client);
  }

  void end_failed(const pending_op& op) {
    // Another entry took the index: the command can never be applied, so it did not happen.
    next_op(op.client);
  }

  void end_unknown(const pending_op& op) {
    ++stats_.unknown_outcomes;
    if (op.cmd.write) {
      lin::operation<lin::register_model> x;
      x.input = {true, op.cmd.value};
      x.call = op.call;
      x.ret = lin::unknown_return;
      history_.push_back(recorded{op.cmd.key, x});
    }
    next_op(op.client);
  }

  void finish_history() {
    for (auto& [key, op] : pending_)
      if (op.cmd.write) {
        lin::operation<lin::register_model> x;
        x.input = {true, op.cmd.value};
        x.call = op.call;
        x.ret = lin::unknown_return;
        history_.push_back(recorded{op.cmd.key, x});
      }
    pending_.clear();
  }

  void check_history() {
    std::map<std::string, std::vector<lin::operation<lin::register_model>>> per_key;
    for (const auto& r : history_)
      per_key[r.key].push_back(r.op);
    for (const auto& [key, ops] : per_key) {
      auto result = lin::check_linearizable<lin::register_model>(ops, 20'000'000);
      if (result.gave_up)
        return fail("the linearizability check of key " + key + " gave up ("
                    + std::to_string(ops.size()) + " operations)");
      if (!result.linearizable)
        return fail("the history of key " + key + " (" + std::to_string(ops.size())
                    + " operations) is not linearizable");
    }
  }

  // -- member variables ---------------------------------------------------------------

  sim_options opts_;
  std::mt19937 rng_;
  raft_config cfg_;
  std::vector<node> nodes_;
  std::vector<client> clients_;
  std::priority_queue<event, std::vector<event>, later> queue_;
  std::uint64_t seq_ = 0;
  time_ms now_ = 0;
  std::size_t steps_ = 0;
  bool chaos_ = false;
  bool clients_on_ = true;
  std::set<std::pair<int, int>> cut_;
  /// term -> leader
  std::map<term_t, node_id> leaders_;
  /// (index, term) -> (content hash, previous entry's term or UINT64_MAX when unknown)
  std::map<std::pair<index_t, term_t>, std::pair<std::uint64_t, std::uint64_t>> entries_;
  /// index -> (term, content hash) of the entry applied there
  std::map<index_t, std::pair<term_t, std::uint64_t>> applied_;
  /// index -> hash of the state machine after applying it
  std::map<index_t, std::uint64_t> states_;
  /// (node, index) -> the operation proposed there
  std::map<std::pair<int, index_t>, pending_op> pending_;
  std::int64_t next_value_ = 0;
  std::vector<recorded> history_;
  std::deque<std::string> trace_;
  sim_stats stats_;
  std::string error_;
};

/// Runs `opts` for every seed; a failure is reported with its replay command and trace tail.
sim_stats run_case(const char* name, sim_options opts, std::uint32_t base,
                    std::uint32_t count_default, const std::function<void(sim_options&)>& vary) {
  std::signal(SIGABRT, on_abort);
  current_case = name;
  sim_stats totals;
  for (auto seed : case_seeds(base, count_default)) {
    auto o = opts;
    o.seed = seed;
    vary(o);
    current_seed = seed;
    simulation sim{o};
    auto error = sim.run();
    totals.add(sim.stats());
    if (!error.empty()) {
      auto traced = o;
      traced.trace = true;
      simulation again{traced};
      again.run();
      std::string tail;
      for (const auto& line : again.trace())
        tail += "  " + line + "\n";
      FAIL_CHECK(error << "\nreplay: REGISTRY_RAFT_SEEDS=" << seed
                       << ", build/test/unit/unit_tests -tc=\"" << name << "\"\nlast events:\n"
                       << tail);
    }
  }
  std::signal(SIGABRT, SIG_DFL);
  MESSAGE(std::string{name} << ": " << case_seeds(base, count_default).size() << " seeds, "
                            << totals.steps
                << " steps, " << totals.leaders << " leaders, " << totals.operations
                << " client operations (" << totals.unknown_outcomes << " unknown), "
                << totals.crashes << " crashes (" << totals.lost_writes << " writes lost, "
                << totals.torn_writes << " torn), "
                << totals.snapshots_taken << " snapshots taken, " << totals.snapshots_installed
                << " installed, " << totals.transfers << " transfers, "
                << totals.membership_changes << " membership changes");
  return totals;
}

} // namespace

TEST_CASE("raft sim: loss, duplication, reordering, partitions, crashes, slow disks") {
  sim_options opts;
  auto t = run_case("raft sim: loss, duplication, reordering, partitions, crashes, slow disks",
                    opts, 1, 120, [](sim_options& o) {
                      o.nodes = 3 + static_cast<int>(o.seed % 3);
                      o.initial_voters = o.nodes;
                    });
  CHECK(t.operations > 0);
}

TEST_CASE("raft sim: membership changes and leadership transfers under faults") {
  sim_options opts;
  opts.membership = true;
  auto t = run_case("raft sim: membership changes and leadership transfers under faults", opts,
                    10001, 60, [](sim_options& o) {
                      o.nodes = 4 + static_cast<int>(o.seed % 2);
                      o.initial_voters = 3;
                    });
  CHECK(t.operations > 0);
}

TEST_CASE("raft sim: heavy loss and crashes, no partitions") {
  sim_options opts;
  opts.loss = 0.3;
  opts.duplicate = 0.1;
  opts.reorder = 0.3;
  opts.partitions = false;
  auto t = run_case("raft sim: heavy loss and crashes, no partitions", opts, 20001, 30,
                    [](sim_options& o) {
                      o.nodes = 3 + static_cast<int>(o.seed % 3);
                      o.initial_voters = o.nodes;
                    });
  CHECK(t.operations > 0);
}

TEST_CASE("raft sim: one entry per append, no pre-vote or check-quorum, election churn") {
  // Without pre-vote and check-quorum, with elections timing out close to the message delays and
  // one entry per AppendEntries, leaders change often while followers hold old terms' entries:
  // the schedules of the paper's Figure 8 come up.
  sim_options opts;
  opts.cfg.pre_vote = false;
  opts.cfg.check_quorum = false;
  opts.cfg.append_entries_max = 1;
  opts.cfg.inflight_appends_max = 2;
  opts.cfg.election_timeout_ms = 60;
  opts.cfg.heartbeat_interval_ms = 20;
  opts.reorder = 0.2;
  auto t = run_case("raft sim: one entry per append, no pre-vote or check-quorum, election churn",
                    opts, 30001, 60, [](sim_options& o) {
                      o.nodes = 3 + static_cast<int>(o.seed % 3);
                      o.initial_voters = o.nodes;
                    });
  CHECK(t.operations > 0);
}
