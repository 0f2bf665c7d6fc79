#include "actors/grpc/grpc_connection_actor.hpp"

#include <deque>
#include <functional>
#include <map>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/common/clock.hpp"
#include "actors/common/handlers.hpp"
#include "actors/common/log.hpp"
#include "messages/convert.hpp"
#include "messages/model_inspect.hpp"
#include "messages/registry.pb.h"
#include "messages/type_ids.hpp"

namespace registry::grpc_api {

namespace {

using namespace wire;

/// One session request of a call: the calls that change the session run as a list of these.
struct step {
  enum class op { reg, dereg, sub, unsub } what = op::reg;
  envelope msg;
};

struct pending_push {
  caf::typed_response_promise<envelope> promise;
  time_ms sent_ms = 0;
  time_ms deadline_ms = 0;
};

struct connection_state {
  static inline const char* name = "grpc_connection";
  std::shared_ptr<grpc_link> link;
  node_supervisor_actor supervisor;
  connection_settings settings;
  gateway_actor gateway;
  session_actor session;
  bool open = false;
  bool closed = false;
  /// Calls that change the session wait here while one runs (and until the session is open).
  std::deque<std::pair<std::uint64_t, request>> queued;
  bool busy = false;
  /// Calls that do not change the session, parked until the session is open.
  std::vector<std::uint64_t> early;
  /// What this connection published per service (Nacos: one instance or one batch).
  std::map<service_key, std::vector<instance>> held;
  /// Subscriptions: (service, clusters as subscribed) -> the client's own clusters text.
  std::map<std::pair<service_key, std::string>, std::string> subscriptions;
  /// The last lastRefTime sent per service: what goes out is always newer (Go and Python drop a
  /// push that is not).
  std::map<service_key, std::int64_t> last_ref;
  std::unordered_map<std::string, pending_push> pushes;
  std::uint64_t next_request_id = 0;
  std::string probe_id;
  time_ms probe_deadline_ms = 0;
  time_ms last_active_ms = 0;
};

using connection_actor_t = grpc_connection_actor::stateful_pointer<connection_state>;

std::chrono::milliseconds ms(std::int64_t x) {
  return std::chrono::milliseconds{x};
}

/// Nacos's error code for a node Error.
int nacos_code(const v1::Error& err) {
  switch (err.code()) {
    case v1::Error::INVALID_ARGUMENT:
    case v1::Error::NOT_FOUND:
      return code::bad_param;
    case v1::Error::LIMIT_EXCEEDED:
      return code::over_threshold;
    case v1::Error::UNAUTHORIZED:
      return code::no_right;
    case v1::Error::UNAVAILABLE:
      return code::server_starting;
    default:
      return code::server_error;
  }
}

message error_of(const v1::Error& err) {
  auto text = err.field().empty() ? err.message() : err.field() + ": " + err.message();
  return error_response(nacos_code(err), text);
}

/// The reply's Error, if it is one.
bool refused(const envelope& reply, v1::Error& err) {
  return reply.kind == v1::Error::descriptor()->full_name() && unpack(reply, err);
}

std::string joined(const std::vector<std::string>& clusters) {
  std::string out;
  for (auto& c : clusters)
    out += (out.empty() ? "" : ",") + c;
  return out;
}

std::int64_t next_ref_time(connection_actor_t self, const service_key& key, std::int64_t given) {
  auto& st = self->state;
  auto now = std::max<std::int64_t>(given, system_now_ms());
  auto i = st.last_ref.find(key);
  if (i == st.last_ref.end()) {
    // Bounded: beyond the subscriptions, forget services that are not subscribed.
    if (st.last_ref.size() >= st.settings.subscriptions_max * 2) {
      for (auto j = st.last_ref.begin(); j != st.last_ref.end();) {
        auto s = st.subscriptions.lower_bound({j->first, ""});
        bool subscribed = s != st.subscriptions.end() && s->first.first == j->first;
        j = subscribed ? std::next(j) : st.last_ref.erase(j);
      }
    }
    st.last_ref.emplace(key, now);
    return now;
  }
  i->second = std::max(now, i->second + 1);
  return i->second;
}

std::string info_json(connection_actor_t self, const v1::ServiceInfo& info,
                      const service_key& key, const std::string& clusters_text) {
  auto ref = next_ref_time(self, key, info.last_ref_time());
  return service_info_json(info, clusters_text, ref, self->state.settings.cache_millis);
}

/// An empty ServiceInfo of `key` (the answer to an unsubscribe, as Nacos still sends one).
v1::ServiceInfo empty_info(const service_key& key) {
  v1::ServiceInfo info;
  info.set_name(key.grouped_name());
  info.set_group_name(key.group);
  return info;
}

envelope register_request(const service_key& key, const instance& x) {
  v1::RegisterRequest req;
  to_wire(key, *req.mutable_service());
  to_wire(x, *req.mutable_instance());
  return pack(req);
}

envelope batch_register_request(const service_key& key, const std::vector<instance>& xs) {
  v1::BatchRegisterRequest req;
  to_wire(key, *req.mutable_service());
  for (auto& x : xs)
    to_wire(x, *req.add_instances());
  return pack(req);
}

envelope deregister_request(const service_key& key, const instance& x, bool persistent) {
  v1::DeregisterRequest req;
  to_wire(key, *req.mutable_service());
  req.set_ip(x.ip);
  req.set_port(x.port);
  req.set_cluster(x.cluster);
  req.set_persistent(persistent);
  return pack(req);
}

envelope subscribe_request(const service_key& key, const std::vector<std::string>& clusters) {
  v1::SubscribeRequest req;
  to_wire(key, *req.mutable_service());
  for (auto& c : clusters)
    req.add_clusters(c);
  return pack(req);
}

void close_connection(connection_actor_t self, const std::string& why) {
  auto& st = self->state;
  if (st.closed)
    return;
  st.closed = true;
  log().info("gRPC connection {} from {} closes: {}", st.link->connection_id(),
             st.link->remote_ip(), why);
  st.link->close();
}

/// Runs `steps` one after another at the session; `done` gets the last reply or the first error,
/// and how many steps succeeded before it.
void run_steps(connection_actor_t self, std::shared_ptr<std::vector<step>> steps, std::size_t i,
               std::function<void(envelope, std::size_t)> done) {
  auto& st = self->state;
  if (i >= steps->size())
    return done(pack(v1::Ack{}), i);
  auto next = [=](envelope& reply) {
    v1::Error err;
    if (refused(reply, err))
      return done(std::move(reply), i);
    if (i + 1 == steps->size())
      return done(std::move(reply), i + 1);
    run_steps(self, steps, i + 1, done);
  };
  auto fail = [=](caf::error& err) {
    done(pack(make_error(v1::Error::UNAVAILABLE, "",
                         "the session did not answer: " + self->system().render(err))),
         i);
  };
  auto timeout = ms(st.settings.request_timeout_ms);
  auto& s = (*steps)[i];
  switch (s.what) {
    case step::op::reg:
      self->request(st.session, timeout, reg_atom_v, s.msg).then(next, fail);
      break;
    case step::op::dereg:
      self->request(st.session, timeout, dereg_atom_v, s.msg).then(next, fail);
      break;
    case step::op::sub:
      self->request(st.session, timeout, sub_atom_v, s.msg).then(next, fail);
      break;
    case step::op::unsub:
      self->request(st.session, timeout, unsub_atom_v, s.msg).then(next, fail);
      break;
  }
}

void run_next(connection_actor_t self);

/// A call that changes the session is done: answer it, then run the next one.
void finish_session_call(connection_actor_t self, std::uint64_t id, message m) {
  self->state.link->answer(id, std::move(m));
  self->state.busy = false;
  run_next(self);
}

/// InstanceRequest / BatchInstanceRequest: what the connection holds in the service becomes the
/// request's set, as one batch register; a deregister drops the connection's instances there.
void change_instances(connection_actor_t self, std::uint64_t id, request& req) {
  auto& st = self->state;
  std::vector<instance> target;
  if (req.what == kind::batch_instance || req.op == instance_op::register_instance)
    target = req.instances;
  auto steps = std::make_shared<std::vector<step>>();
  if (!target.empty()) {
    // One batch register: the session's instances in the service become `target` in one change
    // (one Distro revision, one push per subscriber), or nothing changes.
    steps->push_back({step::op::reg, batch_register_request(req.key, target)});
    auto key = req.key;
    auto what = req.what;
    auto op = req.op;
    run_steps(self, steps, 0, [=](envelope reply, std::size_t completed) {
      auto& st = self->state;
      if (completed == 1)
        st.held[key] = target;
      v1::Error err;
      if (refused(reply, err))
        return finish_session_call(self, id, error_of(err));
      finish_session_call(self, id, instance_response(what, op));
    });
    return;
  }
  // A deregister: each instance the connection holds in the service goes.
  std::vector<instance> old;
  if (auto h = st.held.find(req.key); h != st.held.end())
    old = h->second;
  for (auto& x : old)
    steps->push_back({step::op::dereg, deregister_request(req.key, x, false)});
  auto key = req.key;
  auto what = req.what;
  auto op = req.op;
  run_steps(self, steps, 0, [=](envelope reply, std::size_t completed) {
    auto& st = self->state;
    // What the session holds now: the instances not yet deregistered.
    std::vector<instance> now(old.begin() + static_cast<std::ptrdiff_t>(completed), old.end());
    if (now.empty())
      st.held.erase(key);
    else
      st.held[key] = std::move(now);
    v1::Error err;
    if (refused(reply, err))
      return finish_session_call(self, id, error_of(err));
    finish_session_call(self, id, instance_response(what, op));
  });
}

void subscribe(connection_actor_t self, std::uint64_t id, request& req) {
  auto& st = self->state;
  auto canonical = joined(req.cluster_list);
  auto sub_key = std::make_pair(req.key, canonical);
  if (req.subscribe && !st.subscriptions.count(sub_key)
      && st.subscriptions.size() >= st.settings.subscriptions_max)
    return finish_session_call(
      self, id,
      error_response(code::over_threshold,
                     "clusters: this connection holds "
                       + std::to_string(st.subscriptions.size())
                       + " subscriptions, the limit is "
                       + std::to_string(st.settings.subscriptions_max)));
  auto steps = std::make_shared<std::vector<step>>();
  steps->push_back({req.subscribe ? step::op::sub : step::op::unsub,
                    subscribe_request(req.key, req.cluster_list)});
  auto key = req.key;
  auto text = req.clusters;
  bool on = req.subscribe;
  run_steps(self, steps, 0, [=](envelope reply, std::size_t) {
    auto& st = self->state;
    v1::Error err;
    if (refused(reply, err))
      return finish_session_call(self, id, error_of(err));
    if (!on) {
      st.subscriptions.erase(sub_key);
      return finish_session_call(
        self, id, subscribe_service_response(info_json(self, empty_info(key), key, text)));
    }
    st.subscriptions[sub_key] = text;
    v1::ServiceInfo info;
    if (!unpack(reply, info))
      info = empty_info(key);
    finish_session_call(self, id, subscribe_service_response(info_json(self, info, key, text)));
  });
}

/// The error handler of a request a call `id` made to the node: the call fails with 500.
std::function<void(caf::error&)> unanswered(connection_actor_t self, std::uint64_t id) {
  return [=](caf::error& err) {
    self->state.link->answer(id, error_response(code::server_error,
                                                "the node did not answer: "
                                                  + self->system().render(err)));
  };
}

/// PersistentInstanceRequest: a stateless write through the gateway to Raft, not tied to this
/// connection (as Nacos: a persistent instance outlives it).
void persistent_write(connection_actor_t self, std::uint64_t id, request& req) {
  auto& st = self->state;
  auto& x = req.instances.front();
  auto done = [=](envelope& reply) {
    v1::Error err;
    if (refused(reply, err))
      return self->state.link->answer(id, error_of(err));
    self->state.link->answer(id, instance_response(kind::persistent_instance, req.op));
  };
  auto fail = unanswered(self, id);
  auto timeout = ms(st.settings.request_timeout_ms);
  if (req.op == instance_op::register_instance)
    self->request(st.gateway, timeout, reg_atom_v, register_request(req.key, x)).then(done, fail);
  else
    self->request(st.gateway, timeout, dereg_atom_v, deregister_request(req.key, x, true))
      .then(done, fail);
}

void query(connection_actor_t self, std::uint64_t id, request& req) {
  auto& st = self->state;
  v1::QueryRequest q;
  to_wire(req.key, *q.mutable_service());
  for (auto& c : req.cluster_list)
    q.add_clusters(c);
  q.set_healthy_only(req.healthy_only);
  auto key = req.key;
  auto text = req.clusters;
  self->request(st.gateway, ms(st.settings.request_timeout_ms), query_atom_v, pack(q))
    .then(
      [=](envelope& reply) {
        v1::Error err;
        if (refused(reply, err))
          return self->state.link->answer(id, error_of(err));
        // The hottest call: the text of an unchanged service comes from the shared cache.
        std::shared_ptr<const service_info_parts> parts;
        if (reply.kind == v1::ServiceInfo::descriptor()->full_name())
          parts = cached_service_info(reply.payload, text, self->state.settings.cache_millis);
        if (!parts)
          return self->state.link->answer(
            id, query_service_response(info_json(self, empty_info(key), key, text)));
        auto ref = next_ref_time(self, parts->key, parts->last_ref_time_ms);
        self->state.link->answer(id, query_service_response(parts->text(ref)));
      },
      unanswered(self, id));
}

void list_services(connection_actor_t self, std::uint64_t id, request& req) {
  auto& st = self->state;
  v1::ListServicesRequest q;
  q.set_namespace_id(req.key.namespace_id);
  q.set_group(req.key.group);
  q.set_page(req.page_no);
  q.set_size(req.page_size);
  self->request(st.gateway, ms(st.settings.request_timeout_ms), list_atom_v, pack(q))
    .then(
      [=](envelope& reply) {
        v1::Error err;
        if (refused(reply, err))
          return self->state.link->answer(id, error_of(err));
        v1::ServiceList list;
        unpack(reply, list);
        std::vector<std::string> names(list.services().begin(), list.services().end());
        self->state.link->answer(id, service_list_response(list.count(), names));
      },
      unanswered(self, id));
}

bool changes_session(const request& req) {
  return req.what == kind::instance || req.what == kind::batch_instance
         || req.what == kind::subscribe_service;
}

void start_session_call(connection_actor_t self, std::uint64_t id, request& req) {
  self->state.busy = true;
  if (req.what == kind::subscribe_service)
    subscribe(self, id, req);
  else
    change_instances(self, id, req);
}

void run_next(connection_actor_t self) {
  auto& st = self->state;
  if (st.busy || st.queued.empty())
    return;
  auto [id, req] = std::move(st.queued.front());
  st.queued.pop_front();
  start_session_call(self, id, req);
}

void on_call(connection_actor_t self, std::uint64_t id) {
  auto& st = self->state;
  st.last_active_ms = actor_now_ms(self);
  if (!st.open) {
    // The session opens: keep the order of the calls for then.
    if (st.early.size() + st.queued.size() >= st.settings.calls_queued_max) {
      request req;
      if (st.link->take_call(id, req))
        st.link->answer(id, error_response(code::over_threshold,
                                           "too many calls while the connection opens"));
      return;
    }
    st.early.push_back(id);
    return;
  }
  request req;
  if (!st.link->take_call(id, req))
    return;
  switch (req.what) {
    case kind::health_check:
      return st.link->answer(id, health_check_response());
    case kind::service_query:
      return query(self, id, req);
    case kind::service_list:
      return list_services(self, id, req);
    case kind::persistent_instance:
      return persistent_write(self, id, req);
    default:
      break;
  }
  if (!changes_session(req))
    return st.link->answer(id, error_response(code::no_handler, std::string{"RequestHandler Not "
                                                                            "Found: "}
                                                                  + type_name(req.what)));
  if (st.queued.size() >= st.settings.calls_queued_max)
    return st.link->answer(id, error_response(code::over_threshold,
                                              "too many calls queued on this connection"));
  if (!st.busy && st.queued.empty())
    return start_session_call(self, id, req);
  st.queued.emplace_back(id, std::move(req));
}

/// A push from a service actor: NotifySubscriberRequest on the stream, acknowledged by the
/// client's NotifySubscriberResponse (or failed after push_ack_timeout_ms).
caf::result<envelope> on_push(connection_actor_t self, const envelope& env) {
  auto& st = self->state;
  v1::SubscriptionDropped dropped;
  if (env.kind == v1::SubscriptionDropped::descriptor()->full_name() && unpack(env, dropped)) {
    // The client cannot be told of a dropped subscription in Nacos's protocol: move it to
    // another node (or here again), where its redo subscribes anew.
    log().warn("gRPC connection {}: subscription to {} dropped ({}); asking the client to reconnect",
               st.link->connection_id(), bounded(dropped.service().service()),
               bounded(dropped.reason()));
    self->send(self, grpc_reset_atom_v, std::string{"a subscription was dropped"});
    return pack(v1::Ack{});
  }
  v1::ServiceInfo info;
  if (!unpack(env, info))
    return pack(make_error(v1::Error::INVALID_ARGUMENT, "push", "expected a ServiceInfo"));
  if (st.closed)
    return pack(v1::Ack{}); // a gone connection counts as delivered (dropped)
  service_key key;
  key.namespace_id = info.namespace_id();
  key.group = info.group_name();
  key.name = info.name().substr(info.name().find("@@") == std::string::npos
                                  ? 0
                                  : info.name().find("@@") + 2);
  if (key.namespace_id.empty())
    key.namespace_id = "public";
  auto s = st.subscriptions.find({key, info.clusters()});
  std::string text = s != st.subscriptions.end() ? s->second : info.clusters();
  auto request_id = std::to_string(++st.next_request_id);
  auto now = actor_now_ms(self);
  if (!st.link->write(notify_subscriber_request(request_id, info_json(self, info, key, text))))
    return pack(v1::Ack{});
  auto rp = self->make_response_promise<envelope>();
  st.pushes.emplace(request_id, pending_push{rp, now, now + st.settings.push_ack_timeout_ms});
  return rp;
}

void on_answer(connection_actor_t self, std::int32_t what, const std::string& request_id,
               std::int32_t result_code) {
  auto& st = self->state;
  auto now = actor_now_ms(self);
  st.last_active_ms = now;
  switch (static_cast<kind>(what)) {
    case kind::notify_subscriber_response: {
      auto i = st.pushes.find(request_id);
      if (i == st.pushes.end())
        return;
      auto seconds = static_cast<double>(now - i->second.sent_ms) / 1000.0;
      if (result_code == 200) {
        i->second.promise.deliver(pack(v1::Ack{}));
        st.link->push_done("acked", seconds);
      } else {
        i->second.promise.deliver(pack(make_error(
          v1::Error::UNAVAILABLE, "", "the client refused the push (resultCode "
                                        + std::to_string(result_code) + ")")));
        st.link->push_done("failed", seconds);
      }
      st.pushes.erase(i);
      return;
    }
    case kind::client_detection_response:
      if (request_id == st.probe_id)
        st.probe_id.clear();
      return;
    default:
      return;
  }
}

void on_tick(connection_actor_t self) {
  auto& st = self->state;
  if (st.closed)
    return;
  auto now = actor_now_ms(self);
  for (auto i = st.pushes.begin(); i != st.pushes.end();) {
    if (i->second.deadline_ms > now) {
      ++i;
      continue;
    }
    i->second.promise.deliver(pack(make_error(
      v1::Error::UNAVAILABLE, "",
      "no NotifySubscriberResponse within " + std::to_string(st.settings.push_ack_timeout_ms)
        + " ms")));
    st.link->push_done("failed", static_cast<double>(now - i->second.sent_ms) / 1000.0);
    i = st.pushes.erase(i);
  }
  if (!st.probe_id.empty()) {
    if (now >= st.probe_deadline_ms)
      return close_connection(self, "no ClientDetectionResponse within "
                                      + std::to_string(st.settings.detection_timeout_ms) + " ms");
  } else if (now - st.last_active_ms >= st.settings.idle_timeout_ms) {
    st.probe_id = std::to_string(++st.next_request_id);
    st.probe_deadline_ms = now + st.settings.detection_timeout_ms;
    if (!st.link->write(client_detection_request(st.probe_id)))
      return close_connection(self, "the stream is gone");
  }
}

void reset(connection_actor_t self, const std::string& why) {
  auto& st = self->state;
  if (st.closed)
    return;
  st.link->write(connect_reset_request(std::to_string(++st.next_request_id), "", "",
                                       st.link->connection_id()));
  close_connection(self, why);
}

/// Opens the session: the gateway from the supervisor, then Hello with this actor as the client's.
void open_session(connection_actor_t self) {
  auto& st = self->state;
  auto timeout = ms(st.settings.request_timeout_ms);
  self->request(st.supervisor, timeout, caf::get_atom_v)
    .then(
      [=](gateway_actor gateway) {
        if (!gateway)
          return reset(self, "the node is restarting its gateway");
        self->state.gateway = gateway;
        v1::Hello hello;
        hello.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
        hello.set_client_name("gRPC " + self->state.link->connection_id());
        self->request(gateway, timeout, hello_atom_v, pack(hello),
                      caf::actor_cast<caf::actor>(self))
          .then(
            [=](envelope& reply, caf::actor& session) {
              auto& st = self->state;
              v1::Error err;
              if (refused(reply, err) || !session)
                return reset(self, "the node refused the session: " + err.message());
              st.session = caf::actor_cast<session_actor>(session);
              self->monitor(session);
              st.open = true;
              auto early = std::move(st.early);
              st.early.clear();
              for (auto id : early)
                on_call(self, id);
            },
            [=](caf::error& err) {
              reset(self, "no session: " + self->system().render(err));
            });
      },
      [=](caf::error& err) { reset(self, "no gateway: " + self->system().render(err)); });
}

/// The gRPC server's threads send anonymously (ids, requestIds, the end of the stream). This
/// actor's handle never leaves the process (the gateway, its client actor and service actors hold
/// it), so an anonymous message is the server's; a message from another node is refused.
bool from_server(connection_actor_t self, const char* what) {
  const auto& sender = self->current_sender();
  if (sender == nullptr || sender->node() == self->node())
    return true;
  log_foreign("grpc_connection", what, sender_text(self));
  return false;
}

grpc_connection_actor::behavior_type connection_behavior(connection_actor_t self,
                                                         std::shared_ptr<grpc_link> link,
                                                         node_supervisor_actor supervisor,
                                                         connection_settings settings) {
  auto& st = self->state;
  st.link = std::move(link);
  st.supervisor = std::move(supervisor);
  st.settings = settings;
  st.last_active_ms = actor_now_ms(self);
  install_default_handlers(self, "grpc_connection");
  self->set_down_handler([=](caf::down_msg& dm) {
    if (!trusted_down(self, dm))
      return;
    if (dm.source == self->state.session.address())
      reset(self, "its session ended (" + self->system().render(dm.reason) + ")");
  });
  auto tick_ms = std::max<std::int64_t>(
    10, std::min({settings.idle_timeout_ms, settings.detection_timeout_ms,
                  settings.push_ack_timeout_ms, std::int64_t{1000}})
          / 2);
  self->delayed_send(self, ms(tick_ms), tick_atom_v);
  open_session(self);
  return {
    [=](push_atom, const envelope& env) -> caf::result<envelope> {
      if (!from_this_node(self))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "push", "not from this node"));
      return on_push(self, env);
    },
    [=](grpc_call_atom, std::uint64_t id) {
      if (from_server(self, "call"))
        on_call(self, id);
    },
    [=](grpc_answer_atom, std::int32_t what, const std::string& request_id, std::int32_t rc) {
      if (from_server(self, "answer"))
        on_answer(self, what, request_id, rc);
    },
    [=](grpc_close_atom) {
      if (!from_server(self, "close"))
        return;
      auto& st = self->state;
      st.closed = true;
      for (auto& [id, p] : st.pushes)
        p.promise.deliver(pack(v1::Ack{})); // gone: dropped, as Nacos counts it
      st.pushes.clear();
      // The session ends with this actor (the client actor monitors it).
      self->quit();
    },
    [=](grpc_reset_atom, const std::string& why) {
      if (from_server(self, "reset"))
        reset(self, why);
    },
    [=](tick_atom) {
      if (!local_only(self, "grpc_connection", "tick"))
        return;
      on_tick(self);
      if (!self->state.closed)
        self->delayed_send(self, ms(tick_ms), tick_atom_v);
    },
  };
}

} // namespace

grpc_connection_actor spawn_grpc_connection(caf::actor_system& sys, std::shared_ptr<grpc_link> link,
                                            node_supervisor_actor supervisor,
                                            connection_settings settings) {
  return sys.spawn(connection_behavior, std::move(link), std::move(supervisor), settings);
}

} // namespace registry::grpc_api
