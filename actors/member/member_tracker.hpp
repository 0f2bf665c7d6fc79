#pragma once
/// Cluster membership as one node sees it, and the responsibility mapping (no CAF, no I/O, no clock).
///
/// The member manager owns one `member_tracker`; its peer actors report what they observe (an answer,
/// a failed request, a lost connection) and the tracker decides each member's state:
///
/// ```
///              first failure                 failures_until_down-th failure
///     +----+ ----------------> +------------+ ------------------------------> +------+
///     | UP |                   | SUSPICIOUS |                                 | DOWN |
///     +----+ <---------------- +------------+                                 +------+
///       ^  ^      answer                                                       |  ^
///       |  +--------------------------- answer ---------------------------------+  |
///       +--------------------- connection lost (from UP or SUSPICIOUS) ------------+
/// ```
///
/// * Every other member starts DOWN with a connection attempt due at once: a member is UP only after
///   it answered (Nacos starts them UP and routes to nodes that may not exist yet).
/// * Self is always UP and never appears in transitions.
/// * Reconnect backoff: on entering DOWN the next attempt is due after `backoff_min_ms`; every attempt
///   handed out by due_reconnects() doubles the following delay, capped at `backoff_max_ms`; an answer
///   resets it. The schedule is time-driven: a lost connect result delays nothing.
///
/// Responsibility: a session client ("<node address>/<counter>/<start ms>") belongs to the node in its
/// id, forever. Any other client, e.g. a heartbeat client "ip:port#true", belongs to the node chosen by
/// rendezvous (highest random weight) hashing of its routing key "ip:port" over a sorted node list:
/// score(node, key) = mix_64(fnv1a_64(node) ^ mix_64(fnv1a_64(key))), highest score wins, ties go to the
/// smaller address. When a node leaves, only its own clients move (each to its second choice); when a
/// node joins, only the clients it now wins move to it (Nacos's modulo re-shards almost all, #7242).
/// FNV-1a 64 and the mixer are fixed functions of the bytes, so every node, build and platform agrees
/// (std::hash gives no such promise).
///
/// The tracker maps over its *alive* list (UP and SUSPICIOUS, self included): one timeout must not
/// re-shard every heartbeat client (the flapping of #10515); only DOWN does. The Distro protocol keeps
/// its own, stricter routing list (alive members that proved they are ready, see distro_protocol.hpp)
/// and uses the free function `responsible_node(nodes, id)` below.
///
/// Bounds: at most `members_max` members (self included); extra members of set_members() are refused
/// (counted in `changes::members_refused`) in sorted order, so every node refuses the same ones.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/defaults.hpp"
#include "config/node_config.hpp"
#include "messages/model.hpp"

namespace registry {

// -- member states -------------------------------------------------------------

/// A member's state as this node sees it.
enum class member_state : std::uint8_t {
  up,         ///< answered its last request
  suspicious, ///< at least one failure, fewer than failures_until_down; still routed to
  down,       ///< failures_until_down failures, a lost connection, or never answered yet
};

/// "UP", "SUSPICIOUS", "DOWN" (Nacos's spelling, for logs and the status reply).
const char* to_string(member_state x);

/// UP and SUSPICIOUS members take part in routing; DOWN ones do not.
inline bool is_alive(member_state x) {
  return x != member_state::down;
}

/// One member and its state: what the Distro protocol receives on every membership change.
struct member_view {
  std::string address; ///< HOST:PORT, as in the members list
  member_state state = member_state::down;
  /// DOWN only because requests failed while the connection stayed open: the process that answered
  /// before is still there, too slow to answer (or this node too starved to read the answers). A
  /// lost connection (a crash, a frozen node caught by CAF heartbeats) clears it.
  bool unresponsive = false;

  friend bool operator==(const member_view& a, const member_view& b) {
    return a.address == b.address && a.state == b.state && a.unresponsive == b.unresponsive;
  }
  friend bool operator!=(const member_view& a, const member_view& b) {
    return !(a == b);
  }
};

// -- responsibility (stable hashing) ---------------------------------------------

/// FNV-1a, 64 bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over the bytes of `x`.
std::uint64_t fnv1a_64(std::string_view x);

/// A 64-bit finalising mixer (xor-shift-multiply, MurmurHash3's fmix64 constants): spreads FNV's weak
/// low-order bits over the whole word, so rendezvous scores of similar keys are independent.
std::uint64_t mix_64(std::uint64_t x);

/// Rendezvous score of `node` for `key`; the node with the highest score is responsible.
std::uint64_t rendezvous_score(std::string_view node, std::string_view key);

/// For a session client id "<node address>/<counter>/<start ms>": the node address (the text before
/// the first '/', non-empty). For any other id: nothing.
std::optional<std::string_view> session_owner(std::string_view id);

/// What a non-session client is hashed by: "ip:port" for a heartbeat client "ip:port#true", the id
/// itself otherwise (so "ip:port" maps like its heartbeat client).
std::string_view routing_key(std::string_view id);

/// The node responsible for `id` (a client id or "ip:port"): the session owner for a session client,
/// else the rendezvous winner among `nodes` (any order, duplicates harmless). "" when `nodes` is empty
/// and `id` is not a session client.
std::string responsible_node(const std::vector<std::string>& nodes, std::string_view id);

// -- configuration ---------------------------------------------------------------

struct member_tracker_config {
  /// Failures in a row that make a member DOWN (the first already makes it SUSPICIOUS).
  int failures_until_down = defaults::member_failures_until_down;
  /// First reconnect delay after entering DOWN; doubles per attempt up to backoff_max_ms.
  time_ms backoff_min_ms = defaults::reconnect_backoff_min_ms;
  time_ms backoff_max_ms = defaults::reconnect_backoff_max_ms;
  /// Members tracked, self included; more are refused.
  std::size_t members_max = defaults::members_max;

  member_tracker_config() = default;

  /// Takes the timings of the node config's `distro:` section.
  explicit member_tracker_config(const node_config::distro_t& x);
};

/// "" when fine, else the first broken rule (e.g. "backoff_min_ms must not exceed backoff_max_ms").
std::string validate(const member_tracker_config& x);

// -- the tracker -----------------------------------------------------------------

class member_tracker {
public:
  // -- member types ---------------------------------------------------------------

  /// One member's change: `before` empty = added, `after` empty = removed, both set = state change.
  struct transition {
    std::string address;
    std::optional<member_state> before;
    std::optional<member_state> after;
  };

  /// What a call changed, for the caller to log and to pass on (view() to the Distro actor).
  struct changes {
    std::vector<transition> transitions; ///< in address order
    bool alive_changed = false;          ///< alive_members() differs: responsibility must be re-mapped
    /// view() differs without a transition: an unresponsive DOWN member lost its connection.
    bool view_changed = false;
    std::size_t members_refused = 0;     ///< members over members_max (set_members only)

    bool empty() const {
      return transitions.empty() && !alive_changed && !view_changed && members_refused == 0;
    }
  };

  // -- constructors ---------------------------------------------------------------

  /// `members` may or may not contain `self`; self is always tracked and UP. Others start DOWN with a
  /// connection attempt due at `now_ms`.
  /// @pre `self` is not empty and validate(cfg) is "".
  member_tracker(std::string self, const std::vector<std::string>& members,
                 member_tracker_config cfg, time_ms now_ms);

  // -- inputs ---------------------------------------------------------------------

  /// The members list changed at runtime (config reload). Added members start DOWN with an attempt due
  /// at once; removed ones are forgotten.
  changes set_members(const std::vector<std::string>& members, time_ms now_ms);

  /// `member` answered (a request, a probe or a connect): UP, failures reset, backoff reset.
  changes on_success(const std::string& member, time_ms now_ms);

  /// A request to `member` failed or timed out: SUSPICIOUS on the first failure, DOWN on the
  /// failures_until_down-th. A DOWN member stays DOWN (its reconnect schedule is unchanged).
  /// A member that goes DOWN this way is *unresponsive* (member_view): requests fail only on an
  /// open connection (a lost one makes it DOWN at once).
  changes on_failure(const std::string& member, time_ms now_ms);

  /// The connection to `member` is gone (CAF down/exit message, refused connect): DOWN at once,
  /// and no longer unresponsive (a DOWN member that was is a change of the view).
  changes on_connection_lost(const std::string& member, time_ms now_ms);

  /// Members whose reconnect attempt is due at `now_ms`: the caller tries to (re)connect or probe each
  /// and reports the result. Each returned member's next attempt is scheduled already (backoff).
  std::vector<std::string> due_reconnects(time_ms now_ms);

  /// When due_reconnects() has work next, if ever.
  std::optional<time_ms> next_wake() const;

  // -- properties -----------------------------------------------------------------

  const std::string& self() const {
    return self_;
  }

  /// True when self is the only member.
  bool standalone() const {
    return peers_.empty();
  }

  /// The state of `member` (UP for self), nothing for an unknown member.
  std::optional<member_state> state(const std::string& member) const;

  /// Failures in a row of `member` (0 for self and unknown members).
  int failures(const std::string& member) const;

  /// When the next reconnect attempt of `member` is due (DOWN members only).
  std::optional<time_ms> reconnect_at(const std::string& member) const;

  /// The delay that the next scheduled attempt after the pending one will use.
  time_ms backoff_ms(const std::string& member) const;

  /// Every member, self included, sorted.
  std::vector<std::string> members() const;

  /// UP and SUSPICIOUS members, self included, sorted.
  const std::vector<std::string>& alive_members() const {
    return alive_;
  }

  /// Every member with its state, self included (UP), sorted by address.
  std::vector<member_view> view() const;

  /// responsible_node(alive_members(), id).
  std::string responsible_node(std::string_view id) const;

private:
  // -- member types ---------------------------------------------------------------

  struct peer {
    member_state state = member_state::down;
    int failures = 0;
    bool unresponsive = false;             ///< DOWN by failures, the connection still open
    time_ms backoff_ms = 0;                ///< delay of the attempt after the pending one
    std::optional<time_ms> reconnect_at;   ///< DOWN only
  };

  // -- helpers --------------------------------------------------------------------

  peer make_peer(time_ms now_ms) const;
  void enter_down(peer& p, time_ms now_ms);
  time_ms next_backoff(time_ms current) const;
  changes finish(std::vector<transition> transitions);
  std::vector<std::string> compute_alive() const;

  // -- member variables -----------------------------------------------------------

  /// This node's address.
  std::string self_;
  /// Limits and timings.
  member_tracker_config cfg_;
  /// Every other member by address.
  std::map<std::string, peer> peers_;
  /// Cached sorted alive list, self included.
  std::vector<std::string> alive_;
};

} // namespace registry
