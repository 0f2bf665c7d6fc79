#include "tools/client/session_actor.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include "actors/common/transport.hpp"
#include "config/defaults.hpp"
#include "messages/convert.hpp"
#include "messages/type_ids.hpp"
#include "tools/client/failover.hpp"
#include "tools/client/service_cache.hpp"
#include "tools/client/update_schedule.hpp"

namespace registry::client::detail {

namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;
using wire::envelope;

time_ms steady_ms() {
  return std::chrono::duration_cast<milliseconds>(clock_type::now().time_since_epoch()).count();
}

envelope error_envelope(v1::Error::Code code, const std::string& message) {
  return wire::pack(make_error(code, "", message));
}

envelope ack_envelope(const std::string& detail = {}) {
  v1::Ack ack;
  ack.set_detail(detail);
  return wire::pack(ack);
}

envelope info_envelope(const service_info& x) {
  v1::ServiceInfo out;
  to_wire(x, out);
  return wire::pack(out);
}

std::string join(const std::vector<std::string>& xs, const char* sep) {
  std::string result;
  for (const auto& x : xs) {
    if (!result.empty())
      result += sep;
    result += x;
  }
  return result;
}

/// "a,b" -> {a, b} ("" -> {}).
std::set<std::string> split_clusters(const std::string& text) {
  std::set<std::string> result;
  std::string::size_type pos = 0;
  while (pos <= text.size() && !text.empty()) {
    auto comma = text.find(',', pos);
    auto end = comma == std::string::npos ? text.size() : comma;
    result.insert(text.substr(pos, end - pos));
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return result;
}

/// The identity of an instance registered through the session: namespace, service, ip, port, cluster.
std::string registration_key(const service_key& key, const std::string& ip, std::uint32_t port,
                             const std::string& cluster) {
  return key.to_string() + "#" + ip + ":" + std::to_string(port) + "#" +
         (cluster.empty() ? std::string{defaults::cluster} : cluster);
}

/// An instance the node acknowledged for the session, for redo.
struct registration {
  std::string service; ///< service_key::to_string()
  envelope request;    ///< RegisterRequest
};

// -- state ----------------------------------------------------------------------------------------

struct session_state;
using session_actor_type = client_library_actor::stateful_base<session_state>;
/// The reply to an API request: (reply, produced by the library).
using reply_promise = caf::typed_response_promise<envelope, bool>;

/// A request on its way to a node: queued (no node yet) or in flight.
struct pending_op {
  enum class via { gateway, session };
  /// Post-processing inside the actor; returns what the requester gets. Runs exactly once, also for
  /// local failures.
  using done_fn = std::function<envelope(envelope reply, bool local)>;

  via target = via::gateway;
  caf::atom_value atom;
  envelope payload;
  reply_promise rp; ///< not pending for internal requests
  clock_type::time_point deadline;
  done_fn done;
  bool redo = false;        ///< regenerated on every new session: dropped instead of re-sent
  bool in_flight = false;
  std::uint64_t attempt = 0; ///< replies of older attempts are stale
};

/// One subscribed key (GROUP@@SERVICE[@@clusters]).
struct subscription {
  std::string key;
  service_key service;
  std::string clusters;              ///< as asked, comma-joined
  std::set<std::string> cluster_set; ///< to match pushes whose clusters come in another order
  envelope subscribe_request;        ///< SubscribeRequest
  envelope query_request;            ///< QueryRequest for the update task
  std::set<listener_id> listeners;
  bool implicit = false;       ///< subscribed by a read (get_service/select_instances with subscribe)
                               ///< (kept when a failed listener subscription is rolled back)
  bool confirmed = false;      ///< the current session holds the subscription
  bool baseline_reset = true;  ///< accept the next state even if older (first state of a session)
  bool subscribing = false;    ///< a subscribe request is on its way
  update_schedule schedule;

  subscription(std::int64_t interval_ms, std::int64_t backoff_max_ms)
    : schedule(interval_ms, backoff_max_ms) {}
};

struct session_state {
  const char* name = "registry.client.session";

  explicit session_state(session_actor_type* self) : self_(self), failover_(std::string{}) {}

  // -- initialization ---------------------------------------------------------------------------

  void init(session_config cfg) {
    cfg_ = std::move(cfg);
    failover_ = failover_switch{cfg_.opts.cache_dir};
    check_failover(); // once at construction, before any read
    if (!cfg_.opts.cache_dir.empty())
      self_->delayed_send(self_, cfg_.opts.failover_check_interval, failover_tick_atom::value);
  }

  const std::string& ns() const { return cfg_.opts.namespace_id; }
  std::size_t server_count() const { return cfg_.servers.size(); }
  std::string address_of(std::size_t idx) const { return cfg_.servers[idx].address(); }

  std::string describe(const caf::error& err) const {
    if (!err)
      return "normal exit"; // CAF 0.17: category() of an empty error dereferences null
    if (handshake_failed(err))
      return explain_connect_error(self_->system(), err,
                                   "the node's tls section and this client's TLS options");
    if (err.category() == caf::atom("system")) {
      switch (static_cast<caf::sec>(err.code())) {
        case caf::sec::cannot_connect_to_node:
          return "cannot connect: refused or unreachable";
        case caf::sec::request_timeout:
          return "no answer in time";
        case caf::sec::incompatible_application_ids:
          return "incompatible protocol version (CAF app identifier)";
        case caf::sec::request_receiver_down:
          return "the node's actor is down";
        case caf::sec::no_actor_published_at_port:
          return "no registry published at that port";
        case caf::sec::connection_timeout:
          return "connection timed out (no heartbeat)";
        default:
          break;
      }
    }
    if (err.category() == caf::atom("exit")) {
      if (static_cast<caf::exit_reason>(err.code()) == caf::exit_reason::remote_link_unreachable)
        return "connection lost";
    }
    return self_->system().render(err);
  }

  // -- requests ---------------------------------------------------------------------------------

  /// Starts a request to the gateway or the session; it waits for a node if there is none yet.
  std::uint64_t add_op(pending_op::via target, caf::atom_value atom, envelope payload,
                       reply_promise rp, pending_op::done_fn done, bool redo = false) {
    auto id = next_op_++;
    pending_op op;
    op.target = target;
    op.atom = atom;
    op.payload = std::move(payload);
    op.rp = std::move(rp);
    op.deadline = clock_type::now() + cfg_.opts.request_timeout;
    op.done = std::move(done);
    op.redo = redo;
    ops_.emplace(id, std::move(op));
    self_->delayed_send(self_, cfg_.opts.request_timeout + milliseconds(5), op_timeout_atom::value,
                        id);
    dispatch(id);
    return id;
  }

  void dispatch(std::uint64_t id) {
    auto i = ops_.find(id);
    if (i == ops_.end())
      return;
    auto& op = i->second;
    if (closing_) {
      complete(id, error_envelope(v1::Error::UNAVAILABLE, "the client is closing"), true);
      return;
    }
    if (op.target == pending_op::via::gateway) {
      if (gateway_) {
        send_op(id, gateway_);
      } else {
        wait_gateway_.push_back(id);
        ensure_connected();
      }
      return;
    }
    want_session_ = true;
    if (session_) {
      send_op(id, session_);
    } else if (op.redo) {
      complete(id, error_envelope(v1::Error::UNAVAILABLE, "session lost"), true);
    } else {
      wait_session_.push_back(id);
      if (gateway_)
        hello();
      else
        ensure_connected();
    }
  }

  void send_op(std::uint64_t id, const caf::actor& dest) {
    auto& op = ops_.at(id);
    auto left = std::chrono::ceil<milliseconds>(op.deadline - clock_type::now());
    if (left.count() <= 0) {
      complete(id, error_envelope(v1::Error::UNAVAILABLE, timeout_message()), true);
      return;
    }
    op.in_flight = true;
    auto attempt = ++op.attempt;
    auto node = gateway_addr_;
    auto total = cfg_.opts.request_timeout.count();
    self_->request(dest, left, op.atom, op.payload)
      .then(
        [this, id, attempt](envelope& reply) {
          if (is_current(id, attempt))
            complete(id, std::move(reply), false);
        },
        [this, id, attempt, node, total](caf::error& err) {
          if (!is_current(id, attempt))
            return;
          auto msg = err == caf::sec::request_timeout
                       ? "node " + node + " did not answer within " + std::to_string(total) + " ms"
                       : "node " + node + ": " + describe(err);
          complete(id, error_envelope(v1::Error::UNAVAILABLE, msg), true);
        });
  }

  bool is_current(std::uint64_t id, std::uint64_t attempt) const {
    auto i = ops_.find(id);
    return i != ops_.end() && i->second.in_flight && i->second.attempt == attempt;
  }

  void complete(std::uint64_t id, envelope reply, bool local) {
    auto i = ops_.find(id);
    if (i == ops_.end())
      return;
    auto op = std::move(i->second);
    ops_.erase(i);
    if (op.done)
      reply = op.done(std::move(reply), local);
    if (op.rp.pending())
      op.rp.deliver(std::move(reply), local);
  }

  void on_op_timeout(std::uint64_t id) {
    auto i = ops_.find(id);
    if (i == ops_.end() || i->second.in_flight)
      return; // done, or in flight: the request's own timeout answers
    complete(id, error_envelope(v1::Error::UNAVAILABLE, timeout_message()), true);
  }

  /// Why a queued request found no node within its time.
  std::string timeout_message() const {
    auto within = std::to_string(cfg_.opts.request_timeout.count()) + " ms";
    if (gateway_ && !session_)
      return "node " + gateway_addr_ + " did not open a session within " + within;
    std::vector<std::string> tried = round_log_;
    if (connecting_)
      tried.push_back(current_attempt_ + " (no answer yet)");
    if (tried.empty())
      for (std::size_t i = 0; i < server_count(); ++i)
        tried.push_back(address_of(i));
    return "no registry node answered within " + within + "; tried " + join(tried, ", ");
  }

  /// Fails every queued request at once (no node reachable this round).
  void fail_waiting(const std::string& msg) {
    std::vector<std::uint64_t> ids(wait_gateway_.begin(), wait_gateway_.end());
    ids.insert(ids.end(), wait_session_.begin(), wait_session_.end());
    wait_gateway_.clear();
    wait_session_.clear();
    for (auto id : ids) {
      auto i = ops_.find(id);
      if (i != ops_.end() && !i->second.in_flight)
        complete(id, error_envelope(v1::Error::UNAVAILABLE, msg), true);
    }
  }

  /// Requests in flight to a node that went away go back to the queue (redo requests are dropped:
  /// the next session redoes everything anyway).
  void requeue_in_flight(bool session_only) {
    std::vector<std::uint64_t> ids;
    for (auto& [id, op] : ops_)
      if (op.in_flight && (!session_only || op.target == pending_op::via::session))
        ids.push_back(id);
    for (auto id : ids) {
      auto& op = ops_.at(id);
      op.in_flight = false;
      if (op.redo) {
        complete(id, error_envelope(v1::Error::UNAVAILABLE, "session lost"), true);
        continue;
      }
      (op.target == pending_op::via::gateway ? wait_gateway_ : wait_session_).push_back(id);
    }
  }

  void flush(std::deque<std::uint64_t>& queue, const caf::actor& dest) {
    auto ids = std::move(queue);
    queue.clear();
    for (auto id : ids) {
      auto i = ops_.find(id);
      if (i != ops_.end() && !i->second.in_flight)
        send_op(id, dest);
    }
  }

  // -- connection -------------------------------------------------------------------------------

  void ensure_connected() {
    if (closing_ || gateway_ || connecting_)
      return;
    connecting_ = true;
    round_tried_ = 0;
    round_log_.clear();
    try_next_server();
  }

  void try_next_server() {
    auto idx = next_server_ % server_count();
    const auto& ep = cfg_.servers[idx];
    current_attempt_ = ep.address();
    auto gen = ++connect_gen_;
    auto mm = link_manager(self_->system());
    self_->request(mm, cfg_.opts.connect_timeout, caf::connect_atom::value, ep.host, ep.port)
      .then(
        [this, idx, gen](const caf::node_id&, caf::strong_actor_ptr& ptr,
                         const std::set<std::string>&) {
          if (gen != connect_gen_)
            return;
          if (!ptr)
            connect_failed(idx, "no registry published at that port");
          else
            connected(idx, caf::actor_cast<caf::actor>(ptr));
        },
        [this, idx, gen](caf::error& err) {
          if (gen != connect_gen_)
            return;
          connect_failed(idx, err == caf::sec::request_timeout
                                ? "no answer within " +
                                    std::to_string(cfg_.opts.connect_timeout.count()) + " ms"
                                : describe(err));
        });
  }

  void connect_failed(std::size_t idx, const std::string& reason) {
    round_log_.push_back(address_of(idx) + " (" + reason + ")");
    next_server_ = (idx + 1) % server_count();
    if (++round_tried_ < server_count() && !closing_) {
      try_next_server();
      return;
    }
    connecting_ = false;
    fail_waiting("no registry node reachable; tried " + join(round_log_, ", "));
    if (want_session_)
      arm_reconnect();
  }

  void connected(std::size_t idx, caf::actor gw) {
    connecting_ = false;
    gateway_ = std::move(gw);
    gateway_index_ = idx;
    gateway_addr_ = address_of(idx);
    ++conn_gen_;
    self_->monitor(gateway_);
    cfg_.view->set_node(gateway_addr_);
    flush(wait_gateway_, gateway_);
    if (want_session_ && !closing_)
      hello();
  }

  /// Auth: a user and password and no fresh token yet (a token is renewed at half its life).
  bool needs_login() const {
    return cfg_.opts.access_token.empty() && !cfg_.opts.username.empty()
           && (token_.empty() || clock_type::now() >= token_renew_at_);
  }

  /// Trades the user's password for a token at the current node, then says hello.
  void login_then_hello() {
    hello_pending_ = true;
    auto gen = conn_gen_;
    v1::LoginRequest req;
    req.set_username(cfg_.opts.username);
    req.set_password(cfg_.opts.password);
    self_
      ->request(gateway_, cfg_.opts.request_timeout, wire::login_atom::value, wire::pack(req))
      .then(
        [this, gen](envelope& reply) {
          if (gen != conn_gen_)
            return;
          hello_pending_ = false;
          v1::LoginReply ok;
          v1::Error err;
          if (wire::unpack(reply, ok)) {
            token_ = ok.access_token();
            token_renew_at_ = clock_type::now() + milliseconds(ok.token_ttl_ms() / 2);
            hello();
          } else if (wire::unpack(reply, err)) {
            hello_refused(err);
          } else {
            abandon_gateway("unexpected answer to login: " + reply.kind);
          }
        },
        [this, gen](caf::error& err) {
          if (gen != conn_gen_)
            return;
          hello_pending_ = false;
          abandon_gateway("login: " + describe(err));
        });
  }

  void hello() {
    if (closing_ || !gateway_ || session_ || hello_pending_)
      return;
    if (needs_login())
      return login_then_hello();
    hello_pending_ = true;
    auto gen = conn_gen_;
    v1::Hello msg;
    msg.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
    msg.set_client_name(cfg_.opts.client_name);
    msg.set_access_token(cfg_.opts.access_token.empty() ? token_ : cfg_.opts.access_token);
    self_
      ->request(gateway_, cfg_.opts.request_timeout, wire::hello_atom::value, wire::pack(msg),
                caf::actor_cast<caf::actor>(self_))
      .then(
        [this, gen](envelope& reply, caf::actor& sess) {
          if (gen != conn_gen_)
            return;
          hello_pending_ = false;
          v1::Welcome welcome;
          v1::Error err;
          if (wire::unpack(reply, welcome) && sess)
            opened(std::move(sess));
          else if (wire::unpack(reply, err))
            hello_refused(err);
          else
            abandon_gateway("unexpected answer to hello: " + reply.kind);
        },
        [this, gen](caf::error& err) {
          if (gen != conn_gen_)
            return;
          hello_pending_ = false;
          abandon_gateway("hello: " + describe(err));
        });
  }

  void hello_refused(const v1::Error& err) {
    if (err.code() == v1::Error::UNAVAILABLE) {
      abandon_gateway("node refused the session: " + err.message());
      return;
    }
    // Refused for another reason (e.g. a limit): tell the waiting requests, retry later.
    auto ids = std::move(wait_session_);
    wait_session_.clear();
    for (auto id : ids)
      complete(id, wire::pack(err), false);
    arm_reconnect();
  }

  /// The node is reachable but unusable (hello failed or refused as not ready): move on to the next
  /// one, but once every server was abandoned in a row only after redo_interval (no busy loop over
  /// nodes that are all starting up).
  void abandon_gateway(const std::string& reason) {
    ++abandoned_in_row_;
    lost_connection(reason, abandoned_in_row_ < server_count());
    if (abandoned_in_row_ >= server_count()) {
      abandoned_in_row_ = 0;
      fail_waiting("no registry node opened a session; last: " + address_of(gateway_index_) + " (" +
                   reason + ")");
      arm_reconnect();
    }
  }

  void opened(caf::actor sess) {
    abandoned_in_row_ = 0;
    session_ = std::move(sess);
    self_->monitor(session_);
    cfg_.view->set_node(gateway_addr_);
    bool first = !had_session_;
    had_session_ = true;
    notify(session_event{session_event::opened, gateway_addr_, {}, first});
    redo(!first);
    flush(wait_session_, session_);
  }

  /// Re-registers every instance and re-subscribes every subscription on the new session. Each
  /// request that fails is retried every redo_retry_interval while the session lasts; when all
  /// were acknowledged, a re-opened session reports `redone`.
  void redo(bool report) {
    ++redo_round_;
    redo_outstanding_ = 0;
    redo_failed_regs_.clear();
    redo_failed_batches_.clear();
    redo_failed_subs_.clear();
    redo_report_ = report;
    std::set<std::string> batches;
    for (const auto& [key, reg] : registered_) {
      if (batched_services_.count(reg.service) > 0)
        batches.insert(reg.service);
      else
        redo_register(key);
    }
    batched_services_ = batches; // services whose registrations are all gone are forgotten
    for (const auto& service : batches)
      redo_batch(service);
    for (auto& [key, s] : subs_) {
      s.confirmed = false;
      s.baseline_reset = true;
      redo_subscribe(key);
    }
    check_redone();
  }

  void redo_register(const std::string& key) {
    auto i = registered_.find(key);
    if (i == registered_.end())
      return; // deregistered meanwhile
    send_redo(i->second.request, redo_failed_regs_, key, "re-register " + key);
  }

  /// Sends one re-registration of this round; when it fails, `unit` goes into `failed` for the
  /// retry.
  void send_redo(envelope request, std::set<std::string>& failed, const std::string& unit,
                 std::string what) {
    ++redo_outstanding_;
    auto round = redo_round_;
    add_op(pending_op::via::session, wire::reg_atom::value, std::move(request), {},
           [this, &failed, unit, what = std::move(what), round](envelope reply, bool) {
             bool ok = wire::holds<v1::Ack>(reply);
             if (!ok && round == redo_round_)
               failed.insert(unit);
             redo_done(round, ok, what, reply);
             return reply;
           },
           true);
  }

  /// Re-registers a batched service's instances as one batch (a fresh session holds nothing, so
  /// the batch adds them all); one over the batch bound goes instance by instance.
  void redo_batch(const std::string& service) {
    std::vector<std::string> keys;
    for (const auto& [key, reg] : registered_)
      if (reg.service == service)
        keys.push_back(key);
    if (keys.empty())
      return; // deregistered meanwhile
    if (keys.size() > defaults::batch_register_instances_max) {
      for (const auto& key : keys)
        redo_register(key);
      return;
    }
    v1::BatchRegisterRequest batch;
    for (const auto& key : keys) {
      v1::RegisterRequest single;
      if (!wire::unpack(registered_.at(key).request, single))
        continue;
      *batch.mutable_service() = single.service();
      *batch.add_instances() = single.instance();
    }
    send_redo(wire::pack(batch), redo_failed_batches_, service,
              "re-register the batch of " + service);
  }

  void redo_subscribe(const std::string& key) {
    auto i = subs_.find(key);
    if (i == subs_.end())
      return; // unsubscribed meanwhile
    ++redo_outstanding_;
    subscribe_on_node(key, {}, 0, true, redo_round_);
  }

  /// One redo request ended. Stale rounds (an older session) are ignored: a new session redoes
  /// everything anyway.
  void redo_done(std::uint64_t round, bool ok, const std::string& what, const envelope& reply) {
    if (round != redo_round_)
      return;
    if (redo_outstanding_ > 0)
      --redo_outstanding_;
    if (!ok) {
      v1::Error err;
      auto why = wire::unpack(reply, err) ? err.message() : "unexpected answer " + reply.kind;
      std::fprintf(stderr, "registry-client: redo on node %s: %s failed: %s; retrying in %lld ms\n",
                   gateway_addr_.c_str(), what.c_str(), why.c_str(),
                   static_cast<long long>(cfg_.opts.redo_retry_interval.count()));
      arm_redo_retry();
    }
    check_redone();
  }

  void arm_redo_retry() {
    if (redo_retry_armed_ || closing_)
      return;
    redo_retry_armed_ = true;
    self_->delayed_send(self_, cfg_.opts.redo_retry_interval, redo_retry_atom::value,
                        redo_round_);
  }

  void on_redo_retry(std::uint64_t round) {
    redo_retry_armed_ = false;
    if (round != redo_round_ || closing_)
      return; // a newer session redid everything
    if (!session_) {
      arm_redo_retry(); // the session is being re-opened: its redo starts a new round
      return;
    }
    auto regs = std::move(redo_failed_regs_);
    auto batches = std::move(redo_failed_batches_);
    auto subs = std::move(redo_failed_subs_);
    redo_failed_regs_.clear();
    redo_failed_batches_.clear();
    redo_failed_subs_.clear();
    for (auto& key : regs)
      redo_register(key);
    for (auto& service : batches)
      redo_batch(service);
    for (auto& key : subs)
      redo_subscribe(key);
    check_redone();
  }

  void check_redone() {
    if (!redo_report_ || redo_outstanding_ > 0 || !redo_failed_regs_.empty()
        || !redo_failed_batches_.empty() || !redo_failed_subs_.empty() || !session_)
      return;
    redo_report_ = false;
    notify(session_event{session_event::redone, gateway_addr_, {}, false});
  }

  void lost_connection(const std::string& reason, bool reconnect_now = true) {
    auto old = gateway_addr_;
    bool had = static_cast<bool>(session_);
    if (gateway_)
      self_->demonitor(gateway_);
    if (session_)
      self_->demonitor(session_);
    gateway_ = nullptr;
    session_ = nullptr;
    hello_pending_ = false;
    ++conn_gen_;
    next_server_ = (gateway_index_ + 1) % server_count();
    cfg_.view->set_node("");
    for (auto& [key, s] : subs_)
      s.confirmed = false;
    requeue_in_flight(false);
    if (had)
      notify(session_event{session_event::lost, old, reason, false});
    if (closing_ || !reconnect_now)
      return;
    if (want_session_ || !wait_gateway_.empty() || !wait_session_.empty())
      ensure_connected(); // at once, starting with the next server
  }

  void lost_session(const std::string& reason) {
    self_->demonitor(session_);
    session_ = nullptr;
    for (auto& [key, s] : subs_)
      s.confirmed = false;
    requeue_in_flight(true);
    notify(session_event{session_event::lost, gateway_addr_, reason, false});
    if (!closing_)
      hello();
  }

  void on_down(const caf::down_msg& dm) {
    if (closing_) { // the session ends because we said bye: nothing to redo or report
      if (session_ && dm.source == session_.address())
        session_ = nullptr;
      if (gateway_ && dm.source == gateway_.address())
        gateway_ = nullptr;
      return;
    }
    if (gateway_ && dm.source == gateway_.address())
      lost_connection("node " + gateway_addr_ + " went down (" + describe(dm.reason) + ")");
    else if (session_ && dm.source == session_.address())
      lost_session("session ended by node " + gateway_addr_ + " (" + describe(dm.reason) + ")");
  }

  void arm_reconnect() {
    if (reconnect_armed_ || closing_)
      return;
    reconnect_armed_ = true;
    self_->delayed_send(self_, cfg_.opts.redo_interval, reconnect_atom::value);
  }

  void on_reconnect() {
    reconnect_armed_ = false;
    if (closing_ || !want_session_)
      return;
    if (!gateway_)
      ensure_connected();
    else if (!session_)
      hello();
  }

  void notify(session_event ev) {
    if (!cfg_.opts.on_session)
      return;
    auto fn = cfg_.opts.on_session;
    cfg_.events->post([fn, ev] { fn(ev); });
  }

  // -- registration -----------------------------------------------------------------------------

  void on_register(envelope env, reply_promise rp) {
    if (wire::holds<v1::BatchRegisterRequest>(env)) {
      on_batch_register(std::move(env), std::move(rp));
      return;
    }
    v1::RegisterRequest req;
    if (!wire::unpack(env, req)) {
      rp.deliver(error_envelope(v1::Error::INVALID_ARGUMENT, "malformed register request"), true);
      return;
    }
    auto service = from_wire(req.service());
    auto key = registration_key(service, req.instance().ip(), req.instance().port(),
                                req.instance().cluster());
    auto intent = ++intent_counter_;
    intents_[key] = intent;
    ++pending_registers_[key];
    add_op(pending_op::via::session, wire::reg_atom::value, env, std::move(rp),
           [this, key, intent, env, skey = service.to_string()](envelope reply, bool) {
             if (--pending_registers_[key] == 0)
               pending_registers_.erase(key);
             // Remember it for redo, unless a deregister came in meanwhile.
             auto i = intents_.find(key);
             if (wire::holds<v1::Ack>(reply) && i != intents_.end() && i->second == intent)
               registered_[key] = registration{skey, env};
             return reply;
           });
  }

  /// A batch replaces what the session holds in its service (messages/PROTOCOL.md): once acked,
  /// the service's registrations are the batch's instances, and its redo is one batch.
  void on_batch_register(envelope env, reply_promise rp) {
    v1::BatchRegisterRequest req;
    if (!wire::unpack(env, req)) {
      rp.deliver(error_envelope(v1::Error::INVALID_ARGUMENT, "malformed batch register request"),
                 true);
      return;
    }
    auto service = from_wire(req.service());
    auto intent = ++intent_counter_;
    // Each instance as the RegisterRequest a single registration would have remembered.
    auto batch = std::make_shared<std::vector<std::pair<std::string, envelope>>>();
    for (const auto& x : req.instances()) {
      v1::RegisterRequest single;
      *single.mutable_service() = req.service();
      *single.mutable_instance() = x;
      auto key = registration_key(service, x.ip(), x.port(), x.cluster());
      intents_[key] = intent;
      ++pending_registers_[key];
      batch->emplace_back(key, wire::pack(single));
    }
    add_op(pending_op::via::session, wire::reg_atom::value, std::move(env), std::move(rp),
           [this, batch, intent, skey = service.to_string()](envelope reply, bool) {
             for (auto& [key, single] : *batch)
               if (--pending_registers_[key] == 0)
                 pending_registers_.erase(key);
             if (!wire::holds<v1::Ack>(reply))
               return reply; // refused as a whole: the node changed nothing
             // The node dropped what the batch left out; a later request's own answer restores
             // what it touched.
             for (auto i = registered_.begin(); i != registered_.end();) {
               auto in_batch = std::any_of(batch->begin(), batch->end(),
                                           [&](const auto& b) { return b.first == i->first; });
               if (i->second.service == skey && !in_batch) {
                 if (auto t = intents_.find(i->first); t != intents_.end() && t->second < intent)
                   intents_.erase(t);
                 i = registered_.erase(i);
               } else {
                 ++i;
               }
             }
             for (auto& [key, single] : *batch)
               if (auto t = intents_.find(key); t != intents_.end() && t->second == intent)
                 registered_[key] = registration{skey, single};
             batched_services_.insert(skey);
             return reply;
           });
  }

  void on_deregister(envelope env, reply_promise rp) {
    v1::DeregisterRequest req;
    if (!wire::unpack(env, req)) {
      rp.deliver(error_envelope(v1::Error::INVALID_ARGUMENT, "malformed deregister request"), true);
      return;
    }
    auto key = registration_key(from_wire(req.service()), req.ip(), req.port(), req.cluster());
    bool known = registered_.erase(key) > 0;
    intents_.erase(key);
    if (!session_ && pending_registers_.count(key) == 0 && (known || had_session_)) {
      // No open session holds it: the node removed the session's instances when it ended.
      rp.deliver(ack_envelope("no open session holds this instance"), true);
      return;
    }
    add_op(pending_op::via::session, wire::dereg_atom::value, std::move(env), std::move(rp), {});
  }

  // -- subscriptions and reads ------------------------------------------------------------------

  subscription& subscription_for(const v1::SubscribeRequest& req, const envelope& env) {
    auto service = from_wire(req.service());
    std::vector<std::string> clusters(req.clusters().begin(), req.clusters().end());
    auto clusters_text = join_clusters(clusters);
    auto key = cache_key(service.grouped_name(), clusters_text);
    auto i = subs_.find(key);
    if (i != subs_.end())
      return i->second;
    subscription s{cfg_.opts.update_interval.count(), cfg_.opts.update_backoff_max.count()};
    s.key = key;
    s.service = service;
    s.clusters = clusters_text;
    s.cluster_set.insert(clusters.begin(), clusters.end());
    s.subscribe_request = env;
    v1::QueryRequest q;
    *q.mutable_service() = req.service();
    *q.mutable_clusters() = req.clusters();
    q.set_healthy_only(false);
    s.query_request = wire::pack(q);
    return subs_.emplace(key, std::move(s)).first->second;
  }

  void on_subscribe(envelope env, listener_id lid, reply_promise rp) {
    v1::SubscribeRequest req;
    if (!wire::unpack(env, req)) {
      rp.deliver(error_envelope(v1::Error::INVALID_ARGUMENT, "malformed subscribe request"), true);
      return;
    }
    auto& s = subscription_for(req, env);
    if (lid != 0)
      s.listeners.insert(lid);
    else
      s.implicit = true;
    want_session_ = true;
    auto key = s.key;
    // Failover first, then the cache of a subscription the session holds.
    if (cache_.failover_covers(key) || (s.confirmed && cache_.stored(key))) {
      auto state = *cache_.view(key);
      if (lid != 0)
        cfg_.events->post_initial(lid, state);
      rp.deliver(info_envelope(state), true);
      if (!s.confirmed)
        subscribe_on_node(key, {}, 0, false); // in the background; redo retries it
      return;
    }
    subscribe_on_node(key, std::move(rp), lid, false);
  }

  void subscribe_on_node(const std::string& key, reply_promise rp, listener_id lid,
                         bool redo, std::uint64_t redo_round = 0) {
    bool asked = rp.pending();
    auto& s = subs_.at(key);
    s.subscribing = true;
    add_op(
      pending_op::via::session, wire::sub_atom::value, s.subscribe_request, std::move(rp),
      [this, key, lid, asked, redo_round](envelope reply, bool) -> envelope {
        auto i = subs_.find(key);
        if (i != subs_.end())
          i->second.subscribing = false;
        v1::ServiceInfo si;
        bool ok = wire::unpack(reply, si);
        if (redo_round != 0) {
          if (!ok && i != subs_.end() && redo_round == redo_round_)
            redo_failed_subs_.insert(key);
          redo_done(redo_round, ok, "re-subscribe " + key, reply);
        }
        if (!ok) {
          // A subscription that never got through is dropped with the call that failed.
          if (asked && i != subs_.end() && !i->second.confirmed) {
            if (lid != 0)
              i->second.listeners.erase(lid);
            if (i->second.listeners.empty() && (lid == 0 || !i->second.implicit))
              drop_subscription(i);
          }
          return reply;
        }
        if (i == subs_.end())
          return reply; // unsubscribed meanwhile
        auto& s = i->second;
        s.confirmed = true;
        apply_state(s, from_wire(si));
        if (!s.schedule.active())
          arm_update(s, s.schedule.start(steady_ms()));
        auto state = cache_.view(key).value_or(service_info{});
        if (lid != 0)
          cfg_.events->post_initial(lid, state);
        return info_envelope(state);
      },
      redo);
  }

  void drop_subscription(std::map<std::string, subscription>::iterator i) {
    i->second.schedule.stop();
    cache_.erase(i->first);
    subs_.erase(i);
  }

  void on_unsubscribe(const std::string& key, listener_id lid) {
    auto i = subs_.find(key);
    if (i == subs_.end())
      return;
    i->second.listeners.erase(lid);
    // As in Nacos: the last listener gone ends the subscription, also one a read started; the next
    // read with subscribe subscribes again.
    if (!i->second.listeners.empty())
      return;
    if (session_ && i->second.confirmed) {
      // Best effort: the node drops the subscriber with the session anyway.
      self_->request(session_, cfg_.opts.request_timeout, wire::unsub_atom::value,
                     i->second.subscribe_request)
        .then([](envelope&) {}, [](caf::error&) {});
    }
    drop_subscription(i);
  }

  void on_query(envelope env, reply_promise rp) {
    v1::QueryRequest req;
    if (!wire::unpack(env, req)) {
      rp.deliver(error_envelope(v1::Error::INVALID_ARGUMENT, "malformed query request"), true);
      return;
    }
    std::vector<std::string> clusters(req.clusters().begin(), req.clusters().end());
    auto key = cache_key(from_wire(req.service()).grouped_name(), join_clusters(clusters));
    if (cache_.failover_covers(key)) {
      auto state = *cache_.view(key);
      if (req.healthy_only()) {
        auto& hs = state.hosts;
        hs.erase(std::remove_if(hs.begin(), hs.end(), [](const instance& x) { return !x.healthy; }),
                 hs.end());
      }
      rp.deliver(info_envelope(state), true);
      return;
    }
    add_op(pending_op::via::gateway, wire::query_atom::value, std::move(env), std::move(rp), {});
  }

  /// Finds the subscription a pushed state belongs to.
  subscription* match(const service_info& info) {
    auto grouped = info.key.grouped_name();
    if (auto i = subs_.find(cache_key(grouped, info.clusters)); i != subs_.end())
      return &i->second;
    auto clusters = split_clusters(info.clusters);
    for (auto& [key, s] : subs_)
      if (s.service.group == info.key.group && s.service.name == info.key.name &&
          s.cluster_set == clusters)
        return &s;
    return nullptr;
  }

  /// The node gave up on one of our subscriptions (its pushes went unacknowledged too long):
  /// subscribe again, so that pushes resume.
  void on_dropped(const v1::SubscriptionDropped& msg) {
    auto service = from_wire(msg.service());
    if (!msg.service().namespace_id().empty() && service.namespace_id != ns())
      return;
    auto clusters = split_clusters(msg.clusters());
    for (auto& [key, s] : subs_) {
      if (s.service.group != service.group || s.service.name != service.name
          || s.cluster_set != clusters)
        continue;
      std::fprintf(stderr, "registry-client: node %s dropped the subscription %s (%s); "
                           "subscribing again\n",
                   gateway_addr_.c_str(), key.c_str(), msg.reason().c_str());
      s.confirmed = false;
      if (!s.subscribing && session_)
        subscribe_on_node(key, {}, 0, true);
    }
  }

  envelope on_push(const envelope& env) {
    v1::SubscriptionDropped dropped;
    if (wire::unpack(env, dropped)) {
      on_dropped(dropped);
      return ack_envelope();
    }
    v1::ServiceInfo si;
    if (wire::unpack(env, si)) {
      auto info = from_wire(si);
      bool same_ns = si.namespace_id().empty() || si.namespace_id() == ns();
      if (auto s = same_ns ? match(info) : nullptr)
        apply_state(*s, std::move(info));
    }
    return ack_envelope();
  }

  /// Applies a state from a node to the cache: disk file and listener events on a real change.
  void apply_state(subscription& s, service_info info) {
    info.key = s.service; // the subscription's names: namespace, group and service as asked
    info.clusters = s.clusters;
    auto u = cache_.apply(info, s.baseline_reset);
    if (!u.accepted)
      return;
    s.baseline_reset = false;
    if (u.stored_changed)
      persist(s.key);
    if (u.event)
      cfg_.events->post_change(s.key, std::move(*u.event));
  }

  void persist(const std::string& key) {
    if (cfg_.opts.cache_dir.empty())
      return;
    auto stored = cache_.stored(key);
    if (!stored)
      return;
    if (auto problem = write_service_file(naming_cache_dir(cfg_.opts.cache_dir, ns()), *stored)) {
      if (!disk_warned_)
        std::fprintf(stderr, "registry-client: cannot write the disk cache: %s\n", problem->c_str());
      disk_warned_ = true;
    }
  }

  // -- update task ------------------------------------------------------------------------------

  void arm_update(subscription& s, time_ms due) {
    auto delay = std::max<time_ms>(due - steady_ms(), 0);
    self_->delayed_send(self_, milliseconds(delay), update_tick_atom::value, s.key,
                        s.schedule.generation());
  }

  void on_update_tick(const std::string& key, std::uint64_t gen) {
    auto i = subs_.find(key);
    if (i == subs_.end() || !i->second.schedule.is_current(gen))
      return; // unsubscribed or restarted: a stale timer
    // With a session open the update task subscribes again (idempotent at the node, answered with
    // the current state like a query): a subscription the node dropped comes back, even if its
    // SubscriptionDropped notice was lost. Without a session it queries the gateway.
    bool resubscribe = static_cast<bool>(session_) && !i->second.subscribing;
    if (resubscribe)
      i->second.subscribing = true;
    add_op(resubscribe ? pending_op::via::session : pending_op::via::gateway,
           resubscribe ? caf::atom_value{wire::sub_atom::value}
                       : caf::atom_value{wire::query_atom::value},
           resubscribe ? i->second.subscribe_request : i->second.query_request, {},
           [this, key, gen, resubscribe](envelope reply, bool) {
             auto i = subs_.find(key);
             if (i != subs_.end() && resubscribe)
               i->second.subscribing = false;
             if (i == subs_.end() || !i->second.schedule.is_current(gen))
               return reply;
             auto& s = i->second;
             v1::ServiceInfo si;
             time_ms due;
             if (wire::unpack(reply, si)) {
               if (resubscribe)
                 s.confirmed = true;
               apply_state(s, from_wire(si)); // newer state only: repairs a lost push
               due = s.schedule.succeeded(steady_ms());
             } else {
               due = s.schedule.failed(steady_ms());
             }
             arm_update(s, due);
             return reply;
           });
  }

  // -- failover ---------------------------------------------------------------------------------

  void check_failover() {
    if (cfg_.opts.cache_dir.empty())
      return;
    bool flipped = failover_.check();
    if (!flipped && !failover_.on())
      return;
    std::map<std::string, service_info> data;
    if (failover_.on())
      data = read_service_files(failover_dir(cfg_.opts.cache_dir), ns());
    auto events = cache_.set_failover(failover_.on(), std::move(data));
    cfg_.view->failover = failover_.on();
    for (auto& [key, ev] : events)
      if (subs_.count(key))
        cfg_.events->post_change(key, std::move(ev));
  }

  void on_failover_tick() {
    check_failover();
    self_->delayed_send(self_, cfg_.opts.failover_check_interval, failover_tick_atom::value);
  }

  // -- close ------------------------------------------------------------------------------------

  void on_bye(reply_promise rp) {
    closing_ = true;
    ++connect_gen_;
    fail_waiting("the client is closing");
    if (!session_) {
      rp.deliver(ack_envelope(), true);
      return;
    }
    auto wait = std::min<milliseconds>(cfg_.opts.request_timeout, milliseconds(2000));
    self_->request(session_, wait, wire::bye_atom::value)
      .then([rp](envelope& reply) mutable { rp.deliver(std::move(reply), false); },
            [rp](caf::error&) mutable { rp.deliver(ack_envelope(), true); });
  }

  // -- member variables -------------------------------------------------------------------------

  session_actor_type* self_;
  session_config cfg_;

  // connection
  caf::actor gateway_;
  std::size_t gateway_index_ = 0;
  std::string gateway_addr_;
  caf::actor session_;
  bool connecting_ = false;
  bool hello_pending_ = false;
  bool want_session_ = false; ///< a session was asked for once: keep one open (redo)
  bool had_session_ = false;
  bool closing_ = false;
  bool reconnect_armed_ = false;
  std::size_t abandoned_in_row_ = 0; ///< nodes given up after connecting, since the last session
  std::size_t next_server_ = 0;
  std::size_t round_tried_ = 0;
  std::vector<std::string> round_log_; ///< "address (reason)" of this round's failed attempts
  std::string current_attempt_;
  std::uint64_t connect_gen_ = 0; ///< stale connect replies are ignored
  std::uint64_t conn_gen_ = 0;    ///< bumped per gateway: stale hello replies are ignored

  // requests
  std::uint64_t next_op_ = 1;
  std::map<std::uint64_t, pending_op> ops_;
  std::deque<std::uint64_t> wait_gateway_;
  std::deque<std::uint64_t> wait_session_;

  // redo data
  std::map<std::string, registration> registered_; ///< registration key -> what the node acked
  /// Services (service_key::to_string) the client registered by a batch: redone as one batch.
  std::set<std::string> batched_services_;
  /// Auth: the token from the last login (options.username), renewed at half its life.
  std::string token_;
  clock_type::time_point token_renew_at_{};
  std::map<std::string, std::uint64_t> intents_;
  std::map<std::string, int> pending_registers_;
  std::uint64_t intent_counter_ = 0;
  std::map<std::string, subscription> subs_;
  std::uint64_t redo_round_ = 0;        ///< bumped per session: answers of older rounds are stale
  std::size_t redo_outstanding_ = 0;    ///< redo requests of this round without an answer
  std::set<std::string> redo_failed_regs_; ///< registration keys to retry
  std::set<std::string> redo_failed_batches_; ///< batched services to retry
  std::set<std::string> redo_failed_subs_; ///< subscription keys to retry
  bool redo_retry_armed_ = false;
  bool redo_report_ = false;            ///< report `redone` when this round completes

  // data
  service_cache cache_;
  failover_switch failover_;
  bool disk_warned_ = false;
};

client_library_actor::behavior_type session_behavior(session_actor_type* self,
                                                     session_config cfg) {
  self->state.init(std::move(cfg));
  self->set_down_handler([self](caf::down_msg& dm) { self->state.on_down(dm); });
  self->set_error_handler([](caf::error&) {
    // Every request has its own error handler; nothing else can fail here.
  });
  self->set_default_handler(caf::drop);
  using via = pending_op::via;
  return {
    [self](gw_atom, caf::atom_value op, envelope& env) {
      auto rp = self->make_response_promise<envelope, bool>();
      self->state.add_op(via::gateway, op, std::move(env), rp, {});
      return rp;
    },
    [self](wire::reg_atom, envelope& env) {
      auto rp = self->make_response_promise<envelope, bool>();
      self->state.on_register(std::move(env), rp);
      return rp;
    },
    [self](wire::dereg_atom, envelope& env) {
      auto rp = self->make_response_promise<envelope, bool>();
      self->state.on_deregister(std::move(env), rp);
      return rp;
    },
    [self](wire::sub_atom, envelope& env, std::uint64_t lid) {
      auto rp = self->make_response_promise<envelope, bool>();
      self->state.on_subscribe(std::move(env), lid, rp);
      return rp;
    },
    [self](wire::unsub_atom, const std::string& key, std::uint64_t lid)
      -> caf::result<envelope, bool> {
      self->state.on_unsubscribe(key, lid);
      return {ack_envelope(), true};
    },
    [self](wire::query_atom, envelope& env) {
      auto rp = self->make_response_promise<envelope, bool>();
      self->state.on_query(std::move(env), rp);
      return rp;
    },
    [self](wire::bye_atom) {
      auto rp = self->make_response_promise<envelope, bool>();
      self->state.on_bye(rp);
      return rp;
    },
    [self](wire::push_atom, const envelope& env) { return self->state.on_push(env); },
    [self](op_timeout_atom, std::uint64_t id) { self->state.on_op_timeout(id); },
    [self](reconnect_atom) { self->state.on_reconnect(); },
    [self](redo_retry_atom, std::uint64_t round) { self->state.on_redo_retry(round); },
    [self](update_tick_atom, const std::string& key, std::uint64_t gen) {
      self->state.on_update_tick(key, gen);
    },
    [self](failover_tick_atom) { self->state.on_failover_tick(); },
  };
}

} // namespace

client_library_actor spawn_session_actor(caf::actor_system& sys, session_config cfg) {
  return sys.spawn(session_behavior, std::move(cfg));
}

} // namespace registry::client::detail
