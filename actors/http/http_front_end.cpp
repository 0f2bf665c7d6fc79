#include "actors/http/http_front_end.hpp"

#include <caf/all.hpp>

#include "actors/common/log.hpp"
#include "actors/http/gateway_bridge.hpp"
#include "actors/http/http_server.hpp"
#include "actors/http/nacos_api.hpp"

namespace registry::http {

struct http_front_end::impl {
  node_config cfg;
  host_port bound;
  std::unique_ptr<http_server> server;
  std::unique_ptr<gateway_bridge> bridge;
  std::unique_ptr<nacos_api> api;
};

namespace {

api_settings make_api_settings(const node_config& cfg) {
  api_settings s;
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

} // namespace

http_front_end::http_front_end(const node_config& cfg) : impl_(std::make_unique<impl>()) {
  impl_->cfg = cfg;
  impl_->bound = cfg.http.listen;
}

http_front_end::~http_front_end() {
  stop();
}

std::string http_front_end::bind() {
  auto* self = impl_.get();
  self->server = std::make_unique<http_server>(
    make_limits(self->cfg), [self](request req, std::function<void(response)> done) {
      self->api->handle(req, std::move(done));
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

void http_front_end::start(caf::actor_system& sys, caf::actor supervisor) {
  auto* self = impl_.get();
  self->bridge = std::make_unique<gateway_bridge>(sys, std::move(supervisor),
                                                  2 * defaults::request_timeout_ms);
  self->api = std::make_unique<nacos_api>(make_api_settings(self->cfg), *self->bridge);
  self->server->start(self->cfg.http.threads);
  log().info("http serving Nacos's Open API on {}", self->bound.to_string());
}

void http_front_end::stop() {
  if (impl_->server)
    impl_->server->stop();
  // The bridge actor ends with the bridge: no completion runs after this returns but one already
  // running, which only queues a write on the stopped I/O context (alive until this is destroyed).
  impl_->api.reset();
  impl_->bridge.reset();
}

} // namespace registry::http
