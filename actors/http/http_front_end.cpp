#include "actors/http/http_front_end.hpp"

#include <array>

#include <boost/asio.hpp>
#include <caf/all.hpp>

#include "actors/common/log.hpp"
#include "actors/http/console_api.hpp"
#include "actors/http/gateway_bridge.hpp"
#include "actors/http/http_server.hpp"
#include "actors/http/nacos_api.hpp"
#include "actors/http/node_metrics.hpp"
#include "actors/http/udp_push_actor.hpp"
#include "messages/convert.hpp"
#include "messages/type_ids.hpp"

namespace registry::http {

struct http_front_end::impl {
  node_config cfg;
  host_port bound;
  std::unique_ptr<http_server> server;
  std::unique_ptr<gateway_bridge> bridge;
  std::unique_ptr<nacos_api> api;
  std::unique_ptr<console_api> console;
  node_metrics metrics;
  caf::actor_system* sys = nullptr;
  std::shared_ptr<auth::authenticator> auth;
  std::unique_ptr<boost::asio::ip::udp::socket> udp;
  boost::asio::ip::udp::endpoint udp_from;
  std::array<char, 65536> udp_buffer{};
  udp_push_actor udp_push;
};

namespace {

api_settings make_api_settings(const node_config& cfg,
                               std::shared_ptr<auth::authenticator> auth = nullptr) {
  api_settings s;
  s.auth = std::move(auth);
  s.beat_interval_ms = cfg.heartbeat.interval_ms;
  s.unhealthy_timeout_ms = cfg.heartbeat.unhealthy_timeout_ms;
  s.delete_timeout_ms = cfg.heartbeat.delete_timeout_ms;
  s.cache_millis = cfg.discovery.cache_millis;
  s.push_enabled = cfg.push.enabled;
  return s;
}

server_limits make_limits(const node_config& cfg) {
  server_limits l;
  l.connections_max = cfg.http.connections_max;
  l.header_bytes_max = cfg.http.header_bytes_max;
  l.body_bytes_max = cfg.http.body_bytes_max;
  l.request_timeout_ms = cfg.http.request_timeout_ms;
  l.idle_timeout_ms = cfg.http.idle_timeout_ms;
  return l;
}

/// GET /metrics: refreshes the gauges from the node's status, then writes the text format.
void serve_metrics(http_front_end::impl* self, std::function<void(response)> done) {
  self->bridge->call(gateway_op::status, wire_msg{"registry.v1.StatusRequest", ""},
                     [self, done](wire_msg reply) {
                       v1::Status st;
                       if (reply.kind == "registry.v1.Status" && st.ParseFromString(reply.payload)) {
                         self->metrics.set_counts(static_cast<double>(st.clients()),
                                                  static_cast<double>(st.services()),
                                                  static_cast<double>(st.instances()),
                                                  static_cast<double>(st.subscribers()));
                         std::map<std::string, double> states;
                         for (auto& m : st.members())
                           states[m.state()] += 1;
                         self->metrics.set_members(states);
                         std::vector<node_metrics::distro_peer> peers;
                         for (auto& c : st.distro_peers()) {
                           node_metrics::distro_peer p;
                           p.peer = c.peer();
                           p.syncs_ok = static_cast<double>(c.syncs_ok());
                           p.syncs_failed = static_cast<double>(c.syncs_failed());
                           p.verifies_ok = static_cast<double>(c.verifies_ok());
                           p.verifies_failed = static_cast<double>(c.verifies_failed());
                           p.repairs = static_cast<double>(c.repairs());
                           p.syncs_received = static_cast<double>(c.syncs_received());
                           p.verifies_received = static_cast<double>(c.verifies_received());
                           peers.push_back(std::move(p));
                         }
                         self->metrics.set_distro(peers);
                       }
                       response r;
                       r.content_type = "text/plain; version=0.0.4; charset=utf-8";
                       r.body = self->metrics.serialize();
                       done(std::move(r));
                     });
}

/// Reads datagrams on the push socket: push-acks go to the UDP push actor.
void receive_acks(http_front_end::impl* self) {
  self->udp->async_receive_from(
    boost::asio::buffer(self->udp_buffer), self->udp_from,
    [self](const boost::system::error_code& ec, std::size_t n) {
      if (ec == boost::asio::error::operation_aborted || !self->udp->is_open())
        return;
      if (!ec) {
        std::int64_t ref = 0;
        if (parse_push_ack(std::string(self->udp_buffer.data(), n), ref))
          caf::anon_send(self->udp_push, wire::udp_ack_atom_v,
                         self->udp_from.address().to_string(), self->udp_from.port(), ref);
      }
      receive_acks(self);
    });
}

} // namespace

http_front_end::http_front_end(const node_config& cfg,
                               std::shared_ptr<auth::authenticator> users)
  : impl_(std::make_unique<impl>()) {
  impl_->cfg = cfg;
  impl_->auth = std::move(users);
  impl_->bound = cfg.http.listen;
}

http_front_end::~http_front_end() {
  stop();
}

std::string http_front_end::bind() {
  auto* self = impl_.get();
  self->server = std::make_unique<http_server>(
    make_limits(self->cfg), [self](request req, std::function<void(response)> done) {
      auto t0 = std::chrono::steady_clock::now();
      auto path = req.target.substr(0, req.target.find('?'));
      if (path == "/metrics" && req.method == "GET")
        return serve_metrics(self, std::move(done));
      if (is_console_path(path)) {
        return self->console->handle(req, [self, t0, done = std::move(done)](response r) {
          std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
          self->metrics.request_done("console", r.status, took.count());
          done(std::move(r));
        });
      }
      auto route = route_label(req.method, path);
      self->api->handle(req, [self, route, t0, done = std::move(done)](response r) {
        std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
        self->metrics.request_done(route, r.status, took.count());
        done(std::move(r));
      });
    });
  auto err = self->server->listen(self->cfg.http.listen.host, self->cfg.http.listen.port);
  if (!err.empty())
    return err;
  self->bound.port = self->server->port();
  return "";
}

host_port http_front_end::address() const {
  return impl_->bound;
}

node_metrics& http_front_end::metrics() {
  return impl_->metrics;
}

void http_front_end::start(caf::actor_system& sys, node_supervisor_actor supervisor) {
  auto* self = impl_.get();
  self->sys = &sys;
  self->bridge = std::make_unique<gateway_bridge>(sys, std::move(supervisor),
                                                  2 * defaults::request_timeout_ms);
  self->api = std::make_unique<nacos_api>(make_api_settings(self->cfg, self->auth), *self->bridge);
  self->console = std::make_unique<console_api>(make_api_settings(self->cfg, self->auth),
                                                *self->bridge);
  if (self->cfg.push.enabled)
    start_udp_push(sys);
  self->server->start(self->cfg.http.threads);
  log().info("http serving Nacos's Open API and the web console on {}", self->bound.to_string());
}

void http_front_end::start_udp_push(caf::actor_system& sys) {
  namespace asio = boost::asio;
  auto* self = impl_.get();
  boost::system::error_code ec;
  auto address = asio::ip::make_address(
    self->bound.host == "localhost" ? "127.0.0.1" : self->bound.host, ec);
  if (ec)
    address = asio::ip::address_v4::any();
  self->udp = std::make_unique<asio::ip::udp::socket>(self->server->io());
  self->udp->open(address.is_v6() ? asio::ip::udp::v6() : asio::ip::udp::v4(), ec);
  if (!ec)
    self->udp->bind(asio::ip::udp::endpoint{address, 0}, ec);
  if (ec) {
    log().error("http cannot open the UDP push socket: {}; UDP subscribers get no pushes",
                ec.message());
    self->udp.reset();
    return;
  }
  udp_push_table::config cfg;
  cfg.ack_timeout_ms = self->cfg.http.udp_ack_timeout_ms;
  cfg.retries_max = self->cfg.http.udp_retries_max;
  cfg.subscriber_expiry_ms = self->cfg.http.udp_subscriber_expiry_ms;
  cfg.subscriptions_max = defaults::udp_subscriptions_max;
  auto* bridge = self->bridge.get();
  self->udp_push = spawn_udp_push_actor(
    sys, self->udp->native_handle(), cfg, make_api_settings(self->cfg),
    [bridge](const service_key& key, const std::string& clusters, const std::string& ip,
             std::uint16_t port) { bridge->unsubscribe_udp(key, clusters, ip, port); },
    [self](const char* result, double latency_ms) {
      self->metrics.push_done("udp", result, latency_ms / 1000.0);
    });
  self->bridge->set_udp_push(self->udp_push);
  receive_acks(self);
  log().info("http pushes to UDP subscribers from {}",
             self->udp->local_endpoint(ec).address().to_string() + ":"
               + std::to_string(self->udp->local_endpoint(ec).port()));
}

void http_front_end::stop() {
  if (impl_->server)
    impl_->server->stop();
  // Exit messages from a local actor: the actors refuse anonymous ones (they could come from
  // another process).
  if (impl_->udp_push && impl_->sys != nullptr)
    caf::scoped_actor{*impl_->sys}->send_exit(impl_->udp_push, caf::exit_reason::user_shutdown);
  impl_->udp_push = nullptr;
  // The bridge actor ends with the bridge: no completion runs after this returns but one already
  // running, which only queues a write on the stopped I/O context (alive until this is destroyed).
  impl_->api.reset();
  impl_->console.reset();
  impl_->bridge.reset();
}

} // namespace registry::http
