#include "actors/raft/raft_actor.hpp"

#include <deque>
#include <map>
#include <random>

#include <caf/all.hpp>

#include "actors/common/clock.hpp"
#include "actors/common/handlers.hpp"
#include "actors/common/log.hpp"
#include "actors/member/member_tracker.hpp"
#include "actors/raft/health_checker.hpp"
#include <functional>
#include "actors/raft/persistent_store.hpp"
#include "actors/raft/raft_wire.hpp"
#include "messages/convert.hpp"
#include "messages/model_inspect.hpp"
#include "messages/raft.pb.h"
#include "messages/type_ids.hpp"

namespace registry {

namespace {

using namespace wire;
using std::chrono::milliseconds;
using raft::raft_core;

// -- the disk actor -----------------------------------------------------------------

struct disk_state {
  static inline const char* name = "raft-disk";

  std::shared_ptr<raft::raft_log_store> store;
  raft_actor owner;
  /// Highest write id written and not yet synced (0: none).
  std::uint64_t written = 0;
  bool flush_pending = false;
  std::string broken;
};

using disk_actor_t = raft_disk_actor::stateful_base<disk_state>;

/// Group commit: writes are carried out as they arrive; one flush message (queued behind every
/// write that arrived before it) syncs them all at once and acknowledges the newest.
raft_disk_actor::behavior_type disk_behavior(disk_actor_t* self,
                                             std::shared_ptr<raft::raft_log_store> store,
                                             raft_actor owner) {
  self->state.store = std::move(store);
  self->state.owner = std::move(owner);
  install_default_handlers(self, "raft-disk");
  return {
    [=](disk_atom, const raft_write_ptr& w) {
      if (!local_only(self, "raft-disk", "disk"))
        return;
      auto& st = self->state;
      if (!st.broken.empty())
        return;
      auto err = st.store->write(*w);
      if (!err.empty()) {
        st.broken = err;
        self->send(st.owner, persisted_atom_v, w->id, err);
        return;
      }
      st.written = w->id;
      if (!st.flush_pending) {
        st.flush_pending = true;
        self->send(self, flush_atom_v);
      }
    },
    [=](flush_atom) {
      if (!local_only(self, "raft-disk", "flush"))
        return;
      auto& st = self->state;
      st.flush_pending = false;
      if (!st.broken.empty() || st.written == 0)
        return;
      auto err = st.store->sync();
      if (!err.empty())
        st.broken = err;
      self->send(st.owner, persisted_atom_v, st.written, err);
      st.written = 0;
    },
  };
}

// -- the health prober --------------------------------------------------------------

health_prober_actor::behavior_type prober_behavior(health_prober_actor::pointer self) {
  install_default_handlers(self, "health-prober");
  return {
    [=](probe_atom, const std::vector<health_probe>& xs, std::int64_t timeout_ms) {
      if (!local_only(self, "health-prober", "probe"))
        return std::vector<health_probe_result>{};
      return run_probes(xs, timeout_ms);
    },
  };
}

// -- the raft actor -----------------------------------------------------------------

/// A write this node proposed as leader, waiting for its entry.
using reply_fn = std::function<void(envelope)>;

struct pending_write {
  raft::term_t term = 0;
  reply_fn rp;
  time_ms deadline_ms = 0;
};

/// A write waiting for a leader to be known.
struct waiting_write {
  envelope op;
  reply_fn rp;
  time_ms deadline_ms = 0;
};

struct raft_state {
  static inline const char* name = "raft";

  raft_settings settings;
  std::unique_ptr<raft_core> core;
  raft::persistent_store store;
  raft_disk_actor disk;
  gateway_actor gateway;
  distro_actor distro;
  std::map<raft::index_t, pending_write> pending;
  std::deque<waiting_write> waiting;
  std::uint64_t timer_generation = 0;
  std::optional<time_ms> timer_due;
  bool stopped = false;
  std::string last_leader;
  /// Health checks of the instances this node is responsible for.
  std::unique_ptr<health_checker> checker;
  health_prober_actor prober;
  bool probing = false;
  std::vector<std::string> routing;
  std::uint64_t hc_generation = 0;
  std::optional<time_ms> hc_due;
  bool targets_dirty = true;
  /// Membership: what the member list wants, and the change this leader proposed (one at a time).
  raft::membership_planner planner;
  struct change_in_flight {
    raft::membership_planner::step what;
    raft::index_t index = 0;
    raft::term_t term = 0;
  };
  std::optional<change_in_flight> change;
  bool was_leader = false;
  std::string last_refusal;
  /// A handover (a stopping leader, or registryctl raft --transfer-to): `done(true)` once it
  /// stepped down, `done(false)` at the deadline.
  struct handover_t {
    std::function<void(bool, const raft::node_id&)> done;
    raft::node_id target;
    time_ms started_ms = 0;
    time_ms deadline_ms = 0;
  };
  std::optional<handover_t> handover;
  /// Readiness: caught up since the start (see raft_actor.hpp).
  bool ready = false;
  time_ms ready_deadline_ms = 0;
  std::optional<raft::index_t> catch_up_target;
  bool target_from_append = false;
  std::uint64_t leader_heartbeats = 0;
  /// Feeds to the gateway waiting for a slot: at most raft_feeds_in_flight_max svc_put requests
  /// at once (CAF 0.17 finds a response's handler by a linear search over those pending, so a
  /// restart feeding 100k clients at once spent most of its time there). Per (service, client)
  /// only the newest feed waits; its instances, when not given, are read when it is sent.
  std::map<std::pair<service_key, client_id>, std::optional<std::vector<instance>>> feeds_queued;
  std::deque<std::pair<service_key, client_id>> feed_order;
  std::size_t feeds_in_flight = 0;
};

using raft_actor_t = raft_actor::stateful_base<raft_state>;

envelope unavailable(const std::string& why) {
  return pack(make_error(v1::Error::UNAVAILABLE, "", why));
}

void carry(raft_actor_t* self, raft_core::effects fx);

void arm_timer(raft_actor_t* self, time_ms due) {
  auto& st = self->state;
  auto now = actor_now_ms(self);
  if (st.timer_due && *st.timer_due <= due && *st.timer_due >= now)
    return;
  st.timer_due = due;
  auto gen = ++st.timer_generation;
  self->delayed_send(self, milliseconds(std::max<time_ms>(due - now, 1)), tick_atom_v, gen);
}

void feed_pump(raft_actor_t* self);
void check_ready(raft_actor_t* self);

/// Sends one svc_put; its answer frees a slot for the next queued feed.
void send_feed(raft_actor_t* self, const service_key& key, const client_id& client,
               instance_list xs) {
  auto& st = self->state;
  auto name = key.to_string();
  ++st.feeds_in_flight;
  self->request(st.gateway, milliseconds(defaults::request_timeout_ms), svc_put_atom_v, key, client,
                std::move(xs))
    .then(
      [=](const envelope& reply) {
        v1::Error err;
        if (unpack(reply, err))
          log().warn("raft refused to show persistent instances of {} in {}: {}", client, name,
                     err.message());
        --self->state.feeds_in_flight;
        feed_pump(self);
      },
      [=](caf::error& err) {
        log().warn("raft failed to hand persistent instances of {} to service {}: {}", client,
                   name, self->system().render(err));
        --self->state.feeds_in_flight;
        feed_pump(self);
      });
}

/// Hands a protect threshold to the gateway (it passes it to the service actor).
void feed_threshold(raft_actor_t* self, const service_key& key, double value) {
  if (self->state.gateway)
    self->send(self->state.gateway, threshold_atom_v, key, value);
}

void feed_pump(raft_actor_t* self) {
  auto& st = self->state;
  while (st.gateway && st.feeds_in_flight < defaults::raft_feeds_in_flight_max
         && !st.feed_order.empty()) {
    auto k = std::move(st.feed_order.front());
    st.feed_order.pop_front();
    auto i = st.feeds_queued.find(k);
    auto xs = i->second ? std::move(*i->second) : st.store.instances_of(k.first, k.second);
    st.feeds_queued.erase(i);
    send_feed(self, k.first, k.second, std::move(xs));
  }
  if (st.feed_order.empty() && st.feeds_in_flight == 0)
    check_ready(self);
}

/// Hands the instances `client` publishes in `key` to the gateway, as a client actor would:
/// queued, newest state per (service, client) only; `xs` when given, else read when sent.
void feed(raft_actor_t* self, const service_key& key, const client_id& client,
          std::optional<std::vector<instance>> xs = std::nullopt) {
  auto& st = self->state;
  if (!st.gateway)
    return;
  auto k = std::make_pair(key, client);
  auto [i, added] = st.feeds_queued.try_emplace(k);
  i->second = std::move(xs);
  if (added)
    st.feed_order.push_back(std::move(k));
  feed_pump(self);
}

void feed_all(raft_actor_t* self) {
  // One pass over the store (instances_of per client would scan its service once per client).
  for (auto& [key, client, xs] : self->state.store.all_client_instances())
    feed(self, key, client, std::move(xs));
  for (auto& [key, value] : self->state.store.thresholds())
    feed_threshold(self, key, value);
}

void send_role(raft_actor_t* self) {
  auto& st = self->state;
  if (st.gateway)
    self->send(st.gateway, rstatus_atom_v, std::string{raft::to_string(st.core->role())},
               st.core->leader(), st.ready);
}

/// Ready once the state machine applied what the leader had committed when this node first heard
/// from it (a leader: once it committed an entry of its own term), or after ready_wait_ms; and
/// once every persistent instance it holds was handed to the gateway.
void check_ready(raft_actor_t* self) {
  auto& st = self->state;
  // Ready means loaded: not before the service actors show what the state machine holds.
  if (st.ready || !st.gateway || !st.feed_order.empty() || st.feeds_in_flight > 0)
    return;
  auto& core = *st.core;
  auto now = actor_now_ms(self);
  std::string how;
  if (core.role() == raft::role::leader) {
    if (core.term_at(core.commit_index()) == core.term())
      how = "committed an entry of its term " + std::to_string(core.term()) + " as leader";
  } else if (st.catch_up_target && core.applied_index() >= *st.catch_up_target) {
    how = "applied up to " + std::to_string(core.applied_index()) + " (the leader "
          + core.leader() + " had committed " + std::to_string(*st.catch_up_target) + ")";
  }
  if (how.empty() && now >= st.ready_deadline_ms)
    how = st.catch_up_target
            ? "did not catch up within " + std::to_string(st.settings.ready_wait_ms)
                + " ms (applied " + std::to_string(core.applied_index()) + " of "
                + std::to_string(*st.catch_up_target) + "); reporting ready anyway"
            : "heard from no leader within " + std::to_string(st.settings.ready_wait_ms)
                + " ms; reporting ready with what it holds";
  if (how.empty())
    return;
  st.ready = true;
  log().info("raft {} is ready: {}", st.settings.self, how);
  send_role(self);
}

/// Learns the leader's commit index from its first AppendEntries or heartbeat after the start.
void note_leader_commit(raft_actor_t* self, const raft::message& m) {
  auto& st = self->state;
  if (st.ready || m.from != st.core->leader())
    return;
  // An append carries the leader's commit index: the first one fixes the target. A heartbeat
  // carries only what the leader believes this node holds (stale after a restart); a leader
  // answers the first heartbeat reply of a node that lacks entries with an append, so a heartbeat
  // counts only from the second one on, when no append came (this node holds everything).
  if (auto* a = std::get_if<raft::append_request>(&m.body)) {
    if (!st.target_from_append)
      st.catch_up_target = a->commit;
    st.target_from_append = true;
  } else if (auto* h = std::get_if<raft::heartbeat>(&m.body)) {
    if (!st.target_from_append && ++st.leader_heartbeats >= 2)
      st.catch_up_target = h->commit;
  }
}

/// Answers pending writes whose entry was committed (`result`) or overwritten.
void settle(raft_actor_t* self, const raft::entry& e,
            const raft::persistent_store::apply_result* result) {
  auto& st = self->state;
  while (!st.pending.empty() && st.pending.begin()->first < e.index) {
    st.pending.begin()->second.rp(
      unavailable("the write was lost in a change of leader; retry"));
    st.pending.erase(st.pending.begin());
  }
  auto i = st.pending.find(e.index);
  if (i == st.pending.end())
    return;
  if (i->second.term != e.term) {
    i->second.rp(unavailable("the write was lost in a change of leader; retry"));
  } else if (result && !result->ok) {
    i->second.rp(pack(make_error(v1::Error::INVALID_ARGUMENT, "", result->detail)));
  } else {
    v1::Ack ack;
    ack.set_detail(result ? result->detail : "");
    i->second.rp(pack(ack));
  }
  st.pending.erase(i);
}

void apply_entry(raft_actor_t* self, const raft::entry& e) {
  auto& st = self->state;
  if (e.kind != raft::entry_kind::command) {
    if (e.kind == raft::entry_kind::config)
      if (auto c = raft::decode_configuration(e.data, defaults::raft_members_max))
        log().info("raft {} applies membership {} at {}", st.settings.self, raft::to_string(*c),
                   e.index);
    settle(self, e, nullptr);
    return;
  }
  auto result = st.store.apply(e.data);
  if (!result.ok)
    log().warn("raft {} refused entry {}: {}", st.settings.self, e.index, result.detail);
  if (result.changed) {
    feed(self, *result.changed, result.client);
    st.targets_dirty = true;
  }
  if (result.threshold_now) {
    auto& [key, value] = *result.threshold_now;
    log().info("raft {} applied protect threshold {} of service {}", st.settings.self, value,
               key.to_string());
    feed_threshold(self, key, value);
  }
  if (result.healthy_now)
    log().info("raft {} applied a health flip of {} in {} to {}", st.settings.self,
               result.client, result.changed->to_string(),
               *result.healthy_now ? "healthy" : "unhealthy");
  settle(self, e, &result);
}

/// Restores the state machine from a snapshot the leader installed; the services it held before
/// and those it holds now are fed again.
void restore(raft_actor_t* self, const raft::snapshot& s) {
  auto& st = self->state;
  auto before = st.store.all_clients();
  if (!s.data || !st.store.restore(*s.data)) {
    log().error("raft {} cannot read the snapshot at {}; keeping its state", st.settings.self,
                s.meta.index);
    return;
  }
  log().info("raft {} restored {} persistent instances from the snapshot at {}",
             st.settings.self, st.store.instance_count(), s.meta.index);
  for (auto& [key, client] : before)
    feed(self, key, client);
  feed_all(self);
  st.targets_dirty = true;
}

void dispatch_waiting(raft_actor_t* self);

void on_role(raft_actor_t* self, const raft_core::role_change& rc) {
  auto& st = self->state;
  if (rc.leader != st.last_leader) {
    log().info("raft {} sees leader {} in term {} (role {})", st.settings.self,
               rc.leader.empty() ? std::string{"none"} : rc.leader, rc.term,
               raft::to_string(rc.role));
    st.last_leader = rc.leader;
  }
  if (st.handover && rc.role != raft::role::leader) {
    log().info("raft {} stepped down for the leadership transfer to {} after {} ms (term {})",
               st.settings.self, st.handover->target,
               actor_now_ms(self) - st.handover->started_ms, rc.term);
    auto done = std::move(st.handover->done);
    auto target = st.handover->target;
    st.handover.reset();
    done(true, target);
  }
  send_role(self);
  if (!rc.leader.empty())
    dispatch_waiting(self);
}

/// What the planner needs to know from the core.
raft::membership_planner::view membership_view(raft_actor_t* self) {
  auto& core = *self->state.core;
  raft::membership_planner::view v;
  v.self = self->state.settings.self;
  v.config = core.membership();
  v.change_pending = core.membership_index() > core.commit_index();
  for (const auto& l : v.config.learners)
    if (core.caught_up(l))
      v.caught_up.insert(l);
  for (const auto* xs : {&v.config.voters, &v.config.learners})
    for (const auto& x : *xs)
      if (const auto* pr = core.progress_of(x)) {
        v.match[x] = pr->match;
        if (pr->state == raft_core::progress::mode::replicate && pr->match > 0)
          v.replicating.insert(x);
      }
  return v;
}

/// Leader: settles the change in flight, then proposes the planner's next step (if any).
void drive_membership(raft_actor_t* self) {
  using kind = raft::membership_planner::step::kind;
  auto& st = self->state;
  auto& core = *st.core;
  bool leader = core.role() == raft::role::leader;
  if (!leader || st.stopped) {
    if (st.was_leader) {
      st.planner.reset();
      st.change.reset();
      st.was_leader = false;
    }
    return;
  }
  st.was_leader = true;
  if (st.handover)
    return;
  auto now = actor_now_ms(self);
  if (st.change) {
    auto& c = *st.change;
    auto t = core.term_at(c.index);
    bool lost = t && *t != c.term;
    if (!lost && core.commit_index() < c.index)
      return;
    const auto& n = c.what.node;
    if (lost)
      log().warn("raft {} lost its membership change ({} {}) at index {}: another leader "
                 "overwrote it; planning again",
                 st.settings.self, raft::to_string(c.what.what), n, c.index);
    else if (c.what.what == kind::add_learner)
      log().info("raft {} added {} as a learner (term {}, index {})", st.settings.self, n, c.term,
                 c.index);
    else if (c.what.what == kind::promote)
      log().info("raft {} promoted {} to voter (term {}, index {})", st.settings.self, n, c.term,
                 c.index);
    else
      log().info("raft {} removed {} from the configuration (term {}, index {})",
                 st.settings.self, n, c.term, c.index);
    st.change.reset();
  }
  auto step = st.planner.next(membership_view(self), now);
  for (auto& line : st.planner.take_log())
    log().warn("raft {} {}", st.settings.self, line);
  if (!step)
    return;
  if (step.what == kind::transfer) {
    auto r = core.transfer_leadership(step.node, now);
    if (!r.refused.empty()) {
      st.planner.refused(now);
      log().info("raft {} cannot hand leadership to {} (it is not in the member list): {}",
                 st.settings.self, step.node, r.refused);
    } else {
      log().info("raft {} is not in its member list: hands leadership to {}", st.settings.self,
                 step.node);
    }
    carry(self, std::move(r.fx));
    return;
  }
  raft_core::membership_change mc;
  mc.node = step.node;
  mc.what = step.what == kind::add_learner ? raft_core::membership_change::kind::add_learner
            : step.what == kind::promote   ? raft_core::membership_change::kind::promote
                                           : raft_core::membership_change::kind::remove;
  auto r = core.change_membership(mc, now);
  if (!r.accepted) {
    st.planner.refused(now);
    auto why = std::string{raft::to_string(step.what)} + " " + step.node + ": " + r.refused;
    if (why != st.last_refusal) // once per reason, not once per retry
      log().info("raft {} cannot {} yet; retrying every {} ms", st.settings.self, why,
                 st.settings.membership.retry_delay_ms);
    st.last_refusal = why;
  } else {
    st.last_refusal.clear();
    st.planner.proposed(step, now);
    st.change = raft_state::change_in_flight{step, r.index, r.term};
  }
  carry(self, std::move(r.fx));
}

void carry(raft_actor_t* self, raft_core::effects fx) {
  auto& st = self->state;
  if (fx.persist)
    self->send(st.disk, disk_atom_v,
               std::make_shared<const raft_core::persist_request>(std::move(*fx.persist)));
  if (st.distro)
    for (auto& m : fx.messages)
      self->send(st.distro, raft_atom_v, m.to, pack(raft::to_wire(m)));
  for (auto& line : fx.log)
    log().info("raft {}", line);
  if (fx.restore)
    restore(self, *fx.restore);
  for (auto& e : fx.committed)
    apply_entry(self, e);
  if (fx.role_changed)
    on_role(self, *fx.role_changed);
  // A snapshot is skipped while the disk is busy (the core would ignore it) and, for a large
  // state, until enough entries make it worth its cost; the core asks again.
  if (fx.snapshot_wanted
      && st.core->persists_in_flight() < st.settings.core.persists_in_flight_max
      && raft::snapshot_worthwhile(st.core->applied_index() - st.core->latest_snapshot().meta.index,
                                   st.store.instance_count(),
                                   st.settings.core.snapshot_threshold_entries)) {
    auto index = st.core->applied_index();
    auto data = std::make_shared<const std::string>(st.store.snapshot());
    auto bytes = data->size();
    carry(self, st.core->snapshot_taken(index, std::move(data), actor_now_ms(self)));
    log().info("raft {} snapshotted {} persistent instances ({} bytes) at {}; log starts after {}",
               st.settings.self, st.store.instance_count(), bytes, index, st.core->log_start());
  }
  if (fx.wake_at)
    arm_timer(self, *fx.wake_at);
  check_ready(self);
}

/// Fails writes whose time is up.
void expire(raft_actor_t* self) {
  auto& st = self->state;
  auto now = actor_now_ms(self);
  for (auto i = st.pending.begin(); i != st.pending.end();) {
    if (i->second.deadline_ms > now) {
      ++i;
      continue;
    }
    i->second.rp(unavailable("the write was not committed within "
                                     + std::to_string(st.settings.write_timeout_ms)
                                     + " ms (no quorum?); it may still be applied"));
    i = st.pending.erase(i);
  }
  for (auto i = st.waiting.begin(); i != st.waiting.end();) {
    if (i->deadline_ms > now) {
      ++i;
      continue;
    }
    i->rp(unavailable("no Raft leader within " + std::to_string(st.settings.write_timeout_ms)
                      + " ms: a majority of the members is not reachable"));
    i = st.waiting.erase(i);
  }
}

/// Proposes `op` (leader) or forwards it to the leader; `rp` is answered either way.
void submit(raft_actor_t* self, const envelope& op, reply_fn rp,
            time_ms deadline_ms) {
  auto& st = self->state;
  auto now = actor_now_ms(self);
  if (st.core->role() == raft::role::leader) {
    v1::PersistentOp msg;
    if (!unpack(op, msg)) {
      rp(pack(make_error(v1::Error::INVALID_ARGUMENT, "request", "malformed PersistentOp")));
      return;
    }
    if (st.pending.size() >= st.settings.pending_writes_max) {
      rp(unavailable("too many persistent writes in flight; retry"));
      return;
    }
    auto result = st.core->propose(op.payload, now);
    if (!result.accepted) {
      rp(unavailable("the Raft leader refused the write: " + result.refused));
      carry(self, std::move(result.fx));
      return;
    }
    st.pending.emplace(result.index, pending_write{result.term, rp, deadline_ms});
    carry(self, std::move(result.fx));
    return;
  }
  const auto& leader = st.core->leader();
  if (leader.empty() || !st.distro) {
    if (st.waiting.size() >= st.settings.pending_writes_max) {
      rp(unavailable("no Raft leader and too many writes waiting for one"));
      return;
    }
    st.waiting.push_back(waiting_write{op, rp, deadline_ms});
    return;
  }
  auto left = std::max<time_ms>(deadline_ms - now, 1);
  self->request(st.distro, milliseconds(left), pwrite_atom_v, leader, op)
    .then(
      [=](envelope& reply) {
        // The leader it knew is gone or lost its term: wait for the next one while time is left
        // (every write is idempotent, so proposing it again is safe).
        auto& st = self->state;
        v1::Error err;
        auto now = actor_now_ms(self);
        if (unpack(reply, err) && err.code() == v1::Error::UNAVAILABLE
            && now + 2 * st.settings.core.heartbeat_interval_ms < deadline_ms
            && st.waiting.size() < st.settings.pending_writes_max) {
          st.waiting.push_back(waiting_write{op, rp, deadline_ms});
          arm_timer(self, now + st.settings.core.heartbeat_interval_ms);
          return;
        }
        rp(std::move(reply));
      },
          [=](caf::error& err) {
            rp(unavailable("the Raft leader " + leader + " did not answer: "
                                   + self->system().render(err)));
          });
}

void dispatch_waiting(raft_actor_t* self) {
  auto& st = self->state;
  auto xs = std::move(st.waiting);
  st.waiting.clear();
  for (auto& w : xs)
    submit(self, w.op, w.rp, w.deadline_ms);
}

envelope status(raft_actor_t* self) {
  auto& st = self->state;
  auto& core = *st.core;
  v1::RaftStatus out;
  out.set_enabled(true);
  out.set_id(st.settings.self);
  out.set_role(raft::to_string(core.role()));
  out.set_term(core.term());
  out.set_leader(core.leader());
  out.set_commit_index(core.commit_index());
  out.set_applied_index(core.applied_index());
  out.set_last_index(core.last_index());
  out.set_snapshot_index(core.latest_snapshot().meta.index);
  out.set_persistent_instances(st.store.instance_count());
  out.set_data_dir(st.settings.data_dir);
  const auto& config = core.membership();
  auto add = [&](const raft::node_id& id, bool voter) {
    auto* m = out.add_members();
    m->set_id(id);
    m->set_voter(voter);
    if (id == st.settings.self) {
      m->set_match_index(core.last_index());
      m->set_next_index(core.last_index() + 1);
      m->set_state("self");
      return;
    }
    if (const auto* pr = core.progress_of(id)) {
      m->set_match_index(pr->match);
      m->set_next_index(pr->next);
      using mode = raft_core::progress::mode;
      m->set_state(pr->state == mode::probe       ? "probe"
                   : pr->state == mode::replicate ? "replicate"
                                                  : "snapshot");
    }
  };
  for (auto& v : config.voters)
    add(v, true);
  for (auto& l : config.learners)
    add(l, false);
  return pack(out);
}

/// A flip decided by the checker becomes a HEALTH write through Raft.
void write_flip(raft_actor_t* self, const health_checker::flip& f) {
  auto& st = self->state;
  const auto* rec = st.store.find(f.what.key, f.what.ip, f.what.port, f.what.cluster);
  if (!rec || rec->inst.healthy == f.healthy)
    return;
  log().info("raft {} health check flips {}:{} in {} to {}", st.settings.self, f.what.ip,
             f.what.port, f.what.key.to_string(), f.healthy ? "healthy" : "unhealthy");
  raft::persistent_op op;
  op.what = raft::persistent_op::kind::health;
  op.service = f.what.key;
  op.inst = rec->inst;
  op.inst.healthy = f.healthy;
  v1::PersistentOp msg;
  msg.ParseFromString(raft::encode(op));
  auto name = st.settings.self;
  auto ip = f.what.ip;
  auto port = f.what.port;
  submit(self, pack(msg),
         [=](envelope reply) {
           v1::Error err;
           if (unpack(reply, err))
             log().warn("raft {} failed to write a health flip of {}:{}: {}", name, ip, port,
                        err.message());
         },
         actor_now_ms(self) + st.settings.write_timeout_ms);
}

/// The instances this node checks: those with a check whose ip:port it is responsible for
/// (rendezvous over the ready, alive members, as heartbeat clients; alone: all).
void refresh_targets(raft_actor_t* self) {
  auto& st = self->state;
  if (!st.checker)
    return;
  st.targets_dirty = false;
  std::vector<health_checker::target> xs;
  for (auto& [key, rec] : st.store.all_records()) {
    if (rec.check.type == raft::health_check_spec::kind::none)
      continue;
    auto owner = st.routing.empty()
                   ? st.settings.self
                   : responsible_node(st.routing, persistent_client_id(rec.inst.ip, rec.inst.port));
    if (owner != st.settings.self)
      continue;
    xs.push_back(health_checker::target{key, rec.inst.ip, rec.inst.port, rec.inst.cluster,
                                        rec.check, rec.inst.healthy});
  }
  st.checker->set_targets(xs, actor_now_ms(self));
}

void arm_health(raft_actor_t* self) {
  auto& st = self->state;
  if (!st.checker || st.probing)
    return;
  auto due = st.checker->next_due();
  if (!due)
    return;
  auto now = actor_now_ms(self);
  if (st.hc_due && *st.hc_due <= *due && *st.hc_due >= now)
    return;
  st.hc_due = *due;
  auto gen = ++st.hc_generation;
  self->delayed_send(self, milliseconds(std::max<time_ms>(*due - now, 1)), hc_tick_atom_v, gen);
}

/// Starts the due checks as one batch in the prober (one batch at a time).
void run_health(raft_actor_t* self) {
  auto& st = self->state;
  if (!st.checker || st.probing || st.stopped)
    return;
  if (st.targets_dirty)
    refresh_targets(self);
  auto checks = st.checker->due(actor_now_ms(self));
  if (checks.empty()) {
    arm_health(self);
    return;
  }
  std::vector<health_probe> probes;
  for (auto& c : checks)
    probes.push_back(health_probe{c.id, c.what.ip, c.what.port,
                                  c.what.check.type == raft::health_check_spec::kind::http
                                    ? c.what.check.path
                                    : std::string{}});
  st.probing = true;
  auto timeout = st.settings.check_timeout_ms;
  self->request(st.prober, milliseconds(timeout + 2000), probe_atom_v, std::move(probes), timeout)
    .then(
      [=](const std::vector<health_probe_result>& results) {
        auto& st = self->state;
        st.probing = false;
        auto now = actor_now_ms(self);
        for (auto& r : results) {
          auto x = r.outcome == 0   ? health_checker::outcome::ok
                   : r.outcome == 2 ? health_checker::outcome::fail_now
                                    : health_checker::outcome::fail;
          if (auto f = st.checker->on_result(r.id, x, r.rt_ms, now))
            write_flip(self, *f);
        }
        st.hc_due.reset();
        arm_health(self);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        st.probing = false;
        log().warn("raft {} health checks failed: {}", st.settings.self,
                   self->system().render(err));
        st.checker->cancel_running(actor_now_ms(self));
        st.hc_due.reset();
        self->delayed_send(self, milliseconds(st.settings.check_interval_min_ms), hc_tick_atom_v,
                           ++st.hc_generation);
      });
}

/// Starts handing leadership to `target` ("": the most up-to-date voter, listed ones first);
/// `done` is called once this node stepped down (true) or after handover_wait_ms (false).
/// Returns why it cannot start ("" when started).
std::string hand_over(raft_actor_t* self, raft::node_id target, const std::string& why,
                      std::function<void(bool, const raft::node_id&)> done) {
  auto& st = self->state;
  auto& core = *st.core;
  if (st.stopped)
    return "Raft stopped on this node after a disk failure";
  if (core.role() != raft::role::leader)
    return "node " + st.settings.self + " is not the Raft leader ("
           + (core.leader().empty() ? std::string{"none known"} : "ask " + core.leader()) + ")";
  if (st.handover)
    return "a leadership transfer to " + st.handover->target + " is in progress";
  if (target.empty())
    target = raft::membership_planner::transfer_target(membership_view(self), st.planner.desired());
  if (target.empty())
    return "no other voter to hand leadership to";
  auto now = actor_now_ms(self);
  auto r = core.transfer_leadership(target, now);
  if (!r.refused.empty()) {
    carry(self, std::move(r.fx));
    return "cannot hand leadership to " + target + ": " + r.refused;
  }
  const auto* pr = core.progress_of(target);
  log().info("raft {} hands leadership to {} {} (term {}, its match index {} of {})",
             st.settings.self, target, why, core.term(), pr ? pr->match : 0, core.last_index());
  st.handover = raft_state::handover_t{std::move(done), target, now,
                                       now + st.settings.handover_wait_ms};
  carry(self, std::move(r.fx));
  arm_timer(self, now + st.settings.handover_wait_ms);
  return {};
}

raft_actor::behavior_type raft_behavior(raft_actor_t* self, raft_settings settings,
                                        std::shared_ptr<raft::raft_log_store> store,
                                        std::shared_ptr<raft::persisted_state> state) {
  auto& st = self->state;
  st.settings = std::move(settings);
  install_default_handlers(self, "raft");
  if (state->snap && state->snap->data) {
    if (!st.store.restore(*state->snap->data))
      log().error("raft {} cannot read its snapshot at {}", st.settings.self,
                  state->snap->meta.index);
    else
      log().info("raft {} loaded {} persistent instances from its snapshot at {}",
                 st.settings.self, st.store.instance_count(), state->snap->meta.index);
  }
  std::random_device rd;
  auto seed = (std::uint64_t{rd()} << 32) ^ rd();
  st.core = std::make_unique<raft_core>(st.settings.self, st.settings.core, std::move(*state), seed);
  st.disk = self->spawn<caf::detached>(disk_behavior, std::move(store),
                                       caf::actor_cast<raft_actor>(self));
  self->link_to(st.disk);
  if (st.settings.check_interval_min_ms > 0) {
    health_checker_config hc;
    hc.interval_min_ms = st.settings.check_interval_min_ms;
    hc.interval_max_ms = st.settings.check_interval_max_ms;
    hc.timeout_ms = st.settings.check_timeout_ms;
    hc.in_flight_max = st.settings.checks_in_flight_max;
    st.checker = std::make_unique<health_checker>(hc);
    st.prober = self->spawn<caf::detached>(prober_behavior);
    self->link_to(st.prober);
    self->delayed_send(self, milliseconds(hc.interval_min_ms), hc_tick_atom_v, st.hc_generation);
  }
  st.planner = raft::membership_planner{st.settings.membership};
  st.planner.set_desired(st.settings.members, st.settings.core.members_max);
  for (auto& line : st.planner.take_log())
    log().warn("raft {} {}", st.settings.self, line);
  st.ready_deadline_ms = actor_now_ms(self) + st.settings.ready_wait_ms;
  if (st.core->membership().voters.empty() && st.core->membership().learners.empty())
    log().info("raft {} starts without a configuration: it waits for the leader to add it",
               st.settings.self);
  carry(self, st.core->start(actor_now_ms(self)));
  arm_timer(self, st.ready_deadline_ms);
  return {
    [=](start_atom, gateway_actor gateway, distro_actor distro) {
      if (!local_only(self, "raft", "start"))
        return;
      auto& st = self->state;
      st.gateway = std::move(gateway);
      st.distro = std::move(distro);
      self->send(st.distro, start_atom_v, caf::actor_cast<raft_port_actor>(self));
      feed_all(self);
      send_role(self);
    },
    [=](raft_atom, const envelope& env) {
      if (!local_only(self, "raft", "raft"))
        return;
      auto& st = self->state;
      v1::RaftMessage msg;
      if (st.stopped || !unpack(env, msg))
        return;
      std::string error;
      auto m = raft::from_wire(msg, error);
      if (!m) {
        log().warn("raft {} dropped a malformed message: {}", st.settings.self, error);
        return;
      }
      auto fx = st.core->step(*m, actor_now_ms(self));
      note_leader_commit(self, *m);
      carry(self, std::move(fx));
      drive_membership(self);
    },
    [=](reload_atom, const std::vector<std::string>& members) {
      if (!local_only(self, "raft", "reload"))
        return;
      auto& st = self->state;
      auto before = st.planner.desired();
      if (!st.planner.set_desired(members, st.settings.core.members_max)) {
        for (auto& line : st.planner.take_log())
          log().warn("raft {} {}", st.settings.self, line);
        return;
      }
      if (st.planner.desired() != before)
        log().info("raft {} follows the new member list ({} members){}", st.settings.self,
                   st.planner.desired().size(),
                   st.core->role() == raft::role::leader ? "" : " once it leads");
      st.last_refusal.clear();
      drive_membership(self);
    },
    [=](bye_atom) -> caf::result<bool> {
      if (!local_only(self, "raft", "bye"))
        return false;
      auto& st = self->state;
      if (st.stopped || st.core->role() != raft::role::leader)
        return true;
      if (st.handover)
        return true; // one handover at a time; the supervisor asks once
      auto rp = self->make_response_promise<bool>();
      auto refused = hand_over(self, "", "before stopping",
                               [rp](bool, const raft::node_id&) mutable { rp.deliver(true); });
      if (!refused.empty()) {
        log().warn("raft {} stops as leader: {}", st.settings.self, refused);
        rp.deliver(true);
      }
      return rp;
    },
    [=](pwrite_atom, const envelope& op) -> caf::result<envelope> {
      if (!local_only(self, "raft", "pwrite"))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request",
                               "not accepted from another process"));
      auto& st = self->state;
      if (holds<v1::RaftTransferRequest>(op)) {
        v1::RaftTransferRequest req;
        if (!unpack(op, req))
          return pack(make_error(v1::Error::INVALID_ARGUMENT, "request",
                                 "malformed RaftTransferRequest"));
        auto rp = self->make_response_promise<envelope>();
        auto wait_ms = st.settings.handover_wait_ms;
        auto done = [=](bool ok, const raft::node_id& target) mutable {
          auto& st = self->state;
          if (!ok) {
            rp.deliver(unavailable("the leadership transfer to " + target
                                   + " did not finish within " + std::to_string(wait_ms) + " ms; "
                                   + st.settings.self + " is still leader"));
            return;
          }
          v1::Ack ack;
          ack.set_detail("leadership moved from " + st.settings.self + " to " + target);
          rp.deliver(pack(ack));
        };
        auto refused = hand_over(self, req.target(), "on request", done);
        if (!refused.empty())
          rp.deliver(pack(make_error(v1::Error::INVALID_ARGUMENT, "target", refused)));
        return rp;
      }
      if (st.stopped)
        return unavailable("Raft stopped on this node after a disk failure");
      auto rp = self->make_response_promise<envelope>();
      submit(self, op, [rp](envelope reply) mutable { rp.deliver(std::move(reply)); },
             actor_now_ms(self) + st.settings.write_timeout_ms);
      return rp;
    },
    [=](rstatus_atom) -> envelope {
      if (!local_only(self, "raft", "rstatus"))
        return unavailable("not accepted from another process");
      return status(self);
    },
    [=](persisted_atom, std::uint64_t id, const std::string& error) {
      if (!local_only(self, "raft", "persisted"))
        return;
      auto& st = self->state;
      if (!error.empty()) {
        log().error("raft {} stops: the disk failed: {}; restart the node once the disk is "
                    "fixed (it replays what is on disk)",
                    st.settings.self, error);
        st.stopped = true;
        return;
      }
      if (!st.stopped)
        carry(self, st.core->persisted(id, actor_now_ms(self)));
    },
    [=](view_atom, std::vector<std::string>& routing) {
      if (!local_only(self, "raft", "view"))
        return;
      auto& st = self->state;
      if (routing != st.routing) {
        st.routing = std::move(routing);
        st.targets_dirty = true;
        refresh_targets(self);
        st.hc_due.reset();
        arm_health(self);
      }
    },
    [=](hc_tick_atom, std::uint64_t gen) {
      if (!local_only(self, "raft", "hc_tick"))
        return;
      auto& st = self->state;
      if (gen != st.hc_generation)
        return;
      st.hc_due.reset();
      run_health(self);
      // Without targets nothing is armed: look again later (new instances, moved routing).
      if (!st.probing && !st.hc_due)
        self->delayed_send(self, milliseconds(st.settings.check_interval_max_ms), hc_tick_atom_v,
                           ++st.hc_generation);
    },
    [=](tick_atom, std::uint64_t gen) {
      if (!local_only(self, "raft", "tick"))
        return;
      auto& st = self->state;
      if (gen != st.timer_generation)
        return;
      st.timer_due.reset();
      expire(self);
      if (!st.stopped) {
        carry(self, st.core->tick(actor_now_ms(self)));
        if (st.core->role() != raft::role::leader && !st.core->leader().empty()
            && !st.waiting.empty())
          dispatch_waiting(self);
        drive_membership(self);
      }
      if (st.handover && actor_now_ms(self) >= st.handover->deadline_ms) {
        log().warn("raft {} is still leader: the transfer to {} did not finish within {} ms",
                   st.settings.self, st.handover->target, st.settings.handover_wait_ms);
        auto done = std::move(st.handover->done);
        auto target = st.handover->target;
        st.handover.reset();
        done(false, target);
      }
      check_ready(self);
      // Writes wait at most write_timeout_ms even while the core sleeps longer.
      if (!st.pending.empty() || !st.waiting.empty())
        arm_timer(self, actor_now_ms(self) + st.settings.core.heartbeat_interval_ms);
    },
  };
}

} // namespace

raft_settings make_raft_settings(const node_config& cfg) {
  raft_settings result;
  result.self = cfg.listen.to_string();
  result.core.election_timeout_ms = cfg.raft.election_timeout_ms;
  result.core.heartbeat_interval_ms = cfg.raft.heartbeat_interval_ms;
  result.core.snapshot_threshold_entries =
    static_cast<std::size_t>(cfg.raft.snapshot_threshold_entries);
  result.core.snapshot_trailing_entries =
    static_cast<std::size_t>(cfg.raft.snapshot_trailing_entries);
  result.write_timeout_ms = cfg.raft.write_timeout_ms;
  result.data_dir = cfg.data_dir;
  for (auto& m : cfg.members)
    result.members.push_back(m.to_string());
  result.handover_wait_ms =
    std::min<std::int64_t>(cfg.raft.election_timeout_ms * defaults::raft_handover_wait_election_timeouts,
                           defaults::raft_handover_wait_max_ms);
  result.ready_wait_ms = cfg.raft.election_timeout_ms * defaults::raft_ready_wait_election_timeouts;
  result.check_interval_min_ms = cfg.health_check.interval_min_ms;
  result.check_interval_max_ms = cfg.health_check.interval_max_ms;
  result.check_timeout_ms = cfg.health_check.timeout_ms;
  result.checks_in_flight_max = static_cast<std::size_t>(cfg.health_check.in_flight_max);
  return result;
}

raft::raft_log_store::open_result open_raft_store(const std::string& dir,
                                                  const std::vector<raft::node_id>& voters,
                                                  bool join) {
  auto result = raft::raft_log_store::open(dir);
  if (!result.error.empty())
    return result;
  const auto& s = result.state;
  bool pristine = s.hard.term == 0 && s.hard.vote.empty() && !s.snap && s.entries.empty();
  if (!pristine)
    return result;
  if (join) {
    result.warnings.push_back("new Raft log in " + dir
                              + " without a configuration (joining): the leader adds this node");
    return result;
  }
  auto boot = raft::bootstrap_state(voters);
  raft_core::persist_request w;
  w.id = 1;
  w.hard = boot.hard;
  w.entries = boot.entries;
  auto err = result.store->write(w);
  if (err.empty())
    err = result.store->sync();
  if (!err.empty()) {
    result.store.reset();
    result.error = "cannot bootstrap " + dir + ": " + err;
    return result;
  }
  result.state = std::move(boot);
  result.warnings.push_back("bootstrapped a new Raft log in " + dir + " with "
                            + raft::to_string(raft::configuration{
                              std::set<raft::node_id>(voters.begin(), voters.end()), {}}));
  return result;
}

raft_actor spawn_raft_actor(caf::actor_system& sys, raft_settings settings,
                            raft::raft_log_store::open_result opened) {
  std::shared_ptr<raft::raft_log_store> store{std::move(opened.store)};
  auto state = std::make_shared<raft::persisted_state>(std::move(opened.state));
  return sys.spawn(raft_behavior, std::move(settings), std::move(store), std::move(state));
}

} // namespace registry
