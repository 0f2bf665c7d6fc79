#include "actors/gateway/gateway_actor.hpp"

#include <algorithm>
#include <map>
#include <unordered_set>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/client/client_actor.hpp"
#include "actors/common/clock.hpp"
#include "actors/common/delegate.hpp"
#include "actors/common/handlers.hpp"
#include "actors/common/log.hpp"
#include "actors/distro/distro_protocol.hpp"
#include "actors/member/member_tracker.hpp"
#include "actors/raft/persistent_store.hpp"
#include "actors/service/service_actor.hpp"
#include "actors/service/service_index.hpp"
#include "messages/convert.hpp"
#include "messages/raft.pb.h"
#include "messages/model_inspect.hpp"
#include "messages/type_ids.hpp"
#include "messages/validate.hpp"

namespace registry {

namespace {

using namespace wire;

struct service_entry {
  service_actor handle;
  std::uint64_t instances = 0;
  std::uint64_t subscribers = 0;
  /// A message went to the service since the last sweep (see sweep_services).
  bool touched = true;
};

struct gateway_state {
  static inline const char* name = "gateway";
  /// Distro traffic per peer, as the distro actor last reported it.
  v1::DistroCounters distro_counters;

  std::shared_ptr<const node_config> cfg;
  distro_actor distro;
  /// The raft actor (none without data_dir), and the role and leader it last reported.
  raft_port_actor raft;
  std::string raft_role = "off";
  std::string raft_leader;
  std::unordered_map<client_id, client_actor> clients;
  /// Clients created as replicas (bounded by replica_clients_max, the others by clients_max).
  std::unordered_set<client_id> replicas;
  /// The client process of each session, and how many sessions each process holds.
  std::unordered_map<client_id, caf::node_id> session_nodes;
  std::unordered_map<caf::node_id, std::size_t> sessions_per_node;
  std::map<service_key, service_entry> services;
  /// Which child is which, for the down handler.
  std::unordered_map<caf::actor_addr, client_id> client_by_addr;
  std::unordered_map<caf::actor_addr, service_key> service_by_addr;
  /// Clients whose actor was forgotten, with the number of resync answers outstanding. An answer
  /// for a client a request re-created meanwhile (it is no longer here) is ignored: that client is
  /// live and announces itself.
  std::unordered_map<client_id, std::size_t> resyncs;
  std::uint64_t session_counter = 0;
  time_ms started_ms = system_now_ms();
  /// The last ClusterCounts and when it was made: counting is a pass over every client, so
  /// consoles polling at once share one pass per poll interval.
  std::optional<envelope> cluster_counts;
  time_ms cluster_counts_ms = 0;
  /// The cluster as the distro actor last reported it.
  std::vector<std::string> routing;
  bool distro_ready = false;
  bool raft_ready = true;
  /// Ready: Distro loaded the cluster's data and Raft (with data_dir) caught up since the start.
  bool ready() const {
    return distro_ready && raft_ready;
  }
  std::vector<std::string> member_addresses;
  std::vector<std::string> member_states;
  std::vector<std::string> member_nodes;
  std::vector<std::string> member_problems;
  /// Protect thresholds written through Raft (bounded by the state machine:
  /// defaults::persistent_thresholds_max); they override discovery.service_thresholds.
  std::map<service_key, double> stored_thresholds;
};

using gateway_actor_t = gateway_actor::stateful_base<gateway_state>;

envelope error_reply(v1::Error::Code code, const std::string& field, const std::string& message) {
  return pack(make_error(code, field, message));
}

client_settings make_client_settings(const node_config& cfg) {
  client_settings result;
  result.limits.instances_max = cfg.limits.instances_per_client_max;
  result.limits.subscriptions_max = defaults::subscriptions_per_client_max;
  result.limits.unhealthy_timeout_ms = cfg.heartbeat.unhealthy_timeout_ms;
  result.limits.delete_timeout_ms = cfg.heartbeat.delete_timeout_ms;
  result.check_interval_ms = cfg.heartbeat.check_interval_ms;
  result.request_timeout_ms = defaults::request_timeout_ms;
  return result;
}

/// The protect threshold of `key`: off everywhere when discovery.protection_enabled is false;
/// else the one written through Raft, else the YAML's.
double threshold_for(const gateway_state& st, const service_key& key) {
  if (!st.cfg->discovery.protection_enabled)
    return -1.0;
  auto i = st.stored_thresholds.find(key);
  return i != st.stored_thresholds.end() ? i->second
                                         : st.cfg->threshold_for(key.namespace_id, key.grouped_name());
}

service_settings make_service_settings(const gateway_state& st, const service_key& key) {
  const auto& cfg = *st.cfg;
  service_settings result;
  result.protect_threshold = threshold_for(st, key);
  result.cache_millis = cfg.discovery.cache_millis;
  result.push_enabled = cfg.push.enabled;
  result.push_timeout_ms = cfg.push.timeout_ms;
  result.push.merge_window_ms = cfg.push.merge_window_ms;
  result.push.retry_delay_ms = cfg.push.retry_delay_ms;
  result.push.drop_after_ms = cfg.push.drop_after_ms;
  result.instances_max = cfg.limits.instances_per_service_max;
  result.subscribers_max = cfg.limits.subscribers_per_service_max;
  return result;
}

/// The service actor for `key`, spawned on first use; an invalid handle when services_max is reached.
service_actor service_for(gateway_actor_t* self, const service_key& key) {
  auto& st = self->state;
  auto i = st.services.find(key);
  if (i != st.services.end()) {
    i->second.touched = true;
    return i->second.handle;
  }
  if (st.services.size() >= st.cfg->limits.services_max)
    return {};
  auto handle = spawn_service_actor(self->system(), key, make_service_settings(st, key),
                                    caf::actor_cast<gateway_actor>(self));
  self->monitor(handle);
  st.service_by_addr.emplace(handle.address(), key);
  st.services.emplace(key, service_entry{handle, 0, 0});
  log().debug("gateway created service {}", bounded(key.to_string()));
  return handle;
}

envelope services_full(gateway_actor_t* self) {
  return error_reply(v1::Error::LIMIT_EXCEEDED, "serviceName",
                     "the node holds " + std::to_string(self->state.services.size())
                       + " services, the limit is "
                       + std::to_string(self->state.cfg->limits.services_max));
}

/// The client actor for `id`, spawned on first use; an invalid handle when clients_max is reached.
client_actor client_for(gateway_actor_t* self, const client_id& id, client_kind kind,
                        subscriber_actor remote,
                        std::shared_ptr<const client_seed> seed = nullptr) {
  auto& st = self->state;
  auto i = st.clients.find(id);
  if (i != st.clients.end())
    return i->second;
  auto replicas = st.replicas.size();
  if (kind == client_kind::replica ? replicas >= st.cfg->limits.replica_clients_max
                                   : st.clients.size() - replicas >= st.cfg->limits.clients_max)
    return {};
  if (kind == client_kind::replica)
    st.replicas.insert(id);
  if (kind == client_kind::session && remote) {
    st.session_nodes.emplace(id, remote.node());
    ++st.sessions_per_node[remote.node()];
  }
  auto handle = spawn_client_actor(self->system(), id, kind, make_client_settings(*st.cfg),
                                   caf::actor_cast<gateway_actor>(self), std::move(remote), st.distro,
                                   std::move(seed));
  self->monitor(handle);
  st.client_by_addr.emplace(handle.address(), id);
  st.clients.emplace(id, handle);
  if (kind == client_kind::replica)
    log().debug("gateway created replica client {}", bounded(id));
  else
    log().debug("gateway connected {} client {}", to_string(kind), bounded(id));
  return handle;
}

envelope clients_full(gateway_actor_t* self) {
  auto& st = self->state;
  return error_reply(v1::Error::LIMIT_EXCEEDED, "client",
                     "the node holds " + std::to_string(st.clients.size() - st.replicas.size())
                       + " clients, the limit is "
                       + std::to_string(st.cfg->limits.clients_max));
}

/// Forgets the bookkeeping of a client that is gone.
void forget_client(gateway_actor_t* self, const client_id& id) {
  auto& st = self->state;
  st.replicas.erase(id);
  auto i = st.session_nodes.find(id);
  if (i == st.session_nodes.end())
    return;
  auto j = st.sessions_per_node.find(i->second);
  if (j != st.sessions_per_node.end() && --j->second == 0)
    st.sessions_per_node.erase(j);
  st.session_nodes.erase(i);
}

/// The gateway forgot the actor of `id`: asks Distro what it holds of the client now. Distro
/// answers after every op it sent before, so the answer (a replace or a remove, see
/// distro_protocol::resync) settles whatever crossed the ending actor.
void resync_client(gateway_actor_t* self, const client_id& id) {
  auto& st = self->state;
  if (!st.distro)
    return;
  ++st.resyncs[id];
  self->send(st.distro, resync_atom_v, id);
}

/// Carries out a Distro op for `id`: to its actor; only a replace with content creates one.
void apply_replica_op(gateway_actor_t* self, std::int32_t op, const client_id& id,
                      std::uint64_t revision, client_services& services, bool local,
                      client_beats& beats) {
  using kind = distro_protocol::local_op::kind;
  auto& st = self->state;
  auto i = st.clients.find(id);
  client_actor handle;
  if (i != st.clients.end()) {
    handle = i->second;
  } else {
    // Only a replace creates a client; remove/take-over/hand-over of an unknown one is moot.
    if (op != static_cast<std::int32_t>(kind::replace) || services.empty())
      return;
    handle = client_for(self, id, local ? client_kind::heartbeat : client_kind::replica, {});
    if (!handle) {
      log().error("gateway refused replica {}: client limit reached", bounded(id));
      return;
    }
  }
  self->send(handle, replica_atom_v, op, revision, std::move(services), local, std::move(beats));
}

/// Carries out Distro ops in order, as apply_replica_op one by one, except that a replace creating
/// a client creates its actor with the content (client_seed), and the content of every client
/// created here goes to each service actor in one message: a snapshot chunk is indexed with one
/// message per service, not one per client and service. The service actors get it before anything
/// the new client actors send through the gateway later, and before any later barrier.
void apply_replica_ops(gateway_actor_t* self, std::vector<distro_protocol::local_op>& ops) {
  using kind = distro_protocol::local_op::kind;
  auto& st = self->state;
  std::map<service_key, service_entries_ptr> by_service;
  for (auto& op : ops) {
    auto what = static_cast<std::int32_t>(op.what);
    if (st.clients.count(op.id) > 0 || op.what != kind::replace || op.services.empty()) {
      apply_replica_op(self, what, op.id, op.revision, op.services, op.local, op.beats);
      continue;
    }
    for (auto& [key, xs] : op.services) {
      auto& entries = by_service[key];
      if (!entries)
        entries = std::make_shared<service_entries>();
      entries->emplace_back(op.id, xs);
    }
    auto seed = std::make_shared<client_seed>(
      client_seed{op.revision, std::move(op.services), std::move(op.beats)});
    auto handle = client_for(self, op.id, op.local ? client_kind::heartbeat : client_kind::replica,
                             {}, std::move(seed));
    if (!handle) {
      log().error("gateway refused replica {}: client limit reached", bounded(op.id));
      for (auto& [key, entries] : by_service) // its entries must not reach the services
        if (!entries->empty() && entries->back().first == op.id)
          entries->pop_back();
    }
  }
  for (auto& [key, entries] : by_service) {
    if (entries->empty())
      continue;
    auto handle = service_for(self, key);
    if (!handle) {
      log().error("gateway refused {} replicas in service {}: {}", entries->size(),
                  bounded(key.to_string()), "the service limit is reached");
      continue;
    }
    self->send(handle, svc_bulk_atom_v, std::move(entries));
  }
}

/// Wraps a heartbeat client's request for the responsible node; `field` selects the oneof member.
template <class Request>
envelope make_forward(gateway_actor_t* self, const Request& req,
                      Request* (v1::ForwardedRequest::*field)()) {
  v1::ForwardedRequest fwd;
  fwd.set_source(self->state.cfg->listen.to_string());
  *(fwd.*field)() = req;
  return pack(fwd);
}

inline auto forward_field(const v1::RegisterRequest*) {
  return &v1::ForwardedRequest::mutable_register_;
}
inline auto forward_field(const v1::BeatRequest*) {
  return &v1::ForwardedRequest::mutable_beat;
}
inline auto forward_field(const v1::DeregisterRequest*) {
  return &v1::ForwardedRequest::mutable_deregister;
}

/// Routes a heartbeat client's request (reg, beat, dereg) to its client actor, or forwards it once
/// to the responsible node when that is another node (`forwarded` requests are never forwarded).
template <class Request, class Atom>
caf::result<envelope> route_heartbeat(gateway_actor_t* self, Atom atom, const envelope& env,
                                      bool create, bool forwarded = false) {
  Request req;
  if (!unpack(env, req))
    return error_reply(v1::Error::INVALID_ARGUMENT, "request",
                       std::string{"malformed "} + Request::descriptor()->name());
  std::string ip;
  std::uint32_t port = 0;
  if constexpr (std::is_same_v<Request, v1::DeregisterRequest>) {
    ip = req.ip();
    port = req.port();
  } else {
    ip = req.instance().ip();
    port = req.instance().port();
  }
  if (ip.empty())
    return error_reply(v1::Error::INVALID_ARGUMENT, "ip", "Parameter 'ip' is missing");
  if (port == 0 || port > 65535)
    return error_reply(v1::Error::INVALID_ARGUMENT, "port",
                       "Param 'port' is illegal, the value should be between 1 and 65535.");
  auto id = heartbeat_client_id(ip, port);
  auto& st = self->state;
  if (!forwarded && st.distro && !st.routing.empty()) {
    auto owner = responsible_node(st.routing, id);
    if (!owner.empty() && owner != st.cfg->listen.to_string())
      return relay_envelope(self, st.distro,
                            std::chrono::milliseconds(2 * defaults::request_timeout_ms),
                            forward_atom_v, owner, make_forward(self, req, forward_field(&req)));
  }
  if (!create) {
    auto i = st.clients.find(id);
    if (i == st.clients.end()) {
      v1::Ack ack;
      ack.set_detail("no such instance");
      return pack(ack);
    }
    return delegate_envelope(self, i->second, atom, env);
  }
  if (!st.clients.count(id))
    st.resyncs.erase(id); // a live client again: what Distro answers about the old one is moot
  auto handle = client_for(self, id, client_kind::heartbeat, {});
  if (!handle)
    return clients_full(self);
  return delegate_envelope(self, handle, atom, env);
}

/// The node that owns a client as the console shows it: a session's node (its id starts with it),
/// the responsible node of a heartbeat client, "raft" for persistent instances.
std::string owner_of(gateway_actor_t* self, const client_id& id) {
  auto& st = self->state;
  if (is_persistent_client(id))
    return "raft";
  if (is_heartbeat_client(id)) {
    auto owner = st.routing.empty() ? std::string{} : responsible_node(st.routing, id);
    return owner.empty() ? st.cfg->listen.to_string() : owner;
  }
  auto slash = id.find('/');
  return slash == std::string::npos ? st.cfg->listen.to_string() : id.substr(0, slash);
}

/// ServiceDetail (the console): the service actor's view, with each instance's owner node.
caf::result<envelope> on_service_detail(gateway_actor_t* self, const envelope& env) {
  v1::ServiceDetailRequest req;
  if (!unpack(env, req))
    return error_reply(v1::Error::INVALID_ARGUMENT, "request", "malformed ServiceDetailRequest");
  auto key = from_wire(req.service());
  if (auto err = validate_service_key(key))
    return pack(make_error(*err));
  auto i = self->state.services.find(key);
  if (i == self->state.services.end()) {
    v1::ServiceDetail empty;
    to_wire(key, *empty.mutable_service());
    empty.set_protect_threshold(threshold_for(self->state, key));
    return pack(empty);
  }
  auto rp = self->make_response_promise<envelope>();
  self->request(i->second.handle, std::chrono::milliseconds(defaults::request_timeout_ms),
                query_atom_v, env)
    .then(
      [=](envelope& reply) mutable {
        v1::ServiceDetail detail;
        if (!unpack(reply, detail)) {
          rp.deliver(std::move(reply));
          return;
        }
        for (auto& x : *detail.mutable_instances())
          x.set_owner(owner_of(self, x.client_id()));
        rp.deliver(pack(detail));
      },
      [=](caf::error& err) mutable {
        rp.deliver(pack(make_error(v1::Error::UNAVAILABLE, "",
                                   "the service did not answer in time: "
                                     + self->system().render(err))));
      });
  return rp;
}

envelope on_list(gateway_actor_t* self, const envelope& env) {
  v1::ListServicesRequest req;
  if (!unpack(env, req))
    return error_reply(v1::Error::INVALID_ARGUMENT, "request", "malformed ListServicesRequest");
  service_key prefix{req.namespace_id(), req.group(), "x"};
  apply_defaults(prefix);
  if (auto err = validate_service_key(prefix))
    return pack(make_error(*err));
  auto page = req.page() == 0 ? 1u : req.page();
  auto size = req.size() == 0 ? defaults::page_size_default : req.size();
  if (auto err = validate_page(page, size))
    return pack(make_error(*err));
  std::vector<std::string> names;
  auto& services = self->state.services;
  for (auto i = services.lower_bound(service_key{prefix.namespace_id, prefix.group, ""});
       i != services.end() && i->first.namespace_id == prefix.namespace_id
       && i->first.group == prefix.group;
       ++i)
    if (i->second.instances > 0)
      names.push_back(i->first.name);
  auto result = paginate(names, page, size);
  v1::ServiceList reply;
  reply.set_count(result.count);
  for (auto& name : result.items)
    reply.add_services(name);
  return pack(reply);
}

void fill_members(gateway_actor_t* self, google::protobuf::RepeatedPtrField<v1::Member>* out) {
  auto& st = self->state;
  if (!st.member_addresses.empty()) {
    for (std::size_t i = 0; i < st.member_addresses.size(); ++i) {
      auto* x = out->Add();
      x->set_address(st.member_addresses[i]);
      x->set_state(st.member_states[i]);
      if (i < st.member_nodes.size())
        x->set_node(st.member_nodes[i]);
      if (i < st.member_problems.size())
        x->set_problem(st.member_problems[i]);
    }
    return;
  }
  for (auto& m : st.cfg->members) {
    auto* x = out->Add();
    x->set_address(m.to_string());
    x->set_state(m == st.cfg->listen ? "SELF" : "DOWN");
  }
}

envelope on_status(gateway_actor_t* self) {
  auto& st = self->state;
  v1::Status reply;
  reply.set_address(st.cfg->listen.to_string());
  reply.set_cluster_name(st.cfg->cluster_name);
  reply.set_version(REGISTRY_VERSION);
  reply.set_ready(st.ready());
  if (st.cfg->http.enabled)
    reply.set_http_address(st.cfg->http.listen.to_string());
  if (st.cfg->grpc.enabled)
    reply.set_grpc_address(st.cfg->grpc.listen.to_string());
  reply.set_security(st.cfg->standalone()             ? "standalone"
                     : st.cfg->cluster_secret.empty() ? "unauthenticated cluster"
                                                      : "authenticated cluster");
  reply.set_tls(st.cfg->tls.mode());
  reply.set_raft_role(st.raft_role);
  reply.set_raft_leader(st.raft_leader);
  fill_members(self, reply.mutable_members());
  std::uint64_t instances = 0, subscribers = 0, services = 0;
  for (auto& kv : st.services) {
    instances += kv.second.instances;
    subscribers += kv.second.subscribers;
    services += kv.second.instances > 0 ? 1 : 0;
  }
  reply.set_clients(st.clients.size());
  reply.set_services(services);
  reply.set_instances(instances);
  reply.set_subscribers(subscribers);
  *reply.mutable_distro_peers() = st.distro_counters.peers();
  return pack(reply);
}

/// ClusterCounts (the console): each member's readiness, and the clients it owns and their
/// instances as Distro holds them here (every node holds a copy of every client). Counting is a
/// pass over every client, so consoles polling at once share one pass per poll interval.
caf::result<envelope> on_cluster_counts(gateway_actor_t* self) {
  auto& st = self->state;
  auto now = actor_now_ms(self);
  if (st.cluster_counts && now - st.cluster_counts_ms < defaults::console_poll_interval_ms)
    return *st.cluster_counts;
  // Fills in the members' addresses, readiness and clients (the gateway's table: sessions without
  // instances too, which Distro never carries) around instances by node.
  auto answer = [self](const v1::ClusterCounts& by_node) {
    auto& st = self->state;
    std::map<std::string, std::uint64_t> instances;
    for (auto& c : by_node.members())
      instances[c.node()] = c.instances();
    std::map<std::string, std::uint64_t> clients;
    for (auto& kv : st.clients)
      ++clients[owner_of(self, kv.first)];
    v1::Status members;
    fill_members(self, members.mutable_members());
    v1::ClusterCounts reply;
    auto self_address = st.cfg->listen.to_string();
    for (auto& m : members.members()) {
      auto* x = reply.add_members();
      x->set_address(m.address());
      bool is_self = m.state() == "SELF";
      auto node = is_self ? self_address : m.node().empty() ? m.address() : m.node();
      x->set_node(node);
      x->set_ready(is_self ? st.ready()
                           : std::find(st.routing.begin(), st.routing.end(), node)
                               != st.routing.end());
      x->set_clients(clients[node]);
      x->set_instances(instances[node]);
    }
    st.cluster_counts = pack(reply);
    st.cluster_counts_ms = actor_now_ms(self);
    return *st.cluster_counts;
  };
  if (!st.distro) {
    // Without Distro (a gateway under test) every instance here is this node's.
    v1::ClusterCounts mine;
    auto* m = mine.add_members();
    m->set_node(st.cfg->listen.to_string());
    for (auto& kv : st.services)
      m->set_instances(m->instances() + kv.second.instances);
    return answer(mine);
  }
  auto rp = self->make_response_promise<envelope>();
  self->request(st.distro, std::chrono::milliseconds(defaults::request_timeout_ms), owner_counts_atom_v)
    .then(
      [=](const envelope& reply) mutable {
        v1::ClusterCounts by_node;
        unpack(reply, by_node);
        rp.deliver(answer(by_node));
      },
      [=](caf::error& err) mutable {
        rp.deliver(error_reply(v1::Error::UNAVAILABLE, "",
                               "the distro actor did not answer: " + self->system().render(err)));
      });
  return rp;
}

/// The readiness barrier: answers once every client actor and then every service actor has
/// processed what the gateway sent them before (mailboxes are FIFO per sender; a client actor's
/// service updates are in its service actors' mailboxes before it answers, since a first update,
/// which goes through the gateway, holds the client until the service answered it). So when it
/// answers, every replica the distro actor handed over before it is in every index.
caf::result<bool> on_barrier(gateway_actor_t* self) {
  auto& st = self->state;
  auto rp = self->make_response_promise<bool>();
  auto timeout = std::chrono::milliseconds(st.cfg->distro.snapshot_timeout_ms);
  auto services_then_done = [=]() mutable {
    auto& services = self->state.services;
    if (services.empty()) {
      rp.deliver(true);
      return;
    }
    auto left = std::make_shared<std::size_t>(services.size());
    auto failed = std::make_shared<bool>(false);
    for (auto& kv : services)
      self->request(kv.second.handle, timeout, barrier_atom_v)
        .then(
          [=](bool) mutable {
            if (--*left == 0)
              rp.deliver(!*failed);
          },
          [=](caf::error&) mutable {
            *failed = true;
            if (--*left == 0)
              rp.deliver(false);
          });
  };
  if (st.clients.empty()) {
    services_then_done();
    return rp;
  }
  auto left = std::make_shared<std::size_t>(st.clients.size());
  for (auto& kv : st.clients)
    self->request(kv.second, timeout, barrier_atom_v)
      .then(
        [=](bool) mutable {
          if (--*left == 0)
            services_then_done();
        },
        // A client that ended meanwhile has nothing left to apply.
        [=](caf::error&) mutable {
          if (--*left == 0)
            services_then_done();
        });
  return rp;
}

/// Refuses a client request while the node is not ready (its snapshot is not applied yet), so a
/// client moves on to a node that has the whole picture.
std::optional<envelope> refuse_unready(gateway_actor_t* self) {
  auto& st = self->state;
  if (st.ready())
    return std::nullopt;
  return error_reply(v1::Error::UNAVAILABLE, "",
                     "node " + st.cfg->listen.to_string()
                       + " is not ready: it is still loading the cluster's data");
}

/// Stops service actors that hold nothing and got no message for a whole sweep interval, so that
/// short-lived service names do not use up services_max. Nothing the gateway forwarded can still be
/// in such an actor's mailbox.
void sweep_services(gateway_actor_t* self) {
  auto& st = self->state;
  for (auto i = st.services.begin(); i != st.services.end();) {
    auto& e = i->second;
    if (e.instances == 0 && e.subscribers == 0 && !e.touched) {
      log().debug("gateway removed idle service {}", bounded(i->first.to_string()));
      st.service_by_addr.erase(e.handle.address());
      self->demonitor(e.handle.address());
      self->send_exit(e.handle, caf::exit_reason::user_shutdown);
      i = st.services.erase(i);
      continue;
    }
    e.touched = false;
    ++i;
  }
  self->delayed_send(self, std::chrono::milliseconds(defaults::service_idle_sweep_ms), tick_atom_v);
}

void on_down(gateway_actor_t* self, const caf::down_msg& dm) {
  auto& st = self->state;
  if (auto i = st.client_by_addr.find(dm.source); i != st.client_by_addr.end()) {
    auto id = i->second;
    st.client_by_addr.erase(i);
    auto j = st.clients.find(id);
    bool current = j != st.clients.end() && j->second.address() == dm.source;
    if (current) {
      st.clients.erase(j);
      forget_client(self, id);
    }
    if (dm.reason && dm.reason != caf::exit_reason::user_shutdown) {
      // A failed client actor cannot clean up after itself: drop what it held everywhere.
      log().error("gateway lost client {} ({}); removing its instances", bounded(id),
                  self->system().render(dm.reason));
      for (auto& kv : st.services)
        self->send(kv.second.handle, svc_drop_atom_v, id);
      // A client of this node (its session, or a heartbeat client it is responsible for) is gone
      // cluster-wide too. A replica stays missing here until its owner changes it (Distro still
      // holds the copy); this path only runs after a bug in a client actor.
      auto self_address = st.cfg->listen.to_string();
      bool ours = session_owner(id) ? *session_owner(id) == self_address
                                    : responsible_node(st.routing, id) == self_address;
      if (st.distro && ours)
        self->send(st.distro, sync_atom_v, id, std::uint64_t{0}, client_services{});
    }
    if (current)
      resync_client(self, id);
    return;
  }
  if (auto i = st.service_by_addr.find(dm.source); i != st.service_by_addr.end()) {
    auto key = i->second;
    st.service_by_addr.erase(i);
    st.services.erase(key);
    if (dm.reason && dm.reason != caf::exit_reason::user_shutdown) {
      log().error("gateway restarted service {} after failure ({})", bounded(key.to_string()),
                  self->system().render(dm.reason));
      service_for(self, key);
      for (auto& kv : st.clients)
        self->send(kv.second, rebuild_atom_v, key);
    }
  }
}

// -- persistent instances ---------------------------------------------------------

/// Hands a checked PersistentOp to the raft actor; the answer comes once it is committed.
caf::result<envelope> to_raft(gateway_actor_t* self, const raft::persistent_op& op) {
  auto& st = self->state;
  v1::PersistentOp msg;
  msg.ParseFromString(raft::encode(op));
  // The raft actor answers within write_timeout_ms; the margin covers the hops.
  return relay_envelope(self, st.raft, std::chrono::milliseconds(st.cfg->raft.write_timeout_ms + 1000),
                        pwrite_atom_v, pack(msg));
}

std::optional<envelope> refuse_without_raft(gateway_actor_t* self) {
  if (self->state.raft)
    return std::nullopt;
  return error_reply(v1::Error::INVALID_ARGUMENT, "ephemeral",
                     "persistent instances are off on node " + self->state.cfg->listen.to_string()
                       + ": it has no data_dir");
}

/// A persistent register: checked as any instance, refused when the service is ephemeral (Nacos:
/// "Current service %s is ephemeral service, can't register persistent instance."), then written
/// through Raft.
caf::result<envelope> register_persistent(gateway_actor_t* self, const v1::RegisterRequest& req) {
  if (auto refusal = refuse_without_raft(self))
    return *refusal;
  raft::persistent_op op;
  op.what = raft::persistent_op::kind::reg;
  op.service = from_wire(req.service());
  if (auto err = validate_service_key(op.service))
    return pack(make_error(*err));
  op.inst = from_wire(req.instance());
  apply_defaults(op.inst);
  op.inst.ephemeral = false;
  if (auto err = validate_instance(op.inst, true))
    return pack(make_error(*err));
  if (req.has_check()) {
    const auto& c = req.check();
    if (c.type() == v1::HealthCheck::HTTP) {
      op.check.type = raft::health_check_spec::kind::http;
      op.check.path = c.path();
      if (op.check.path.empty() || op.check.path.front() != '/'
          || op.check.path.size() > defaults::health_check_path_chars_max
          || op.check.path.find_first_of(" \r\n") != std::string::npos)
        return error_reply(v1::Error::INVALID_ARGUMENT, "check",
                           "an HTTP check needs a path starting with '/', at most "
                             + std::to_string(defaults::health_check_path_chars_max)
                             + " characters, without spaces");
    } else if (c.type() == v1::HealthCheck::NONE) {
      op.check.type = raft::health_check_spec::kind::none;
    }
  }
  auto& st = self->state;
  auto i = st.services.find(op.service);
  if (i == st.services.end())
    return to_raft(self, op);
  i->second.touched = true;
  auto rp = self->make_response_promise<envelope>();
  self->request(i->second.handle, std::chrono::milliseconds(defaults::request_timeout_ms),
                kind_atom_v)
    .then(
      [=](std::int32_t kind) mutable {
        if (kind == 1) {
          rp.deliver(error_reply(v1::Error::INVALID_ARGUMENT, "ephemeral",
                                 "Current service " + op.service.grouped_name()
                                   + " is ephemeral service, can't register persistent instance."));
          return;
        }
        v1::PersistentOp msg;
        msg.ParseFromString(raft::encode(op));
        self->request(self->state.raft,
                      std::chrono::milliseconds(self->state.cfg->raft.write_timeout_ms + 1000),
                      pwrite_atom_v, pack(msg))
          .then([=](envelope& reply) mutable { rp.deliver(std::move(reply)); },
                [=](caf::error& err) mutable {
                  rp.deliver(error_reply(v1::Error::UNAVAILABLE, "",
                                         "the raft actor did not answer: "
                                           + self->system().render(err)));
                });
      },
      [=](caf::error& err) mutable {
        rp.deliver(error_reply(v1::Error::UNAVAILABLE, "",
                               "the service did not answer: " + self->system().render(err)));
      });
  return rp;
}

caf::result<envelope> deregister_persistent(gateway_actor_t* self,
                                            const v1::DeregisterRequest& req) {
  if (auto refusal = refuse_without_raft(self))
    return *refusal;
  raft::persistent_op op;
  op.what = raft::persistent_op::kind::dereg;
  op.service = from_wire(req.service());
  if (auto err = validate_service_key(op.service))
    return pack(make_error(*err));
  op.inst.ip = req.ip();
  op.inst.port = req.port();
  op.inst.cluster = req.cluster();
  op.inst.ephemeral = false;
  apply_defaults(op.inst);
  if (auto err = validate_instance(op.inst, true))
    return pack(make_error(*err));
  return to_raft(self, op);
}

/// An update of a persistent instance from the HTTP API (weight, enabled, metadata), checked, then
/// written through Raft (the state machine refuses it when the instance does not exist).
caf::result<envelope> update_persistent(gateway_actor_t* self, raft::persistent_op op) {
  if (auto refusal = refuse_without_raft(self))
    return *refusal;
  op.inst.ephemeral = false;
  apply_defaults(op.inst);
  if (auto err = validate_instance(op.inst, true))
    return pack(make_error(*err));
  return to_raft(self, op);
}

/// A PersistentOp from the HTTP API: a protect threshold (every member applies it; the raft actor
/// hands it back as a threshold_atom) or an update of a persistent instance.
caf::result<envelope> write_from_http(gateway_actor_t* self, const envelope& env, bool must_exist) {
  auto& st = self->state;
  std::optional<raft::persistent_op> decoded;
  if (holds<v1::PersistentOp>(env))
    decoded = raft::decode(env.payload);
  if (!decoded || (decoded->what != raft::persistent_op::kind::threshold
                   && decoded->what != raft::persistent_op::kind::update))
    return error_reply(v1::Error::INVALID_ARGUMENT, "request", "malformed persistent write");
  auto& op = *decoded;
  if (auto err = validate_service_key(op.service))
    return pack(make_error(*err));
  if (op.what == raft::persistent_op::kind::update)
    return update_persistent(self, std::move(op));
  if (auto why = raft::check_protect_threshold(op.protect_threshold))
    return error_reply(v1::Error::INVALID_ARGUMENT, "protectThreshold", "protectThreshold: " + *why);
  if (!st.raft)
    return error_reply(v1::Error::INVALID_ARGUMENT, "protectThreshold",
                       "service settings are written through Raft and node "
                         + st.cfg->listen.to_string()
                         + " has no data_dir; set data_dir, or set the threshold in "
                           "discovery.service_thresholds");
  if (must_exist && st.services.find(op.service) == st.services.end())
    return error_reply(v1::Error::NOT_FOUND, "serviceName",
                       "service " + op.service.grouped_name() + " not found!");
  return to_raft(self, op);
}

/// The reply to a Hello: a Welcome and the session handle, or an Error and no handle.
caf::result<envelope, caf::actor> hello_reply(envelope env, caf::actor session) {
  return {std::move(env), std::move(session)};
}

gateway_actor::behavior_type gateway_behavior(gateway_actor_t* self,
                                              std::shared_ptr<const node_config> cfg,
                                              distro_actor distro, raft_port_actor raft) {
  self->state.cfg = std::move(cfg);
  self->state.distro = std::move(distro);
  self->state.raft = std::move(raft);
  self->state.distro_ready = !self->state.distro;
  self->state.raft_ready = !self->state.raft;
  install_default_handlers(self, "gateway");
  self->set_down_handler([=](caf::down_msg& dm) {
    if (trusted_down(self, dm))
      on_down(self, dm);
  });
  self->delayed_send(self, std::chrono::milliseconds(defaults::service_idle_sweep_ms), tick_atom_v);
  return {
    // -- client processes ------------------------------------------------------
    [=](hello_atom, const envelope& env, caf::actor remote) -> caf::result<envelope, caf::actor> {
      v1::Hello hello;
      if (!unpack(env, hello) || !remote)
        return hello_reply(
          error_reply(v1::Error::INVALID_ARGUMENT, "hello", "malformed Hello"), caf::actor{});
      if (hello.protocol_version() != v1::PROTOCOL_VERSION_CURRENT)
        return hello_reply(
          error_reply(v1::Error::INVALID_ARGUMENT, "protocol_version",
                      "protocol version " + std::to_string(hello.protocol_version())
                        + " is not supported (this node speaks "
                        + std::to_string(v1::PROTOCOL_VERSION_CURRENT) + ")"),
          caf::actor{});
      auto& st = self->state;
      if (auto refusal = refuse_unready(self))
        return hello_reply(*refusal, caf::actor{});
      auto id = st.cfg->listen.to_string() + "/" + std::to_string(st.started_ms) + "/"
                + std::to_string(++st.session_counter);
      // This node's gRPC front end opens a session per connection, bounded by its own
      // grpc.connections_max on top of the bound of one client process.
      auto sessions_max = st.cfg->limits.sessions_per_connection_max;
      if (remote.node() == self->node() && st.cfg->grpc.enabled)
        sessions_max += static_cast<std::size_t>(st.cfg->grpc.connections_max);
      if (auto n = st.sessions_per_node.find(remote.node());
          n != st.sessions_per_node.end() && n->second >= sessions_max)
        return hello_reply(
          error_reply(v1::Error::LIMIT_EXCEEDED, "session",
                      "this client process holds " + std::to_string(n->second)
                        + " sessions, the limit is " + std::to_string(sessions_max)),
          caf::actor{});
      auto handle = client_for(self, id, client_kind::session,
                               caf::actor_cast<subscriber_actor>(remote));
      if (!handle)
        return hello_reply(clients_full(self), caf::actor{});
      log().info("gateway opened session {} for {}", id,
                 hello.client_name().empty() ? "a client" : bounded(hello.client_name()));
      v1::Welcome welcome;
      welcome.set_session_id(id);
      welcome.set_node_address(st.cfg->listen.to_string());
      welcome.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
      return hello_reply(pack(welcome), caf::actor_cast<caf::actor>(handle));
    },
    [=](reg_atom atom, const envelope& env) -> caf::result<envelope> {
      if (auto refusal = refuse_unready(self))
        return *refusal;
      if (holds<v1::BatchRegisterRequest>(env))
        return error_reply(v1::Error::INVALID_ARGUMENT, "request",
                           "a batch register goes to a session (the handle of a Welcome): a "
                           "heartbeat client holds one ip:port");
      v1::RegisterRequest req;
      if (unpack(env, req) && req.instance().has_ephemeral() && !req.instance().ephemeral())
        return register_persistent(self, req);
      return route_heartbeat<v1::RegisterRequest>(self, atom, env, true);
    },
    [=](beat_atom atom, const envelope& env) -> caf::result<envelope> {
      if (auto refusal = refuse_unready(self))
        return *refusal;
      return route_heartbeat<v1::BeatRequest>(self, atom, env, true);
    },
    [=](dereg_atom atom, const envelope& env) -> caf::result<envelope> {
      if (auto refusal = refuse_unready(self))
        return *refusal;
      v1::DeregisterRequest req;
      if (unpack(env, req) && req.persistent())
        return deregister_persistent(self, req);
      return route_heartbeat<v1::DeregisterRequest>(self, atom, env, false);
    },
    [=](query_atom atom, const envelope& env) -> caf::result<envelope> {
      if (auto refusal = refuse_unready(self))
        return *refusal;
      if (holds<v1::ServiceDetailRequest>(env))
        return on_service_detail(self, env);
      v1::QueryRequest req;
      if (!unpack(env, req))
        return error_reply(v1::Error::INVALID_ARGUMENT, "request", "malformed QueryRequest");
      auto key = from_wire(req.service());
      if (auto err = validate_service_key(key))
        return pack(make_error(*err));
      for (auto& c : req.clusters())
        if (auto err = validate_cluster(c))
          return pack(make_error(*err));
      auto i = self->state.services.find(key);
      if (i == self->state.services.end()) {
        service_info empty;
        empty.key = key;
        empty.cache_millis = self->state.cfg->discovery.cache_millis;
        empty.last_ref_time_ms = system_now_ms();
        for (auto& c : req.clusters())
          empty.clusters += (empty.clusters.empty() ? "" : ",") + c;
        v1::ServiceInfo reply;
        to_wire(empty, reply);
        return pack(reply);
      }
      i->second.touched = true;
      return delegate_envelope(self, i->second.handle, atom, env);
    },
    [=](list_atom, const envelope& env) {
      if (auto refusal = refuse_unready(self))
        return *refusal;
      return on_list(self, env);
    },
    [=](status_atom, const envelope& env) -> caf::result<envelope> {
      if (holds<v1::ClusterCountsRequest>(env))
        return on_cluster_counts(self);
      auto& st = self->state;
      if (holds<v1::RaftTransferRequest>(env)) {
        if (!st.raft)
          return error_reply(v1::Error::INVALID_ARGUMENT, "data_dir",
                             "Raft is off on node " + st.cfg->listen.to_string()
                               + ": it has no data_dir");
        // The raft actor answers within one election timeout (at most raft_handover_wait_max_ms).
        return relay_envelope(self, st.raft,
                              std::chrono::milliseconds(defaults::raft_handover_wait_max_ms
                                                        + defaults::request_timeout_ms),
                              pwrite_atom_v, env);
      }
      if (!holds<v1::RaftStatusRequest>(env))
        return on_status(self);
      if (!st.raft) {
        v1::RaftStatus off;
        off.set_enabled(false);
        off.set_id(st.cfg->listen.to_string());
        off.set_role("off");
        return pack(off);
      }
      return relay_envelope(self, st.raft, std::chrono::milliseconds(defaults::request_timeout_ms),
                            rstatus_atom_v);
    },
    [=](rstatus_atom, std::string& role, std::string& leader, bool caught_up) {
      if (!local_only(self, "gateway", "rstatus"))
        return;
      auto& st = self->state;
      st.raft_role = std::move(role);
      st.raft_leader = std::move(leader);
      st.raft_ready = caught_up;
    },
    [=](members_atom, const envelope&) {
      v1::MemberList reply;
      fill_members(self, reply.mutable_members());
      return pack(reply);
    },
    // -- children --------------------------------------------------------------
    // A client actor's first update of a service comes here: the service actor's answer names it
    // to the client, which sends the later updates straight to it.
    [=](svc_put_atom atom, const service_key& key, const client_id& client,
        instance_list& xs) -> caf::result<envelope> {
      if (!local_only(self, "gateway", "svc_put"))
        return error_reply(v1::Error::INVALID_ARGUMENT, "request", "not accepted from another process");
      auto handle = service_for(self, key);
      if (!handle)
        return services_full(self);
      return delegate_envelope(self, handle, atom, key, client, std::move(xs));
    },
    [=](svc_drop_atom, const service_key& key, const client_id& client) {
      if (!local_only(self, "gateway", "svc_drop"))
        return;
      auto i = self->state.services.find(key);
      if (i != self->state.services.end()) {
        i->second.touched = true;
        self->send(i->second.handle, svc_drop_atom_v, client);
      }
    },
    [=](tick_atom) {
      if (local_only(self, "gateway", "tick"))
        sweep_services(self);
    },
    [=](svc_sub_atom atom, const service_key& key, const client_id& client,
        const std::string& clusters, subscriber_actor subscriber) -> caf::result<envelope> {
      if (!local_only(self, "gateway", "svc_sub"))
        return error_reply(v1::Error::INVALID_ARGUMENT, "request", "not accepted from another process");
      auto handle = service_for(self, key);
      if (!handle)
        return services_full(self);
      return delegate_envelope(self, handle, atom, client, clusters, std::move(subscriber));
    },
    [=](svc_unsub_atom atom, const service_key& key, const client_id& client,
        const std::string& clusters) -> caf::result<envelope> {
      if (!local_only(self, "gateway", "svc_unsub"))
        return error_reply(v1::Error::INVALID_ARGUMENT, "request", "not accepted from another process");
      auto i = self->state.services.find(key);
      if (i == self->state.services.end())
        return pack(v1::Ack{});
      i->second.touched = true;
      return delegate_envelope(self, i->second.handle, atom, client, clusters);
    },
    [=](pwrite_atom, const envelope& env, bool must_exist) -> caf::result<envelope> {
      if (!local_only(self, "gateway", "pwrite"))
        return error_reply(v1::Error::INVALID_ARGUMENT, "request", "not accepted from another process");
      if (auto refusal = refuse_unready(self))
        return *refusal;
      return write_from_http(self, env, must_exist);
    },
    [=](threshold_atom, const service_key& key, double value) {
      if (!local_only(self, "gateway", "threshold"))
        return;
      auto& st = self->state;
      st.stored_thresholds[key] = value;
      auto i = st.services.find(key);
      if (i != st.services.end())
        self->send(i->second.handle, threshold_atom_v, threshold_for(st, key));
    },
    [=](svc_stats_atom, const service_key& key, std::uint64_t instances,
        std::uint64_t subscribers) {
      if (!local_only(self, "gateway", "svc_stats"))
        return;
      auto i = self->state.services.find(key);
      if (i != self->state.services.end()) {
        // Clients update their services directly: a report is the gateway's sign of use.
        i->second.touched = true;
        i->second.instances = instances;
        i->second.subscribers = subscribers;
      }
    },
    // -- introspection (tests and operators) -------------------------------------
    [=](caf::get_atom, const service_key& key) -> service_actor {
      if (!local_only(self, "gateway", "get"))
        return {};
      auto i = self->state.services.find(key);
      return i == self->state.services.end() ? service_actor{} : i->second.handle;
    },
    // -- the distro actor --------------------------------------------------------
    [=](view_atom, std::vector<std::string>& routing, bool ready,
        std::vector<std::string>& member_addresses, std::vector<std::string>& member_states,
        std::vector<std::string>& member_nodes, std::vector<std::string>& member_problems) {
      if (!local_only(self, "gateway", "view"))
        return;
      auto& st = self->state;
      st.routing = std::move(routing);
      st.distro_ready = ready;
      st.member_addresses = std::move(member_addresses);
      st.member_states = std::move(member_states);
      st.member_nodes = std::move(member_nodes);
      st.member_problems = std::move(member_problems);
    },
    [=](counters_atom, const envelope& env) {
      if (!local_only(self, "gateway", "counters"))
        return;
      v1::DistroCounters msg;
      if (unpack(env, msg))
        self->state.distro_counters = std::move(msg);
    },
    [=](forward_atom, const envelope& env) -> caf::result<envelope> {
      if (!local_only(self, "gateway", "forward"))
        return error_reply(v1::Error::INVALID_ARGUMENT, "request", "not accepted from another process");
      v1::ForwardedRequest fwd;
      if (!unpack(env, fwd))
        return error_reply(v1::Error::INVALID_ARGUMENT, "request", "malformed ForwardedRequest");
      switch (fwd.request_case()) {
        case v1::ForwardedRequest::kRegister:
          return route_heartbeat<v1::RegisterRequest>(self, reg_atom_v, pack(fwd.register_()),
                                                      true, true);
        case v1::ForwardedRequest::kBeat:
          return route_heartbeat<v1::BeatRequest>(self, beat_atom_v, pack(fwd.beat()), true,
                                                  true);
        case v1::ForwardedRequest::kDeregister:
          return route_heartbeat<v1::DeregisterRequest>(self, dereg_atom_v,
                                                        pack(fwd.deregister()), false, true);
        default:
          return error_reply(v1::Error::INVALID_ARGUMENT, "request", "empty ForwardedRequest");
      }
    },
    [=](replica_atom, std::int32_t op, const client_id& id, std::uint64_t revision,
        client_services& services, bool local, client_beats& beats) {
      if (!local_only(self, "gateway", "replica"))
        return;
      apply_replica_op(self, op, id, revision, services, local, beats);
    },
    [=](replica_atom, replica_ops_ptr& ops) {
      if (!local_only(self, "gateway", "replica") || !ops)
        return;
      apply_replica_ops(self, ops->ops);
    },
    [=](resync_atom, std::int32_t op, const client_id& id, std::uint64_t revision,
        client_services& services, bool local, client_beats& beats) {
      if (!local_only(self, "gateway", "resync"))
        return;
      auto& st = self->state;
      auto i = st.resyncs.find(id);
      if (i == st.resyncs.end())
        return; // re-created by a request meanwhile: that client announces itself
      if (--i->second == 0)
        st.resyncs.erase(i);
      apply_replica_op(self, op, id, revision, services, local, beats);
    },
    [=](barrier_atom) -> caf::result<bool> {
      if (!local_only(self, "gateway", "barrier"))
        return false;
      return on_barrier(self);
    },
    [=](client_gone_atom, const client_id& id) {
      if (!local_only(self, "gateway", "client_gone"))
        return false;
      auto& st = self->state;
      auto i = st.clients.find(id);
      if (i != st.clients.end() && i->second.address() == self->current_sender()) {
        st.client_by_addr.erase(i->second.address());
        self->demonitor(i->second.address());
        st.clients.erase(i);
        forget_client(self, id);
        resync_client(self, id);
      }
      return true;
    },
  };
}

} // namespace

gateway_actor spawn_gateway_actor(caf::actor_system& sys, std::shared_ptr<const node_config> cfg,
                                  distro_actor distro, raft_port_actor raft) {
  return sys.spawn(gateway_behavior, std::move(cfg), std::move(distro), std::move(raft));
}

} // namespace registry
