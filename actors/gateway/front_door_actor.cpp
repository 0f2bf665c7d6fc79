#include "actors/gateway/front_door_actor.hpp"

#include <caf/all.hpp>

#include "actors/common/clock.hpp"
#include "actors/common/delegate.hpp"
#include "actors/common/handlers.hpp"
#include "actors/common/log.hpp"
#include "config/defaults.hpp"
#include "messages/convert.hpp"
#include "messages/raft.pb.h"
#include "messages/type_ids.hpp"

namespace registry {

namespace {

using namespace wire;

struct front_door_state {
  static inline const char* name = "front_door";
  gateway_actor gateway;
  distro_actor distro;
  /// Auth on: the users and the token signer; nullptr: auth off.
  std::shared_ptr<auth::authenticator> users;
  /// Checks passwords off the front door's thread (auth on).
  login_actor login;
  std::size_t logins_in_flight = 0;
  /// Refused writes not yet logged (a log line per refusal would let a stranger fill the disk).
  std::uint64_t refused_unlogged = 0;
  time_ms refused_logged_at_ms = 0;
};

using front_door_t = front_door_actor::stateful_base<front_door_state>;

envelope unauthorized(std::string why) {
  return pack(make_error(v1::Error::UNAUTHORIZED, "access_token", std::move(why)));
}

/// The access token of a write or a Hello, or nullopt when the envelope is not of `Request`.
template <class Request>
std::optional<std::string> token_of(const envelope& env) {
  Request req;
  if (!unpack(env, req))
    return std::nullopt;
  return req.access_token();
}

/// With auth on: "" when the request's token is good, else why not. A request of another kind
/// passes: the gateway refuses it with the usual error.
template <class Request>
std::string refusal(front_door_t* self, const envelope& env) {
  auto& st = self->state;
  if (!st.users)
    return {};
  auto token = token_of<Request>(env);
  if (!token)
    return {};
  std::string why;
  std::string user;
  if (token->empty()) {
    why = "auth is on and the request has no access token: log in first (registryctl --user and "
          "--password, or --token-file)";
  } else {
    switch (st.users->signer().verify(*token, system_now_ms(), user)) {
      case auth::token_signer::verdict::ok:
        return {};
      case auth::token_signer::verdict::expired:
        why = "token expired!";
        break;
      case auth::token_signer::verdict::invalid:
        why = "token invalid!";
        break;
    }
  }
  ++st.refused_unlogged;
  auto now = steady_now_ms();
  if (now - st.refused_logged_at_ms >= defaults::auth_refusal_log_interval_ms) {
    log().warn("front door refused {} write(s) without a valid access token (last: {})",
               st.refused_unlogged, why);
    st.refused_unlogged = 0;
    st.refused_logged_at_ms = now;
  }
  return why;
}

login_actor::behavior_type login_behavior(login_actor::pointer self,
                                          std::shared_ptr<auth::authenticator> users) {
  install_default_handlers(self, "login");
  return {
    [=](login_atom, const envelope& env) -> envelope {
      if (!local_only(self, "login", "login"))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request",
                               "not accepted from another process"));
      v1::LoginRequest req;
      if (!unpack(env, req))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request",
                               "expected a LoginRequest, got " + bounded(env.kind)));
      if (req.username().size() > defaults::auth_username_bytes_max
          || req.password().size() > defaults::auth_password_bytes_max)
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "username",
                               "username or password too long"));
      std::string token;
      auto r = users->login(req.username(), req.password(), system_now_ms(), token);
      if (!r.ok) {
        log().warn("front door refused a login as {}: {}", bounded(req.username()), r.message);
        return pack(make_error(v1::Error::UNAUTHORIZED, "password", r.message));
      }
      v1::LoginReply reply;
      reply.set_access_token(token);
      reply.set_token_ttl_ms(users->signer().ttl_ms());
      return pack(reply);
    },
  };
}

front_door_actor::behavior_type front_door_behavior(front_door_t* self, gateway_actor gateway,
                                                    distro_actor distro,
                                                    std::shared_ptr<auth::authenticator> users) {
  self->state.gateway = std::move(gateway);
  self->state.distro = std::move(distro);
  self->state.users = std::move(users);
  if (self->state.users) {
    // Detached: Argon2 takes tens of milliseconds and must not stall the front door.
    self->state.login = self->system().template spawn<caf::detached>(login_behavior,
                                                                     self->state.users);
    self->link_to(self->state.login);
  }
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
  // A write passes with a good token (auth on) or always (auth off).
  // `request_type` is a null pointer to the request type: it only selects the type.
  auto write = [=](auto atom, const envelope& env, auto* request_type) -> caf::result<envelope> {
    using request = std::remove_pointer_t<decltype(request_type)>;
    if (auto why = refusal<request>(self, env); !why.empty())
      return unauthorized(std::move(why));
    return to_gateway(atom, env);
  };
  return {
    [=](hello_atom atom, const envelope& env,
        const caf::actor& client) -> caf::result<envelope, caf::actor> {
      if (auto why = refusal<v1::Hello>(self, env); !why.empty())
        return {unauthorized(std::move(why)), caf::actor{}};
      return self->delegate(self->state.gateway, atom, env, client);
    },
    [=](reg_atom atom, const envelope& env) {
      return write(atom, env, static_cast<v1::RegisterRequest*>(nullptr));
    },
    [=](beat_atom atom, const envelope& env) {
      return write(atom, env, static_cast<v1::BeatRequest*>(nullptr));
    },
    [=](dereg_atom atom, const envelope& env) {
      return write(atom, env, static_cast<v1::DeregisterRequest*>(nullptr));
    },
    [=](login_atom atom, const envelope& env) -> caf::result<envelope> {
      auto& st = self->state;
      if (!st.users)
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "auth",
                               "auth is off on this node: writes need no login"));
      if (st.logins_in_flight >= defaults::auth_logins_in_flight_max)
        return pack(make_error(v1::Error::LIMIT_EXCEEDED, "login",
                               "too many logins in progress; try again"));
      ++st.logins_in_flight;
      auto rp = self->make_response_promise<envelope>();
      self->request(st.login, std::chrono::milliseconds(defaults::request_timeout_ms), atom, env)
        .then(
          [=](envelope& reply) mutable {
            --self->state.logins_in_flight;
            rp.deliver(std::move(reply));
          },
          [=](caf::error& err) mutable {
            --self->state.logins_in_flight;
            rp.deliver(pack(make_error(v1::Error::UNAVAILABLE, "login",
                                       "the login did not finish: " + self->system().render(err))));
          });
      return rp;
    },
    [=](query_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](list_atom atom, const envelope& env) { return to_gateway(atom, env); },
    [=](status_atom atom, const envelope& env) -> caf::result<envelope> {
      // A leadership transfer changes the cluster: a write.
      if (holds<v1::RaftTransferRequest>(env))
        return write(atom, env, static_cast<v1::RaftTransferRequest*>(nullptr));
      return to_gateway(atom, env);
    },
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
                                        distro_actor distro,
                                        std::shared_ptr<auth::authenticator> users) {
  return sys.spawn(front_door_behavior, std::move(gateway), std::move(distro), std::move(users));
}

} // namespace registry
