#pragma once
/// One Raft node as a pure state machine (no CAF, no protobuf, no I/O, no clock).
///
/// A later raft actor drives one `raft_core` like etcd's RawNode: it passes every input (a timer, a
/// received message, a client command, a membership change, the acknowledgement of a write, a
/// snapshot the state machine took) together with the current time, and carries out the returned
/// `effects`. The same state, seed and inputs always give the same effects, so the core is tested
/// by unit tests mapped to the paper (test/unit/raft_core_test.cpp) and by a seeded simulation with
/// partitions, crashes and a linearizability checker (test/unit/raft_sim_test.cpp).
///
/// ## What it implements
/// * Elections with randomised timeouts in [election_timeout_ms, 2 x election_timeout_ms) from a
///   seeded PRNG (§5.2); pre-vote (thesis §9.6): a node first asks whether it would win and raises
///   its term only then, so a node cut off and rejoining does not depose a working leader.
/// * Check-quorum (thesis §6.2): a leader that heard from no quorum of voters within an election
///   timeout steps down. Leader lease at voters: a voter that heard from a leader within the
///   election timeout ignores (pre-)vote requests of higher terms, unless they come from a
///   leadership transfer.
/// * Log replication (§5.3) with per-follower progress: *probe* (one AppendEntries at a time until
///   the logs match), *replicate* (pipelined, at most inflight_appends_max in flight), *snapshot*
///   (InstallSnapshot in flight, for a follower whose next entry was compacted away).
/// * Commitment (§5.4.2): a leader commits only entries of its own term by counting replicas, and
///   appends a no-op when it takes office so that earlier terms' entries get committed. Its own
///   log counts only once durable.
/// * Durability: term and vote, and entries, are written through `effects::persist`; every reply a
///   node sends (votes, AppendEntries acknowledgements, ...) is held inside the core until every
///   write issued before it is acknowledged with persisted(). Only a leader's own replication
///   traffic leaves at once (the leader writes its log in parallel, thesis §10.2.1).
/// * Snapshots and compaction (§7): after snapshot_threshold_entries applied entries the state
///   machine is asked for a snapshot (`snapshot_wanted`); snapshot_taken() stores it and drops all
///   but snapshot_trailing_entries of the covered log. A follower whose next entry was compacted
///   gets InstallSnapshot.
/// * Single-server membership changes (thesis §4.1, §4.2.1): add a learner, let it catch up,
///   promote it to voter; remove a server. One change at a time, only after the leader committed an
///   entry of its own term (the fix of the single-server change bug, thesis §4.1 / raft-dev 2015).
///   A configuration takes effect as soon as it is in a node's log, and is rolled back if its entry
///   is truncated. A leader does not remove itself: transfer leadership first.
/// * Leadership transfer (thesis §3.10): the leader stops taking proposals, brings the target up to
///   date, sends TimeoutNow; the target campaigns at once (no pre-vote, lease overridden). Aborted
///   after one election timeout.
///
/// ## Effects ordering (what the driver must respect)
/// 1. `persist`: carry out writes strictly in the order they are issued (one FIFO disk queue):
///    the hard state first, then the snapshot (when `snapshot_resets_log`, the log restarts after
///    it), then the entries (the first entry's index truncates the log there: everything from it on
///    is replaced); after `compact_to` entries up to it may be deleted once the snapshot is durable.
///    When the write is durable call persisted(id). Writes may be grouped (one fsync for many) as
///    long as acknowledgements keep their order.
/// 2. `messages`: send now, in any order, over any transport that may lose, duplicate or reorder.
///    Replies that depend on a write are not in here until that write is acknowledged.
/// 3. `restore`, then `committed`: hand to the state machine in this order (restore replaces its
///    whole state; committed entries follow in index order; `noop` and `config` entries carry no
///    command and only advance the applied index).
/// 4. `snapshot_wanted`: when set, snapshot the state machine at its applied index (any index from
///    the given one up to what was handed out) and call snapshot_taken().
/// 5. Arm a timer for `wake_at` and call tick() then (stale or extra ticks are harmless).
///    `wake_at` is always later than the `now` of the call.
///
/// ## Bounds and overflow policy
/// * Writes in flight <= persists_in_flight_max (+1 for a new leader's no-op): at the bound,
///   proposals are refused, messages that would need a write are dropped as if lost, an election
///   timeout waits another round and a snapshot of the state machine is ignored (asked again
///   later).
/// * Held replies <= held_messages_max: at the bound the newest is dropped (as if lost).
/// * Leader log in memory <= log_entries_max and uncommitted <= uncommitted_entries_max: at the
///   bound proposals are refused until snapshots and commitment catch up. A command is at most
///   command_bytes_max.
/// * Per follower: inflight_appends_max AppendEntries, one probe, one snapshot in flight.
/// * Members (voters + learners) <= members_max; received AppendEntries hold at most
///   log_entries_max entries (larger ones are dropped as malformed). A follower's log mirrors its
///   leader's, so it is bounded the same way once its state machine takes the snapshots asked for.
/// * Votes counted <= voters; committed entries handed out per input <= log_entries_max.
///
/// ## Restart
/// The core starts from what the disk holds (`persisted_state`): the hard state, the newest
/// snapshot, and the log. Entries that do not continue the snapshot are dropped (an install whose
/// old segments were not yet deleted). Commit and applied restart at the snapshot index; the
/// driver restores the state machine from that snapshot itself.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "actors/raft/raft_types.hpp"
#include "config/defaults.hpp"

namespace registry::raft {

// -- configuration -----------------------------------------------------------------

struct raft_config {
  time_ms election_timeout_ms = defaults::raft_election_timeout_ms;
  time_ms heartbeat_interval_ms = defaults::raft_heartbeat_interval_ms;
  time_ms snapshot_timeout_ms = defaults::raft_snapshot_timeout_ms;
  /// Thesis §9.6; both default on, as the project's failure model needs them.
  bool pre_vote = true;
  bool check_quorum = true;
  std::size_t append_entries_max = defaults::raft_append_entries_max;
  std::size_t append_bytes_max = defaults::raft_append_bytes_max;
  std::size_t inflight_appends_max = defaults::raft_inflight_appends_max;
  std::size_t snapshot_threshold_entries = defaults::raft_snapshot_threshold_entries;
  std::size_t snapshot_trailing_entries = defaults::raft_snapshot_trailing_entries;
  std::size_t log_entries_max = defaults::raft_log_entries_max;
  std::size_t uncommitted_entries_max = defaults::raft_uncommitted_entries_max;
  std::size_t command_bytes_max = defaults::raft_command_bytes_max;
  std::size_t persists_in_flight_max = defaults::raft_persists_in_flight_max;
  std::size_t held_messages_max = defaults::raft_held_messages_max;
  std::size_t catch_up_entries_max = defaults::raft_catch_up_entries_max;
  std::size_t members_max = defaults::raft_members_max;
};

/// "" when fine, else the first broken rule (e.g. "election_timeout_ms must be at least 3 x
/// heartbeat_interval_ms").
std::string validate(const raft_config& x);

/// What the disk holds when a node starts (raft_log_store::open returns it).
struct persisted_state {
  hard_state hard;
  /// The newest snapshot, if any.
  std::optional<snapshot> snap;
  /// Contiguous entries; may start before the snapshot index (trailing entries) or after it.
  std::vector<entry> entries;
  /// Term of the entry before entries.front() (0 when it is index 0 or unknown).
  term_t prev_term = 0;
};

/// "" when `x` can start a core, else the problem (gaps, terms going down, entries newer than the
/// hard state's term, an empty log not starting at 1 without snapshot).
std::string check(const persisted_state& x);

/// Keeps only the entries of `x` that continue its snapshot (§7: "If existing log entry has same
/// index and term as snapshot's last included entry, retain log entries following it"), i.e. the
/// log holds the snapshot's last entry, or starts right after it with the snapshot's term before
/// it; otherwise the whole log is dropped (an install whose old segments were not yet deleted).
/// Returns how many entries were dropped. Without a snapshot nothing changes.
std::size_t trim_to_snapshot(persisted_state& x);

/// The state of a brand-new cluster's founding members: entry 1 (term 1) holds `voters`. Every
/// founding member must start from the same state, written durably before its first start. Nodes
/// added later start from an empty persisted_state.
persisted_state bootstrap_state(const std::vector<node_id>& voters);

enum class role { follower, pre_candidate, candidate, leader };

/// "follower", "pre_candidate", "candidate", "leader".
const char* to_string(role x);

class raft_core {
public:
  // -- member types: outputs --------------------------------------------------------

  /// One write for the disk; see the ordering rules in the file comment.
  struct persist_request {
    std::uint64_t id = 0;
    std::optional<hard_state> hard;
    std::optional<snapshot> snap;
    /// The snapshot came from the leader: the whole log is replaced (restarts after it).
    bool snapshot_resets_log = false;
    /// Entries up to this index may be deleted once `snap` is durable (0: none).
    index_t compact_to = 0;
    std::vector<entry> entries;
  };

  /// Who leads, as this node sees it, whenever it changed.
  struct role_change {
    raft::role role = role::follower;
    term_t term = 0;
    node_id leader; ///< empty when unknown
  };

  /// Everything one input asks the driver to do (ordering rules in the file comment).
  struct effects {
    std::optional<persist_request> persist;
    std::vector<message> messages;
    std::optional<snapshot> restore;
    std::vector<entry> committed;
    std::optional<index_t> snapshot_wanted;
    std::optional<role_change> role_changed;
    std::optional<time_ms> wake_at;
    std::vector<std::string> log; ///< events worth a log line, "subject verb object"
  };

  /// The result of propose() and change_membership(): accepted at (index, term), or refused with a
  /// reason (and the leader, when known, to forward to). The entry is committed when an entry at
  /// `index` with `term` is handed out in `committed`; an entry of another term at that index means
  /// the proposal is lost.
  struct propose_result {
    bool accepted = false;
    index_t index = 0;
    term_t term = 0;
    std::string refused;
    node_id leader;
    effects fx;
  };

  /// The result of transfer_leadership().
  struct transfer_result {
    std::string refused; ///< "" when started
    effects fx;
  };

  /// A single-server membership change.
  struct membership_change {
    enum class kind { add_learner, promote, remove };
    kind what = kind::add_learner;
    node_id node;
  };

  /// What the leader knows about one follower.
  struct progress {
    enum class mode { probe, replicate, snapshot };
    mode state = mode::probe;
    index_t match = 0; ///< highest index known to match
    index_t next = 1;  ///< next index to send
    bool probe_sent = false; ///< probe: an AppendEntries awaits its answer
    std::deque<index_t> inflight; ///< replicate: last index of each AppendEntries in flight
    index_t pending_snapshot = 0; ///< snapshot: the index sent
    time_ms snapshot_sent_ms = 0;
    bool recent_active = false; ///< heard from since the last quorum check
  };

  // -- constructors -----------------------------------------------------------------

  /// @pre `self` is not empty, validate(cfg) is "" and check(state) is "".
  /// @param seed seeds the election timeouts (production: random; tests: fixed per node).
  raft_core(node_id self, raft_config cfg, persisted_state state, std::uint64_t seed);

  // -- inputs -------------------------------------------------------------------------

  /// First call: arms the election timer.
  effects start(time_ms now_ms);

  /// A timer fired (any time; early or repeated ticks are harmless).
  effects tick(time_ms now_ms);

  /// A message from a peer. Malformed or misaddressed messages are dropped (with a log line).
  effects step(const message& x, time_ms now_ms);

  /// A client command (leader only).
  propose_result propose(std::string command, time_ms now_ms);

  /// A membership change (leader only; one at a time).
  propose_result change_membership(const membership_change& x, time_ms now_ms);

  /// Hands leadership to voter `target` (leader only).
  transfer_result transfer_leadership(const node_id& target, time_ms now_ms);

  /// Write `id` (and every earlier one) is durable.
  effects persisted(std::uint64_t id, time_ms now_ms);

  /// The state machine's snapshot at `index` (at most the applied index handed out). Snapshots
  /// not newer than the current one are ignored, and so is one while the disk queue is full.
  effects snapshot_taken(index_t index, snapshot_bytes data, time_ms now_ms);

  // -- properties ---------------------------------------------------------------------

  const node_id& self() const {
    return self_;
  }
  const raft_config& config() const {
    return cfg_;
  }
  raft::role role() const {
    return role_;
  }
  term_t term() const {
    return term_;
  }
  const node_id& vote() const {
    return vote_;
  }
  /// The leader of the current term, if known ("" otherwise).
  const node_id& leader() const {
    return leader_;
  }
  index_t commit_index() const {
    return commit_;
  }
  /// Highest index handed out in `committed` or `restore`.
  index_t applied_index() const {
    return applied_;
  }
  index_t last_index() const {
    return log_start_ + entries_.size();
  }
  term_t last_term() const;
  /// Index before the first entry held in memory (compacted up to here).
  index_t log_start() const {
    return log_start_;
  }
  /// Term of entry `i`, if it is held (log_start() counts, with the snapshot's term).
  std::optional<term_t> term_at(index_t i) const;
  /// Entry `i`; @pre log_start() < i <= last_index().
  const entry& entry_at(index_t i) const;
  /// The configuration in force (the newest in the log, committed or not).
  const configuration& membership() const {
    return config_;
  }
  /// Index of the entry that holds membership() (0: from the snapshot or none).
  index_t membership_index() const {
    return config_index_;
  }
  /// The newest snapshot (index 0 and no data when none).
  const snapshot& latest_snapshot() const {
    return snapshot_;
  }
  /// Highest index whose entry, and all before it, are durable here and in memory alike.
  index_t stable_index() const;
  /// Leader: what it knows about `peer` (nullptr otherwise).
  const progress* progress_of(const node_id& peer) const;
  /// Leader: `learner` is close enough to the log's end to be promoted.
  bool caught_up(const node_id& learner) const;
  /// Leader: a transfer is in progress (to whom, "" otherwise).
  const node_id& transfer_target() const {
    return transfer_target_;
  }
  /// Writes issued and not yet acknowledged.
  std::size_t persists_in_flight() const {
    return writes_.size();
  }
  /// Replies held until a write is durable.
  std::size_t held_messages() const {
    return held_.size();
  }
  /// Replies dropped because held_messages_max was reached, messages dropped because
  /// persists_in_flight_max was reached.
  std::uint64_t dropped_count() const {
    return dropped_;
  }

  /// "" when every internal invariant holds, else the first one broken (tests and the simulation
  /// call it after every step; cost O(log + peers)).
  std::string check_invariants() const;

private:
  // -- member types -------------------------------------------------------------------

  struct write_record {
    std::uint64_t id = 0;
    index_t first_changed = 0; ///< lowest index whose content this write changes (0: none)
    index_t last_after = 0;    ///< last index of the log once this write is done
  };

  struct held_message {
    std::uint64_t after = 0; ///< released once this write is durable
    message msg;
  };

  // -- steps --------------------------------------------------------------------------

  void begin(time_ms now_ms);
  effects finish();
  void on_vote_request(const message& m, const vote_request& x);
  void on_vote_response(const message& m, const vote_response& x);
  void on_append_request(const message& m, const append_request& x);
  void on_append_response(const message& m, const append_response& x);
  void on_heartbeat(const message& m, const heartbeat& x);
  void on_heartbeat_response(const message& m);
  void on_install_snapshot(const message& m, const install_snapshot& x);
  void on_install_snapshot_response(const message& m, const install_snapshot_response& x);
  void on_timeout_now(const message& m);
  void answer_stale(const message& m);
  bool accept_from_leader(const message& m);

  // -- roles --------------------------------------------------------------------------

  void become_follower(term_t term, const node_id& leader);
  void become_pre_candidate();
  void become_candidate(bool transfer);
  void become_leader();
  void campaign(bool transfer);
  void count_votes();
  bool in_lease() const;
  void reset_election_timer();

  // -- leader -------------------------------------------------------------------------

  bool send_append(const node_id& peer, progress& pr, bool send_if_empty);
  void send_snapshot(const node_id& peer, progress& pr);
  void send_heartbeats();
  void broadcast_append();
  void maybe_commit();
  void maybe_send_timeout_now(const node_id& peer, const progress& pr);
  void check_quorum();
  void sync_progress();
  std::string refuse_proposal(std::size_t bytes) const;
  void append_as_leader(entry_kind kind, std::string data);

  // -- log ----------------------------------------------------------------------------

  bool log_matches(index_t i, term_t t) const;
  void append_entries(std::vector<entry> xs);
  void commit_to(index_t i);
  void reset_log(const snapshot& s);
  void compact(index_t upto);
  void refresh_membership();
  configuration membership_at(index_t i) const;
  index_t conflict_hint(index_t prev_index) const;

  // -- output -------------------------------------------------------------------------

  persist_request& write();
  void send(message m);
  void reply(const message& to, decltype(message::body) body, term_t term);
  void note(std::string line);
  time_ms random_election_timeout();

  // -- member variables ---------------------------------------------------------------

  /// This node's id.
  node_id self_;
  /// Timings and limits.
  raft_config cfg_;
  /// Election timeouts.
  std::mt19937_64 rng_;

  /// Durable state: current term and the vote in it.
  term_t term_ = 0;
  node_id vote_;

  /// Volatile state.
  raft::role role_ = role::follower;
  node_id leader_;
  index_t commit_ = 0;
  index_t applied_ = 0;

  /// The log: entries after log_start_ (log_start_term_ is the term of log_start_).
  index_t log_start_ = 0;
  term_t log_start_term_ = 0;
  std::deque<entry> entries_;
  /// The newest snapshot (log_start_ <= its index).
  snapshot snapshot_;
  /// The configuration in force and the index of its entry (0: the snapshot's).
  configuration config_;
  index_t config_index_ = 0;

  /// Writes: the one being built by the current input, those in flight, and what is durable.
  std::optional<persist_request> current_write_;
  index_t current_first_changed_ = 0;
  std::deque<write_record> writes_;
  std::uint64_t next_write_id_ = 1;
  index_t durable_last_ = 0;
  /// Replies waiting for writes.
  std::deque<held_message> held_;
  std::uint64_t dropped_ = 0;

  /// Timers.
  time_ms now_ms_ = 0;
  time_ms election_deadline_ms_ = 0;
  time_ms heartbeat_due_ms_ = 0;
  time_ms quorum_check_due_ms_ = 0;
  time_ms leader_contact_ms_ = 0;
  bool leader_contact_ = false; ///< leader_contact_ms_ is set (in this term)

  /// Elections: votes received (voter -> granted); the candidate's own vote counts once the write
  /// holding it is durable.
  std::map<node_id, bool> votes_;
  std::uint64_t self_vote_write_ = 0;
  bool self_vote_durable_ = false;

  /// Leader state.
  std::map<node_id, progress> progress_;
  index_t term_start_index_ = 0; ///< index of this leader's no-op
  node_id transfer_target_;
  time_ms transfer_deadline_ms_ = 0;
  bool timeout_now_sent_ = false;

  /// Snapshot requested from the state machine at this applied index (0: none outstanding).
  index_t snapshot_requested_ = 0;

  /// The effects of the input being handled, and what to compare role changes against.
  effects fx_;
  raft::role role_before_ = role::follower;
  node_id leader_before_;
  term_t term_before_ = 0;
};

} // namespace registry::raft
