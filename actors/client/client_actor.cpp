#include "actors/client/client_actor.hpp"

#include <functional>

#include <caf/all.hpp>

#include "actors/client/service_routes.hpp"

#include "actors/common/clock.hpp"
#include "actors/common/delegate.hpp"
#include "actors/common/handlers.hpp"
#include "actors/common/log.hpp"
#include "actors/distro/distro_protocol.hpp"
#include "messages/convert.hpp"
#include "messages/model_inspect.hpp"
#include "messages/type_ids.hpp"
#include "messages/validate.hpp"
#include "config/defaults.hpp"

namespace registry {

namespace {

using namespace wire;

/// An update for a service actor (see service_routes).
struct route_op {
  /// Sends the update to the service actor, or (null) through the gateway as the first update of
  /// a route: the answer then resolves the route (learn_route).
  std::function<void(const service_actor*)> run;
  /// The update is refused (no route): undoes and answers, or logs.
  std::function<void(wire::envelope)> fail;
};

using routes_t = service_routes<service_actor, route_op>;

struct client_actor_state {
  static inline const char* name = "client";

  std::unique_ptr<client_state> data;
  client_settings settings;
  gateway_actor gateway;
  subscriber_actor remote; ///< the session's own actor in its process (sessions only)
  distro_actor distro;
  bool ending = false;
  bool announce_pending = false; ///< a flush_atom is queued (see announce)
  std::uint64_t announced_seq = 0; ///< the number of the last announcement to Distro
  /// The service actors this client talks to, found once through the gateway.
  routes_t routes{defaults::client_service_routes_max, defaults::client_route_updates_queued_max};
};

using client_actor_t = client_actor::stateful_base<client_actor_state>;

envelope error_reply(const field_error& e) {
  return pack(make_error(e));
}

envelope malformed(const char* what) {
  return pack(make_error(v1::Error::INVALID_ARGUMENT, "request",
                         std::string{"malformed "} + what));
}

const std::string& id_of(client_actor_t* self) {
  return self->state.data->id();
}

/// The instances the client publishes in `key` (empty when none).
instance_list instances_in(client_actor_t* self, const service_key& key) {
  auto& services = self->state.data->services();
  auto i = services.find(key);
  return i == services.end() ? instance_list{} : i->second;
}

/// Tells the distro actor that this client changed (it syncs the whole client to the peers). A burst
/// of changes is announced once: the flush message queues behind the changes already in the mailbox,
/// so the whole client is copied once per burst instead of once per change.
void announce(client_actor_t* self) {
  auto& st = self->state;
  if (!st.distro || st.data->kind() == client_kind::replica || st.announce_pending)
    return;
  st.announce_pending = true;
  self->send(self, flush_atom_v);
}

void flush_announcement(client_actor_t* self) {
  auto& st = self->state;
  if (!st.announce_pending || st.ending)
    return;
  st.announce_pending = false;
  if (st.distro && st.data->kind() != client_kind::replica) {
    // The beat clocks go along, so a node taking the client over continues them. After the
    // first, an announcement holds only the services that changed: a client with many services
    // is not copied and rehashed whole for every change.
    auto what = st.data->take_announcement();
    auto seq = ++st.announced_seq;
    if (what.whole)
      self->send(st.distro, sync_atom_v, st.data->id(), seq, st.data->services(),
                 st.data->beat_marks());
    else
      self->send(st.distro, sync_atom_v, st.data->id(), seq, seq - 1, std::move(what.changed),
                 st.data->beat_marks());
    st.data->beats_reported(actor_now_ms(self));
  }
}

// -- routes to the service actors ----------------------------------------------------------------

/// Whether the client holds nothing in `key` (no instance, no subscription): its route may go.
bool idle_in(client_actor_t* self, const service_key& key) {
  auto& data = *self->state.data;
  if (data.services().count(key) > 0)
    return false;
  auto i = data.subscriptions().lower_bound(subscription{key, {}});
  return i == data.subscriptions().end() || !(i->key == key);
}

/// The route of `key` could not be resolved (the first update timed out, or the gateway answered
/// it itself): the updates that waited go through the gateway as the first did. They are not
/// dropped: the first may still reach the service (a busy gateway answers late), and the gateway
/// hands them on behind it, in order; a limit is answered to each of them by the gateway.
void unresolved_route(client_actor_t* self, const service_key& key) {
  for (auto& op : self->state.routes.failed(key))
    op.run(nullptr);
}

/// The answer to the first update of `key`, sent through the gateway, came from the service
/// actor: the route is resolved and the updates that waited go to it, in order. An answer from the
/// gateway itself (a limit) or a failure leaves the route unresolved (see unresolved_route).
void learn_route(client_actor_t* self, const service_key& key, bool answered) {
  auto& st = self->state;
  if (!st.routes.resolving(key))
    return;
  const auto& sender = self->current_sender();
  if (!answered || !sender || sender == st.gateway.address() || sender->node() != self->node()) {
    unresolved_route(self, key);
    return;
  }
  // Not monitored: a monitor costs the service a linear scan per client that ends. A service
  // actor that goes away is noticed by the next update sent to it (request_receiver_down) or told
  // by the gateway (rebuild); either forgets the route and finds the successor.
  auto handle = caf::actor_cast<service_actor>(sender);
  for (auto& op : st.routes.resolved(key, handle))
    op.run(&handle);
}

/// Sends an update for `key` to its service actor: at once when the route is known; through the
/// gateway when it is the first; behind the first while the route resolves. Either way the
/// service takes the client's updates in the order they were made.
void to_service(client_actor_t* self, const service_key& key, route_op op) {
  auto& st = self->state;
  if (auto* handle = st.routes.find(key)) {
    op.run(handle);
    return;
  }
  auto r = st.routes.enqueue(key, std::move(op),
                             [self](const service_key& k) { return idle_in(self, k); });
  switch (r.what) {
    case routes_t::outcome::resolve:
      op.run(nullptr);
      break;
    case routes_t::outcome::queued:
      break;
    case routes_t::outcome::full:
      if (op.fail)
        op.fail(pack(make_error(v1::Error::LIMIT_EXCEEDED, "services",
                                "client " + bounded(id_of(self))
                                  + " has too many services or updates in progress")));
      break;
  }
}

/// Forgets the route to the service actor `handle` (it went away); returns the services it served.
std::vector<service_key> forget_route(client_actor_t* self, const caf::actor_addr& handle) {
  return self->state.routes.forget_if(
    [&](const service_actor& x) { return x.address() == handle; });
}

/// Logs a refused fire-and-forget update.
void log_refusal(client_actor_t* self, const envelope& reply) {
  v1::Error err;
  if (unpack(reply, err))
    log().warn("client {} had a service update refused: {}", bounded(id_of(self)),
               bounded(err.message(), 4 * defaults::log_name_chars_max));
}

/// Pushes our list for `key` to its service actor (fire and forget: used for expiry and rebuilds).
/// The first update of a route waits for its answer, which resolves the route.
void publish(client_actor_t* self, const service_key& key) {
  route_op op;
  op.run = [self, key](const service_actor* handle) {
    if (handle) {
      auto service = handle->address();
      self->request(*handle, std::chrono::milliseconds(self->state.settings.request_timeout_ms),
                    svc_put_atom_v, key, id_of(self), instances_in(self, key))
        .then([self](envelope& reply) { log_refusal(self, reply); },
              [self, key, service](caf::error& err) {
                // Gone before it took the update (idle sweep): the successor gets the state.
                if (err == caf::sec::request_receiver_down && !forget_route(self, service).empty())
                  publish(self, key);
              });
      return;
    }
    self->request(self->state.gateway,
                  std::chrono::milliseconds(self->state.settings.request_timeout_ms),
                  svc_put_atom_v, key, id_of(self), instances_in(self, key))
      .await(
        [self, key](envelope& reply) {
          learn_route(self, key, true);
          log_refusal(self, reply);
        },
        [self, key](caf::error& err) {
          learn_route(self, key, false);
          log().warn("client {} got no answer to its update of service {} (it may still apply): {}",
                     bounded(id_of(self)), bounded(key.to_string()), self->system().render(err));
        });
  };
  op.fail = [self](envelope why) { log_refusal(self, why); };
  to_service(self, key, std::move(op));
}

/// Sends what the client holds in `key` again: its instances and its subscriptions.
void rebuild(client_actor_t* self, const service_key& key) {
  auto& st = self->state;
  if (st.data->services().count(key))
    publish(self, key);
  if (!st.remote)
    return;
  for (auto i = st.data->subscriptions().lower_bound(subscription{key, {}});
       i != st.data->subscriptions().end() && i->key == key; ++i) {
    auto clusters = i->clusters;
    route_op op;
    op.run = [self, key, clusters](const service_actor* handle) {
      auto& st = self->state;
      if (handle) {
        self->send(*handle, svc_sub_atom_v, id_of(self), clusters, st.remote);
        return;
      }
      self->request(st.gateway, std::chrono::milliseconds(st.settings.request_timeout_ms),
                    svc_sub_atom_v, key, id_of(self), clusters, st.remote)
        .await([self, key](envelope&) { learn_route(self, key, true); },
               [self, key](caf::error&) { learn_route(self, key, false); });
    };
    to_service(self, key, std::move(op));
  }
}

/// The answer to a subscribe or unsubscribe whose service actor did not answer.
envelope service_unavailable(client_actor_t* self, const caf::error& err) {
  return pack(make_error(v1::Error::UNAVAILABLE, "",
                         "the service did not answer in time: " + self->system().render(err)));
}

/// Subscribes to `key` at its service actor and passes its reply (the current state) to the
/// requester.
caf::result<envelope> subscribe_at_service(client_actor_t* self, const service_key& key,
                                           const std::string& clusters) {
  auto rp = self->make_response_promise<envelope>();
  route_op op;
  op.run = [=](const service_actor* handle) mutable {
    auto& st = self->state;
    auto timeout = std::chrono::milliseconds(st.settings.request_timeout_ms);
    auto service = handle ? handle->address() : caf::actor_addr{};
    auto on_error = [=](caf::error& err) mutable {
      if (!service)
        learn_route(self, key, false);
      else if (err == caf::sec::request_receiver_down)
        forget_route(self, service); // gone: the next attempt finds the successor
      rp.deliver(service_unavailable(self, err));
    };
    if (handle) {
      self->request(*handle, timeout, svc_sub_atom_v, id_of(self), clusters, st.remote)
        .then([=](envelope& reply) mutable { rp.deliver(std::move(reply)); }, on_error);
      return;
    }
    self->request(st.gateway, timeout, svc_sub_atom_v, key, id_of(self), clusters, st.remote)
      .await(
        [=](envelope& reply) mutable {
          learn_route(self, key, true);
          rp.deliver(std::move(reply));
        },
        on_error);
  };
  op.fail = [=](envelope why) mutable { rp.deliver(std::move(why)); };
  to_service(self, key, std::move(op));
  return rp;
}

/// Unsubscribes at the service actor of `key`, which has a route (a subscription made one).
caf::result<envelope> unsubscribe_at_service(client_actor_t* self, const service_key& key,
                                             const std::string& clusters) {
  auto rp = self->make_response_promise<envelope>();
  route_op op;
  op.run = [=](const service_actor* handle) mutable {
    auto& st = self->state;
    auto timeout = std::chrono::milliseconds(st.settings.request_timeout_ms);
    auto reply_to = [=](envelope& reply) mutable { rp.deliver(std::move(reply)); };
    auto on_error = [=](caf::error& err) mutable {
      rp.deliver(service_unavailable(self, err));
    };
    if (handle)
      self->request(*handle, timeout, svc_unsub_atom_v, id_of(self), clusters)
        .then(reply_to, on_error);
    else // never the first update of a route (see on_subscribe); answered all the same
      self->request(st.gateway, timeout, svc_unsub_atom_v, key, id_of(self), clusters)
        .then(reply_to, on_error);
  };
  op.fail = [=](envelope why) mutable { rp.deliver(std::move(why)); };
  to_service(self, key, std::move(op));
  return rp;
}

/// Quits. The monitors go first: a monitor lives in the watched actor (the gateway, which outlives
/// every client, and a session's client process) and would keep this actor's memory until that one
/// ends.
void leave(client_actor_t* self) {
  auto& st = self->state;
  self->demonitor(st.gateway.address());
  if (st.remote)
    self->demonitor(st.remote.address());
  auto routes = st.routes.clear();
  for (auto& op : routes.second)
    if (op.fail)
      op.fail(pack(make_error(v1::Error::UNAVAILABLE, "", "the client ended")));
  self->quit();
}

/// Ends the client: removes everything it holds from the services, tells the gateway, quits.
void end_client(client_actor_t* self, const std::string& how) {
  auto& st = self->state;
  if (st.ending)
    return;
  st.ending = true;
  std::set<service_key> keys;
  for (auto& kv : st.data->services())
    keys.insert(kv.first);
  for (auto& s : st.data->subscriptions())
    keys.insert(s.key);
  // Straight to each service actor, behind the client's earlier updates there. A service without
  // a route may still hold this client's instances (a replica seeded in bulk by the gateway, or a
  // route forgotten when its actor went away): its drop goes through the gateway, which sent
  // whatever it put there before, so the drop comes after it.
  for (auto& key : keys) {
    if (!st.routes.has_route(key)) {
      self->send(st.gateway, svc_drop_atom_v, key, id_of(self));
      continue;
    }
    route_op op;
    op.run = [self, key](const service_actor* handle) {
      if (handle)
        self->send(*handle, svc_drop_atom_v, id_of(self));
      else // never the first update of a route (see above)
        self->send(self->state.gateway, svc_drop_atom_v, key, id_of(self));
    };
    to_service(self, key, std::move(op));
  }
  if (st.data->kind() == client_kind::replica)
    log().debug("client {} {}; removed {} instances", bounded(id_of(self)), how,
                st.data->instance_count());
  else
    log().info("client {} {}; removed {} instances", bounded(id_of(self)), how,
               st.data->instance_count());
  auto had_instances = !st.data->empty();
  st.data->replace({}, st.data->revision() + (had_instances ? 1 : 0));
  // A replica's end is its owner's business: only clients of this node announce their end.
  if (st.distro && st.data->kind() != client_kind::replica)
    self->send(st.distro, sync_atom_v, id_of(self), st.data->revision(), client_services{});
  // Quit only after the gateway forgot us: until then it may still route messages here, and those
  // are handed back to it (see the `ending` checks in the behavior).
  self->request(st.gateway, std::chrono::milliseconds(st.settings.request_timeout_ms),
                client_gone_atom_v, id_of(self))
    .then([=](bool) { leave(self); }, [=](caf::error&) { leave(self); });
}

/// While ending: a heartbeat client's or replica's message goes back to the gateway, which routes it
/// to a fresh client actor once it has forgotten this one; a session's requests are refused.
template <class Atom>
caf::result<envelope> hand_back(client_actor_t* self, Atom atom, const envelope& env) {
  if (self->state.data->kind() == client_kind::session)
    return pack(make_error(v1::Error::UNAVAILABLE, "", "the session is ending; request refused"));
  return delegate_envelope(self, self->state.gateway, atom, env);
}

/// After a change: a heartbeat client without instances ends.
void end_if_empty(client_actor_t* self, const std::string& how) {
  if (self->state.data->kind() == client_kind::heartbeat && self->state.data->empty())
    end_client(self, how);
}

/// Commits a changed service list: forwards it to the service actor, answers the requester when
/// the service actor accepted it, and undoes the client state (`revert`) when it refused or did not
/// answer. `what` says what changed, for the log; `removed`: a deregistration (a heartbeat client
/// without instances then ends).
void commit_service(client_actor_t* self, const service_key& key, std::function<void()> revert,
                    std::string what, bool removed, caf::response_promise rp,
                    bool retried = false) {
  route_op op;
  op.run = [=](const service_actor* handle) mutable {
    auto& st = self->state;
    auto timeout = std::chrono::milliseconds(st.settings.request_timeout_ms);
    auto direct = handle != nullptr;
    auto service = direct ? handle->address() : caf::actor_addr{};
    auto on_reply = [=](envelope& reply) mutable {
      if (!direct)
        learn_route(self, key, true);
      if (holds<v1::Error>(reply)) {
        // Refused (a limit): undo our side so client and service agree.
        revert();
        rp.deliver(std::move(reply));
        return;
      }
      log().debug("client {} {} {}", bounded(id_of(self)), what, bounded(key.to_string()));
      announce(self);
      rp.deliver(std::move(reply));
      if (removed)
        end_if_empty(self, "closed after its last deregistration");
    };
    auto on_error = [=](caf::error& err) mutable {
      if (!direct)
        learn_route(self, key, false);
      if (direct && err == caf::sec::request_receiver_down && !retried) {
        // The service actor went away (idle sweep, failure) before it took the update: the
        // update goes to its successor, found again.
        forget_route(self, service);
        commit_service(self, key, revert, what, removed, rp, true);
        return;
      }
      revert();
      // The timed-out update may still be applied later: follow it with the reverted list on
      // the same path (one sender to one receiver keeps the order), so the service never keeps
      // an instance its client does not hold.
      publish(self, key);
      rp.deliver(pack(make_error(v1::Error::UNAVAILABLE, "",
                                 "service update failed: " + self->system().render(err))));
    };
    if (direct)
      self->request(*handle, timeout, svc_put_atom_v, key, id_of(self), instances_in(self, key))
        .await(on_reply, on_error);
    else
      self->request(st.gateway, timeout, svc_put_atom_v, key, id_of(self),
                    instances_in(self, key))
        .await(on_reply, on_error);
  };
  op.fail = [=](envelope why) mutable {
    revert();
    rp.deliver(std::move(why));
  };
  to_service(self, key, std::move(op));
}

/// Commits the change of one instance (register, beat, deregister); see commit_service.
void commit(client_actor_t* self, const service_key& key, std::optional<instance> previous,
            const instance& changed, bool removed,
            caf::response_promise rp, bool healing = false) {
  // Undoes our side. A healing beat that is undone keeps its expiry mark, so the next beat heals
  // the instance again (otherwise it would stay unhealthy for good).
  auto revert = [=] {
    auto& data = *self->state.data;
    if (removed || previous) {
      data.put(key, *previous, actor_now_ms(self));
      if (healing)
        data.mark_expired_unhealthy(key, *previous);
    } else {
      data.remove(key, changed.ip, changed.port, changed.cluster);
    }
  };
  auto what = (removed ? "deregistered instance " : "registered instance ")
              + bounded(changed.address()) + (removed ? " from" : " in");
  commit_service(self, key, std::move(revert), std::move(what), removed, std::move(rp));
}

/// Finds the current copy of (ip, port, cluster) in `key`.
std::optional<instance> find_instance(client_actor_t* self, const service_key& key,
                                      const std::string& ip, std::uint32_t port,
                                      const std::string& cluster) {
  auto& services = self->state.data->services();
  auto i = services.find(key);
  if (i == services.end())
    return std::nullopt;
  for (auto& x : i->second)
    if (x.ip == ip && x.port == port && x.cluster == cluster)
      return x;
  return std::nullopt;
}

/// Decodes and validates a register or beat body.
std::optional<field_error> decode(const v1::ServiceRef& ref, const v1::Instance& wire_x,
                                  service_key& key, instance& x) {
  key = from_wire(ref);
  if (auto err = validate_service_key(key))
    return err;
  x = from_wire(wire_x);
  apply_defaults(x);
  if (auto err = validate_instance(x))
    return err;
  // The default instance id is not stored (it is derived in replies); a custom one is kept.
  if (x.instance_id == make_instance_id(x, key))
    x.instance_id.clear();
  return std::nullopt;
}

/// A write reached a replica (a forwarded request during a membership change): this node takes the
/// client over, so the write is announced and Distro settles who is responsible (hand_over).
void adopt_if_replica(client_actor_t* self) {
  auto& st = self->state;
  if (st.data->kind() != client_kind::replica)
    return;
  st.data->set_kind(client_kind::heartbeat);
  st.data->renew_beats(actor_now_ms(self));
}

/// BatchRegisterRequest (sessions only): the session's instances in the service become the
/// batch's, as one change; a bad batch changes nothing (messages/PROTOCOL.md).
caf::result<envelope> on_batch_register(client_actor_t* self, const envelope& env) {
  v1::BatchRegisterRequest req;
  if (!unpack(env, req))
    return malformed("BatchRegisterRequest");
  auto& st = self->state;
  if (st.data->kind() != client_kind::session)
    return pack(make_error(v1::Error::INVALID_ARGUMENT, "request",
                           "a batch register needs a session: a heartbeat client holds one "
                           "ip:port"));
  auto key = from_wire(req.service());
  if (auto err = validate_service_key(key))
    return error_reply(*err);
  std::vector<instance> xs;
  xs.reserve(static_cast<std::size_t>(req.instances_size()));
  for (const auto& wire_x : req.instances()) {
    xs.push_back(from_wire(wire_x));
    apply_defaults(xs.back());
  }
  if (auto err = validate_instance_batch(xs))
    return error_reply(*err);
  for (auto& x : xs) // the default instance id is not stored, as for a single register
    if (x.instance_id == make_instance_id(x, key))
      x.instance_id.clear();
  auto previous = instances_in(self, key);
  auto count = xs.size();
  auto r = st.data->put_all(key, std::move(xs), actor_now_ms(self));
  if (r.error)
    return pack(make_error(v1::Error::LIMIT_EXCEEDED, r.error->field, r.error->message));
  if (!r.changed)
    return pack(v1::Ack{});
  auto revert = [=]() mutable {
    self->state.data->put_all(key, std::move(previous), actor_now_ms(self));
  };
  auto rp = self->make_response_promise<envelope>();
  commit_service(self, key, std::move(revert),
                 "registered a batch of " + std::to_string(count) + " instances in", false, rp);
  return rp;
}

caf::result<envelope> on_register(client_actor_t* self, const envelope& env, bool is_beat) {
  service_key key;
  instance x;
  if (is_beat) {
    v1::BeatRequest req;
    if (!unpack(env, req))
      return malformed("BeatRequest");
    if (auto err = decode(req.service(), req.instance(), key, x))
      return error_reply(*err);
  } else {
    if (holds<v1::BatchRegisterRequest>(env))
      return on_batch_register(self, env);
    v1::RegisterRequest req;
    if (!unpack(env, req))
      return malformed("RegisterRequest");
    if (auto err = decode(req.service(), req.instance(), key, x))
      return error_reply(*err);
  }
  auto& st = self->state;
  if (st.data->kind() != client_kind::session && x.address() + "#true" != st.data->id())
    return error_reply({"ip", "a heartbeat client registers only its own ip:port"});
  adopt_if_replica(self);
  auto previous = find_instance(self, key, x.ip, x.port, x.cluster);
  bool changed = false;
  bool healing = false;
  if (is_beat) {
    auto r = st.data->beat(key, x, actor_now_ms(self));
    if (r.error)
      return error_reply(*r.error);
    if (r.created)
      log().debug("client {} re-created instance {} in {} from a beat", bounded(st.data->id()),
                  bounded(x.address()), bounded(key.to_string()));
    changed = r.changed;
    healing = r.changed && !r.created; // a beat changes a known instance only by healing it
  } else {
    auto r = st.data->put(key, x, actor_now_ms(self));
    if (r.error)
      return error_reply(*r.error);
    changed = r.changed;
  }
  if (!changed) {
    if (st.data->beat_report_due(actor_now_ms(self)))
      announce(self);
    return pack(v1::Ack{});
  }
  auto rp = self->make_response_promise<envelope>();
  commit(self, key, previous, x, false, rp, healing);
  return rp;
}

caf::result<envelope> on_deregister(client_actor_t* self, const envelope& env) {
  v1::DeregisterRequest req;
  if (!unpack(env, req))
    return malformed("DeregisterRequest");
  auto key = from_wire(req.service());
  if (auto err = validate_service_key(key))
    return error_reply(*err);
  auto cluster = req.cluster().empty() ? std::string{registry::defaults::cluster} : req.cluster();
  if (auto err = validate_cluster(cluster))
    return error_reply(*err);
  adopt_if_replica(self);
  auto previous = find_instance(self, key, req.ip(), req.port(), cluster);
  if (!previous || !self->state.data->remove(key, req.ip(), req.port(), cluster)) {
    v1::Ack ack;
    ack.set_detail("no such instance");
    return pack(ack);
  }
  auto rp = self->make_response_promise<envelope>();
  commit(self, key, previous, *previous, true, rp);
  return rp;
}

caf::result<envelope> on_subscribe(client_actor_t* self, const envelope& env, bool subscribe) {
  v1::SubscribeRequest req;
  if (!unpack(env, req))
    return malformed("SubscribeRequest");
  auto& st = self->state;
  if (st.data->kind() != client_kind::session || !st.remote)
    return pack(make_error(v1::Error::INVALID_ARGUMENT, "",
                           "only session clients can subscribe"));
  subscription sub;
  sub.key = from_wire(req.service());
  if (auto err = validate_service_key(sub.key))
    return error_reply(*err);
  std::vector<std::string> clusters(req.clusters().begin(), req.clusters().end());
  std::sort(clusters.begin(), clusters.end());
  clusters.erase(std::unique(clusters.begin(), clusters.end()), clusters.end());
  for (auto& c : clusters) {
    if (auto err = validate_cluster(c))
      return error_reply(*err);
    if (!sub.clusters.empty())
      sub.clusters += ',';
    sub.clusters += c;
  }
  if (!subscribe) {
    st.data->unsubscribe(sub);
    if (!st.routes.has_route(sub.key))
      return pack(v1::Ack{}); // never subscribed there: nothing to undo
    return unsubscribe_at_service(self, sub.key, sub.clusters);
  }
  if (auto err = st.data->subscribe(sub))
    return pack(make_error(v1::Error::LIMIT_EXCEEDED, err->field, err->message));
  return subscribe_at_service(self, sub.key, sub.clusters);
}

void on_tick(client_actor_t* self) {
  auto& st = self->state;
  if (st.ending)
    return;
  auto r = st.data->tick(actor_now_ms(self));
  for (auto& [key, x] : r.marked_unhealthy)
    log().warn("client {} marked instance {} in {} unhealthy after missed beats",
               bounded(st.data->id()), bounded(x.address()), bounded(key.to_string()));
  for (auto& [key, x] : r.removed)
    log().warn("client {} expired instance {} in {}", bounded(st.data->id()),
               bounded(x.address()), bounded(key.to_string()));
  for (auto& key : r.changed)
    publish(self, key);
  // A change, or beats not reported yet (the last one before a silence, too).
  if (!r.changed.empty() || st.data->beat_report_due(actor_now_ms(self)))
    announce(self);
  end_if_empty(self, "expired");
  if (!st.ending)
    self->delayed_send(self, std::chrono::milliseconds(st.settings.check_interval_ms), tick_atom_v);
}

/// Carries out a Distro op for this client (see distro_protocol::local_op).
void on_replica(client_actor_t* self, std::int32_t op, std::uint64_t revision,
                client_services& services, bool local, const client_beats& beats) {
  using kind = distro_protocol::local_op::kind;
  auto& st = self->state;
  if (st.ending || st.data->kind() == client_kind::session)
    return; // a live session of this node is never overwritten by a copy
  switch (static_cast<kind>(op)) {
    case kind::replace: {
      bool was_checking = st.data->kind() == client_kind::heartbeat;
      if (local && st.data->kind() == client_kind::replica)
        st.data->set_kind(client_kind::heartbeat);
      std::set<service_key> before;
      for (auto& kv : st.data->services())
        before.insert(kv.first);
      auto changed = st.data->replace(services, revision);
      // Continue the sender's beat clocks; clocks this node already ran are kept when newer.
      if (st.data->kind() == client_kind::heartbeat)
        st.data->adopt_beats(beats, actor_now_ms(self), was_checking);
      for (auto& key : changed)
        publish(self, key);
      if (st.data->empty()) {
        st.data->set_kind(client_kind::replica); // Distro's own op: nothing to announce back
        end_client(self, "was deleted by its owner");
      }
      break;
    }
    case kind::remove:
      st.data->set_kind(client_kind::replica);
      end_client(self, "was removed by distro");
      break;
    case kind::take_over:
      st.data->set_kind(client_kind::heartbeat);
      st.data->adopt_beats(beats, actor_now_ms(self));
      log().info("client {} is now checked by this node", bounded(st.data->id()));
      break;
    case kind::hand_over:
      if (!is_heartbeat_client(st.data->id()))
        break;
      st.data->set_kind(client_kind::replica);
      log().info("client {} is now checked by another node", bounded(st.data->id()));
      break;
  }
}

client_actor::behavior_type client_behavior(client_actor_t* self, client_id id, client_kind kind,
                                            client_settings settings, gateway_actor gateway,
                                            subscriber_actor remote, distro_actor distro,
                                            std::shared_ptr<const client_seed> seed) {
  auto& st = self->state;
  st.data = std::make_unique<client_state>(id, kind, settings.limits);
  if (seed) {
    // As on_replica's replace, minus the publishing: the gateway indexed this content already.
    st.data->replace(seed->services, seed->revision);
    if (kind == client_kind::heartbeat)
      st.data->adopt_beats(seed->beats, actor_now_ms(self), true);
  }
  st.settings = settings;
  st.gateway = gateway;
  st.remote = remote;
  st.distro = distro;
  install_default_handlers(self, "client");
  self->monitor(gateway);
  if (remote)
    self->monitor(remote);
  self->set_down_handler([=](caf::down_msg& dm) {
    if (!trusted_down(self, dm))
      return;
    if (dm.source == self->state.gateway.address()) {
      self->quit(dm.reason);
      return;
    }
    if (self->state.remote && dm.source == self->state.remote.address()) {
      end_client(self, "lost its session (" + self->system().render(dm.reason) + ")");
      return;
    }
  });
  // Heartbeat clients check expiry; replicas tick too, as responsibility may move here.
  if (kind != client_kind::session)
    self->delayed_send(self, std::chrono::milliseconds(settings.check_interval_ms), tick_atom_v);
  // A session's requests come from its own process (or delegated within this node); a heartbeat
  // client's from anyone, through the gateway, as the protocol has it.
  auto from_owner = [=](const char* what) {
    auto& st = self->state;
    const auto& sender = self->current_sender();
    if (!st.remote || (sender && (sender->node() == st.remote.node()
                                  || sender->node() == self->node())))
      return true;
    log_foreign("client", what, sender_text(self));
    return false;
  };
  auto not_owner = [] {
    return pack(make_error(v1::Error::INVALID_ARGUMENT, "session",
                           "this session belongs to another process"));
  };
  return {
    [=](reg_atom atom, const envelope& env) -> caf::result<envelope> {
      if (!from_owner("a register for another process's session"))
        return not_owner();
      return self->state.ending ? hand_back(self, atom, env) : on_register(self, env, false);
    },
    [=](beat_atom atom, const envelope& env) -> caf::result<envelope> {
      if (!from_owner("a beat for another process's session"))
        return not_owner();
      return self->state.ending ? hand_back(self, atom, env) : on_register(self, env, true);
    },
    [=](dereg_atom atom, const envelope& env) -> caf::result<envelope> {
      if (!from_owner("a deregister for another process's session"))
        return not_owner();
      return self->state.ending ? hand_back(self, atom, env) : on_deregister(self, env);
    },
    [=](sub_atom, const envelope& env) -> caf::result<envelope> {
      if (!from_owner("a subscribe for another process's session"))
        return not_owner();
      // An ending session must not leave a subscriber behind at the service.
      if (self->state.ending)
        return pack(make_error(v1::Error::UNAVAILABLE, "",
                               "the session is ending; subscribe refused"));
      return on_subscribe(self, env, true);
    },
    [=](unsub_atom, const envelope& env) -> caf::result<envelope> {
      if (!from_owner("an unsubscribe for another process's session"))
        return not_owner();
      return on_subscribe(self, env, false);
    },
    [=](bye_atom) {
      if (!from_owner("a bye for another process's session"))
        return not_owner();
      end_client(self, "closed its session");
      return pack(v1::Ack{});
    },
    [=](rebuild_atom, const service_key& key) {
      if (!local_only(self, "client", "rebuild"))
        return;
      // The service actor failed and the gateway started a successor: the route to the old one
      // goes, and what the client holds there goes to the successor.
      auto& st = self->state;
      if (auto* old = st.routes.find(key))
        forget_route(self, old->address());
      if (!st.ending)
        rebuild(self, key);
    },
    [=](tick_atom) {
      if (local_only(self, "client", "tick"))
        on_tick(self);
    },
    // Everything the gateway sent before is processed, and its service updates are on their way.
    [=](barrier_atom) { return local_only(self, "client", "barrier"); },
    [=](flush_atom) {
      if (local_only(self, "client", "flush"))
        flush_announcement(self);
    },
    [=](sync_atom) {
      if (!local_only(self, "client", "sync"))
        return;
      self->state.data->announce_whole();
      announce(self);
    },
    [=](replica_atom, std::int32_t op, std::uint64_t revision, client_services& services,
        bool local, client_beats& beats) {
      if (!local_only(self, "client", "replica"))
        return;
      // An ending actor drops Distro ops. Handing them back to the gateway would re-create the
      // client from an op that Distro may have overtaken meanwhile (by this actor's own delete, or
      // by a later remove that the gateway dropped for want of an actor): a client no Distro
      // record stands behind, which nothing ever expires. Instead the gateway asks Distro for the
      // client's current state once it forgot this actor (resync).
      if (!self->state.ending)
        on_replica(self, op, revision, services, local, beats);
    },
    // Replies to fire-and-forget updates (expiry, rebuild, replicas): only refusals matter.
    [=](const envelope& reply) {
      if (local_only(self, "client", "a reply"))
        log_refusal(self, reply);
    },
  };
}

} // namespace

client_actor spawn_client_actor(caf::actor_system& sys, client_id id, client_kind kind,
                                client_settings settings, gateway_actor gateway,
                                subscriber_actor remote, distro_actor distro,
                                std::shared_ptr<const client_seed> seed) {
  return sys.spawn(client_behavior, std::move(id), kind, std::move(settings), std::move(gateway),
                   std::move(remote), std::move(distro), std::move(seed));
}

} // namespace registry
