#pragma once
/// The typed interface of every node actor, in one place.
///
/// The compiler checks every send, request and reply between node actors against these lists, and
/// a behaviour must implement exactly its list. At run time an actor still receives whatever a
/// connected process sends it: a message its list does not name reaches the default handler
/// (actors/common/handlers.hpp), which logs it and replies with an error. In-process entries
/// (marked "in-process") also check that the sender belongs to this process.
///
/// Handles that cross the network (a client's own actor in `hello`, the session handle in the
/// Welcome, the peer port in a PeerWelcome) travel as plain `caf::actor`: a handle from another
/// process is only as trustworthy as that process, so the node treats it as untyped and sends it
/// nothing but pushes. The wire protocol is messages/PROTOCOL.md.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/typed_actor.hpp>

#include "actors/raft/health_probe.hpp"
#include "actors/raft/raft_core.hpp"
#include "messages/model.hpp"
#include "messages/type_ids.hpp"

namespace registry {

// -- what a node sends to a subscriber ----------------------------------------------------------

/// A subscriber: a client process's own actor, or an in-process bridge of another front end.
/// (push_atom, envelope ServiceInfo | SubscriptionDropped) -> envelope Ack.
using subscriber_actor = caf::typed_actor<
  caf::replies_to<wire::push_atom, wire::envelope>::with<wire::envelope>>;

// -- the node-to-node protocol ------------------------------------------------------------------

/// The PEER PORT: what an authenticated member talks to (actors/distro/distro_actor.cpp).
using peer_port_actor = caf::typed_actor<
  /// PeerHello (probe) -> PeerWelcome | Error, and the peer port.
  caf::replies_to<wire::peer_atom, wire::envelope>::with<wire::envelope, caf::actor>,
  /// SyncBatch -> Ack | Error.
  caf::replies_to<wire::sync_atom, wire::envelope>::with<wire::envelope>,
  /// VerifyBatch -> VerifyReply | Error.
  caf::replies_to<wire::verify_atom, wire::envelope>::with<wire::envelope>,
  /// SnapshotRequest -> Snapshot | Error.
  caf::replies_to<wire::snapshot_atom, wire::envelope>::with<wire::envelope>,
  /// ForwardedRequest -> the responsible node's reply.
  caf::replies_to<wire::forward_atom, wire::envelope>::with<wire::envelope>,
  /// RaftMessage for this node's raft actor (one way: Raft tolerates loss).
  caf::reacts_to<wire::raft_atom, wire::envelope>,
  /// PersistentOp for this node's raft actor, forwarded by a member that is not the leader ->
  /// Ack once committed | Error.
  caf::replies_to<wire::pwrite_atom, wire::envelope>::with<wire::envelope>>;

/// What the distro actor and the gateway send the RAFT actor (actors/raft/raft_actor.cpp), all
/// in-process.
using raft_port_actor = caf::typed_actor<
  /// A RaftMessage from another member (through the peer port and the distro actor).
  caf::reacts_to<wire::raft_atom, wire::envelope>,
  /// A PersistentOp -> Ack | Error, once committed and applied here (a follower forwards it to the
  /// leader), or an UNAVAILABLE Error after raft.write_timeout_ms.
  caf::replies_to<wire::pwrite_atom, wire::envelope>::with<wire::envelope>,
  /// -> RaftStatus.
  caf::replies_to<wire::rstatus_atom>::with<wire::envelope>,
  /// From the distro actor: the ready, alive members (who checks which instance).
  caf::reacts_to<wire::view_atom, std::vector<std::string>>>;

// -- the published handle -----------------------------------------------------------------------

/// The FRONT DOOR: the only actor published on `listen` (actors/gateway/front_door_actor.cpp): the
/// client protocol, and the first steps of the peer handshake.
using front_door_actor = caf::typed_actor<
  /// Hello, the client's own actor -> Welcome and the session handle | Error and no handle.
  caf::replies_to<wire::hello_atom, wire::envelope, caf::actor>::with<wire::envelope, caf::actor>,
  caf::replies_to<wire::reg_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::beat_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::dereg_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::query_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::list_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::status_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::members_atom, wire::envelope>::with<wire::envelope>,
  /// LoginRequest -> LoginReply | Error (auth on: users_file; auth off: refused).
  caf::replies_to<wire::login_atom, wire::envelope>::with<wire::envelope>,
  /// PeerHello | PeerAuth -> PeerWelcome | Error, and the peer port once the member is trusted.
  caf::replies_to<wire::peer_atom, wire::envelope>::with<wire::envelope, caf::actor>>;

// -- a session ----------------------------------------------------------------------------------

/// What the process that opened a session may send to the session handle of its Welcome.
using session_actor = caf::typed_actor<
  caf::replies_to<wire::reg_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::dereg_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::sub_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::unsub_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::bye_atom>::with<wire::envelope>>;

// -- node actors --------------------------------------------------------------------------------

/// Distro ops for the gateway in one message, in order (in-process only: a snapshot chunk or a
/// SyncBatch is handed over whole instead of one message per client).
/// (Defined in actors/distro/distro_protocol.hpp, so that this header does not depend on it.)
struct replica_ops;
using replica_ops_ptr = std::shared_ptr<replica_ops>;

/// What many clients publish in one service, for its service actor in one message (in-process
/// only): the new replicas of a snapshot chunk or SyncBatch, so that a service index takes a
/// chunk at once instead of one update per client.
using service_entries = std::vector<std::pair<client_id, instance_list>>;
using service_entries_ptr = std::shared_ptr<service_entries>;

/// A SERVICE actor (actors/service/service_actor.cpp), in-process: from the client actors (their
/// first update of the service through the gateway, whose answer names this actor to them, the
/// later ones directly) and the gateway (new replicas in bulk).
using service_actor = caf::typed_actor<
  /// Replaces what a client publishes in this service -> Ack | Error.
  caf::replies_to<wire::svc_put_atom, service_key, client_id, instance_list>::with<
    wire::envelope>,
  /// A client is gone: its instances and subscriptions go.
  caf::reacts_to<wire::svc_drop_atom, client_id>,
  /// Replaces what each of many clients publishes here (new replicas, from the gateway); a
  /// refused entry is logged, as a refused replica update is.
  caf::reacts_to<wire::svc_bulk_atom, service_entries_ptr>,
  /// Subscribes (client, clusters) -> ServiceInfo | Error.
  caf::replies_to<wire::svc_sub_atom, client_id, std::string, subscriber_actor>::with<
    wire::envelope>,
  caf::replies_to<wire::svc_unsub_atom, client_id, std::string>::with<wire::envelope>,
  /// QueryRequest -> ServiceInfo (delegated by the gateway).
  caf::replies_to<wire::query_atom, wire::envelope>::with<wire::envelope>,
  /// Everything sent before is in the index.
  caf::replies_to<wire::barrier_atom>::with<bool>,
  /// -> 0 empty, 1 ephemeral, 2 persistent (the kind of the service).
  caf::replies_to<wire::kind_atom>::with<std::int32_t>,
  /// The protect threshold changed (written through Raft): queries and pushes follow it.
  caf::reacts_to<wire::threshold_atom, double>,
  caf::reacts_to<wire::flush_atom>,              ///< to itself: report counts
  caf::reacts_to<wire::tick_atom, std::uint64_t>>; ///< to itself: the push timer

/// A CLIENT actor (actors/client/client_actor.cpp): a session's requests from its own process; a
/// heartbeat client's through the gateway; in-process messages from the gateway and itself.
using client_actor = session_actor::extend<
  caf::replies_to<wire::beat_atom, wire::envelope>::with<wire::envelope>,
  /// A service actor restarted: re-send what this client holds there.
  caf::reacts_to<wire::rebuild_atom, service_key>,
  caf::reacts_to<wire::tick_atom>,  ///< to itself: heartbeat expiry
  caf::replies_to<wire::barrier_atom>::with<bool>,
  caf::reacts_to<wire::flush_atom>, ///< to itself: announce to distro
  /// From Distro: its record does not stand where this client's last announcement left it (the
  /// changes since could not apply): announce the whole client.
  caf::reacts_to<wire::sync_atom>,
  /// A Distro op (distro_protocol::local_op::kind): revision, services, local, beat clocks.
  caf::reacts_to<wire::replica_atom, std::int32_t, std::uint64_t, client_services, bool,
                 client_beats>,
  /// The reply to a fire-and-forget service update: only refusals matter.
  caf::reacts_to<wire::envelope>>;

/// The GATEWAY (actors/gateway/gateway_actor.cpp): the node's directory. The client protocol comes
/// through the front door; everything else is in-process.
using gateway_actor = caf::typed_actor<
  caf::replies_to<wire::hello_atom, wire::envelope, caf::actor>::with<wire::envelope, caf::actor>,
  caf::replies_to<wire::reg_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::beat_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::dereg_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::query_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::list_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::status_atom, wire::envelope>::with<wire::envelope>,
  caf::replies_to<wire::members_atom, wire::envelope>::with<wire::envelope>,
  // -- from client actors: the first update of each service (later ones go straight to the
  // service actor, which answers this one), and from the raft actor
  caf::replies_to<wire::svc_put_atom, service_key, client_id, instance_list>::with<
    wire::envelope>,
  caf::reacts_to<wire::svc_drop_atom, service_key, client_id>,
  caf::replies_to<wire::svc_sub_atom, service_key, client_id, std::string,
                  subscriber_actor>::with<wire::envelope>,
  caf::replies_to<wire::svc_unsub_atom, service_key, client_id, std::string>::with<
    wire::envelope>,
  /// A client actor ends: true once the gateway forgot it.
  caf::replies_to<wire::client_gone_atom, client_id>::with<bool>,
  // -- from service actors
  caf::reacts_to<wire::svc_stats_atom, service_key, std::uint64_t, std::uint64_t>,
  // -- from the distro actor
  /// routing, ready, member addresses, states, nodes, problems.
  caf::reacts_to<wire::view_atom, std::vector<std::string>, bool, std::vector<std::string>,
                 std::vector<std::string>, std::vector<std::string>, std::vector<std::string>>,
  /// A ForwardedRequest from another node -> the reply.
  caf::replies_to<wire::forward_atom, wire::envelope>::with<wire::envelope>,
  /// DistroCounters: Distro traffic per peer, for Status and /metrics.
  caf::reacts_to<wire::counters_atom, wire::envelope>,
  /// A Distro op for a client: op, id, revision, services, local, beat clocks.
  caf::reacts_to<wire::replica_atom, std::int32_t, client_id, std::uint64_t, client_services,
                 bool, client_beats>,
  /// Many Distro ops in order, as if sent one by one; a replace that creates a client creates its
  /// actor with the content, and the new clients' instances go to each service in one message.
  caf::reacts_to<wire::replica_atom, replica_ops_ptr>,
  /// The answer to a resync: what Distro holds of a client whose actor the gateway forgot, as an
  /// op (replace, or remove when it holds nothing live). Same fields as a replica op.
  caf::reacts_to<wire::resync_atom, std::int32_t, client_id, std::uint64_t, client_services,
                 bool, client_beats>,
  /// Every client actor and then every service actor has processed what came before.
  caf::replies_to<wire::barrier_atom>::with<bool>,
  /// A PersistentOp from the HTTP API, checked here, then written through Raft -> Ack once
  /// committed | Error: THRESHOLD (`true`: the service must exist here, `false`: it may not exist
  /// yet) or UPDATE of a persistent instance.
  caf::replies_to<wire::pwrite_atom, wire::envelope, bool>::with<wire::envelope>,
  // -- from the raft actor
  /// Raft role and leader, for status, and whether Raft caught up since the start (readiness).
  caf::reacts_to<wire::rstatus_atom, std::string, std::string, bool>,
  /// A protect threshold written through Raft (applied, or restored from a snapshot).
  caf::reacts_to<wire::threshold_atom, service_key, double>,
  // -- itself, and introspection for tests
  caf::reacts_to<wire::tick_atom>, ///< idle-service sweep
  caf::replies_to<caf::get_atom, service_key>::with<service_actor>>;

/// A PEER actor (actors/member/peer_actor.cpp): one per other member, in-process, from the distro
/// actor. Results go back as sync_res / verify_res / snap_res and peer_up / peer_fail / peer_lost.
using peer_actor = caf::typed_actor<
  caf::reacts_to<wire::dial_atom>,
  caf::reacts_to<wire::tick_atom>, ///< to itself: probe
  caf::reacts_to<wire::sync_atom, std::uint64_t, wire::envelope>,
  caf::reacts_to<wire::verify_atom, std::uint64_t, wire::envelope>,
  caf::reacts_to<wire::snapshot_atom, std::uint64_t, wire::envelope>,
  caf::replies_to<wire::forward_atom, wire::envelope>::with<wire::envelope>,
  caf::reacts_to<wire::raft_atom, wire::envelope>,
  caf::replies_to<wire::pwrite_atom, wire::envelope>::with<wire::envelope>>;

/// The DISTRO actor (actors/distro/distro_actor.cpp): the peer protocol (through the peer port and
/// the front door) and in-process messages from the supervisor, the gateway, client actors and
/// peer actors.
using distro_actor = peer_port_actor::extend<
  caf::reacts_to<wire::start_atom, gateway_actor>,
  /// The raft actor that receives this node's Raft traffic.
  caf::reacts_to<wire::start_atom, raft_port_actor>,
  /// From the raft actor: a RaftMessage for member `node` (dropped when it is not connected).
  caf::reacts_to<wire::raft_atom, std::string, wire::envelope>,
  /// From the raft actor: a PersistentOp for the leader `node` -> its reply.
  caf::replies_to<wire::pwrite_atom, std::string, wire::envelope>::with<wire::envelope>,
  /// A local client changed (empty services: gone), with or without beat clocks.
  caf::reacts_to<wire::sync_atom, client_id, std::uint64_t, client_services>,
  caf::reacts_to<wire::sync_atom, client_id, std::uint64_t, client_services, client_beats>,
  /// A client actor's changes since its announcement `base_seq`: (id, seq, base_seq, the changed
  /// services with their instances now (an empty list: gone), beat clocks).
  caf::reacts_to<wire::sync_atom, client_id, std::uint64_t, std::uint64_t, client_services,
                 client_beats>,
  caf::reacts_to<wire::reload_atom, std::vector<std::string>>,
  /// The gateway forgot the actor of a client: answer (to the gateway) with what Distro holds of it.
  caf::reacts_to<wire::resync_atom, client_id>,
  /// A heartbeat write for the responsible node -> that node's reply.
  caf::replies_to<wire::forward_atom, std::string, wire::envelope>::with<wire::envelope>,
  /// listed address, announced node, node id.
  caf::reacts_to<wire::peer_up_atom, std::string, std::string, std::string>,
  caf::reacts_to<wire::peer_fail_atom, std::string, std::string>,
  caf::reacts_to<wire::peer_lost_atom, std::string, std::string>,
  caf::reacts_to<wire::sync_res_atom, std::string, std::uint64_t, bool>,
  caf::reacts_to<wire::verify_res_atom, std::string, std::uint64_t, bool, wire::envelope>,
  /// status: 0 ok, 1 failed, 2 unavailable.
  caf::reacts_to<wire::snap_res_atom, std::string, std::uint64_t, std::int32_t, wire::envelope>,
  caf::reacts_to<wire::tick_atom, std::uint64_t>, ///< to itself: the protocol timer
  caf::reacts_to<wire::counters_atom>,            ///< to itself: hand the counters to the gateway
  /// -> ClusterCounts: per responsible node (`node`), the instances of the clients it owns (the
  /// gateway adds the rest).
  caf::replies_to<wire::owner_counts_atom>::with<wire::envelope>>;

/// One write of the Raft core for the disk (in-process only; see raft_core.hpp for the order).
using raft_write_ptr = std::shared_ptr<const raft::raft_core::persist_request>;

/// The RAFT actor (actors/raft/raft_actor.cpp): drives this node's raft_core and the persistent
/// instances' state machine.
using raft_actor = raft_port_actor::extend<
  /// From the supervisor: the gateway to feed and the distro actor that carries messages (again
  /// after they restart).
  caf::reacts_to<wire::start_atom, gateway_actor, distro_actor>,
  /// From the disk actor: every write up to this id is durable ("" ) or the disk failed (error).
  caf::reacts_to<wire::persisted_atom, std::uint64_t, std::string>,
  /// From the supervisor: the member list was re-read; the configuration follows it.
  caf::reacts_to<wire::reload_atom, std::vector<std::string>>,
  /// From the supervisor: the node stops; a leader hands leadership over first -> true once
  /// done, or after the bounded wait.
  caf::replies_to<wire::bye_atom>::with<bool>,
  caf::reacts_to<wire::hc_tick_atom, std::uint64_t>, ///< to itself: the health check timer
  caf::reacts_to<wire::tick_atom, std::uint64_t>>; ///< to itself: the core's timer

/// The DISK actor (actors/raft/raft_actor.cpp), detached: writes the core's requests in order and
/// acknowledges groups of them after one sync.
using raft_disk_actor = caf::typed_actor<
  caf::reacts_to<wire::disk_atom, raft_write_ptr>,
  caf::reacts_to<wire::flush_atom>>; ///< to itself: sync what was written, acknowledge

/// The health PROBER (actors/raft/raft_actor.cpp), detached: runs a batch of checks at once.
using health_prober_actor = caf::typed_actor<
  caf::replies_to<wire::probe_atom, std::vector<health_probe>, std::int64_t>::with<
    std::vector<health_probe_result>>>;

/// The NODE supervisor (actors/node/node_supervisor.cpp), in-process, from main.
using node_supervisor_actor = caf::typed_actor<
  /// Publishes the front door -> the port.
  caf::replies_to<wire::start_atom>::with<std::uint16_t>,
  /// The current gateway (invalid while it restarts), for the HTTP front end's bridge.
  caf::replies_to<caf::get_atom>::with<gateway_actor>,
  /// The member list changed.
  caf::reacts_to<wire::reload_atom, std::vector<std::string>>>;

/// The LOGIN worker (actors/gateway/front_door_actor.cpp), in-process, from the front door: checks
/// a password (Argon2id, slow on purpose) on its own thread, so the front door never waits for it.
using login_actor = caf::typed_actor<
  caf::replies_to<wire::login_atom, wire::envelope>::with<wire::envelope>>;

// -- the HTTP front end (actors/http) -------------------------------------------------------------

/// The HTTP BRIDGE (actors/http/gateway_bridge.cpp): HTTP threads park a request and send its id.
using http_bridge_actor = caf::typed_actor<
  caf::reacts_to<wire::http_call_atom, std::uint64_t>,
  caf::reacts_to<wire::retry_atom>>; ///< to itself: ask the supervisor for the gateway again

/// The UDP PUSH actor (actors/http/udp_push_actor.cpp), in-process. Its per-address receivers are
/// subscriber_actor handles.
using udp_push_actor = caf::typed_actor<
  /// Subscribes ip:port to (service, clusters) -> the address's receiver (invalid at the limit).
  caf::replies_to<wire::udp_sub_atom, std::string, std::uint16_t, service_key,
                  std::string>::with<subscriber_actor>,
  /// A push for ip:port, from its receiver -> Ack once the client acknowledged it | an error.
  caf::replies_to<wire::push_atom, std::string, std::uint16_t, wire::envelope>::with<
    wire::envelope>,
  /// A push-ack datagram (from the UDP reader thread): ip, port, lastRefTime.
  caf::reacts_to<wire::udp_ack_atom, std::string, std::uint16_t, std::int64_t>,
  caf::reacts_to<wire::tick_atom>>; ///< to itself: resends and expiry

// -- the gRPC front end (actors/grpc) -------------------------------------------------------------

/// A gRPC CONNECTION actor (actors/grpc/grpc_connection_actor.cpp), in-process: one per Nacos 2.x
/// connection, its session's own process side. Pushes arrive as for any subscriber.
using grpc_connection_actor = subscriber_actor::extend<
  /// A unary call parked under this id at the connection's link.
  caf::reacts_to<wire::grpc_call_atom, std::uint64_t>,
  /// A client's answer on the stream: kind (grpc_api::kind), requestId, resultCode.
  caf::reacts_to<wire::grpc_answer_atom, std::int32_t, std::string, std::int32_t>,
  /// The stream ended: the connection is gone.
  caf::reacts_to<wire::grpc_close_atom>,
  /// The node is leaving or not ready: tell the client to move (ConnectResetRequest), then close.
  caf::reacts_to<wire::grpc_reset_atom, std::string>,
  caf::reacts_to<wire::tick_atom>>; ///< to itself: detection and push-ack timeouts

} // namespace registry

// -- the client library (tools/client) ----------------------------------------------------------

namespace registry::client::detail {

/// Library-internal atoms (never sent to a node).
using gw_atom = caf::atom_constant<caf::atom("gw")>;
using op_timeout_atom = caf::atom_constant<caf::atom("op_tmo")>;
using reconnect_atom = caf::atom_constant<caf::atom("reconnect")>;
using redo_retry_atom = caf::atom_constant<caf::atom("redo_retry")>;
using update_tick_atom = caf::atom_constant<caf::atom("upd_tick")>;
using failover_tick_atom = caf::atom_constant<caf::atom("fo_tick")>;

} // namespace registry::client::detail

namespace registry {

/// The CLIENT LIBRARY's actor (tools/client/session_actor.cpp): requests from the library's API
/// (in-process; replies are (envelope, bool local)), and pushes from nodes: it is a subscriber.
using client_library_actor = subscriber_actor::extend<
  /// A stateless request (op = reg/beat/dereg/query/list/status/members) to the gateway.
  caf::replies_to<client::detail::gw_atom, caf::atom_value, wire::envelope>::with<wire::envelope,
                                                                                  bool>,
  /// Session registration, remembered for redo.
  caf::replies_to<wire::reg_atom, wire::envelope>::with<wire::envelope, bool>,
  caf::replies_to<wire::dereg_atom, wire::envelope>::with<wire::envelope, bool>,
  /// SubscribeRequest, listener id (0: a read with subscribe).
  caf::replies_to<wire::sub_atom, wire::envelope, std::uint64_t>::with<wire::envelope, bool>,
  /// Service key, listener id.
  caf::replies_to<wire::unsub_atom, std::string, std::uint64_t>::with<wire::envelope, bool>,
  caf::replies_to<wire::query_atom, wire::envelope>::with<wire::envelope, bool>,
  /// Clean close: bye to the node session, no reconnects afterwards.
  caf::replies_to<wire::bye_atom>::with<wire::envelope, bool>,
  // -- to itself
  caf::reacts_to<client::detail::op_timeout_atom, std::uint64_t>,
  caf::reacts_to<client::detail::reconnect_atom>,
  caf::reacts_to<client::detail::redo_retry_atom, std::uint64_t>,
  caf::reacts_to<client::detail::update_tick_atom, std::string, std::uint64_t>,
  caf::reacts_to<client::detail::failover_tick_atom>>;

} // namespace registry

/// The disk actor's requests never leave the process (a shared pointer to the core's write).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(registry::raft_write_ptr)
/// Bulk Distro ops and service entries never leave the process either (shared, moved from once).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(registry::replica_ops_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(registry::service_entries_ptr)
