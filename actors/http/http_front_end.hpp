#pragma once
/// The node's HTTP front end: the server (http_server), Nacos's Open API (nacos_api), the bridge to
/// the actors (gateway_bridge) and the UDP push to Nacos 1.x subscribers. main() binds it before
/// the actors start (so a taken port stops the start), starts it once the supervisor runs and
/// stops it before the actor system goes down.

#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/auth/user_auth.hpp"
#include "actors/interfaces.hpp"
#include "config/node_config.hpp"

namespace registry::http {

class node_metrics;

class http_front_end {
public:
  /// `users`: the node's authenticator (auth on), or nullptr (auth off).
  http_front_end(const node_config& cfg, std::shared_ptr<auth::authenticator> users);
  ~http_front_end();

  /// Binds the HTTP port; returns "" or the reason. Afterwards `address()` holds the bound port.
  std::string bind();
  /// HOST:PORT actually bound.
  host_port address() const;
  /// Starts serving, talking to the gateway that `supervisor` names.
  void start(caf::actor_system& sys, node_supervisor_actor supervisor);
  /// Stops serving (the I/O threads end). Safe to call twice.
  void stop();

  /// The node's metrics (served at /metrics), for the other front ends to record into.
  node_metrics& metrics();

  struct impl;

private:
  void start_udp_push(caf::actor_system& sys);

  std::unique_ptr<impl> impl_;
};

} // namespace registry::http
