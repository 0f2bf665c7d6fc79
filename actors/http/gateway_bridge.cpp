#include "actors/http/gateway_bridge.hpp"

#include <caf/all.hpp>

#include "actors/common/handlers.hpp"
#include "actors/common/log.hpp"
#include "messages/convert.hpp"
#include "messages/model_inspect.hpp"
#include "messages/type_ids.hpp"

namespace registry::http {

namespace {

using namespace wire;

struct bridge_state {
  static inline const char* name = "http_bridge";
  std::shared_ptr<gateway_bridge::table> table;
  node_supervisor_actor supervisor;
  gateway_actor gateway;
  std::chrono::milliseconds timeout{3000};
  /// Requests that came while no gateway was known; sent when one is.
  std::vector<std::uint64_t> waiting;
};

using bridge_actor_t = http_bridge_actor::stateful_pointer<bridge_state>;

constexpr std::size_t waiting_max = 10000;

void reply_error(const reply_fn& done, std::string why) {
  if (done)
    done(wire_msg{"", std::move(why)});
}

envelope to_envelope(wire_msg m) {
  return envelope{std::move(m.kind), std::move(m.payload)};
}

/// Asks the gateway with one atom and passes the reply on.
template <class Atom, class... Ts>
void ask(bridge_actor_t self, reply_fn done, Atom atom, Ts&&... xs) {
  auto& st = self->state;
  self->request(st.gateway, st.timeout, atom, std::forward<Ts>(xs)...)
    .then([done](envelope& reply) { done(wire_msg{std::move(reply.kind), std::move(reply.payload)}); },
          [self, done](caf::error& err) { reply_error(done, self->system().render(err)); });
}

void ask_gateway(bridge_actor_t self, gateway_bridge::pending& p) {
  auto env = to_envelope(std::move(p.msg));
  switch (p.op) {
    case gateway_op::reg:
      return ask(self, std::move(p.done), reg_atom_v, std::move(env));
    case gateway_op::beat:
      return ask(self, std::move(p.done), beat_atom_v, std::move(env));
    case gateway_op::dereg:
      return ask(self, std::move(p.done), dereg_atom_v, std::move(env));
    case gateway_op::query:
      return ask(self, std::move(p.done), query_atom_v, std::move(env));
    case gateway_op::list:
      return ask(self, std::move(p.done), list_atom_v, std::move(env));
    case gateway_op::status:
      return ask(self, std::move(p.done), status_atom_v, std::move(env));
    case gateway_op::members:
      return ask(self, std::move(p.done), members_atom_v, std::move(env));
    case gateway_op::update_service:
    case gateway_op::update_persistent:
      return ask(self, std::move(p.done), pwrite_atom_v, std::move(env), true);
    case gateway_op::create_service:
      return ask(self, std::move(p.done), pwrite_atom_v, std::move(env), false);
  }
}

/// Subscribes a UDP address: the push actor gives the address's receiving actor, the gateway
/// subscribes it at the service actor.
void subscribe(bridge_actor_t self, gateway_bridge::pending& p) {
  auto& st = self->state;
  udp_push_actor udp_push;
  {
    std::lock_guard<std::mutex> guard{st.table->mtx};
    udp_push = st.table->udp_push;
  }
  if (!udp_push) {
    v1::QueryRequest req;
    to_wire(p.key, *req.mutable_service());
    p.msg = wire_msg{v1::QueryRequest::descriptor()->full_name(), req.SerializeAsString()};
    p.op = gateway_op::query;
    return ask_gateway(self, p);
  }
  auto done = std::move(p.done);
  auto key = p.key;
  auto clusters = p.clusters;
  auto client = gateway_bridge::udp_client_id(p.ip, p.port);
  self->request(udp_push, st.timeout, udp_sub_atom_v, p.ip, p.port, p.key, p.clusters)
    .then(
      [=](subscriber_actor receiver) {
        if (!receiver)
          return done(wire_msg{"registry.v1.Error",
                               make_error(v1::Error::LIMIT_EXCEEDED, "udpPort",
                                          "the node holds too many UDP subscribers")
                                 .SerializeAsString()});
        ask(self, done, svc_sub_atom_v, key, client, clusters, std::move(receiver));
      },
      [=](caf::error& err) { reply_error(done, self->system().render(err)); });
}

void run(bridge_actor_t self, std::uint64_t id) {
  auto& st = self->state;
  gateway_bridge::pending p;
  if (!st.table->take(id, p))
    return;
  if (!st.gateway) {
    // Not known yet: park it again until the supervisor answers.
    if (st.waiting.size() >= waiting_max)
      return reply_error(p.done, "the node is starting");
    st.waiting.push_back(st.table->put(std::move(p)));
    return;
  }
  switch (p.what) {
    case gateway_bridge::pending::kind::call:
      return ask_gateway(self, p);
    case gateway_bridge::pending::kind::subscribe:
      return subscribe(self, p);
    case gateway_bridge::pending::kind::unsubscribe:
      self->request(st.gateway, st.timeout, svc_unsub_atom_v, p.key,
                    gateway_bridge::udp_client_id(p.ip, p.port), p.clusters)
        .then([](envelope&) {}, [](caf::error&) {});
      return;
  }
}

void find_gateway(bridge_actor_t self) {
  auto& st = self->state;
  self->request(st.supervisor, st.timeout, caf::get_atom_v)
    .then(
      [self](gateway_actor gateway) {
        auto& st = self->state;
        if (!gateway) {
          self->delayed_send(self, std::chrono::milliseconds(100), retry_atom_v);
          return;
        }
        st.gateway = gateway;
        self->monitor(gateway);
        auto waiting = std::move(st.waiting);
        st.waiting.clear();
        for (auto id : waiting)
          run(self, id);
      },
      [self](caf::error&) {
        self->delayed_send(self, std::chrono::milliseconds(100), retry_atom_v);
      });
}

http_bridge_actor::behavior_type bridge_behavior(bridge_actor_t self,
                                                 std::shared_ptr<gateway_bridge::table> table,
                                                 node_supervisor_actor supervisor,
                                                 std::int64_t timeout_ms) {
  auto& st = self->state;
  st.table = std::move(table);
  st.supervisor = std::move(supervisor);
  st.timeout = std::chrono::milliseconds(timeout_ms);
  install_default_handlers(self, "http_bridge");
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (!trusted_down(self, dm))
      return;
    if (dm.source == st.gateway.address()) {
      st.gateway = nullptr;
      find_gateway(self);
    } else if (dm.source == st.supervisor.address()) {
      self->quit(dm.reason);
    }
  });
  self->monitor(st.supervisor);
  find_gateway(self);
  return {
    // From HTTP threads (anonymous sends): the id of a parked request.
    [=](http_call_atom, std::uint64_t id) { run(self, id); },
    [=](retry_atom) {
      if (local_only(self, "http_bridge", "retry") && !self->state.gateway)
        find_gateway(self);
    },
  };
}

} // namespace

std::uint64_t gateway_bridge::table::put(pending p) {
  std::lock_guard<std::mutex> guard{mtx};
  auto id = next_id++;
  entries.emplace(id, std::move(p));
  return id;
}

bool gateway_bridge::table::take(std::uint64_t id, pending& out) {
  std::lock_guard<std::mutex> guard{mtx};
  auto i = entries.find(id);
  if (i == entries.end())
    return false;
  out = std::move(i->second);
  entries.erase(i);
  return true;
}

gateway_bridge::gateway_bridge(caf::actor_system& sys, node_supervisor_actor supervisor,
                               std::int64_t request_timeout_ms)
  : sys_(sys), table_(std::make_shared<table>()) {
  actor_ = sys.spawn(bridge_behavior, table_, std::move(supervisor), request_timeout_ms);
}

gateway_bridge::~gateway_bridge() {
  // From a local actor: the bridge actor refuses anonymous exit messages as foreign.
  caf::scoped_actor{sys_}->send_exit(actor_, caf::exit_reason::user_shutdown);
  // Completions still parked are answered, so no connection waits for ever.
  std::unordered_map<std::uint64_t, pending> left;
  {
    std::lock_guard<std::mutex> guard{table_->mtx};
    left.swap(table_->entries);
  }
  for (auto& [id, p] : left)
    reply_error(p.done, "the node is stopping");
}

void gateway_bridge::park(pending p) {
  auto id = table_->put(std::move(p));
  caf::anon_send(actor_, http_call_atom_v, id);
}

void gateway_bridge::call(gateway_op op, wire_msg request, reply_fn done) {
  pending p;
  p.what = pending::kind::call;
  p.op = op;
  p.msg = std::move(request);
  p.done = std::move(done);
  park(std::move(p));
}

void gateway_bridge::subscribe_udp(const service_key& key, const std::string& clusters,
                                   const std::string& ip, std::uint16_t port, reply_fn done) {
  pending p;
  p.what = pending::kind::subscribe;
  p.key = key;
  p.clusters = clusters;
  p.ip = ip;
  p.port = port;
  p.done = std::move(done);
  park(std::move(p));
}

void gateway_bridge::unsubscribe_udp(const service_key& key, const std::string& clusters,
                                     const std::string& ip, std::uint16_t port) {
  pending p;
  p.what = pending::kind::unsubscribe;
  p.key = key;
  p.clusters = clusters;
  p.ip = ip;
  p.port = port;
  park(std::move(p));
}

void gateway_bridge::set_udp_push(udp_push_actor udp_push) {
  std::lock_guard<std::mutex> guard{table_->mtx};
  table_->udp_push = std::move(udp_push);
}

std::string gateway_bridge::udp_client_id(const std::string& ip, std::uint16_t port) {
  return "udp:" + ip + ":" + std::to_string(port);
}

} // namespace registry::http
