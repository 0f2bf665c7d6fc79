#pragma once
/// A Nacos 2.x gRPC connection for tests and the benchmark, built from the same unchanged .proto:
/// unary calls on /Request/request, the bi-stream on /BiRequestStream/requestBiStream. Messages
/// are (type, JSON body), as on the wire. Each connection has its own TCP connection (its own
/// subchannel pool), as every Nacos SDK has.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace registry::test {

struct grpc_message {
  std::string type;
  nlohmann::json body;
};

class nacos_grpc_connection {
public:
  /// Dials HOST:PORT (not yet connected: the first call connects).
  explicit nacos_grpc_connection(const std::string& address);
  ~nacos_grpc_connection();

  /// One unary call; type "" on transport failure (body then holds {"error": text}).
  grpc_message call(const std::string& type, const nlohmann::json& body,
                    const std::map<std::string, std::string>& headers = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// A raw unary call (any bytes as the body).
  grpc_message call_raw(const std::string& type, const std::string& body,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5));

  /// Opens the stream and sends ConnectionSetupRequest (with an abilityTable when `negotiate`).
  /// `read` starts a reader thread that queues what the server sends; `auto_answer` makes it answer
  /// NotifySubscriberRequest and ClientDetectionRequest as a client does.
  bool open_stream(bool negotiate, bool read = true, bool auto_answer = true);
  /// Writes a message on the stream.
  bool send(const std::string& type, const nlohmann::json& body);
  /// Waits for a server message satisfying `pred` (consumed); type "" on timeout.
  grpc_message wait_for(const std::function<bool(const grpc_message&)>& pred,
                        std::chrono::milliseconds timeout);
  /// Whether the server ended the stream.
  bool stream_ended() const;
  /// Ends the stream and the channel (the TCP connection closes).
  void close();

  /// ServerCheck + stream with setup, as an SDK connects: true when the connection is registered.
  bool connect(bool negotiate = false);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A naming request body (namespace public, group DEFAULT_GROUP).
nlohmann::json instance_request(const std::string& service, const std::string& type,
                                const std::string& ip, int port,
                                const nlohmann::json& extra_instance_fields = nlohmann::json::object());

} // namespace registry::test
