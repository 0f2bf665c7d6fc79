#include "actors/grpc/grpc_front_end.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <caf/all.hpp>
#include <grpcpp/grpcpp.h>

#include "actors/common/clock.hpp"
#include "actors/common/log.hpp"
#include "actors/grpc/grpc_connection_actor.hpp"
#include "config/defaults.hpp"
#include "messages/nacos_grpc_service.grpc.pb.h"
#include "messages/registry.pb.h"
#include "messages/type_ids.hpp"

namespace registry::grpc_api {

namespace {

void fill(::Payload& out, const message& m) {
  out.mutable_metadata()->set_type(m.type);
  // type_url stays empty: Java, Go and Python send and expect it so.
  out.mutable_body()->set_value(m.body);
}

/// "ipv4:127.0.0.1:53412" / "ipv6:[::1]:53412" -> ip and port.
void split_peer(const std::string& peer, std::string& ip, std::string& port) {
  auto text = peer;
  if (auto colon = text.find(':'); colon != std::string::npos && text.rfind("ip", 0) == 0)
    text = text.substr(colon + 1);
  auto last = text.rfind(':');
  ip = last == std::string::npos ? text : text.substr(0, last);
  port = last == std::string::npos ? "" : text.substr(last + 1);
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']')
    ip = ip.substr(1, ip.size() - 2);
}

} // namespace

class connection_stream;

/// One connection as its actor sees it: parked unary calls and the stream.
class connection_link final : public grpc_link {
public:
  connection_link(grpc_front_end::impl* fe, std::string id, std::string ip)
    : fe_(fe), id_(std::move(id)), ip_(std::move(ip)) {
  }

  /// Parks a unary call; 0 when the connection is closed.
  std::uint64_t park(grpc::ServerUnaryReactor* reactor, ::Payload* response, request req,
                     std::string type) {
    std::lock_guard<std::recursive_mutex> guard{mtx_};
    if (closed_)
      return 0;
    auto id = ++next_call_;
    calls_.emplace(id, parked{reactor, response, std::move(req), std::move(type), false});
    return id;
  }

  bool take_call(std::uint64_t call_id, request& out) override {
    std::lock_guard<std::recursive_mutex> guard{mtx_};
    auto i = calls_.find(call_id);
    if (i == calls_.end() || i->second.taken)
      return false;
    i->second.taken = true;
    out = std::move(i->second.req);
    return true;
  }

  void answer(std::uint64_t call_id, message m) override;
  bool write(message m) override;
  void close() override;
  const std::string& connection_id() const override { return id_; }
  const std::string& remote_ip() const override { return ip_; }
  void push_done(const std::string& result, double seconds) override;

  /// The stream ended: every parked call is answered "unregistered", writes fail from now on.
  void detach();
  void attach(connection_stream* stream) {
    std::lock_guard<std::recursive_mutex> guard{mtx_};
    stream_ = stream;
  }

  grpc_connection_actor actor;

private:
  struct parked {
    grpc::ServerUnaryReactor* reactor;
    ::Payload* response;
    request req;
    std::string type;
    bool taken;
  };

  grpc_front_end::impl* fe_;
  std::string id_;
  std::string ip_;
  std::recursive_mutex mtx_;
  bool closed_ = false;
  connection_stream* stream_ = nullptr;
  std::uint64_t next_call_ = 0;
  std::unordered_map<std::uint64_t, parked> calls_;
};

struct grpc_front_end::impl {
  node_config cfg;
  std::shared_ptr<auth::authenticator> users;
  grpc_observer observer;
  host_port bound;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<::Request::CallbackService> unary_service;
  std::unique_ptr<::BiRequestStream::CallbackService> stream_service;
  caf::actor_system* sys = nullptr;
  node_supervisor_actor supervisor;
  std::atomic<bool> started{false};
  std::atomic<bool> ready{false};
  std::atomic<bool> stopping{false};

  /// Connections by gRPC peer address. An entry without a link answered ServerCheck only.
  struct entry {
    std::string id;
    std::shared_ptr<connection_link> link;
    time_ms created_ms = 0;
  };
  std::mutex mtx;
  std::unordered_map<std::string, entry> connections;
  std::size_t links = 0;

  std::thread sweeper;
  std::mutex sweep_mtx;
  std::condition_variable sweep_cv;

  void request_done(const std::string& type, const std::string& result) {
    if (observer.request_done)
      observer.request_done(type, result);
  }

  void reply(grpc::ServerUnaryReactor* r, ::Payload* out, const message& m,
             const std::string& type) {
    fill(*out, m);
    request_done(type, m.type == "ErrorResponse" ? "error" : "ok");
    r->Finish(grpc::Status::OK);
  }

  std::string new_connection_id(const std::string& peer) {
    std::string ip;
    std::string port;
    split_peer(peer, ip, port);
    return std::to_string(system_now_ms()) + "_" + ip + "_" + port;
  }

  void on_unary(const std::string& peer, const ::Payload& in, ::Payload* out,
                grpc::ServerUnaryReactor* r);
  /// A stream message; returns false when the stream is to be finished.
  void on_stream_message(connection_stream* stream, const std::string& peer, const ::Payload& in);
  void on_stream_done(connection_stream* stream, const std::string& peer);
  void sweep_loop();
};

/// The bi-stream of one connection: reads the client's messages one at a time, writes the
/// server's requests one at a time from a bounded queue.
class connection_stream final : public grpc::ServerBidiReactor<::Payload, ::Payload> {
public:
  connection_stream(grpc_front_end::impl* fe, std::string peer)
    : fe_(fe), peer_(std::move(peer)) {
    StartRead(&in_);
  }

  std::shared_ptr<connection_link> link;

  /// Queues a write; false when finished or when the queue is full (the stream then ends).
  bool enqueue(const message& m) {
    std::unique_lock<std::mutex> lock{mtx_};
    if (finishing_)
      return false;
    if (queue_.size() >= defaults::grpc_stream_writes_queued_max) {
      log().warn("gRPC connection {}: the client reads nothing ({} requests queued); closing it",
                 peer_, queue_.size());
      finishing_ = true;
      finish_locked(lock, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                       "the client does not read its stream"));
      return false;
    }
    queue_.emplace_back();
    fill(queue_.back(), m);
    if (writing_)
      return true;
    writing_ = true;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    StartWrite(&current_);
    return true;
  }

  /// Finishes once the queued writes are out.
  void finish_after_writes() {
    std::unique_lock<std::mutex> lock{mtx_};
    finishing_ = true;
    if (!writing_)
      finish_locked(lock, grpc::Status::OK);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::unique_lock<std::mutex> lock{mtx_};
      finishing_ = true;
      if (!writing_)
        finish_locked(lock, grpc::Status::OK);
      else
        read_failed_ = true;
      return;
    }
    fe_->on_stream_message(this, peer_, in_);
    // The message may have ended the stream (a refused setup): no read after Finish. Under the
    // lock, so a Finish from another thread comes either before this check or after the read
    // started (it then ends that read). Inside a reaction, gRPC runs the next one only after this
    // returns, so the lock is not taken twice.
    std::lock_guard<std::mutex> guard{mtx_};
    if (finishing_)
      return;
    in_.Clear();
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock{mtx_};
    if (!ok || queue_.empty()) {
      writing_ = false;
      if (!ok)
        finishing_ = true;
      if (finishing_)
        finish_locked(lock, grpc::Status::OK);
      return;
    }
    current_ = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    StartWrite(&current_);
  }

  void OnDone() override {
    fe_->on_stream_done(this, peer_);
    delete this;
  }

private:
  /// Finish exactly once; `lock` is released first, as Finish may run OnDone (delete this) inline.
  void finish_locked(std::unique_lock<std::mutex>& lock, grpc::Status status) {
    if (finished_)
      return;
    finished_ = true;
    lock.unlock();
    Finish(std::move(status));
  }

  grpc_front_end::impl* fe_;
  std::string peer_;
  ::Payload in_;
  ::Payload current_;
  std::mutex mtx_;
  std::deque<::Payload> queue_;
  bool writing_ = false;
  bool finishing_ = false;
  bool finished_ = false;
  bool read_failed_ = false;
};

// -- connection_link ----------------------------------------------------------------------------

void connection_link::answer(std::uint64_t call_id, message m) {
  parked p{};
  {
    std::lock_guard<std::recursive_mutex> guard{mtx_};
    auto i = calls_.find(call_id);
    if (i == calls_.end())
      return;
    p = std::move(i->second);
    calls_.erase(i);
  }
  fe_->reply(p.reactor, p.response, m, p.type);
}

bool connection_link::write(message m) {
  std::lock_guard<std::recursive_mutex> guard{mtx_};
  if (stream_ == nullptr)
    return false;
  return stream_->enqueue(m);
}

void connection_link::close() {
  std::lock_guard<std::recursive_mutex> guard{mtx_};
  if (stream_ != nullptr)
    stream_->finish_after_writes();
}

void connection_link::push_done(const std::string& result, double seconds) {
  if (fe_->observer.push_done)
    fe_->observer.push_done(result, seconds);
}

void connection_link::detach() {
  std::unordered_map<std::uint64_t, parked> left;
  {
    std::lock_guard<std::recursive_mutex> guard{mtx_};
    closed_ = true;
    stream_ = nullptr;
    left.swap(calls_);
  }
  for (auto& [id, p] : left)
    fe_->reply(p.reactor, p.response,
               error_response(code::unregistered, "Connection is unregistered."), p.type);
}

// -- the services --------------------------------------------------------------------------------

namespace {

class unary_service final : public ::Request::CallbackService {
public:
  explicit unary_service(grpc_front_end::impl* fe) : fe_(fe) {
  }

  grpc::ServerUnaryReactor* request(grpc::CallbackServerContext* ctx, const ::Payload* in,
                                    ::Payload* out) override {
    auto* reactor = ctx->DefaultReactor();
    fe_->on_unary(ctx->peer(), *in, out, reactor);
    return reactor;
  }

private:
  grpc_front_end::impl* fe_;
};

class stream_service final : public ::BiRequestStream::CallbackService {
public:
  explicit stream_service(grpc_front_end::impl* fe) : fe_(fe) {
  }

  grpc::ServerBidiReactor<::Payload, ::Payload>*
  requestBiStream(grpc::CallbackServerContext* ctx) override {
    return new connection_stream(fe_, ctx->peer());
  }

private:
  grpc_front_end::impl* fe_;
};

} // namespace

void grpc_front_end::impl::on_unary(const std::string& peer, const ::Payload& in, ::Payload* out,
                                    grpc::ServerUnaryReactor* r) {
  const auto& type = in.metadata().type();
  std::string label = known_type(type) ? type : "other";
  if (!started.load() || stopping.load())
    return reply(r, out, error_response(code::server_starting,
                                        "Server is starting,please try later."),
                 label);
  if (type == "ServerCheckRequest") {
    if (!ready.load())
      return reply(r, out, error_response(code::server_starting,
                                          "Server is starting,please try later."),
                   label);
    std::string id;
    {
      std::lock_guard<std::mutex> guard{mtx};
      auto i = connections.find(peer);
      if (i == connections.end()) {
        // Peers that checked but never set up are bounded too (they expire after
        // grpc.setup_timeout_ms): beyond twice the connection bound, no new one is remembered.
        if (connections.size() >= 2 * static_cast<std::size_t>(cfg.grpc.connections_max))
          return reply(r, out, error_response(code::over_threshold,
                                              "too many connections; try another member"),
                       label);
        i = connections.emplace(peer, entry{new_connection_id(peer), nullptr, steady_now_ms()})
              .first;
      }
      id = i->second.id;
    }
    return reply(r, out, server_check_response(id), label);
  }
  auto decoded = decode(type, in.body().value(), defaults::grpc_batch_instances_max);
  auto* failed = std::get_if<failure>(&decoded);
  if (failed != nullptr && failed->code == code::no_handler)
    return reply(r, out, error_response(failed->code, failed->message), "other");
  std::shared_ptr<connection_link> link;
  {
    std::lock_guard<std::mutex> guard{mtx};
    if (auto i = connections.find(peer); i != connections.end())
      link = i->second.link;
  }
  if (!link) {
    log().debug("gRPC {} from {}: the connection is not set up (301)", label, peer);
    return reply(r, out, error_response(code::unregistered, "Connection is unregistered."),
                 label);
  }
  if (failed != nullptr)
    return reply(r, out, error_response(failed->code, failed->message), label);
  auto& req = std::get<request>(decoded);
  if (req.what == kind::connection_setup || req.what == kind::notify_subscriber_response
      || req.what == kind::client_detection_response
      || req.what == kind::connect_reset_response)
    return reply(r, out, error_response(code::bad_param,
                                        type + " belongs on the stream, not in a unary call"),
                 label);
  if (users && req.what != kind::health_check) {
    auto header = [&](const char* name) {
      auto& h = in.metadata().headers();
      auto i = h.find(name);
      return i == h.end() ? std::string{} : i->second;
    };
    // The token only: a password would cost an Argon2 check on a gRPC thread per call (the
    // SDKs log in over HTTP and send the token).
    auto verdict = users->check(header("accessToken"), "", "", system_now_ms());
    if (!verdict.ok)
      return reply(r, out, error_response(code::no_right, verdict.message), label);
  }
  auto id = link->park(r, out, std::move(req), label);
  if (id == 0)
    return reply(r, out, error_response(code::unregistered, "Connection is unregistered."),
                 label);
  caf::anon_send(link->actor, wire::grpc_call_atom_v, id);
}

void grpc_front_end::impl::on_stream_message(connection_stream* stream, const std::string& peer,
                                             const ::Payload& in) {
  const auto& type = in.metadata().type();
  auto decoded = decode(type, in.body().value(), defaults::grpc_batch_instances_max);
  if (auto* failed = std::get_if<failure>(&decoded)) {
    log().debug("gRPC stream from {}: {} ignored: {}", peer, bounded(type), failed->message);
    return;
  }
  auto& req = std::get<request>(decoded);
  if (req.what != kind::connection_setup) {
    if (!stream->link || !stream->link->actor)
      return;
    if (req.what == kind::notify_subscriber_response
        || req.what == kind::client_detection_response
        || req.what == kind::connect_reset_response)
      caf::anon_send(stream->link->actor, wire::grpc_answer_atom_v,
                     static_cast<std::int32_t>(req.what), req.request_id,
                     static_cast<std::int32_t>(req.result_code));
    return;
  }
  if (stream->link)
    return; // a second setup on one stream changes nothing
  if (!started.load() || stopping.load() || !ready.load()) {
    auto tmp = std::make_shared<connection_link>(this, new_connection_id(peer), "");
    tmp->attach(stream);
    tmp->write(connect_reset_request("0", "", "", tmp->connection_id()));
    tmp->close();
    tmp->detach();
    return;
  }
  std::string id;
  {
    std::lock_guard<std::mutex> guard{mtx};
    if (links >= static_cast<std::size_t>(cfg.grpc.connections_max)) {
      log().warn("gRPC connection from {} refused: {} connections, grpc.connections_max is {}",
                 peer, links, cfg.grpc.connections_max);
      stream->finish_after_writes();
      return;
    }
    auto i = connections.find(peer);
    id = i != connections.end() && !i->second.id.empty() && !i->second.link
           ? i->second.id
           : new_connection_id(peer);
  }
  // The link gets its actor before any unary call can find it in the table.
  std::string ip;
  std::string port;
  split_peer(peer, ip, port);
  auto link = std::make_shared<connection_link>(this, id, ip);
  stream->link = link;
  link->attach(stream);
  connection_settings s;
  s.request_timeout_ms = cfg.grpc.request_timeout_ms;
  s.push_ack_timeout_ms = cfg.push.timeout_ms;
  s.idle_timeout_ms = cfg.grpc.idle_timeout_ms;
  s.detection_timeout_ms = cfg.grpc.detection_timeout_ms;
  s.cache_millis = defaults::grpc_cache_millis;
  s.calls_queued_max = defaults::grpc_calls_queued_max;
  s.subscriptions_max = defaults::grpc_subscriptions_per_connection_max;
  link->actor = spawn_grpc_connection(*sys, link, supervisor, s);
  // Should the actor end for any other reason than the stream's end, the stream ends with it, so
  // no parked call waits for an actor that is gone (the stream's end answers them).
  std::weak_ptr<connection_link> weak = link;
  caf::actor_cast<caf::actor>(link->actor)->attach_functor([weak] {
    if (auto l = weak.lock())
      l->close();
  });
  std::shared_ptr<connection_link> replaced;
  {
    std::lock_guard<std::mutex> guard{mtx};
    auto& e = connections[peer];
    e.id = id;
    replaced = std::move(e.link);
    e.link = link;
    e.created_ms = steady_now_ms();
    if (!replaced)
      ++links;
  }
  if (replaced) {
    replaced->detach();
    caf::anon_send(replaced->actor, wire::grpc_close_atom_v);
  }
  if (req.negotiates_abilities)
    link->write(setup_ack_request(cfg.raft_enabled()));
  if (observer.connections)
    observer.connections(static_cast<double>(links));
  log().debug("gRPC connection {} set up ({}, peer {})", link->connection_id(),
              bounded(req.client_version), peer);
}

void grpc_front_end::impl::on_stream_done(connection_stream* stream, const std::string& peer) {
  auto link = stream->link;
  if (!link)
    return;
  bool counted = false;
  {
    std::lock_guard<std::mutex> guard{mtx};
    auto i = connections.find(peer);
    if (i != connections.end() && i->second.link == link) {
      connections.erase(i);
      --links;
      counted = true;
    }
  }
  link->detach();
  caf::anon_send(link->actor, wire::grpc_close_atom_v);
  if (counted && observer.connections)
    observer.connections(static_cast<double>(links));
}

/// Once a second: forget peers that answered ServerCheck but never set up a stream, and learn
/// whether the node is ready (ServerCheck answers 300 until it is).
void grpc_front_end::impl::sweep_loop() {
  std::unique_lock<std::mutex> lock{sweep_mtx};
  bool first = true;
  while (!stopping.load()) {
    // Until the node is ready, look every 50 ms: clients retry ServerCheck about once a second.
    if (!first)
      sweep_cv.wait_for(lock, ready.load() ? std::chrono::milliseconds(1000)
                                           : std::chrono::milliseconds(50));
    first = false;
    if (stopping.load())
      break;
    auto now = steady_now_ms();
    {
      std::lock_guard<std::mutex> guard{mtx};
      for (auto i = connections.begin(); i != connections.end();)
        if (!i->second.link && now - i->second.created_ms >= cfg.grpc.setup_timeout_ms)
          i = connections.erase(i);
        else
          ++i;
    }
    if (!started.load())
      continue;
    caf::scoped_actor self{*sys};
    gateway_actor gateway;
    auto timeout = std::chrono::milliseconds(1000);
    self->request(supervisor, timeout, caf::get_atom_v)
      .receive([&](gateway_actor& g) { gateway = g; }, [](caf::error&) {});
    if (!gateway) {
      ready = false;
      continue;
    }
    v1::StatusRequest status_request;
    self->request(gateway, timeout, wire::status_atom_v, wire::pack(status_request))
      .receive(
        [&](wire::envelope& reply) {
          v1::Status st;
          ready = wire::unpack(reply, st) && st.ready();
        },
        [&](caf::error&) { ready = false; });
  }
}

// -- grpc_front_end -----------------------------------------------------------------------------

grpc_front_end::grpc_front_end(const node_config& cfg, std::shared_ptr<auth::authenticator> users,
                               grpc_observer observer)
  : impl_(std::make_unique<impl>()) {
  impl_->cfg = cfg;
  impl_->users = std::move(users);
  impl_->observer = std::move(observer);
}

grpc_front_end::~grpc_front_end() {
  stop();
}

std::string grpc_front_end::bind() {
  auto& im = *impl_;
  im.unary_service = std::make_unique<unary_service>(&im);
  im.stream_service = std::make_unique<stream_service>(&im);
  grpc::ServerBuilder builder;
  int port = 0;
  auto host = im.cfg.grpc.listen.host;
  auto address = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":"
                 + std::to_string(im.cfg.grpc.listen.port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(im.unary_service.get());
  builder.RegisterService(im.stream_service.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(defaults::grpc_message_bytes_max));
  builder.SetMaxSendMessageSize(static_cast<int>(defaults::grpc_message_bytes_max));
  // Go and Python clients ping every 60 s, also without calls: never answer them with GOAWAY.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 1024);
  im.server = builder.BuildAndStart();
  if (!im.server || port == 0)
    return "cannot listen on " + address + " (in use, or not an address of this machine)";
  im.bound = host_port{host, static_cast<std::uint16_t>(port)};
  return "";
}

host_port grpc_front_end::address() const {
  return impl_->bound;
}

void grpc_front_end::start(caf::actor_system& sys, node_supervisor_actor supervisor) {
  auto& im = *impl_;
  im.sys = &sys;
  im.supervisor = std::move(supervisor);
  im.started = true;
  im.sweeper = std::thread([&im] { im.sweep_loop(); });
}

void grpc_front_end::stop() {
  auto& im = *impl_;
  if (!im.server || im.stopping.exchange(true))
    return;
  std::vector<std::shared_ptr<connection_link>> links;
  {
    std::lock_guard<std::mutex> guard{im.mtx};
    for (auto& [peer, e] : im.connections)
      if (e.link)
        links.push_back(e.link);
  }
  // A leaving node tells its clients to move now rather than let them find out by a failed call.
  for (auto& link : links) {
    link->write(connect_reset_request("0", "", "", link->connection_id()));
    link->close();
  }
  {
    std::lock_guard<std::mutex> guard{im.sweep_mtx};
    im.sweep_cv.notify_all();
  }
  if (im.sweeper.joinable())
    im.sweeper.join();
  im.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  im.server.reset();
}

} // namespace registry::grpc_api
