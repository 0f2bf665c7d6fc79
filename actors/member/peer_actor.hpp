#pragma once
/// The PEER actor: one per other cluster member. It owns the connection to that member's node and
/// carries the distro actor's requests to the member's distro actor.
///
/// ```
///   (dial)         connect ok + PeerWelcome          down_msg / failures
///  disconnected ------------------> connected ---------------------------> disconnected
///       ^  | connect or hello fails         | probe every check interval
///       |  +--> report peer_fail            +--> report peer_up / peer_fail
///       +---------------------------------------------------------------+
/// ```
/// It never decides member states: it reports what it sees (peer_up, peer_fail, peer_lost) and the
/// distro actor's member_tracker decides; the tracker also schedules reconnects (dial).
///
/// Interface (in-process, from the distro actor):
/// - (dial_atom)                                 connect now unless connected or connecting
/// - (sync_atom, uint64 id, envelope SyncBatch)  -> reports (sync_res_atom, address, id, bool ok)
/// - (verify_atom, uint64 id, envelope VerifyBatch)
///                          -> reports (verify_res_atom, address, id, bool ok, envelope VerifyReply)
/// - (snapshot_atom, uint64 id, envelope SnapshotRequest)
///                          -> reports (snap_res_atom, address, id, int32 status, envelope Snapshot)
///                             status: 0 ok, 1 failed, 2 unavailable
/// - (forward_atom, envelope ForwardedRequest)  -> envelope reply from the member (or Error)
/// Reports to the distro actor: (peer_up_atom, address, string node, string node_id) where `node` is
/// the listen address the answering node announced, (peer_fail_atom, address, string why),
/// (peer_lost_atom, address, string why).

#include <caf/fwd.hpp>

#include "config/node_config.hpp"

namespace registry {

struct peer_settings {
  host_port member;           ///< whom this actor talks to
  std::string self_address;   ///< this node's listen address
  std::string self_node_id;   ///< this node's id for this run
  std::string cluster_name;
  std::int64_t connect_timeout_ms = 2000;
  std::int64_t request_timeout_ms = 3000;  ///< probes and forwarded requests
  std::int64_t sync_timeout_ms = 3000;
  std::int64_t verify_timeout_ms = 3000;
  std::int64_t snapshot_timeout_ms = 30000;
  std::int64_t probe_interval_ms = 1000;
};

caf::actor spawn_peer_actor(caf::actor_system& sys, peer_settings settings, caf::actor distro);

} // namespace registry
