#pragma once
/// One Nacos 2.x gRPC connection as a session of this node. The connection actor opens a session at
/// the gateway (Hello, with itself as the client process's actor), so the connection's instances
/// live exactly as long as the connection, Distro syncs them like any session, and pushes reach it
/// through the service actors' one push path. It translates Nacos's per-connection semantics (one
/// instance or one batch per service, replaced by each register) into session register/deregister
/// steps, run one call at a time in arrival order.
///
/// The gRPC server (grpc_front_end.cpp) parks each unary call at the connection's `grpc_link` and
/// sends the id; the actor answers through the link, and writes server requests (pushes, probes,
/// resets) on the connection's stream through it. No gRPC type crosses this header.

#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/grpc/nacos_grpc_codec.hpp"
#include "actors/interfaces.hpp"

namespace registry::grpc_api {

/// What a connection actor needs of its gRPC connection. Thread-safe.
class grpc_link {
public:
  virtual ~grpc_link() = default;
  /// Takes the parked unary call `call_id`: its decoded request. False when it is gone (answered
  /// already, or the connection closed).
  virtual bool take_call(std::uint64_t call_id, request& out) = 0;
  /// Answers a taken call (exactly once per taken call).
  virtual void answer(std::uint64_t call_id, message m) = 0;
  /// Writes a server request on the stream. False when the stream is gone, or its queue is full
  /// (the link then closes the stream).
  virtual bool write(message m) = 0;
  /// Ends the stream; the connection then ends (grpc_close_atom follows).
  virtual void close() = 0;
  /// Nacos's connection id ("<epoch ms>_<ip>_<port>").
  virtual const std::string& connection_id() const = 0;
  /// The client's address as ip (for logs and the session's name).
  virtual const std::string& remote_ip() const = 0;
  /// Counts a finished push for the metrics: "acked", "failed".
  virtual void push_done(const std::string& result, double seconds) = 0;
};

struct connection_settings {
  /// Every request to the gateway or the session is answered within this, or fails.
  std::int64_t request_timeout_ms = 5000;
  /// A push the client has not answered within this fails (the service actor retries).
  std::int64_t push_ack_timeout_ms = 5000;
  /// Idle this long → ClientDetectionRequest; no answer within detection_timeout_ms → closed.
  std::int64_t idle_timeout_ms = 20000;
  std::int64_t detection_timeout_ms = 5000;
  std::int64_t cache_millis = 10000;
  std::size_t calls_queued_max = 1024;
  std::size_t subscriptions_max = 10000;
};

/// Spawns the actor of a connection whose ConnectionSetupRequest just arrived. It asks
/// `supervisor` for the gateway and opens the session; until the session is open, calls wait.
grpc_connection_actor spawn_grpc_connection(caf::actor_system& sys, std::shared_ptr<grpc_link> link,
                                            node_supervisor_actor supervisor,
                                            connection_settings settings);

} // namespace registry::grpc_api
