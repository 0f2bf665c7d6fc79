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
/// Interface: `peer_actor` in actors/interfaces.hpp (in-process, from the distro actor).
/// Results: sync -> (sync_res_atom, address, id, bool ok); verify -> (verify_res_atom, address, id,
/// bool ok, envelope VerifyReply); snapshot -> (snap_res_atom, address, id, int32 status, envelope
/// Snapshot) with status 0 ok, 1 failed, 2 unavailable.
/// Reports to the distro actor: (peer_up_atom, address, string node, string node_id) where `node` is
/// the listen address the answering node announced, (peer_fail_atom, address, string why),
/// (peer_lost_atom, address, string why).

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "config/node_config.hpp"

namespace registry {

struct peer_settings {
  host_port member;           ///< whom this actor talks to
  std::string self_address;   ///< this node's listen address
  std::string self_node_id;   ///< this node's id for this run
  std::string cluster_secret; ///< empty: an unauthenticated cluster
  std::string cluster_name;
  std::int64_t connect_timeout_ms = 2000;
  std::int64_t request_timeout_ms = 3000;  ///< probes and forwarded requests
  std::int64_t sync_timeout_ms = 3000;
  std::int64_t verify_timeout_ms = 3000;
  std::int64_t snapshot_timeout_ms = 30000;
  std::int64_t probe_interval_ms = 1000;
};

peer_actor spawn_peer_actor(caf::actor_system& sys, peer_settings settings, distro_actor distro);

} // namespace registry
