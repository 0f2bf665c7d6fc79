#pragma once
/// The UDP PUSH actor: carries out udp_push_table for the node's Nacos 1.x subscribers.
///
/// A UDP subscriber joins the service actors' subscribers like a CAF session (client id
/// "udp:IP:PORT"), with a small RECEIVER actor per address as its handle: the service actor pushes
/// to it (push_atom, envelope ServiceInfo) as to any subscriber, so pushes follow the same merging,
/// one-in-flight and drop rules. The receiver hands the push here; this actor sends the datagram,
/// resends it, and answers the service actor with an Ack when the client acknowledged it, or with
/// an error when every resend went unanswered (the service actor retries later).
///
/// Interface (in-process):
/// - (udp_sub_atom, string ip, uint16 port, service_key, string clusters) -> actor receiver
///     (an invalid actor when the subscription limit is reached)
/// - (push_atom, string ip, uint16 port, envelope) -> envelope     [from a receiver, delegated]
/// - (udp_ack_atom, string ip, uint16 port, int64 lastRefTime)      [from the I/O thread]
/// - INTERNAL (tick_atom)

#include <cstdint>
#include <functional>
#include <string>

#include <caf/fwd.hpp>

#include "actors/http/nacos_api.hpp"
#include "actors/interfaces.hpp"
#include "actors/http/udp_push.hpp"

namespace registry::http {

/// Called when a subscription expires: unsubscribe (key, clusters, ip, port) at the service.
using unsubscribe_fn =
  std::function<void(const service_key&, const std::string&, const std::string&, std::uint16_t)>;

/// `socket_fd` is a bound UDP socket the actor sends from; the caller reads the acks arriving on
/// it and sends them here. `events` (may be empty) is told "acked", "failed" or "resent" per push,
/// with the latency in ms of an acked push.
udp_push_actor spawn_udp_push_actor(caf::actor_system& sys, int socket_fd,
                                udp_push_table::config cfg, api_settings api,
                                unsubscribe_fn unsubscribe,
                                std::function<void(const char*, double)> events);

} // namespace registry::http
