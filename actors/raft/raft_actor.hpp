#pragma once
/// The RAFT actor: one per node. A thin shell around raft_core (the protocol) and
/// persistent_store (the state machine of persistent instances); a detached DISK actor owns the
/// raft_log_store.
///
/// ```
///  gateway --pwrite--> raft actor --propose--> raft_core --effects--> disk actor (writes, then one
///     ^                  |   ^                                         sync per group, persisted)
///     |  svc_put         |   +-- raft (RaftMessage) <-- distro <-- peer port <-- other members
///     +------------------+-- raft (to, RaftMessage) --> distro --> peer actor --> other members
/// ```
/// * Ticks: the core's `wake_at` becomes a delayed_send to itself (a generation counter ignores
///   stale timers).
/// * Durability: every persist_request goes, in order, to the disk actor; the core holds votes and
///   acknowledgements until the disk answers `persisted` (see raft_core.hpp).
/// * Writes: a PersistentOp (pwrite) on the leader is proposed and answered once its entry is
///   committed and applied (Ack, or the state machine's refusal); on a follower it is forwarded to
///   the leader through the distro actor; without a known leader it waits. Every write is answered
///   within raft.write_timeout_ms: with UNAVAILABLE when it was not committed by then.
/// * Feeding: after every applied change the raft actor hands the service's instances of that
///   client ("ip:port#false") to the gateway as client actors do (svc_put), and all of them again
///   when the gateway restarts; so queries, lists, subscriptions and pushes show persistent
///   instances like ephemeral ones. Distro never carries them.
/// * Membership: the leader makes the configuration follow the member list (at start and on every
///   reload), one single-server change at a time (membership_plan.hpp decides, the actor proposes
///   and logs each committed change); followers keep the list for when they lead.
/// * Stopping: a leader asked `bye` hands leadership to the most up-to-date voter and answers once
///   it stepped down, or after handover_wait_ms. A RaftTransferRequest that the gateway relays as a
///   pwrite (registryctl raft --transfer-to) does the same on demand and is answered with an Ack or
///   an Error naming `target`.
/// * Readiness: the gateway hears (with the role) whether Raft caught up since the start: applied
///   up to the commit index the first message of a leader carried, or a leader of its own term
///   committed, or ready_wait_ms passed without a leader; and every persistent instance it holds
///   reached its service actor (ready means loaded: no partial lists after a restart).
/// * Health: results from the health checker (actors/raft/health_checker.hpp) that flip an
///   instance become HEALTH writes through Raft.
///
/// Interface: `raft_actor` and `raft_disk_actor` in actors/interfaces.hpp.

#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "actors/raft/membership_plan.hpp"
#include "actors/raft/raft_core.hpp"
#include "actors/raft/raft_log_store.hpp"
#include "config/node_config.hpp"

namespace registry {

struct raft_settings {
  raft::node_id self;
  raft::raft_config core;
  std::int64_t write_timeout_ms = defaults::raft_write_timeout_ms;
  std::size_t pending_writes_max = defaults::raft_pending_writes_max;
  std::string data_dir;
  /// The member list (the YAML's `members`): the desired voters. The leader changes the
  /// configuration to follow it (actors/raft/membership_plan.hpp); a reload replaces it.
  std::vector<raft::node_id> members;
  raft::membership_plan_config membership;
  /// A stopping leader hands leadership over within this.
  std::int64_t handover_wait_ms = defaults::raft_election_timeout_ms;
  /// A starting node reports ready once it applied the leader's commit index, or after this.
  std::int64_t ready_wait_ms = 3 * defaults::raft_election_timeout_ms;
  /// Health checks (off when interval_min_ms is 0: tests).
  std::int64_t check_interval_min_ms = defaults::health_check_interval_min_ms;
  std::int64_t check_interval_max_ms = defaults::health_check_interval_max_ms;
  std::int64_t check_timeout_ms = defaults::health_check_timeout_ms;
  std::size_t checks_in_flight_max = defaults::health_checks_in_flight_max;
};

/// The settings of a node's config (`listen` is the Raft id).
raft_settings make_raft_settings(const node_config& cfg);

/// Opens the store in `dir` (creating it). A pristine store is bootstrapped with `voters` as the
/// founding configuration (written durably before it returns), unless `join`: then it starts with
/// no configuration, never campaigns, and waits for the leader of the running cluster to add it.
/// On error `error` is set (with the file and what to do); warnings list repairs (torn records
/// dropped) and the bootstrap.
raft::raft_log_store::open_result open_raft_store(const std::string& dir,
                                                  const std::vector<raft::node_id>& voters,
                                                  bool join = false);

/// Spawns the raft actor and its disk actor from an opened store.
raft_actor spawn_raft_actor(caf::actor_system& sys, raft_settings settings,
                            raft::raft_log_store::open_result opened);

} // namespace registry
