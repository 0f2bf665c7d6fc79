#include "actors/gateway/front_door_actor.hpp"

#include <caf/all.hpp>

#include "actors/common/delegate.hpp"
#include "actors/common/handlers.hpp"
#include "messages/convert.hpp"
#include "messages/type_ids.hpp"

namespace registry {

namespace {

using namespace wire;

struct front_door_state {
  static inline const char* name = "front_door";
  gateway_actor gateway;
  distro_actor distro;
};

using front_door_t = front_door_actor::stateful_base<front_door_state>;

front_door_actor::behavior_type front_door_behavior(front_door_t* self, gateway_actor gateway,
                                                    distro_actor distro) {
  self->state.gateway = std::move(gateway);
  self->state.distro = std::move(distro);
  install_default_handlers(self, "front door");
  // The front door lives and dies with the gateway and the distro actor.
  self->monitor(self->state.gateway);
  if (self->state.distro)
    self->monitor(self->state.distro);
  self->set_down_handler([=](caf::down_msg& dm) {
    if (trusted_down(self, dm))
      self->quit(dm.reason);
  });
  auto to_gateway = [=](auto atom, const envelope& env) {
    return delegate_envelope(self, self->state.gateway, atom, env);
  };
  return {
    [=](hello_atom atom, const envelope& env, const caf::actor& client) {
      return self->delegate(self->state.gateway, atom, env, client);
    },
    [=](reg_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](beat_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](dereg_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](query_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](list_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](status_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](members_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](peer_atom atom, const envelope& env) -> caf::result<envelope, caf::actor> {
      if (!self->state.distro)
        return {pack(make_error(v1::Error::UNAVAILABLE, "peer", "this node runs without distro")),
                caf::actor{}};
      return self->delegate(self->state.distro, atom, env);
    },
  };
}

} // namespace

front_door_actor spawn_front_door_actor(caf::actor_system& sys, gateway_actor gateway,
                                        distro_actor distro) {
  return sys.spawn(front_door_behavior, std::move(gateway), std::move(distro));
}

} // namespace registry
