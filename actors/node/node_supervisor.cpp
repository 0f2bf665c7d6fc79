#include "actors/node/node_supervisor.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/common/handlers.hpp"
#include "actors/common/log.hpp"
#include "actors/gateway/gateway_actor.hpp"
#include "messages/type_ids.hpp"

namespace registry {

namespace {

using namespace wire;

struct supervisor_state {
  static inline const char* name = "supervisor";

  std::shared_ptr<const node_config> cfg;
  caf::actor gateway;
  std::uint16_t published_port = 0;
  bool stopping = false;
};

using supervisor_t = caf::stateful_actor<supervisor_state>;

/// Publishes the gateway on `listen` without blocking; calls `done` with the port or an error.
template <class Done>
void publish_gateway(supervisor_t* self, Done done) {
  auto& st = self->state;
  auto mm = self->system().middleman().actor_handle();
  self->request(mm, std::chrono::seconds(10), caf::publish_atom::value,
                static_cast<std::uint16_t>(st.cfg->listen.port),
                caf::actor_cast<caf::strong_actor_ptr>(st.gateway), std::set<std::string>{},
                st.cfg->listen.host, true)
    .then([=](std::uint16_t port) mutable { done(port, caf::error{}); },
          [=](caf::error& err) mutable { done(std::uint16_t{0}, std::move(err)); });
}

void start_gateway(supervisor_t* self) {
  auto& st = self->state;
  st.gateway = spawn_gateway_actor(self->system(), st.cfg, caf::actor{});
  self->monitor(st.gateway);
}

caf::behavior node_supervisor(supervisor_t* self, std::shared_ptr<const node_config> cfg) {
  self->state.cfg = std::move(cfg);
  install_default_handlers(self, "supervisor");
  start_gateway(self);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.gateway.address() || st.stopping)
      return;
    log().error("supervisor restarted gateway after failure ({})",
                self->system().render(dm.reason));
    auto mm = self->system().middleman().actor_handle();
    self->anon_send(mm, caf::unpublish_atom::value, dm.source, st.published_port);
    start_gateway(self);
    publish_gateway(self, [=](std::uint16_t, const caf::error& err) {
      if (err)
        log().error("supervisor failed to publish the restarted gateway: {}",
                    self->system().render(err));
    });
  });
  self->set_exit_handler([=](caf::exit_msg& em) {
    auto& st = self->state;
    st.stopping = true;
    log().info("supervisor stopping children ({})", self->system().render(em.reason));
    if (st.gateway)
      self->send_exit(st.gateway, caf::exit_reason::user_shutdown);
    self->quit(em.reason);
  });
  return {
    [=](start_atom) -> caf::result<std::uint16_t> {
      auto rp = self->make_response_promise<std::uint16_t>();
      publish_gateway(self, [=](std::uint16_t port, const caf::error& err) mutable {
        if (err) {
          rp.deliver(err);
          return;
        }
        self->state.published_port = port;
        rp.deliver(port);
      });
      return rp;
    },
  };
}

} // namespace

caf::actor spawn_node_supervisor(caf::actor_system& sys, std::shared_ptr<const node_config> cfg) {
  return sys.spawn(node_supervisor, std::move(cfg));
}

} // namespace registry
