#pragma once
/// The bridge between the HTTP front end and the actors: the one place that talks to the gateway
/// on behalf of HTTP requests (and of UDP subscribers). When the actors become typed, only this
/// file changes its handles.
///
/// An HTTP I/O thread never waits for an actor: `call` parks the request and its completion in a
/// table under a fresh id and sends the id to the bridge actor (a plain asynchronous send). The
/// bridge actor asks the gateway with a timeout and calls the completion with the reply, or with
/// an empty reply naming the error. The table is in-process only, so nothing from another process
/// can inject a request: the id alone carries no content.
///
/// The bridge actor finds the current gateway by asking the node supervisor (get_atom) and asks
/// again when the gateway it monitors goes down (the supervisor restarts it).

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/http/nacos_api.hpp"
#include "actors/interfaces.hpp"

namespace registry::http {

class gateway_bridge final : public node_port {
public:
  /// `supervisor` answers (get_atom) with the current gateway; `request_timeout_ms` bounds every
  /// call.
  gateway_bridge(caf::actor_system& sys, node_supervisor_actor supervisor,
                 std::int64_t request_timeout_ms);
  ~gateway_bridge() override;

  void call(gateway_op op, wire_msg request, reply_fn done) override;
  void subscribe_udp(const service_key& key, const std::string& clusters, const std::string& ip,
                     std::uint16_t port, reply_fn done) override;

  /// Ends the UDP subscription of ip:port to `key` for `clusters`.
  void unsubscribe_udp(const service_key& key, const std::string& clusters, const std::string& ip,
                       std::uint16_t port);

  /// Sets the UDP push actor: it answers (udp_sub_atom, ip, port, key, clusters) with the actor
  /// that receives pushes for ip:port. Without one, subscribe_udp answers like a query.
  void set_udp_push(udp_push_actor udp_push);

  /// The bridge actor (for tests).
  const http_bridge_actor& handle() const { return actor_; }

  /// The client id of a UDP subscriber, as the service actors know it.
  static std::string udp_client_id(const std::string& ip, std::uint16_t port);

  /// What a parked request asks for.
  struct pending {
    enum class kind { call, subscribe, unsubscribe } what = kind::call;
    gateway_op op = gateway_op::status;
    wire_msg msg;
    service_key key;
    std::string clusters;
    std::string ip;
    std::uint16_t port = 0;
    reply_fn done;
  };

  /// The parked requests, shared with the bridge actor.
  struct table {
    std::mutex mtx;
    std::uint64_t next_id = 1;
    std::unordered_map<std::uint64_t, pending> entries;
    udp_push_actor udp_push;
    std::uint64_t put(pending p);
    bool take(std::uint64_t id, pending& out);
  };

private:
  void park(pending p);

  caf::actor_system& sys_;
  std::shared_ptr<table> table_;
  http_bridge_actor actor_;
};

} // namespace registry::http
