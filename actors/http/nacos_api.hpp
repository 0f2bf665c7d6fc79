#pragma once
/// Nacos's HTTP Open API (v1 and v2 naming, the cluster and health endpoints) translated into the
/// node's client protocol. Plain C++: no CAF and no sockets. A request is decoded and validated
/// here (messages/validate, Nacos's texts); what needs the node goes through a `node_port` (in the
/// node: gateway_bridge, the one place that talks to the gateway), and the answer is written as
/// Nacos writes it. Tests give it a fake port.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/auth/user_auth.hpp"
#include "actors/http/http_params.hpp"
#include "messages/model.hpp"

namespace registry::v1 {
class ServiceInfo;
} // namespace registry::v1

namespace registry::http {

/// A gateway request (messages/PROTOCOL.md, "Gateway").
enum class gateway_op {
  reg,
  beat,
  dereg,
  query,
  list,
  status,
  members,
  update_service, ///< a PersistentOp of kind THRESHOLD for a service the node knows
  create_service, ///< the same for a service that may have no instances yet
  update_persistent ///< a PersistentOp of kind UPDATE (weight, enabled, metadata)
};

/// A protobuf message as the gateway sends and answers it: `kind` is its full name. A reply with an
/// empty kind means the node did not answer; `payload` then says why.
struct wire_msg {
  std::string kind;
  std::string payload;
};

using reply_fn = std::function<void(wire_msg)>;

/// What the API needs of the node. Every callback is called exactly once, on any thread.
class node_port {
public:
  virtual ~node_port() = default;
  /// One gateway request.
  virtual void call(gateway_op op, wire_msg request, reply_fn done) = 0;
  /// Subscribes the UDP address ip:port to `key` for `clusters` (as the client wrote them), or
  /// renews the subscription; answers the current ServiceInfo (or an Error) like a query.
  virtual void subscribe_udp(const service_key& key, const std::string& clusters,
                             const std::string& ip, std::uint16_t port, reply_fn done) = 0;
};

/// One HTTP request, as the server hands it over.
struct request {
  std::string method; ///< GET, POST, PUT, DELETE, ...
  std::string target; ///< path and query, still encoded
  std::string body;
  std::string content_type;
  std::string remote_ip;
  std::string user_agent;
  std::string access_token; ///< the accessToken header (or Authorization: Bearer)
};

/// One HTTP response.
struct response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json;charset=UTF-8";
  /// Further headers (name, value), e.g. the console's Content-Security-Policy.
  std::vector<std::pair<std::string, std::string>> headers;
};

struct api_settings {
  std::int64_t beat_interval_ms = 5000;
  std::int64_t unhealthy_timeout_ms = 15000;
  std::int64_t delete_timeout_ms = 30000;
  /// cacheMillis of a list reply that subscribed a UDP address (without one: 3000, as Nacos 1.x).
  std::int64_t cache_millis = 10000;
  bool push_enabled = true;
  param_limits limits;
  /// Auth (nullptr = off): every route but health and login needs credentials.
  std::shared_ptr<auth::authenticator> auth;
  /// Milliseconds since the epoch (token expiry); the system clock unless a test injects one.
  std::function<std::int64_t()> now_ms;
};

/// Now in milliseconds since the epoch: the settings' clock (tests) or the system clock.
std::int64_t now_of(const api_settings& s);

/// The route of a request for metrics: a fixed label ("GET /nacos/v1/ns/instance/list"), or
/// "other" for a path the API does not serve, so labels stay bounded.
std::string route_label(const std::string& method, const std::string& path);

class nacos_api {
public:
  nacos_api(api_settings settings, node_port& port);

  /// Serves one request; `done` is called exactly once (maybe before this returns).
  /// `path_out`, when given, receives the decoded path (for the route label).
  void handle(const request& req, std::function<void(response)> done,
              std::string* path_out = nullptr);

  const api_settings& settings() const { return settings_; }

private:
  api_settings settings_;
  node_port& port_;
};

/// Nacos's ServiceInfo JSON (a v1 list reply; without "dom" for v2), written directly from the
/// message: keys sorted, bytes that are not UTF-8 replaced by U+FFFD.
std::string service_info_text(const v1::ServiceInfo& info, const std::string& clusters,
                              std::int64_t cache_millis, const api_settings& settings,
                              bool healthy_only, bool with_dom);

/// Nacos's ServiceInfo JSON of a v1 list reply, from a registry.v1.ServiceInfo payload. `clusters`
/// is echoed verbatim (the npm client keys its cache on it).
std::string service_info_json(const std::string& service_info_payload, const std::string& clusters,
                              std::int64_t cache_millis, const api_settings& settings,
                              bool healthy_only);

} // namespace registry::http
