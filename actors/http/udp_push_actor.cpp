#include "actors/http/udp_push_actor.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <zlib.h>

#include <cstring>

#include <caf/all.hpp>

#include "actors/common/clock.hpp"
#include "actors/common/delegate.hpp"
#include "actors/common/handlers.hpp"
#include "actors/common/log.hpp"
#include "messages/convert.hpp"
#include "messages/model_inspect.hpp"
#include "messages/type_ids.hpp"

namespace registry::http {

namespace {

using namespace wire;

/// Nacos gzips pushes from this size on (the client reads either).
constexpr std::size_t gzip_from_bytes = 1024;
/// The largest UDP payload over IPv4.
constexpr std::size_t datagram_bytes_max = 65507;

struct waiting_push {
  caf::typed_response_promise<envelope> rp;
  std::int64_t started_ms = 0;
};

struct udp_push_state {
  static inline const char* name = "udp_push";
  std::unique_ptr<udp_push_table> table;
  int fd = -1;
  api_settings api;
  unsubscribe_fn unsubscribe;
  std::function<void(const char*, double)> events;
  std::map<udp_address, subscriber_actor> receivers;
  std::map<std::uint64_t, waiting_push> waiting;
  std::int64_t tick_ms = 250;
};

using udp_push_actor_t = udp_push_actor::stateful_pointer<udp_push_state>;

subscriber_actor::behavior_type udp_receiver(subscriber_actor::pointer self, udp_push_actor manager,
                                             std::string ip, std::uint16_t port) {
  install_default_handlers(self, "udp_receiver");
  return {
    [=](push_atom atom, envelope& env) -> caf::result<envelope> {
      if (!local_only(self, "udp_receiver", "push"))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request", "not accepted from another process"));
      return delegate_envelope(self, manager, atom, ip, port, std::move(env));
    },
  };
}

std::string gzip(const std::string& in) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return {};
  std::string out;
  out.resize(deflateBound(&zs, in.size()) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  auto rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END ? out : std::string{};
}

bool send_datagram(int fd, const udp_address& addr, const std::string& bytes) {
  sockaddr_storage storage{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (::inet_pton(AF_INET, addr.ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(addr.port);
    len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, addr.ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(addr.port);
    len = sizeof(sockaddr_in6);
  } else {
    return false;
  }
  auto n = ::sendto(fd, bytes.data(), bytes.size(), MSG_DONTWAIT,
                    reinterpret_cast<sockaddr*>(&storage), len);
  return n == static_cast<ssize_t>(bytes.size());
}

void report(udp_push_actor_t self, const char* what, double latency_ms = 0) {
  if (self->state.events)
    self->state.events(what, latency_ms);
}

void fail_push(udp_push_actor_t self, std::uint64_t id) {
  auto& st = self->state;
  auto i = st.waiting.find(id);
  if (i == st.waiting.end())
    return;
  i->second.rp.deliver(caf::make_error(caf::sec::request_timeout));
  st.waiting.erase(i);
  report(self, "failed");
}

caf::result<envelope> on_push(udp_push_actor_t self, const std::string& ip, std::uint16_t port,
                              const envelope& env) {
  auto& st = self->state;
  udp_address addr{ip, port};
  v1::SubscriptionDropped dropped;
  if (unpack(env, dropped)) {
    udp_push_table::subscription sub{from_wire(dropped.service()), dropped.clusters()};
    log().info("udp_push forgot subscriber {} of {}: {}", addr.to_string(),
               bounded(sub.key.to_string()), bounded(dropped.reason()));
    if (st.table->unsubscribe(addr, sub)) {
      auto r = st.receivers.find(addr);
      if (r != st.receivers.end()) {
        self->send_exit(r->second, caf::exit_reason::user_shutdown);
        st.receivers.erase(r);
      }
    }
    return pack(v1::Ack{});
  }
  v1::ServiceInfo info;
  if (!unpack(env, info))
    return pack(make_error(v1::Error::INVALID_ARGUMENT, "request", "expected a ServiceInfo"));
  auto key = from_wire(v1::ServiceRef{});
  if (!info.namespace_id().empty())
    key.namespace_id = info.namespace_id();
  key.group = info.group_name();
  auto at = info.name().find("@@");
  key.name = at == std::string::npos ? info.name() : info.name().substr(at + 2);
  auto ref = st.table->next_ref_time(
    std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now().time_since_epoch())
      .count());
  auto json = service_info_json(env.payload, info.clusters(), st.api.cache_millis, st.api, false);
  auto datagram = make_push_datagram(json, ref);
  if (datagram.size() >= gzip_from_bytes) {
    auto packed = gzip(datagram);
    if (!packed.empty())
      datagram = std::move(packed);
  }
  if (datagram.size() > datagram_bytes_max) {
    log().warn("udp_push cannot push {} to {}: {} bytes exceed a datagram", bounded(key.to_string()),
               addr.to_string(), datagram.size());
    report(self, "failed");
    return caf::make_error(caf::sec::invalid_argument);
  }
  auto now = actor_now_ms(self);
  std::optional<std::uint64_t> superseded;
  auto id = st.table->start_push(addr, key, ref, datagram, now, superseded);
  if (superseded)
    fail_push(self, *superseded);
  send_datagram(st.fd, addr, datagram); // a lost send is a lost datagram: resent on the timeout
  auto rp = self->make_response_promise<envelope>();
  st.waiting.emplace(id, waiting_push{rp, now});
  return rp;
}

void on_tick(udp_push_actor_t self) {
  auto& st = self->state;
  auto fx = st.table->on_tick(actor_now_ms(self));
  for (auto& [addr, bytes] : fx.resend) {
    send_datagram(st.fd, addr, bytes);
    report(self, "resent");
  }
  for (auto id : fx.failed)
    fail_push(self, id);
  for (auto& [addr, sub] : fx.expired) {
    log().debug("udp_push expired subscriber {} of {}", addr.to_string(),
                bounded(sub.key.to_string()));
    if (st.unsubscribe)
      st.unsubscribe(sub.key, sub.clusters, addr.ip, addr.port);
  }
  for (auto& addr : fx.idle) {
    auto r = st.receivers.find(addr);
    if (r != st.receivers.end()) {
      self->send_exit(r->second, caf::exit_reason::user_shutdown);
      st.receivers.erase(r);
    }
  }
  self->delayed_send(self, std::chrono::milliseconds(st.tick_ms), tick_atom_v);
}

udp_push_actor::behavior_type udp_push_behavior(udp_push_actor_t self, int fd, udp_push_table::config cfg,
                             api_settings api, unsubscribe_fn unsubscribe,
                             std::function<void(const char*, double)> events) {
  auto& st = self->state;
  st.table = std::make_unique<udp_push_table>(cfg);
  st.fd = fd;
  st.api = std::move(api);
  st.unsubscribe = std::move(unsubscribe);
  st.events = std::move(events);
  st.tick_ms = std::max<std::int64_t>(10, std::min<std::int64_t>(cfg.ack_timeout_ms / 4, 250));
  install_default_handlers(self, "udp_push");
  self->delayed_send(self, std::chrono::milliseconds(st.tick_ms), tick_atom_v);
  return {
    [=](udp_sub_atom, const std::string& ip, std::uint16_t port, const service_key& key,
        const std::string& clusters) -> subscriber_actor {
      if (!local_only(self, "udp_push", "udp_sub"))
        return subscriber_actor{};
      auto& st = self->state;
      udp_address addr{ip, port};
      if (!st.table->subscribe(addr, {key, clusters}, actor_now_ms(self)))
        return subscriber_actor{};
      auto& receiver = st.receivers[addr];
      if (!receiver)
        receiver = self->spawn(udp_receiver, udp_push_actor{self}, ip, port);
      return receiver;
    },
    [=](push_atom, const std::string& ip, std::uint16_t port,
        const envelope& env) -> caf::result<envelope> {
      if (!local_only(self, "udp_push", "push"))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request", "not accepted from another process"));
      return on_push(self, ip, port, env);
    },
    // From the I/O thread (anonymous): counts only when it matches a waiting push exactly.
    [=](udp_ack_atom, const std::string& ip, std::uint16_t port, std::int64_t ref) {
      auto& st = self->state;
      auto id = st.table->on_ack(udp_address{ip, port}, ref);
      if (!id)
        return;
      auto i = st.waiting.find(*id);
      if (i == st.waiting.end())
        return;
      auto latency = actor_now_ms(self) - i->second.started_ms;
      log().debug("udp_push acknowledged UDP push to {}:{} ({} ms)", ip, port, latency);
      i->second.rp.deliver(pack(v1::Ack{}));
      st.waiting.erase(i);
      report(self, "acked", static_cast<double>(latency));
    },
    [=](tick_atom) {
      if (local_only(self, "udp_push", "tick"))
        on_tick(self);
    },
  };
}

} // namespace

udp_push_actor spawn_udp_push_actor(caf::actor_system& sys, int socket_fd,
                                udp_push_table::config cfg, api_settings api,
                                unsubscribe_fn unsubscribe,
                                std::function<void(const char*, double)> events) {
  return sys.spawn(udp_push_behavior, socket_fd, cfg, std::move(api), std::move(unsubscribe),
                   std::move(events));
}

} // namespace registry::http
