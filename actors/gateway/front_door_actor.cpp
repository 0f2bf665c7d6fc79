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
  caf::actor gateway;
  caf::actor distro;
};

using front_door_t = caf::stateful_actor<front_door_state>;

caf::behavior front_door_actor(front_door_t* self, caf::actor gateway, caf::actor distro) {
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
    [=](hello_atom atom, const envelope& env, const caf::actor& client) -> caf::result<caf::message> {
      self->delegate(self->state.gateway, atom, env, client);
      return caf::delegated<caf::message>{};
    },
    [=](reg_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](beat_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](dereg_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](query_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](list_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](status_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](members_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](peer_atom atom, const envelope& env) -> caf::result<caf::message> {
      if (!self->state.distro)
        return caf::make_message(pack(make_error(v1::Error::UNAVAILABLE, "peer",
                                                 "this node runs without distro")),
                                 caf::actor{});
      self->delegate(self->state.distro, atom, env);
      return caf::delegated<caf::message>{};
    },
  };
}

} // namespace

caf::actor spawn_front_door_actor(caf::actor_system& sys, caf::actor gateway, caf::actor distro) {
  return sys.spawn(front_door_actor, std::move(gateway), std::move(distro));
}

} // namespace registry
