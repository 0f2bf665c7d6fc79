#pragma once
/// The one CAF type-ID block of the project and the function that registers it.
///
/// Every process (registryd, registryctl, the client library, the tests) calls `register_types()` on its
/// `actor_system_config` before creating the system: a type missing on one side makes the receiver see
/// an empty message. Cross-process payloads are protobuf messages (registry.proto, distro.proto) inside
/// one `wire::envelope`; only the envelope and atoms are CAF types, so evolving the protocol is
/// protobuf's job.

#include <string>

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

namespace registry::wire {

/// A protobuf message on the wire: `kind` is the message's full name, `payload` its encoding.
struct envelope {
  std::string kind;
  std::string payload;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, envelope& x) {
  return f(caf::meta::type_name("registry::wire::envelope"), x.kind, x.payload);
}

/// Wraps a protobuf message.
template <class Message>
envelope pack(const Message& msg) {
  return envelope{Message::descriptor()->full_name(), msg.SerializeAsString()};
}

/// Unwraps a protobuf message; false when the kind differs or the payload does not parse.
template <class Message>
bool unpack(const envelope& env, Message& msg) {
  return env.kind == Message::descriptor()->full_name() && msg.ParseFromString(env.payload);
}

/// True if the envelope holds a message of this type (without parsing it).
template <class Message>
bool holds(const envelope& env) {
  return env.kind == Message::descriptor()->full_name();
}

/// The CAF application identifier: nodes and clients of another protocol version refuse each other.
inline constexpr const char* app_identifier = "registry.v1";

} // namespace registry::wire

CAF_BEGIN_TYPE_ID_BLOCK(registry, caf::first_custom_type_id)

  // -- types ------------------------------------------------------------------
  CAF_ADD_TYPE_ID(registry, (registry::wire::envelope))

  // -- atoms received by the gateway (client requests) ----------------------
  CAF_ADD_ATOM(registry, registry::wire, beat_atom, "beat")
  CAF_ADD_ATOM(registry, registry::wire, dereg_atom, "dereg")
  CAF_ADD_ATOM(registry, registry::wire, hello_atom, "hello")
  CAF_ADD_ATOM(registry, registry::wire, list_atom, "list")
  CAF_ADD_ATOM(registry, registry::wire, login_atom, "login")
  CAF_ADD_ATOM(registry, registry::wire, members_atom, "members")
  CAF_ADD_ATOM(registry, registry::wire, query_atom, "query")
  CAF_ADD_ATOM(registry, registry::wire, reg_atom, "reg")
  CAF_ADD_ATOM(registry, registry::wire, status_atom, "status")

  // -- atoms received by a session actor --------------------------------------
  CAF_ADD_ATOM(registry, registry::wire, bye_atom, "bye")
  CAF_ADD_ATOM(registry, registry::wire, sub_atom, "sub")
  CAF_ADD_ATOM(registry, registry::wire, unsub_atom, "unsub")

  // -- atoms received by a client process (pushes) ---------------------------
  CAF_ADD_ATOM(registry, registry::wire, push_atom, "push")

  // -- atoms received by the distro actor (node to node) ----------------------
  CAF_ADD_ATOM(registry, registry::wire, forward_atom, "forward")
  CAF_ADD_ATOM(registry, registry::wire, peer_atom, "peer")
  CAF_ADD_ATOM(registry, registry::wire, snapshot_atom, "snapshot")
  CAF_ADD_ATOM(registry, registry::wire, sync_atom, "sync")
  CAF_ADD_ATOM(registry, registry::wire, verify_atom, "verify")

  // -- atoms of Raft (node to node, and the raft actor's in-process interface) --
  CAF_ADD_ATOM(registry, registry::wire, pwrite_atom, "pwrite")
  CAF_ADD_ATOM(registry, registry::wire, raft_atom, "raft")
  CAF_ADD_ATOM(registry, registry::wire, rstatus_atom, "rstatus")
  CAF_ADD_ATOM(registry, registry::wire, disk_atom, "disk")
  CAF_ADD_ATOM(registry, registry::wire, persisted_atom, "persisted")
  CAF_ADD_ATOM(registry, registry::wire, probe_atom, "probe")
  CAF_ADD_ATOM(registry, registry::wire, hc_tick_atom, "hc_tick")

  // -- in-process atoms: client actors and the gateway to service actors ------
  CAF_ADD_ATOM(registry, registry::wire, svc_put_atom, "svc_put")
  CAF_ADD_ATOM(registry, registry::wire, svc_drop_atom, "svc_drop")
  CAF_ADD_ATOM(registry, registry::wire, svc_sub_atom, "svc_sub")
  CAF_ADD_ATOM(registry, registry::wire, svc_unsub_atom, "svc_unsub")
  CAF_ADD_ATOM(registry, registry::wire, svc_stats_atom, "svc_stats")
  CAF_ADD_ATOM(registry, registry::wire, svc_bulk_atom, "svc_bulk")

  // -- in-process atoms: to the gateway from its children and the supervisor ---
  CAF_ADD_ATOM(registry, registry::wire, client_gone_atom, "cl_gone")
  CAF_ADD_ATOM(registry, registry::wire, rebuild_atom, "rebuild")
  CAF_ADD_ATOM(registry, registry::wire, start_atom, "start")

  // -- in-process atoms: between the distro actor, its peer actors and the gateway
  CAF_ADD_ATOM(registry, registry::wire, dial_atom, "dial")
  CAF_ADD_ATOM(registry, registry::wire, peer_up_atom, "peer_up")
  CAF_ADD_ATOM(registry, registry::wire, peer_fail_atom, "peer_fail")
  CAF_ADD_ATOM(registry, registry::wire, peer_lost_atom, "peer_lost")
  CAF_ADD_ATOM(registry, registry::wire, sync_res_atom, "sync_res")
  CAF_ADD_ATOM(registry, registry::wire, verify_res_atom, "verif_res")
  CAF_ADD_ATOM(registry, registry::wire, snap_res_atom, "snap_res")
  CAF_ADD_ATOM(registry, registry::wire, replica_atom, "replica")
  CAF_ADD_ATOM(registry, registry::wire, view_atom, "view")
  CAF_ADD_ATOM(registry, registry::wire, reload_atom, "reload")
  CAF_ADD_ATOM(registry, registry::wire, resync_atom, "resync")
  CAF_ADD_ATOM(registry, registry::wire, kind_atom, "kind")
  CAF_ADD_ATOM(registry, registry::wire, barrier_atom, "barrier")
  CAF_ADD_ATOM(registry, registry::wire, counters_atom, "counters")

  // -- INTERNAL: atoms an actor sends to itself -------------------------------
  CAF_ADD_ATOM(registry, registry::wire, tick_atom, "tick")
  CAF_ADD_ATOM(registry, registry::wire, flush_atom, "flush")
  CAF_ADD_ATOM(registry, registry::wire, retry_atom, "retry")

  // -- in-process atoms of the HTTP front end (actors/http/) -------------------
  CAF_ADD_ATOM(registry, registry::wire, http_call_atom, "http_call")
  CAF_ADD_ATOM(registry, registry::wire, udp_sub_atom, "udp_sub")
  CAF_ADD_ATOM(registry, registry::wire, udp_ack_atom, "udp_ack")

  // -- in-process atoms of the gRPC front end (actors/grpc/) -------------------
  CAF_ADD_ATOM(registry, registry::wire, grpc_call_atom, "grpc_call")
  CAF_ADD_ATOM(registry, registry::wire, grpc_answer_atom, "grpc_ans")
  CAF_ADD_ATOM(registry, registry::wire, grpc_close_atom, "grpc_end")
  CAF_ADD_ATOM(registry, registry::wire, grpc_reset_atom, "grpc_rst")

  // -- in-process atoms: service settings written through Raft -----------------
  CAF_ADD_ATOM(registry, registry::wire, threshold_atom, "threshold")

  // -- in-process atoms: the console's per-member counts (gateway to distro) ----
  CAF_ADD_ATOM(registry, registry::wire, owner_counts_atom, "own_counts")

CAF_END_TYPE_ID_BLOCK(registry)

namespace registry::wire {

/// Registers the project's CAF types; call on every actor_system_config.
void register_types(caf::actor_system_config& cfg);

/// The one CAF setup shared by the node, the client library and the tests: registers the types,
/// loads the middleman, sets the app identifier, CAF heartbeats (the same on every process, or the
/// side with a timeout drops healthy idle peers) and the scheduler's thread count.
void configure_system(caf::actor_system_config& cfg, std::int64_t heartbeat_interval_ms,
                      std::int64_t connection_timeout_ms, int scheduler_threads);

} // namespace registry::wire
