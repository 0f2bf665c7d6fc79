#pragma once
/// The node's gRPC front end for Nacos 2.x clients: grpc++'s callback server on `grpc.listen`
/// (default: the HTTP port + 1000), Nacos's two services (/Request/request and
/// /BiRequestStream/requestBiStream), and a connection table keyed by the peer address that gRPC
/// reports alike for every call of one HTTP/2 connection. A connection is registered when its
/// ConnectionSetupRequest arrives on the stream; from then on it is a session of this node
/// (grpc_connection_actor), until the stream ends. main() binds it before the actors start and
/// stops it (ConnectResetRequest to every client first) before the actor system goes down.

#include <functional>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/auth/user_auth.hpp"
#include "actors/interfaces.hpp"
#include "config/node_config.hpp"

namespace registry::grpc_api {

/// What the front end reports for the metrics (all optional).
struct grpc_observer {
  /// One unary request: its type and result ("ok" or the error code).
  std::function<void(const std::string& type, const std::string& result)> request_done;
  /// One push: "acked" or "failed", and its latency.
  std::function<void(const std::string& result, double seconds)> push_done;
  /// The number of open (set up) connections changed.
  std::function<void(double connections)> connections;
};

class grpc_front_end {
public:
  grpc_front_end(const node_config& cfg, std::shared_ptr<auth::authenticator> users,
                 grpc_observer observer);
  ~grpc_front_end();

  /// Binds and starts the server; calls are answered "starting" (300) until start(). Returns ""
  /// or the reason.
  std::string bind();
  host_port address() const;
  /// Serves with the gateway that `supervisor` names.
  void start(caf::actor_system& sys, node_supervisor_actor supervisor);
  /// Tells every client to move (ConnectResetRequest), ends every stream and the server.
  void stop();

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace registry::grpc_api
