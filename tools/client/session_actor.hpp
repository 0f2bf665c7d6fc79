#pragma once
/// The client library's actor ("session actor"): owns the connection to one node, the session, the
/// cache, the update tasks and the failover switch. Library-internal; the public API is
/// registry_client.hpp.
///
/// Connection states (one node at a time, `servers` tried in order, wrapping around):
///
///     idle --(a request needs a node)--> connecting --(middleman connect_atom ok)--> connected
///       ^                                  |  each server once per round,        |  (hello when a
///       |                                  |  connect_timeout each                |   session is wanted)
///       +---- round failed: waiting requests fail at once; retry every           v
///             redo_interval while a session is wanted              session open: redo (re-register,
///                                                                  re-subscribe), then queued requests
///     connected/session --(DOWN of gateway or session, hello refused/timeout)--> connecting (next server)
///
/// Requests from the API wait at most options.request_timeout in all (queueing, connecting, the node's
/// answer); requests in flight when the node goes down are re-sent to the next node within that time.
///
/// Interface: `client_library_actor` in actors/interfaces.hpp. Every reply but a push's is
/// `(envelope reply, bool local)`: `local` = the library produced it, e.g. an UNAVAILABLE Error when
/// no node answered; otherwise the node's own reply:
/// - `(gw_atom, atom_value op, envelope)`: a stateless request (op = reg/beat/dereg/query/list/status/
///   members) to the gateway.
/// - `(reg_atom, envelope RegisterRequest | BatchRegisterRequest)` / `(dereg_atom, envelope
///   DeregisterRequest)`: session registration, remembered for redo. A batch replaces what the
///   session holds in its service; such a service is redone as one batch.
/// - `(sub_atom, envelope SubscribeRequest, uint64 listener)`: subscribes (listener 0 = a read with
///   subscribe); replies the ServiceInfo readers see (failover, else cache, else the node's answer) and
///   posts the listener's initial state.
/// - `(unsub_atom, string key, uint64 listener)`: drops a listener (the subscription with its last one).
/// - `(query_atom, envelope QueryRequest)`: a direct read; failover data first, then the gateway.
/// - `(bye_atom)`: clean close (bye to the node session); no reconnects afterwards.
/// - `(push_atom, envelope ServiceInfo)` from a node: applied to the cache, answered with Ack.
/// - `(push_atom, envelope SubscriptionDropped)` from a node: the subscription is sent again.
/// - INTERNAL: op_timeout_atom, reconnect_atom, redo_retry_atom, update_tick_atom,
///   failover_tick_atom.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

#include "actors/interfaces.hpp"
#include "tools/client/event_dispatcher.hpp"
#include "tools/client/registry_client.hpp"

namespace registry::client::detail {

/// A node address from options.servers.
struct endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string address() const { return host + ":" + std::to_string(port); }
};

/// What the actor publishes for the API's const getters.
struct shared_view {
  std::atomic<bool> failover{false};
  mutable std::mutex mtx;
  std::string node; ///< the node of the open session, else of the connected gateway, else ""

  void set_node(std::string x) {
    std::lock_guard<std::mutex> guard{mtx};
    node = std::move(x);
  }
  std::string get_node() const {
    std::lock_guard<std::mutex> guard{mtx};
    return node;
  }
};

struct session_config {
  options opts;
  std::vector<endpoint> servers; ///< not empty
  std::shared_ptr<event_dispatcher> events;
  std::shared_ptr<shared_view> view;
};

/// Spawns the session actor.
client_library_actor spawn_session_actor(caf::actor_system& sys, session_config cfg);

} // namespace registry::client::detail
