#pragma once
/// The vocabulary of the Raft core (actors/raft/raft_core.hpp) and its on-disk log
/// (actors/raft/raft_log_store.hpp): log entries, configurations, the durable term and vote,
/// snapshot metadata, and the node-to-node messages as plain structs (no CAF, no protobuf).
///
/// Paper references (§) are to Ongaro and Ousterhout, "In Search of an Understandable Consensus
/// Algorithm (Extended Version)", and "thesis" to Ongaro's dissertation "Consensus: Bridging Theory
/// and Practice".

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "messages/model.hpp"

namespace registry::raft {

// -- identifiers -------------------------------------------------------------------

/// A node's stable identity (never reused for another node: a node id that comes back with an empty
/// disk could vote twice in one term). Not empty.
using node_id = std::string;

/// Terms and indexes start at 1; 0 means "none" (the empty log has last index 0 and last term 0).
using term_t = std::uint64_t;
using index_t = std::uint64_t;

// -- the log -----------------------------------------------------------------------

enum class entry_kind : std::uint8_t {
  command = 1, ///< opaque bytes for the state machine
  noop = 2,    ///< appended by every new leader (§5.4.2, §8): commits earlier terms' entries
  config = 3,  ///< `data` holds encode_configuration() of the whole new configuration
};

/// "command", "noop", "config", or "unknown".
const char* to_string(entry_kind x);

/// One log entry.
struct entry {
  index_t index = 0;
  term_t term = 0;
  entry_kind kind = entry_kind::command;
  std::string data;

  friend bool operator==(const entry& x, const entry& y) {
    return x.index == y.index && x.term == y.term && x.kind == y.kind && x.data == y.data;
  }
  friend bool operator!=(const entry& x, const entry& y) {
    return !(x == y);
  }
};

/// Who takes part: voters count in elections and commitment; learners only receive the log (a new
/// server catches up as a learner before it is promoted, thesis §4.2.1). Disjoint sets.
struct configuration {
  std::set<node_id> voters;
  std::set<node_id> learners;

  bool is_voter(const node_id& x) const {
    return voters.count(x) > 0;
  }
  bool contains(const node_id& x) const {
    return voters.count(x) > 0 || learners.count(x) > 0;
  }
  /// Votes (or acknowledgements) that make a majority of the voters.
  std::size_t quorum() const {
    return voters.size() / 2 + 1;
  }
  friend bool operator==(const configuration& x, const configuration& y) {
    return x.voters == y.voters && x.learners == y.learners;
  }
  friend bool operator!=(const configuration& x, const configuration& y) {
    return !(x == y);
  }
};

/// Bytes of a configuration entry: counts and length-prefixed ids, little-endian.
std::string encode_configuration(const configuration& x);

/// The inverse of encode_configuration; nothing for malformed bytes, overlapping sets, empty ids,
/// or more than `members_max` members.
std::optional<configuration> decode_configuration(const std::string& bytes,
                                                  std::size_t members_max);

/// "voters a,b learners c" for logs.
std::string to_string(const configuration& x);

/// Term and vote: durable before any reply that depends on them leaves the node (§5.1, Figure 2).
struct hard_state {
  term_t term = 0;
  node_id vote; ///< empty: no vote in `term`

  friend bool operator==(const hard_state& x, const hard_state& y) {
    return x.term == y.term && x.vote == y.vote;
  }
  friend bool operator!=(const hard_state& x, const hard_state& y) {
    return !(x == y);
  }
};

/// What a snapshot covers (§7): every entry up to `index`, whose term is `term`, and the
/// configuration in force at `index`.
struct snapshot_meta {
  index_t index = 0;
  term_t term = 0;
  configuration config;

  friend bool operator==(const snapshot_meta& x, const snapshot_meta& y) {
    return x.index == y.index && x.term == y.term && x.config == y.config;
  }
};

/// State machine bytes of a snapshot, shared read-only (the core, the disk and messages hold it).
using snapshot_bytes = std::shared_ptr<const std::string>;

/// A snapshot: metadata and the state machine's bytes.
struct snapshot {
  snapshot_meta meta;
  snapshot_bytes data;
};

// -- messages (a later step maps them to messages/raft.proto) -------------------------

/// RequestVote (§5.2, Figure 2). With `pre_vote` (thesis §9.6) it asks "would you vote for me in
/// term `message::term`?" and changes no state at the receiver. With `transfer` it comes from a
/// TimeoutNow (thesis §3.10) and overrides the leader lease of the receivers.
struct vote_request {
  index_t last_index = 0;
  term_t last_term = 0;
  bool pre_vote = false;
  bool transfer = false;
};

/// Reply to a vote_request. A granted pre-vote carries the requested term, anything else the
/// voter's own term.
struct vote_response {
  bool granted = false;
  bool pre_vote = false;
};

/// AppendEntries (§5.3). Entries follow (prev_index, prev_term) without gaps.
struct append_request {
  index_t prev_index = 0;
  term_t prev_term = 0;
  std::vector<entry> entries;
  index_t commit = 0; ///< the leader's commit index
};

/// Reply to an append_request. On success `index` is the highest index known to match the
/// leader's log; on rejection it is the rejected `prev_index`, and `hint` the index the leader
/// should try next (one past the follower's last entry, or the first entry of the conflicting
/// term, §5.3 "optimization").
struct append_response {
  bool success = false;
  index_t index = 0;
  index_t hint = 0;
};

/// Heartbeat: keeps followers from campaigning and carries a commit index that the follower is
/// known to hold already (min of the leader's commit and the follower's match), so it needs no
/// log check.
struct heartbeat {
  index_t commit = 0;
};

/// Reply to a heartbeat: proves contact (check-quorum) and lets the leader retry a stalled probe.
struct heartbeat_response {};

/// InstallSnapshot (§7), whole (state is small; no chunks).
struct install_snapshot {
  snapshot_meta meta;
  snapshot_bytes data;
};

/// Reply to install_snapshot: the highest index now known to match the leader's log.
struct install_snapshot_response {
  index_t index = 0;
};

/// TimeoutNow (thesis §3.10): the receiver starts an election at once.
struct timeout_now {};

/// Every node-to-node message: an envelope with the sender's term and one body.
struct message {
  node_id from;
  node_id to;
  term_t term = 0;
  std::variant<vote_request, vote_response, append_request, append_response, heartbeat,
               heartbeat_response, install_snapshot, install_snapshot_response, timeout_now>
    body;
};

/// "append_request" etc.
const char* type_name(const message& x);

/// One line for logs and failing tests: "n1->n2 t3 append_request prev=4/2 n=3 commit=4".
std::string to_string(const message& x);

} // namespace registry::raft
