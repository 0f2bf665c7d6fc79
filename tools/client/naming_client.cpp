// The public API of the client library: each call is a request from the caller's thread (a
// caf::scoped_actor) to the library's session actor, which owns connection, session, cache and
// failover. See session_actor.hpp for the actor and registry_client.hpp for the contract.

#include "tools/client/registry_client.hpp"

#include <atomic>
#include <mutex>
#include <optional>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include "actors/common/transport.hpp"
#include "config/defaults.hpp"
#include "config/node_config.hpp"
#include "config/tls.hpp"
#include "messages/convert.hpp"
#include "messages/raft.pb.h"
#include "messages/type_ids.hpp"
#include "messages/validate.hpp"
#include "tools/client/event_dispatcher.hpp"
#include "tools/client/service_cache.hpp"
#include "tools/client/session_actor.hpp"

namespace registry::client {

namespace {

using wire::envelope;
using std::chrono::milliseconds;

error_code to_code(v1::Error::Code code) {
  switch (code) {
    case v1::Error::INVALID_ARGUMENT:
      return error_code::invalid_argument;
    case v1::Error::NOT_FOUND:
      return error_code::not_found;
    case v1::Error::LIMIT_EXCEEDED:
      return error_code::limit_exceeded;
    case v1::Error::UNAVAILABLE:
      return error_code::unavailable;
    case v1::Error::UNAUTHORIZED:
      return error_code::unauthorized;
    default:
      return error_code::refused;
  }
}

[[noreturn]] void throw_invalid(const field_error& e) {
  throw error(error_code::invalid_argument, e.field, e.message);
}

/// The TLS settings of `o`: any file turns TLS on.
tls_settings tls_of(const options& o) {
  tls_settings result;
  const auto& t = o.tls;
  result.enabled = t.enabled || !t.ca_file.empty() || !t.certificate.empty() || !t.key.empty();
  result.ca_file = t.ca_file;
  result.certificate = t.certificate;
  result.key = t.key;
  result.key_passphrase = t.key_passphrase;
  return result;
}

void check_options(const options& o) {
  auto bad = [](const std::string& field, const std::string& msg) {
    throw error(error_code::invalid_argument, field, msg);
  };
  if (o.servers.empty())
    bad("servers", "options.servers is empty: give at least one HOST:PORT");
  auto positive = [&](milliseconds x, const char* field) {
    if (x.count() <= 0)
      bad(field, std::string{"options."} + field + " must be > 0 ms");
  };
  positive(o.request_timeout, "request_timeout");
  positive(o.connect_timeout, "connect_timeout");
  positive(o.update_interval, "update_interval");
  positive(o.update_backoff_max, "update_backoff_max");
  positive(o.failover_check_interval, "failover_check_interval");
  positive(o.redo_interval, "redo_interval");
  positive(o.redo_retry_interval, "redo_retry_interval");
  if (o.update_backoff_max < o.update_interval)
    bad("update_backoff_max", "options.update_backoff_max must be >= update_interval");
  if (o.caf_heartbeat_interval.count() < 0 || o.caf_connection_timeout.count() < 0)
    bad("caf_heartbeat_interval", "CAF heartbeat settings must not be negative");
  if (o.caf_heartbeat_interval.count() > 0 &&
      o.caf_connection_timeout <= o.caf_heartbeat_interval && o.caf_connection_timeout.count() > 0)
    bad("caf_connection_timeout", "options.caf_connection_timeout must exceed caf_heartbeat_interval");
  // CAF raises (from the actor system's constructor, or later in its I/O thread) on files it
  // cannot load: check them as it will load them.
  if (auto problem = check_tls_files(tls_of(o), tls_role::client))
    bad("tls." + problem->field, "options.tls." + problem->field + ": " + problem->problem);
}

} // namespace

// -- impl -------------------------------------------------------------------------------------------

struct naming_client::impl {
  options opts;
  std::shared_ptr<event_dispatcher> events;
  std::shared_ptr<detail::shared_view> view;
  tls_file_pins tls_pins;       // the TLS files CAF reads, open while sys lives
  caf::actor_system_config cfg; // outlives sys (declared first)
  std::unique_ptr<caf::actor_system> sys;
  client_library_actor session;
  std::atomic<listener_id> next_listener{1};

  /// How long the caller waits for the actor: the actor answers within request_timeout itself.
  milliseconds call_timeout() const { return opts.request_timeout + milliseconds(1000); }

  /// Asks the session actor; returns the reply or throws the error it carries.
  template <class... Ts>
  envelope call(Ts&&... xs) {
    caf::scoped_actor self{*sys};
    envelope result;
    bool local = true;
    std::optional<error> failure;
    self->request(session, call_timeout(), std::forward<Ts>(xs)...)
      .receive(
        [&](envelope& reply, bool from_library) {
          result = std::move(reply);
          local = from_library;
        },
        [&](caf::error& err) {
          failure = error(error_code::unavailable, "",
                          "the registry client did not answer within " +
                            std::to_string(call_timeout().count()) + " ms (" +
                            sys->render(err) + "); nodes: " + servers_text());
        });
    if (failure)
      throw *failure;
    v1::Error e;
    if (wire::unpack(result, e)) {
      auto msg = e.message().empty() ? std::string{"the node refused the request"} : e.message();
      throw error(to_code(e.code()), e.field(), msg, !local);
    }
    return result;
  }

  template <class Message>
  Message expect(const envelope& reply) {
    Message result;
    if (!wire::unpack(reply, result))
      throw error(error_code::refused, "",
                  "unexpected reply " + reply.kind + " (wanted " +
                    Message::descriptor()->full_name() + ")",
                  true);
    return result;
  }

  std::string servers_text() const {
    std::string result;
    for (const auto& s : opts.servers)
      result += (result.empty() ? "" : ", ") + s;
    return result;
  }

  // -- request building with local checks ---------------------------------------------------------

  service_key key_of(const std::string& service, const std::string& group) const {
    service_key k{opts.namespace_id, group, service};
    apply_defaults(k);
    if (opts.check_locally)
      if (auto e = validate_service_key(k))
        throw_invalid(*e);
    return k;
  }

  instance instance_of(const instance& x) const {
    instance result = x;
    apply_defaults(result);
    if (opts.check_locally)
      if (auto e = validate_instance(result))
        throw_invalid(*e);
    return result;
  }

  void check_clusters(const std::vector<std::string>& clusters) const {
    if (!opts.check_locally)
      return;
    for (const auto& c : clusters)
      if (auto e = validate_cluster(c))
        throw_invalid(*e);
  }

  /// `token`: the access token of a heartbeat write (auth on); a session's writes need none.
  envelope register_request(const std::string& service, const std::string& group,
                            const instance& x, const std::string& token = {}) const {
    v1::RegisterRequest req;
    to_wire(key_of(service, group), *req.mutable_service());
    to_wire(instance_of(x), *req.mutable_instance());
    req.set_access_token(token);
    return wire::pack(req);
  }

  /// A batch register: defaults applied per instance; with local checks, the node's own rules
  /// (messages/validate.hpp: the count, each instance by position, duplicates).
  envelope batch_register_request(const std::string& service, const std::string& group,
                                  const std::vector<instance>& xs) const {
    v1::BatchRegisterRequest req;
    to_wire(key_of(service, group), *req.mutable_service());
    std::vector<instance> checked;
    checked.reserve(xs.size());
    for (const auto& x : xs) {
      checked.push_back(x);
      apply_defaults(checked.back());
    }
    if (opts.check_locally)
      if (auto e = validate_instance_batch(checked))
        throw_invalid(*e);
    for (const auto& x : checked)
      to_wire(x, *req.add_instances());
    return wire::pack(req);
  }

  /// The access token for a heartbeat write: options.access_token, or one traded for the user's
  /// password (login at the node) and renewed at half its life; "" without credentials.
  std::string token() {
    if (!opts.access_token.empty() || opts.username.empty())
      return opts.access_token;
    std::lock_guard<std::mutex> guard{token_mtx};
    if (!login_token.empty() && std::chrono::steady_clock::now() < login_renew_at)
      return login_token;
    v1::LoginRequest req;
    req.set_username(opts.username);
    req.set_password(opts.password);
    auto reply = expect<v1::LoginReply>(
      call(detail::gw_atom::value, caf::atom_value{wire::login_atom::value}, wire::pack(req)));
    login_token = reply.access_token();
    login_renew_at = std::chrono::steady_clock::now() + milliseconds(reply.token_ttl_ms() / 2);
    return login_token;
  }
  std::mutex token_mtx;
  std::string login_token;
  std::chrono::steady_clock::time_point login_renew_at{};

  envelope deregister_request(const std::string& service, const std::string& group,
                              const instance& x, const std::string& token = {}) const {
    auto k = key_of(service, group);
    auto inst = x;
    apply_defaults(inst);
    if (opts.check_locally) {
      if (auto e = validate_cluster(inst.cluster))
        throw_invalid(*e);
      if (inst.ip.empty())
        throw error(error_code::invalid_argument, "ip", "ip is empty");
    }
    v1::DeregisterRequest req;
    to_wire(k, *req.mutable_service());
    req.set_ip(inst.ip);
    req.set_port(inst.port);
    req.set_cluster(inst.cluster);
    req.set_access_token(token);
    return wire::pack(req);
  }

  service_info to_info(const v1::ServiceInfo& si, const service_key& k) const {
    auto result = from_wire(si);
    result.key = k;
    return result;
  }
};

// -- construction -----------------------------------------------------------------------------------

naming_client::naming_client(options opts) : impl_(std::make_unique<impl>()) {
  check_options(opts);
  if (opts.namespace_id.empty())
    opts.namespace_id = defaults::namespace_id;
  std::vector<detail::endpoint> servers;
  for (const auto& s : opts.servers) {
    auto parsed = parse_host_port(s);
    if (auto why = std::get_if<std::string>(&parsed))
      throw error(error_code::invalid_argument, "servers", "bad server address '" + s + "': " + *why);
    auto& hp = std::get<host_port>(parsed);
    servers.push_back(detail::endpoint{hp.host, hp.port});
  }
  auto& d = *impl_;
  d.opts = opts;
  d.events = std::make_shared<event_dispatcher>();
  d.view = std::make_shared<detail::shared_view>();
  // Types, middleman, app identifier "registry.v1", CAF heartbeats, 2 scheduler threads.
  wire::configure_system(d.cfg, opts.caf_heartbeat_interval.count(),
                         opts.caf_connection_timeout.count(), defaults::scheduler_threads_max);
  if (auto problem = configure_tls(d.cfg, d.tls_pins.pin(tls_of(opts))); !problem.empty())
    throw error(error_code::invalid_argument, "tls", problem);
  d.sys = std::make_unique<caf::actor_system>(d.cfg);
  d.session = detail::spawn_session_actor(
    *d.sys, detail::session_config{d.opts, std::move(servers), d.events, d.view});
}

naming_client::~naming_client() {
  if (!impl_ || !impl_->sys)
    return;
  auto& d = *impl_;
  try {
    // Clean close: bye to the node's session (bounded), then stop the actor and the event thread.
    caf::scoped_actor self{*d.sys};
    auto wait = std::min<milliseconds>(d.opts.request_timeout, milliseconds(2000)) +
                milliseconds(500);
    self->request(d.session, wait, wire::bye_atom::value)
      .receive([](envelope&, bool) {}, [](caf::error&) {});
  } catch (...) {
    // best effort
  }
  caf::anon_send_exit(d.session, caf::exit_reason::user_shutdown);
  d.session = client_library_actor{};
  d.events->stop();
  d.sys.reset();
}

// -- session-based registration -------------------------------------------------------------------

void naming_client::register_instance(const std::string& service, const std::string& group,
                                      const instance& x) {
  if (!x.ephemeral) {
    register_persistent_instance(service, group, x);
    return;
  }
  auto& d = *impl_;
  d.expect<v1::Ack>(d.call(wire::reg_atom::value, d.register_request(service, group, x)));
}

void naming_client::register_instances(const std::string& service, const std::string& group,
                                       const std::vector<instance>& xs) {
  auto& d = *impl_;
  d.expect<v1::Ack>(d.call(wire::reg_atom::value, d.batch_register_request(service, group, xs)));
}

void naming_client::deregister_instance(const std::string& service, const std::string& group,
                                        const instance& x) {
  if (!x.ephemeral) {
    deregister_persistent_instance(service, group, x);
    return;
  }
  auto& d = *impl_;
  d.expect<v1::Ack>(d.call(wire::dereg_atom::value, d.deregister_request(service, group, x)));
}

// -- persistent instances ---------------------------------------------------------------------------

void naming_client::register_persistent_instance(const std::string& service,
                                                 const std::string& group, instance x,
                                                 const std::string& check) {
  auto& d = *impl_;
  x.ephemeral = false;
  apply_defaults(x);
  if (d.opts.check_locally)
    if (auto e = validate_instance(x, true))
      throw_invalid(*e);
  v1::RegisterRequest req;
  to_wire(d.key_of(service, group), *req.mutable_service());
  to_wire(x, *req.mutable_instance());
  auto* hc = req.mutable_check();
  if (check == "none") {
    hc->set_type(v1::HealthCheck::NONE);
  } else if (check.rfind("http:/", 0) == 0) {
    hc->set_type(v1::HealthCheck::HTTP);
    hc->set_path(check.substr(5));
  } else if (check == "tcp" || check.empty()) {
    hc->set_type(v1::HealthCheck::TCP);
  } else if (d.opts.check_locally) {
    throw_invalid(field_error{"check", "expected tcp, none or http:/PATH, got '" + check + "'"});
  }
  d.expect<v1::Ack>(d.call(detail::gw_atom::value, caf::atom_value{wire::reg_atom::value},
                           wire::pack(req)));
}

void naming_client::deregister_persistent_instance(const std::string& service,
                                                   const std::string& group, const instance& x) {
  auto& d = *impl_;
  auto env = d.deregister_request(service, group, x);
  v1::DeregisterRequest req;
  wire::unpack(env, req);
  req.set_persistent(true);
  d.expect<v1::Ack>(d.call(detail::gw_atom::value, caf::atom_value{wire::dereg_atom::value},
                           wire::pack(req)));
}

// -- heartbeat clients ------------------------------------------------------------------------------

void naming_client::register_heartbeat_instance(const std::string& service,
                                                const std::string& group, const instance& x) {
  auto& d = *impl_;
  auto req = d.register_request(service, group, x, d.token());
  d.expect<v1::Ack>(d.call(detail::gw_atom::value, caf::atom_value{wire::reg_atom::value}, req));
}

void naming_client::beat(const std::string& service, const std::string& group,
                         const instance& x) {
  auto& d = *impl_;
  v1::BeatRequest req;
  to_wire(d.key_of(service, group), *req.mutable_service());
  to_wire(d.instance_of(x), *req.mutable_instance());
  req.set_access_token(d.token());
  d.expect<v1::Ack>(
    d.call(detail::gw_atom::value, caf::atom_value{wire::beat_atom::value}, wire::pack(req)));
}

void naming_client::deregister_heartbeat_instance(const std::string& service,
                                                  const std::string& group, const instance& x) {
  auto& d = *impl_;
  auto req = d.deregister_request(service, group, x, d.token());
  d.expect<v1::Ack>(d.call(detail::gw_atom::value, caf::atom_value{wire::dereg_atom::value}, req));
}

// -- discovery ------------------------------------------------------------------------------------

service_info naming_client::get_service(const std::string& service, const std::string& group,
                                        const std::vector<std::string>& clusters,
                                        bool subscribe) {
  auto& d = *impl_;
  auto k = d.key_of(service, group);
  d.check_clusters(clusters);
  envelope reply;
  if (subscribe) {
    v1::SubscribeRequest req;
    to_wire(k, *req.mutable_service());
    for (const auto& c : clusters)
      req.add_clusters(c);
    reply = d.call(wire::sub_atom::value, wire::pack(req), listener_id{0});
  } else {
    v1::QueryRequest req;
    to_wire(k, *req.mutable_service());
    for (const auto& c : clusters)
      req.add_clusters(c);
    req.set_healthy_only(false);
    reply = d.call(wire::query_atom::value, wire::pack(req));
  }
  return d.to_info(d.expect<v1::ServiceInfo>(reply), k);
}

service_info naming_client::query(const std::string& service, const std::string& group,
                                  const std::vector<std::string>& clusters, bool healthy_only) {
  auto& d = *impl_;
  auto k = d.key_of(service, group);
  d.check_clusters(clusters);
  v1::QueryRequest req;
  to_wire(k, *req.mutable_service());
  for (const auto& c : clusters)
    req.add_clusters(c);
  req.set_healthy_only(healthy_only);
  return d.to_info(d.expect<v1::ServiceInfo>(d.call(wire::query_atom::value, wire::pack(req))), k);
}

std::vector<instance> naming_client::select_instances(const std::string& service,
                                                      const std::string& group,
                                                      const std::vector<std::string>& clusters,
                                                      bool healthy, bool subscribe) {
  return select_healthy(get_service(service, group, clusters, subscribe).hosts, healthy);
}

service_list naming_client::list_services(const std::string& group, std::uint32_t page,
                                          std::uint32_t size) {
  auto& d = *impl_;
  auto g = group.empty() ? std::string{defaults::group} : group;
  if (d.opts.check_locally) {
    if (auto e = validate_page(page, size))
      throw_invalid(*e);
    service_key probe{d.opts.namespace_id, g, "probe"};
    if (auto e = validate_service_key(probe))
      throw_invalid(*e);
  }
  v1::ListServicesRequest req;
  req.set_namespace_id(d.opts.namespace_id);
  req.set_group(g);
  req.set_page(page);
  req.set_size(size);
  auto list = d.expect<v1::ServiceList>(
    d.call(detail::gw_atom::value, caf::atom_value{wire::list_atom::value}, wire::pack(req)));
  service_list result;
  result.count = list.count();
  result.services.assign(list.services().begin(), list.services().end());
  return result;
}

listener_id naming_client::subscribe(const std::string& service, const std::string& group,
                                     const std::vector<std::string>& clusters, listener fn) {
  auto& d = *impl_;
  if (!fn)
    throw error(error_code::invalid_argument, "listener", "the listener is empty");
  auto k = d.key_of(service, group);
  d.check_clusters(clusters);
  v1::SubscribeRequest req;
  to_wire(k, *req.mutable_service());
  for (const auto& c : clusters)
    req.add_clusters(c);
  auto id = d.next_listener++;
  d.events->add_listener(id, cache_key(k.grouped_name(), join_clusters(clusters)), std::move(fn));
  try {
    d.expect<v1::ServiceInfo>(d.call(wire::sub_atom::value, wire::pack(req), id));
  } catch (...) {
    d.events->remove_listener(id);
    throw;
  }
  return id;
}

void naming_client::unsubscribe(listener_id id) {
  auto& d = *impl_;
  auto key = d.events->remove_listener(id);
  if (key.empty())
    return;
  d.call(wire::unsub_atom::value, key, id);
}

// -- operations -------------------------------------------------------------------------------------

node_status naming_client::status() {
  auto& d = *impl_;
  auto st = d.expect<v1::Status>(d.call(detail::gw_atom::value,
                                        caf::atom_value{wire::status_atom::value},
                                        wire::pack(v1::StatusRequest{})));
  node_status result;
  result.address = st.address();
  result.cluster_name = st.cluster_name();
  result.version = st.version();
  result.ready = st.ready();
  result.security = st.security();
  result.http_address = st.http_address();
  result.grpc_address = st.grpc_address();
  result.tls = st.tls();
  for (const auto& m : st.members())
    result.members.push_back(member_state{m.address(), m.state(), m.node(), m.problem()});
  result.clients = st.clients();
  result.services = st.services();
  result.instances = st.instances();
  result.subscribers = st.subscribers();
  for (const auto& c : st.distro_peers())
    result.distro_peers.push_back({c.peer(), c.syncs_ok(), c.syncs_failed(), c.verifies_ok(),
                                   c.verifies_failed(), c.repairs(), c.syncs_received(),
                                   c.verifies_received()});
  result.raft_role = st.raft_role();
  result.raft_leader = st.raft_leader();
  return result;
}

raft_status naming_client::raft() {
  auto& d = *impl_;
  auto st = d.expect<v1::RaftStatus>(d.call(detail::gw_atom::value,
                                            caf::atom_value{wire::status_atom::value},
                                            wire::pack(v1::RaftStatusRequest{})));
  raft_status result;
  result.enabled = st.enabled();
  result.id = st.id();
  result.role = st.role();
  result.term = st.term();
  result.leader = st.leader();
  result.commit_index = st.commit_index();
  result.applied_index = st.applied_index();
  result.last_index = st.last_index();
  result.snapshot_index = st.snapshot_index();
  result.persistent_instances = st.persistent_instances();
  result.data_dir = st.data_dir();
  for (const auto& m : st.members())
    result.members.push_back(
      raft_member{m.id(), m.voter(), m.match_index(), m.next_index(), m.state()});
  return result;
}

std::string naming_client::raft_transfer(const std::string& target) {
  auto& d = *impl_;
  v1::RaftTransferRequest req;
  req.set_target(target);
  req.set_access_token(d.token());
  auto ack = d.expect<v1::Ack>(d.call(detail::gw_atom::value,
                                      caf::atom_value{wire::status_atom::value}, wire::pack(req)));
  return ack.detail();
}

std::vector<member_state> naming_client::members() {
  auto& d = *impl_;
  auto list = d.expect<v1::MemberList>(d.call(detail::gw_atom::value,
                                              caf::atom_value{wire::members_atom::value},
                                              wire::pack(v1::MembersRequest{})));
  std::vector<member_state> result;
  for (const auto& m : list.members())
    result.push_back(member_state{m.address(), m.state(), m.node(), m.problem()});
  return result;
}

std::string naming_client::connected_node() const {
  return impl_->view->get_node();
}

bool naming_client::failover_active() const {
  return impl_->view->failover.load();
}

} // namespace registry::client
