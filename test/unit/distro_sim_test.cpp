/// A seeded simulation of 3 to 5 Distro nodes over an in-memory network (no actors, no clock).
///
/// The network loses, delays and reorders messages while clients write; nodes crash (losing all
/// state) and restart. Each node also runs a member_tracker fed with connection events, and a model of
/// its client actors (`applied`: what the `apply` ops and local writes leave in them). Heartbeat clients
/// beat every beat_period: the beat reaches the node responsible in some node's view and re-applies the
/// client's true state there, and a responsible node drops heartbeat clients that nobody beats any
/// more (client_state's beat re-creation and beat expiry, collapsed into one step).
///
/// Writes and beats of heartbeat clients carry beat clocks (the beat time); beats that change nothing
/// are sometimes reported alone. A take-over must never carry a beat later than the client's last
/// real beat plus the longest transit of a few relays plus one unhealthy timeout (a take-over raises
/// the clock of a copy its owner vouched for, by at most that).
///
/// Checked after every step: distro_protocol::check_invariants() and that the client actors hold
/// exactly the records of the protocol. Checked after every heal phase (writes stop, no loss, crashed
/// nodes partly restarted): every live node is ready, routes over the same members, and holds exactly
/// the live clients: every session of a live node and every registered heartbeat client, with their
/// latest state; each held as local by exactly one live node.
/// A failure names the seed; rerun one with `-tc="distro sim*" -dt-seed=...` is not needed: the seed
/// list is fixed, so the failing seed reproduces on every run. DISTRO_SIM_SEEDS=N runs seeds 1..N
/// (default 20) in the main case and N / 4 in the long-down case, e.g.
/// `DISTRO_SIM_SEEDS=1000 build/test/unit/unit_tests -tc="distro sim*"`.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "actors/distro/distro_protocol.hpp"
#include "actors/member/member_tracker.hpp"

using namespace registry;

namespace {

using proto = distro_protocol;

distro_config sim_config() {
  distro_config cfg;
  cfg.sync_delay_ms = 10;
  cfg.sync_timeout_ms = 150;
  cfg.sync_retry_delay_ms = 100;
  cfg.sync_batch_clients_max = 4;
  cfg.verify_interval_ms = 500;
  cfg.verify_timeout_ms = 200;
  cfg.copy_expiry_verify_rounds = 3;
  cfg.snapshot_timeout_ms = 300;
  cfg.snapshot_retry_delay_ms = 200;
  cfg.snapshot_chunk_clients_max = 3; // loads take several chunks, each of which may be lost
  cfg.lone_ready_wait_ms = 1000;
  cfg.clients_max = 1000;
  cfg.beat_unhealthy_timeout_ms = 1000; // five beat periods: the bound of a take-over's raise
  return cfg;
}

struct sim_options {
  std::uint32_t seed = 0;
  int nodes = 3;
  int rounds = 2;           ///< chaos + heal phases
  time_ms chaos_ms = 6000;  ///< writes, loss, crashes
  time_ms heal_ms = 6000;   ///< no writes, no loss
  double loss = 0.1;        ///< per message, during chaos
  double reorder = 0.15;    ///< chance of a long extra delay, during chaos
  time_ms beat_period_ms = 200;
  /// One member crashes at the start and stays DOWN (still in the member list) until the heal of
  /// the last round, while the others churn sessions: deletes must not pile up for it.
  bool long_down = false;
  /// Other nodes crash and restart at random (a restart also forgets a node's deletes).
  bool crashes = true;
  /// Share of client operations that register or change a session (ends: 0.40 minus this), so
  /// churn with few live sessions can be simulated.
  double session_put_share = 0.30;
  std::size_t clients_max = 1000;
  /// Digest verify buckets; the default (1024) makes every verify here a full list, 1 to 7 make every
  /// verify a digest with many clients per bucket.
  std::uint32_t verify_buckets = defaults::verify_buckets;
};

/// Seeds 1..N of the main case: DISTRO_SIM_SEEDS, else `fallback`.
std::uint32_t seed_count(std::uint32_t fallback) {
  const char* x = std::getenv("DISTRO_SIM_SEEDS");
  if (x == nullptr)
    return fallback;
  auto n = std::strtoul(x, nullptr, 10);
  return n == 0 ? fallback : static_cast<std::uint32_t>(n);
}

class simulation {
public:
  explicit simulation(sim_options opts) : opts_(opts), rng_(opts.seed), cfg_(sim_config()) {
    cfg_.clients_max = opts_.clients_max;
    cfg_.verify_buckets = opts_.verify_buckets;
    nodes_.resize(static_cast<std::size_t>(opts_.nodes));
    for (int i = 0; i < opts_.nodes; ++i)
      nodes_[i].addr = "10.0.0." + std::to_string(i + 1) + ":8848";
    for (int i = 0; i < 20; ++i)
      heartbeat_pool_.push_back("192.168.9." + std::to_string(i) + ":7000#true");
  }

  /// Runs every round; "" when every check passed, else the first failure.
  std::string run() {
    for (int i = 0; i < opts_.nodes; ++i)
      restart(i);
    schedule(opts_.beat_period_ms, [this] { beat(); });
    if (opts_.long_down) {
      held_down_ = opts_.nodes - 1;
      run_until(now_ + 1000);
      crash(held_down_);
    }
    for (int round = 0; round < opts_.rounds && error_.empty(); ++round) {
      chaos_ = true;
      auto chaos_end = now_ + opts_.chaos_ms;
      schedule(now_ + 1, [this, chaos_end] { client_op(chaos_end); });
      run_until(chaos_end);
      chaos_ = false;
      if (round + 1 == opts_.rounds)
        held_down_ = -1; // back after a long time
      // Heal: restart about half of the crashed nodes, leave the others down.
      for (int i = 0; i < opts_.nodes; ++i)
        if (!nodes_[i].up && i != held_down_ && (coin(0.5) || opts_.long_down))
          restart(i);
      run_until(now_ + opts_.heal_ms);
      if (error_.empty())
        check_converged(round);
    }
    return error_;
  }

  std::size_t steps() const {
    return steps_;
  }

private:
  // -- model ------------------------------------------------------------------------

  /// A client as the node's client actors hold it.
  struct actor_client {
    client_services services;
    std::uint64_t revision = 0; ///< content_revision(services): equal content, in any order
  };

  static actor_client make_actor_client(const client_services& xs) {
    return actor_client{xs, content_revision(xs)};
  }

  struct node {
    std::string addr;
    bool up = false;
    unsigned inc = 0; ///< incarnation: bumped on every restart
    std::unique_ptr<proto> p;
    std::unique_ptr<member_tracker> tracker;
    std::map<client_id, actor_client> applied; ///< what the client actors hold
    std::set<time_ms> ticks;
    int sessions_created = 0;
  };

  struct event {
    time_ms at;
    std::uint64_t seq;
    std::function<void()> fn;
  };

  struct later {
    bool operator()(const event& x, const event& y) const {
      return std::tie(x.at, x.seq) > std::tie(y.at, y.seq);
    }
  };

  // -- randomness --------------------------------------------------------------------

  bool coin(double p) {
    return std::uniform_real_distribution<double>{0.0, 1.0}(rng_) < p;
  }

  int pick(int n) {
    return std::uniform_int_distribution<int>{0, n - 1}(rng_);
  }

  client_services random_services() {
    static const char* names[] = {"orders", "pay", "cart"};
    client_services result;
    int n = 1 + pick(2);
    for (int i = 0; i < n; ++i) {
      service_key key{"public", "DEFAULT_GROUP", names[pick(3)]};
      auto& xs = result[key].mutate();
      instance x;
      x.ip = "172.16.0." + std::to_string(1 + pick(3));
      x.port = static_cast<std::uint32_t>(8000 + pick(3));
      x.healthy = coin(0.8);
      x.instance_id = x.ip + "#" + std::to_string(x.port);
      bool dup = std::any_of(xs.begin(), xs.end(), [&](const instance& y) { return y.same_identity(x); });
      if (!dup)
        xs.push_back(x);
    }
    return result;
  }

  // -- event loop ----------------------------------------------------------------------

  void schedule(time_ms at, std::function<void()> fn) {
    queue_.push(event{at, seq_++, std::move(fn)});
  }

  void run_until(time_ms end) {
    while (!queue_.empty() && queue_.top().at <= end && error_.empty()) {
      // priority_queue has no pop-and-return; moving the top out is safe as it is popped at once.
      auto e = std::move(const_cast<event&>(queue_.top()));
      queue_.pop();
      now_ = std::max(now_, e.at);
      e.fn();
      ++steps_;
    }
    now_ = end;
  }

  bool alive(int i, unsigned inc) const {
    return nodes_[i].up && nodes_[i].inc == inc;
  }

  int index_of(const std::string& addr) const {
    for (int i = 0; i < opts_.nodes; ++i)
      if (nodes_[i].addr == addr)
        return i;
    return -1;
  }

  void fail(const std::string& what) {
    if (!error_.empty())
      return;
    std::ostringstream out;
    out << "seed " << opts_.seed << ", " << opts_.nodes << " nodes, t=" << now_ << " ms: " << what;
    error_ = out.str();
  }

  // -- network -------------------------------------------------------------------------

  /// Sends from `from` to `to`: `deliver` runs at the receiver if both are still the same run;
  /// `fail_fast` runs at the sender when the target is known down (CAF reports that at once).
  void send(int from, int to, std::function<void()> deliver, std::function<void()> fail_fast) {
    auto fi = nodes_[from].inc;
    if (!nodes_[to].up) {
      if (fail_fast)
        schedule(now_ + 1 + pick(5), [this, from, fi, fail_fast] {
          if (alive(from, fi))
            fail_fast();
        });
      return;
    }
    auto ti = nodes_[to].inc;
    if (chaos_ && coin(opts_.loss))
      return; // lost: the sender's timeout deals with it
    time_ms delay = 1 + pick(20);
    if (chaos_ && coin(opts_.reorder))
      delay += 50 + pick(250);
    schedule(now_ + delay, [this, from, fi, to, ti, deliver] {
      if (alive(from, fi) && alive(to, ti))
        deliver();
    });
  }

  void send_sync(int i, const proto::outgoing_sync& s) {
    int j = index_of(s.peer);
    if (j < 0)
      return fail("sync to unknown peer " + s.peer);
    auto id = s.batch_id;
    auto batch = s.batch;
    send(
      i, j,
      [this, i, j, id, batch] {
        process(j, nodes_[j].p->on_sync_batch(batch, now_));
        send(
          j, i,
          [this, i, j, id] { process(i, nodes_[i].p->on_sync_result(nodes_[j].addr, id, true, now_)); },
          nullptr);
      },
      [this, i, j, id] { process(i, nodes_[i].p->on_sync_result(nodes_[j].addr, id, false, now_)); });
  }

  void send_verify(int i, const proto::outgoing_verify& v) {
    int j = index_of(v.peer);
    if (j < 0)
      return fail("verify to unknown peer " + v.peer);
    auto id = v.verify_id;
    auto batch = v.batch;
    send(
      i, j,
      [this, i, j, id, batch] {
        auto out = nodes_[j].p->on_verify_batch(batch, now_);
        process(j, out.fx);
        auto reply = out.reply;
        send(
          j, i,
          [this, i, j, id, reply] {
            process(i, nodes_[i].p->on_verify_result(nodes_[j].addr, id, reply, now_));
          },
          nullptr);
      },
      [this, i, j, id] {
        process(i, nodes_[i].p->on_verify_result(nodes_[j].addr, id, std::nullopt, now_));
      });
  }

  void send_snapshot_request(int i, const proto::outgoing_snapshot_request& r) {
    int j = index_of(r.peer);
    if (j < 0)
      return fail("snapshot request to unknown peer " + r.peer);
    auto id = r.request_id;
    auto request = r.request;
    send(
      i, j,
      [this, i, j, id, request] {
        auto out = nodes_[j].p->on_snapshot_request(request, now_);
        process(j, out.fx);
        auto reply = out.reply;
        send(
          j, i,
          [this, i, j, id, reply] {
            auto status = reply ? proto::snapshot_status::ok : proto::snapshot_status::unavailable;
            process(i, nodes_[i].p->on_snapshot_result(nodes_[j].addr, id, status,
                                                        reply ? &*reply : nullptr, now_));
          },
          nullptr);
      },
      [this, i, j, id] {
        process(i, nodes_[i].p->on_snapshot_result(nodes_[j].addr, id,
                                                    proto::snapshot_status::failed, nullptr, now_));
      });
  }

  // -- the actor's part: carry out effects ----------------------------------------------

  void process(int i, const proto::effects& fx) {
    auto& n = nodes_[i];
    for (const auto& op : fx.apply) {
      switch (op.what) {
        case proto::local_op::kind::replace:
          n.applied[op.id] = make_actor_client(op.services);
          break;
        case proto::local_op::kind::remove:
          n.applied.erase(op.id);
          break;
        case proto::local_op::kind::take_over:
          for (const auto& [key, marks] : op.beats)
            for (const auto& [ident, m] : marks)
              if (m.last_beat_ms
                  > last_beat_[op.id] + relay_hops_max * transit_ms_max + cfg_.beat_unhealthy_timeout_ms)
                fail(n.addr + ": take_over of " + op.id + " with a beat at " + std::to_string(m.last_beat_ms)
                     + ", more than an unhealthy timeout after its last real beat at "
                     + std::to_string(last_beat_[op.id]));
          [[fallthrough]];
        case proto::local_op::kind::hand_over:
          if (n.applied.count(op.id) == 0)
            fail(n.addr + ": " + (op.what == proto::local_op::kind::take_over ? "take_over" : "hand_over")
                 + " of a client the actors do not hold: " + op.id);
          break;
      }
    }
    for (const auto& s : fx.syncs)
      send_sync(i, s);
    for (const auto& v : fx.verifies)
      send_verify(i, v);
    if (fx.snapshot_requests.size() > 1)
      fail(n.addr + ": more than one snapshot request at once");
    for (const auto& r : fx.snapshot_requests)
      send_snapshot_request(i, r);
    if (!fx.wake_at || *fx.wake_at <= now_)
      fail(n.addr + ": no wake_at in the future");
    else
      schedule_tick(i, *fx.wake_at);
    check_node(i);
  }

  void schedule_tick(int i, time_ms at) {
    auto& n = nodes_[i];
    if (!n.ticks.insert(at).second)
      return;
    auto inc = n.inc;
    schedule(at, [this, i, inc, at] {
      if (!alive(i, inc))
        return;
      nodes_[i].ticks.erase(at);
      process(i, nodes_[i].p->tick(now_));
    });
  }

  void local_change(int i, const client_id& id, const client_services* services) {
    auto& n = nodes_[i];
    proto::local_change x{id, services ? *services : client_services{}, services == nullptr, {}};
    if (services != nullptr && is_heartbeat_client(id)) {
      // Every write and beat of a heartbeat client is a beat of each of its instances.
      for (const auto& [key, xs] : *services)
        for (const auto& y : xs)
          x.beats[key][instance_identity(y.ip, y.port, y.cluster)] = beat_mark{now_, false};
      last_beat_[id] = now_;
    }
    if (services)
      n.applied[id] = make_actor_client(*services);
    else
      n.applied.erase(id);
    process(i, n.p->on_local_change(x, now_));
  }

  // -- membership ----------------------------------------------------------------------

  /// Node i observes node j (as its peer actor would: a connection up or lost), after a delay; the
  /// events of one pair stay in order.
  void observe(int i, int j, bool up) {
    auto ii = nodes_[i].inc;
    auto ji = nodes_[j].inc;
    auto& last = last_observation_[{i, j}];
    time_ms at = std::max(now_ + 1 + pick(100), last + 1);
    last = at;
    schedule(at, [this, i, ii, j, ji, up] {
      if (!alive(i, ii) || (up && !alive(j, ji)))
        return;
      auto& t = *nodes_[i].tracker;
      auto changes = up ? t.on_success(nodes_[j].addr, now_)
                        : t.on_connection_lost(nodes_[j].addr, now_);
      if (!changes.transitions.empty())
        process(i, nodes_[i].p->on_members(t.view(), now_));
    });
  }

  void crash(int j) {
    auto& n = nodes_[j];
    n.up = false;
    n.p.reset();
    n.tracker.reset();
    n.applied.clear();
    n.ticks.clear();
    for (auto it = sessions_.begin(); it != sessions_.end();)
      it = session_owner(it->first) == std::string_view{n.addr} ? sessions_.erase(it) : std::next(it);
    for (int i = 0; i < opts_.nodes; ++i)
      if (i != j && nodes_[i].up)
        observe(i, j, false);
  }

  void restart(int j) {
    auto& n = nodes_[j];
    n.up = true;
    ++n.inc;
    std::vector<std::string> all;
    for (const auto& x : nodes_)
      all.push_back(x.addr);
    member_tracker_config mcfg;
    n.tracker = std::make_unique<member_tracker>(n.addr, all, mcfg, now_);
    n.p = std::make_unique<proto>(n.addr, cfg_);
    process(j, n.p->start(n.tracker->view(), now_));
    for (int i = 0; i < opts_.nodes; ++i) {
      if (i != j && nodes_[i].up) {
        observe(i, j, true);
        observe(j, i, true);
      }
    }
  }

  std::vector<int> up_nodes() const {
    std::vector<int> result;
    for (int i = 0; i < opts_.nodes; ++i)
      if (nodes_[i].up)
        result.push_back(i);
    return result;
  }

  // -- clients ---------------------------------------------------------------------------

  void client_op(time_ms chaos_end) {
    if (now_ >= chaos_end)
      return;
    schedule(now_ + 5 + pick(35), [this, chaos_end] { client_op(chaos_end); });
    auto ups = up_nodes();
    if (ups.empty())
      return;
    int x = ups[pick(static_cast<int>(ups.size()))];
    auto& n = nodes_[x];
    auto r = std::uniform_real_distribution<double>{0.0, 1.0}(rng_);
    if (r < opts_.session_put_share) {
      // A session registers or changes at the node it is connected to.
      std::vector<client_id> mine;
      for (const auto& [id, s] : sessions_)
        if (session_owner(id) == std::string_view{n.addr})
          mine.push_back(id);
      client_id id = !mine.empty() && coin(0.5)
                       ? mine[pick(static_cast<int>(mine.size()))]
                       : n.addr + "/" + std::to_string(++n.sessions_created) + "/" + std::to_string(n.inc);
      auto s = random_services();
      sessions_[id] = s;
      local_change(x, id, &s);
    } else if (r < 0.40) {
      std::vector<client_id> mine;
      for (const auto& [id, s] : sessions_)
        if (session_owner(id) == std::string_view{n.addr})
          mine.push_back(id);
      if (mine.empty())
        return;
      auto id = mine[pick(static_cast<int>(mine.size()))];
      sessions_.erase(id);
      local_change(x, id, nullptr);
    } else if (r < 0.75) {
      // A heartbeat client's write reaches x and is forwarded to the responsible node in x's view.
      auto id = heartbeat_pool_[pick(static_cast<int>(heartbeat_pool_.size()))];
      int t = index_of(n.p->responsible_node(id));
      if (t < 0 || !nodes_[t].up)
        return; // the forward fails; the client retries later
      if (heartbeats_.count(id) > 0 && coin(0.3)) {
        heartbeats_.erase(id);
        local_change(t, id, nullptr);
      } else {
        auto s = random_services();
        heartbeats_[id] = s;
        local_change(t, id, &s);
      }
    } else if (r < 0.757) {
      if (ups.size() > 1 && opts_.crashes)
        crash(x);
    } else if (r < 0.78) {
      std::vector<int> downs;
      for (int i = 0; i < opts_.nodes; ++i)
        if (!nodes_[i].up && i != held_down_)
          downs.push_back(i);
      if (!downs.empty())
        restart(downs[pick(static_cast<int>(downs.size()))]);
    }
  }

  /// Heartbeat clients beat at a random node, which forwards to the responsible one in its view; a
  /// responsible node drops heartbeat clients that no longer beat (deregistered, lost writes).
  void beat() {
    schedule(now_ + opts_.beat_period_ms, [this] { beat(); });
    auto ups = up_nodes();
    if (ups.empty())
      return;
    for (const auto& [id, s] : heartbeats_) {
      int x = ups[pick(static_cast<int>(ups.size()))];
      int t = index_of(nodes_[x].p->responsible_node(id));
      if (t < 0 || !nodes_[t].up)
        continue;
      auto held = nodes_[t].applied.find(id);
      if (held == nodes_[t].applied.end() || held->second.revision != content_revision(s)
          || coin(0.3)) {
        // Re-applied, or (same content) only its beat clocks reported.
        auto copy = s;
        local_change(t, id, &copy);
      }
    }
    for (int t : ups) {
      std::vector<client_id> expired;
      for (const auto& [id, r] : nodes_[t].p->records())
        if (is_heartbeat_client(id) && r.local && !r.tombstone && heartbeats_.count(id) == 0)
          expired.push_back(id);
      for (const auto& id : expired)
        if (nodes_[t].up)
          local_change(t, id, nullptr);
    }
  }

  // -- checks ----------------------------------------------------------------------------

  /// Instances sorted: their order carries no meaning (content_revision ignores it too, so a write
  /// that only reorders them is no change).
  static client_services normalized(client_services xs) {
    for (auto& kv : xs) {
      auto& instances = kv.second.mutate();
      std::sort(instances.begin(), instances.end(), [](const instance& x, const instance& y) {
        return std::tie(x.ip, x.port, x.cluster) < std::tie(y.ip, y.port, y.cluster);
      });
    }
    return xs;
  }

  static std::map<client_id, client_services>
  normalized(const std::map<client_id, client_services>& xs) {
    std::map<client_id, client_services> result;
    for (const auto& [id, s] : xs)
      result.emplace(id, normalized(s));
    return result;
  }

  static std::map<client_id, client_services> held(const proto& p) {
    std::map<client_id, client_services> result;
    for (const auto& [id, r] : p.records())
      if (!r.tombstone)
        result.emplace(id, normalized(r.services));
    return result;
  }

  void check_node(int i) {
    const auto& n = nodes_[i];
    if (!n.up)
      return;
    auto broken = n.p->check_invariants();
    if (!broken.empty())
      return fail(n.addr + ": " + broken);
    // Lockstep over both sorted maps; revisions stand for content (compared in full at convergence).
    auto x = n.applied.begin();
    for (const auto& [id, r] : n.p->records()) {
      if (r.tombstone)
        continue;
      if (x == n.applied.end() || x->first > id)
        return fail(n.addr + ": the client actors lack " + id);
      if (x->first < id)
        return fail(n.addr + ": the client actors hold " + x->first + ", the protocol does not");
      if (x->second.revision != r.revision)
        return fail(n.addr + ": the client actors hold another state of " + id);
      ++x;
    }
    if (x != n.applied.end())
      fail(n.addr + ": the client actors hold " + x->first + ", the protocol does not");
  }

  void check_converged(int round) {
    auto expected = normalized(sessions_);
    for (const auto& [id, s] : heartbeats_)
      expected[id] = normalized(s);
    auto ups = up_nodes();
    std::vector<std::string> live;
    for (int i : ups)
      live.push_back(nodes_[i].addr);
    std::string prefix = "after heal " + std::to_string(round) + ": ";
    for (int i : ups) {
      const auto& p = *nodes_[i].p;
      if (!p.ready())
        return fail(prefix + nodes_[i].addr + " is not ready");
      if (p.routing() != live)
        return fail(prefix + nodes_[i].addr + " routes over other members");
      auto have = held(p);
      std::map<client_id, client_services> actors;
      for (const auto& [id, x] : nodes_[i].applied)
        actors.emplace(id, normalized(x.services));
      if (actors != have)
        return fail(prefix + nodes_[i].addr + ": the client actors and the protocol differ in content");
      for (const auto& [id, s] : expected) {
        auto h = have.find(id);
        if (h == have.end())
          return fail(prefix + nodes_[i].addr + " lost live client " + id);
        if (h->second != s)
          return fail(prefix + nodes_[i].addr + " holds an old state of " + id);
      }
      for (const auto& [id, s] : have)
        if (expected.count(id) == 0)
          return fail(prefix + nodes_[i].addr + " still holds dead client " + id);
    }
    for (const auto& [id, s] : expected) {
      int owners = 0;
      for (int i : ups)
        owners += nodes_[i].p->find(id)->local ? 1 : 0;
      if (owners != 1)
        return fail(prefix + id + " is local at " + std::to_string(owners) + " nodes");
    }
    clients_checked_ += expected.size();
  }

public:
  std::size_t clients_checked_ = 0;

private:
  // -- member variables ------------------------------------------------------------------

  sim_options opts_;
  std::mt19937 rng_;
  distro_config cfg_;
  std::vector<node> nodes_;
  std::vector<client_id> heartbeat_pool_;
  std::priority_queue<event, std::vector<event>, later> queue_;
  std::map<std::pair<int, int>, time_ms> last_observation_;
  time_ms now_ = 0;
  std::uint64_t seq_ = 0;
  std::size_t steps_ = 0;
  bool chaos_ = false;
  /// Longest delivery delay (see send): a beat age does not count the transit of each hop.
  static constexpr time_ms transit_ms_max = 20 + 300;
  /// Hops a beat clock may take before a take-over without a new beat (owner -> copy -> snapshot
  /// or hand-over): each adds its transit.
  static constexpr time_ms relay_hops_max = 3;
  /// The last real beat (write or beat) of each heartbeat client.
  std::map<client_id, time_ms> last_beat_;
  int held_down_ = -1; ///< the member kept DOWN (long_down), or -1
  std::map<client_id, client_services> sessions_;   ///< live sessions (of live nodes)
  std::map<client_id, client_services> heartbeats_; ///< registered heartbeat clients
  std::string error_;
};

} // namespace

TEST_CASE("distro sim: lossy network, crashes and restarts converge without losing live clients") {
  std::size_t checked = 0;
  auto seeds = seed_count(20);
  for (std::uint32_t seed = 1; seed <= seeds; ++seed) {
    sim_options opts;
    opts.seed = seed;
    opts.nodes = 3 + static_cast<int>(seed % 3);
    CAPTURE(seed);
    CAPTURE(opts.nodes);
    simulation sim{opts};
    auto error = sim.run();
    CHECK_MESSAGE(error.empty(), error);
    checked += sim.clients_checked_;
  }
  CHECK(checked > 0);
}

TEST_CASE("distro sim: digest verifies (clients collide in few buckets) converge and expire copies") {
  // Every verify is a digest; with 3 buckets most clients share a bucket with others, so a bucket
  // that differs for one client lists its neighbours in detail, and copy expiry works only through
  // renewed buckets and details.
  std::size_t checked = 0;
  auto seeds = seed_count(20);
  for (std::uint32_t seed = 301; seed < 301 + seeds; ++seed) {
    sim_options opts;
    opts.seed = seed;
    opts.nodes = 3 + static_cast<int>(seed % 3);
    opts.verify_buckets = 1 + seed % 3;
    CAPTURE(seed);
    CAPTURE(opts.verify_buckets);
    simulation sim{opts};
    auto error = sim.run();
    CHECK_MESSAGE(error.empty(), error);
    checked += sim.clients_checked_;
  }
  CHECK(checked > 0);
}

TEST_CASE("distro sim: heavy loss (40 percent) still converges once the network heals") {
  for (std::uint32_t seed = 101; seed <= 105; ++seed) {
    sim_options opts;
    opts.seed = seed;
    opts.nodes = 4;
    opts.loss = 0.4;
    opts.rounds = 1;
    CAPTURE(seed);
    simulation sim{opts};
    auto error = sim.run();
    CHECK_MESSAGE(error.empty(), error);
  }
}

TEST_CASE("distro sim: a member DOWN for long (still listed) neither blocks churn nor comes back stale") {
  // Down for five chaos and heal phases (60 s, 40 copy expiry times); session churn and no other
  // crashes, so deletes would pile up; clients_max above the live clients (at most about 30) but
  // below live clients plus the deletes of a few rounds.
  auto seeds = std::max<std::uint32_t>(5, seed_count(20) / 4);
  for (std::uint32_t seed = 201; seed < 201 + seeds; ++seed) {
    sim_options opts;
    opts.seed = seed;
    opts.nodes = 3 + static_cast<int>(seed % 3);
    opts.rounds = 5;
    opts.long_down = true;
    opts.crashes = false;
    opts.session_put_share = 0.2;
    opts.clients_max = 50;
    CAPTURE(seed);
    simulation sim{opts};
    auto error = sim.run();
    CHECK_MESSAGE(error.empty(), error);
  }
}
