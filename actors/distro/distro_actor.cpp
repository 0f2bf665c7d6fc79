#include "actors/distro/distro_actor.hpp"

#include <cstdio>
#include <random>

#include <caf/all.hpp>

#include "actors/common/clock.hpp"
#include "actors/common/delegate.hpp"
#include "actors/common/handlers.hpp"
#include "actors/common/log.hpp"
#include "actors/distro/distro_protocol.hpp"
#include "actors/distro/distro_wire.hpp"
#include "actors/member/member_identity.hpp"
#include "actors/member/peer_auth.hpp"
#include "actors/member/member_tracker.hpp"
#include "actors/member/peer_actor.hpp"
#include "messages/convert.hpp"
#include "messages/model_inspect.hpp"
#include "messages/type_ids.hpp"

namespace registry {

namespace {

using namespace wire;

struct distro_actor_state {
  static inline const char* name = "distro";

  std::shared_ptr<const node_config> cfg;
  /// Spawns one member's peer actor.
  peer_spawner spawn_peer;
  std::string self_address;
  /// This node's id for this run, announced in the peer handshake.
  std::string node_id;
  /// Which node answers at each listed address (member names are the nodes' own listen addresses).
  std::unique_ptr<member_identity> identity;
  std::unique_ptr<member_tracker> tracker;
  std::unique_ptr<distro_protocol> protocol;
  /// One peer actor per listed address (the spelling it dials).
  std::map<std::string, peer_actor> peers;
  /// The current member list (config, then reloads).
  std::vector<host_port> members;
  gateway_actor gateway;
  /// This node's raft actor (none without data_dir): Raft messages from members go there.
  raft_port_actor raft;
  /// The handle authenticated peers get: it answers only the node-to-node protocol.
  peer_port_actor peer_port;
  /// Handshakes waiting for the dialer's PeerAuth, by this node's nonce.
  struct pending_auth {
    caf::node_id node;
    std::string dialer_nonce;
    std::string dialer_address;
    time_ms expires_ms = 0;
  };
  std::map<std::string, pending_auth> pending_auths;
  /// Processes that proved the cluster secret (or any peer in an unauthenticated cluster), with the
  /// time they last did.
  std::map<caf::node_id, time_ms> trusted_nodes;
  /// The snapshot is applied to every index (the gateway answered the barrier after the last
  /// replica of the load); until then the node does not report ready.
  bool applied = false;
  std::uint64_t barrier_generation = 0;
  std::uint64_t timer_generation = 0;
  /// What peer data is checked against (this node's limits), and the clients dropped from it.
  distro::peer_rules peer_rules;
  distro::drop_counter drops;
  std::optional<time_ms> timer_due;
  /// Distro traffic per peer (bounded: members_max peers), handed to the gateway at most once per
  /// distro_counters_interval_ms.
  std::map<std::string, v1::DistroPeerCounters> counters;
  bool counters_due = false;
};

using distro_actor_t = distro_actor::stateful_base<distro_actor_state>;

/// A fresh id for this run of the node: 64 random bits in hex.
std::string make_node_id() {
  std::random_device rd;
  std::uint64_t x = (std::uint64_t{rd()} << 32) ^ rd() ^ static_cast<std::uint64_t>(system_now_ms());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

std::vector<std::string> addresses(const std::vector<host_port>& xs) {
  std::vector<std::string> result;
  for (auto& x : xs)
    result.push_back(x.to_string());
  return result;
}

void carry(distro_actor_t* self, distro_protocol::effects fx);

/// The peer actor that reaches member `name` (a node's listen address); invalid when none.
peer_actor peer_for(distro_actor_t* self, const std::string& name) {
  auto& st = self->state;
  auto listed = st.identity ? st.identity->listed_of(name) : std::nullopt;
  auto i = st.peers.find(listed ? *listed : name);
  return i == st.peers.end() ? peer_actor{} : i->second;
}

/// The tracker name of the member a peer actor dials; nothing for a conflict.
std::optional<std::string> member_name(distro_actor_t* self, const std::string& listed) {
  return self->state.identity->name_of(listed);
}

void arm_timer(distro_actor_t* self, std::optional<time_ms> due) {
  auto& st = self->state;
  auto tracker_due = st.tracker->next_wake();
  if (!due || (tracker_due && *tracker_due < *due))
    due = tracker_due;
  if (!due)
    return;
  auto now = actor_now_ms(self);
  if (st.timer_due && *st.timer_due <= *due && *st.timer_due >= now)
    return; // an earlier timer is armed; tick() re-arms for later work
  st.timer_due = *due;
  auto gen = ++st.timer_generation;
  self->delayed_send(self, std::chrono::milliseconds(std::max<time_ms>(0, *due - now)),
                     tick_atom_v, gen);
}

void send_view(distro_actor_t* self) {
  auto& st = self->state;
  if (!st.gateway)
    return;
  std::vector<std::string> member_addresses, member_states, member_nodes, member_problems;
  for (auto& row : st.identity->rows()) {
    member_addresses.push_back(row.listed);
    auto name = st.identity->name_of(row.listed);
    auto state = name ? st.tracker->state(*name) : std::nullopt;
    if (row.listed == st.self_address)
      member_states.push_back("SELF");
    else if (!row.problem.empty())
      member_states.push_back("CONFLICT");
    else
      member_states.push_back(state ? to_string(*state) : "DOWN");
    member_nodes.push_back(row.listed == st.self_address ? st.self_address : row.node);
    member_problems.push_back(row.problem);
  }
  if (st.raft)
    self->send(st.raft, view_atom_v, st.protocol->routing());
  self->send(st.gateway, view_atom_v, st.protocol->routing(), st.protocol->ready() && st.applied,
             std::move(member_addresses), std::move(member_states), std::move(member_nodes),
             std::move(member_problems));
}

void dial_due(distro_actor_t* self) {
  auto& st = self->state;
  for (auto& member : st.tracker->due_reconnects(actor_now_ms(self))) {
    auto listed = st.identity->listed_of(member);
    auto i = st.peers.find(listed ? *listed : member);
    if (i != st.peers.end())
      self->send(i->second, dial_atom_v);
  }
}

/// Passes a membership change on to the protocol and the gateway, and logs it.
void members_changed(distro_actor_t* self, const member_tracker::changes& ch) {
  auto& st = self->state;
  if (ch.empty())
    return;
  for (auto& t : ch.transitions) {
    if (!t.before)
      log().info("member {} added ({})", t.address, to_string(*t.after));
    else if (!t.after)
      log().info("member {} removed", t.address);
    else if (*t.after == member_state::up)
      log().info("member {} changed from {} to {}", t.address, to_string(*t.before),
                 to_string(*t.after));
    else
      log().warn("member {} changed from {} to {}", t.address, to_string(*t.before),
                 to_string(*t.after));
  }
  if (ch.members_refused > 0)
    log().error("distro refused {} members over the limit {}", ch.members_refused,
                defaults::members_max);
  carry(self, st.protocol->on_members(st.tracker->view(), actor_now_ms(self)));
  send_view(self);
}

void log_events(distro_actor_t* self, const distro_protocol::events& ev) {
  if (!ev.any())
    return;
  auto& name = self->state.self_address;
  if (ev.batches_sent > 0)
    log().debug("distro {} sent {} sync batches with {} clients{}", name, ev.batches_sent,
                ev.clients_sent,
                ev.batches_retried > 0 ? " (" + std::to_string(ev.batches_retried) + " retried)"
                                       : std::string{});
  if (ev.batches_failed > 0)
    log().warn("distro {} failed {} sync batches; retrying", name, ev.batches_failed);
  if (ev.verify_failed > 0)
    log().debug("distro {} failed {} verify batches", name, ev.verify_failed);
  if (ev.verify_mismatches > 0)
    log().info("distro {} found {} clients missing or stale at peers; syncing them", name,
               ev.verify_mismatches);
  if (ev.verify_missing > 0)
    log().info("distro {} reported {} clients missing or stale to a peer", name,
               ev.verify_missing);
  if (ev.copies_expired > 0)
    log().warn("distro {} expired {} copies not renewed by their owner", name, ev.copies_expired);
  if (ev.copies_refused > 0)
    log().error("distro {} refused {} copies over the client limit", name, ev.copies_refused);
  if (ev.conflicts > 0)
    log().info("distro {} ignored {} copies of clients it is responsible for", name,
               ev.conflicts);
  if (ev.stale_sessions > 0)
    log().info("distro {} deleted {} sessions of its previous run", name, ev.stale_sessions);
  if (ev.taken_over > 0 || ev.handed_over > 0)
    log().info("distro {} took over {} and handed over {} heartbeat clients", name,
               ev.taken_over, ev.handed_over);
  if (ev.snapshot_failures > 0)
    log().info("distro {} got no snapshot from {} peers (not ready or unreachable); retrying", name,
               ev.snapshot_failures);
  if (ev.unknown_sources > 0)
    log().warn("distro {} ignored {} messages from non-members", name, ev.unknown_sources);
  if (ev.malformed > 0)
    log().warn("distro {} ignored {} verify batches with inconsistent buckets", name, ev.malformed);
  if (ev.snapshot_chunks > 0 && !ev.snapshot_loaded)
    log().debug("distro {} applied {} snapshot chunks", name, ev.snapshot_chunks);
  if (ev.snapshot_loaded)
    log().info("distro {} loaded a snapshot of {} clients in {} chunks from {} in {} ms", name,
               ev.snapshot_loaded->clients, ev.snapshot_loaded->chunks,
               ev.snapshot_loaded->source, ev.snapshot_loaded->duration_ms);
  if (ev.ready_alone)
    log().warn("distro {} became ready alone: no peer could give a snapshot", name);
}

/// Counts the clients left out of a message from `peer` (they broke a rule) and logs them, at most
/// one line per peer per peer_drop_log_interval_ms.
void report_drops(distro_actor_t* self, const std::string& peer, const char* what,
                  const std::vector<distro::dropped_client>& dropped) {
  auto& st = self->state;
  auto now = actor_now_ms(self);
  for (auto& d : dropped) {
    auto line = st.drops.count(peer, now);
    if (!line)
      continue;
    log().warn("distro {} dropped client '{}' of a {} from {}: {}: {} ({} dropped from {} since the "
               "last report, {} from it and {} from all peers so far)",
               st.self_address, bounded(d.id), what, bounded(peer), d.error.field,
               bounded(d.error.message, 4 * defaults::log_name_chars_max), line->drops_since,
               bounded(peer), line->peer_total, st.drops.total());
  }
}

/// The protocol is loaded: wait until the gateway applied every replica handed to it so far, then
/// report ready. A failed barrier (a child actor too slow) is tried again.
void await_applied(distro_actor_t* self, time_ms since_ms) {
  auto& st = self->state;
  auto gen = ++st.barrier_generation;
  self->request(st.gateway, std::chrono::milliseconds(st.cfg->distro.snapshot_timeout_ms),
                barrier_atom_v)
    .then(
      [=](bool ok) {
        auto& st = self->state;
        if (gen != st.barrier_generation || !st.protocol->ready())
          return;
        if (!ok) {
          await_applied(self, since_ms);
          return;
        }
        st.applied = true;
        log().info("distro {} is ready: the data is applied to every index ({} ms)",
                   st.self_address, actor_now_ms(self) - since_ms);
        send_view(self);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        if (gen != st.barrier_generation)
          return;
        log().warn("distro {} waits for its indexes: {}", st.self_address,
                   self->system().render(err));
        await_applied(self, since_ms);
      });
}

/// The counters of `peer` (nullptr when the map is full), and a hand-over to the gateway scheduled.
v1::DistroPeerCounters* counters_of(distro_actor_t* self, const std::string& peer) {
  auto& st = self->state;
  auto i = st.counters.find(peer);
  if (i == st.counters.end()) {
    if (st.counters.size() >= defaults::members_max)
      return nullptr;
    i = st.counters.emplace(peer, v1::DistroPeerCounters{}).first;
    i->second.set_peer(peer);
  }
  if (!st.counters_due) {
    st.counters_due = true;
    self->delayed_send(self, std::chrono::milliseconds(defaults::distro_counters_interval_ms),
                       counters_atom_v);
  }
  return &i->second;
}

enum class counter {
  syncs_ok,
  syncs_failed,
  verifies_ok,
  verifies_failed,
  repairs,
  syncs_received,
  verifies_received
};

void count(distro_actor_t* self, const std::string& peer, counter what, std::uint64_t n = 1) {
  auto* c = counters_of(self, peer);
  if (c == nullptr || n == 0)
    return;
  switch (what) {
    case counter::syncs_ok:
      return c->set_syncs_ok(c->syncs_ok() + n);
    case counter::syncs_failed:
      return c->set_syncs_failed(c->syncs_failed() + n);
    case counter::verifies_ok:
      return c->set_verifies_ok(c->verifies_ok() + n);
    case counter::verifies_failed:
      return c->set_verifies_failed(c->verifies_failed() + n);
    case counter::repairs:
      return c->set_repairs(c->repairs() + n);
    case counter::syncs_received:
      return c->set_syncs_received(c->syncs_received() + n);
    case counter::verifies_received:
      return c->set_verifies_received(c->verifies_received() + n);
  }
}

void hand_over_counters(distro_actor_t* self) {
  auto& st = self->state;
  st.counters_due = false;
  if (!st.gateway)
    return;
  v1::DistroCounters msg;
  for (auto& [peer, c] : st.counters)
    *msg.add_peers() = c;
  self->send(st.gateway, counters_atom_v, pack(msg));
}

void carry(distro_actor_t* self, distro_protocol::effects fx) {
  auto& st = self->state;
  // 1. Local ops first, in order (they reach the gateway before any reply we send afterwards);
  //    several in one message, which the gateway applies in bulk (a snapshot chunk, a SyncBatch).
  if (fx.apply.size() > 1) {
    auto ops = std::make_shared<replica_ops>();
    ops->ops = std::move(fx.apply);
    self->send(st.gateway, replica_atom_v, std::move(ops));
  } else {
    for (auto& op : fx.apply)
      self->send(st.gateway, replica_atom_v, static_cast<std::int32_t>(op.what), op.id,
                 op.revision, std::move(op.services), op.local, std::move(op.beats));
  }
  // 2. Requests through the peer actors; they report results back.
  auto peer_of = [&](const std::string& name) { return peer_for(self, name); };
  auto now = actor_now_ms(self);
  distro::sync_encoder encoder; // a client synced to several peers is encoded once
  for (auto& s : fx.syncs) {
    if (auto p = peer_of(s.peer)) {
      self->send(p, sync_atom_v, s.batch_id,
                 envelope{v1::SyncBatch::descriptor()->full_name(), encoder.encode(s.batch)});
    } else {
      count(self, s.peer, counter::syncs_failed);
      carry(self, st.protocol->on_sync_result(s.peer, s.batch_id, false, now));
    }
  }
  for (auto& v : fx.verifies) {
    if (auto p = peer_of(v.peer)) {
      self->send(p, verify_atom_v, v.verify_id, pack(distro::to_wire(v.batch)));
    } else {
      count(self, v.peer, counter::verifies_failed);
      carry(self, st.protocol->on_verify_result(v.peer, v.verify_id, std::nullopt, now));
    }
  }
  for (auto& r : fx.snapshot_requests) {
    if (auto p = peer_of(r.peer))
      self->send(p, snapshot_atom_v, r.request_id, pack(distro::to_wire(r.request)));
    else
      carry(self, st.protocol->on_snapshot_result(r.peer, r.request_id,
                                                  distro_protocol::snapshot_status::failed,
                                                  nullptr, now));
  }
  if (fx.ready_changed) {
    st.applied = false;
    if (*fx.ready_changed)
      await_applied(self, actor_now_ms(self));
    else
      log().info("distro {} is not ready", st.self_address);
  }
  if (fx.ready_changed || fx.routing_changed)
    send_view(self);
  log_events(self, fx.log);
  arm_timer(self, fx.wake_at);
}

void spawn_peers(distro_actor_t* self, const std::vector<host_port>& members) {
  auto& st = self->state;
  std::set<std::string> wanted;
  for (auto& m : members) {
    auto name = m.to_string();
    if (name == st.self_address)
      continue;
    wanted.insert(name);
    if (st.peers.count(name))
      continue;
    peer_settings ps;
    ps.member = m;
    ps.self_address = st.self_address;
    ps.self_node_id = st.node_id;
    ps.cluster_secret = st.cfg->cluster_secret;
    ps.cluster_name = st.cfg->cluster_name;
    ps.connect_timeout_ms = defaults::connect_timeout_ms;
    ps.request_timeout_ms = defaults::request_timeout_ms;
    ps.sync_timeout_ms = st.cfg->distro.sync_timeout_ms;
    ps.verify_timeout_ms = st.cfg->distro.verify_timeout_ms;
    ps.snapshot_timeout_ms = st.cfg->distro.snapshot_timeout_ms;
    ps.probe_interval_ms = defaults::member_check_interval_ms;
    ps.write_timeout_ms = st.cfg->raft.write_timeout_ms;
    auto peer = st.spawn_peer(self->system(), ps, caf::actor_cast<distro_actor>(self));
    self->monitor(peer);
    st.peers.emplace(name, peer);
  }
  for (auto i = st.peers.begin(); i != st.peers.end();) {
    if (wanted.count(i->first)) {
      ++i;
      continue;
    }
    self->send_exit(i->second, caf::exit_reason::user_shutdown);
    i = st.peers.erase(i);
  }
}

/// True when the current message comes from a process that proved the cluster secret.
bool from_trusted_peer(distro_actor_t* self, const char* what) {
  const auto& sender = self->current_sender();
  if (sender && self->state.trusted_nodes.count(sender->node()))
    return true;
  log_foreign("distro", what, sender_text(self));
  return false;
}

envelope untrusted_reply() {
  return pack(make_error(v1::Error::INVALID_ARGUMENT, "peer",
                         "the sender is not an authenticated member of this cluster"));
}

void trust(distro_actor_t* self, const caf::node_id& node) {
  auto& st = self->state;
  auto now = actor_now_ms(self);
  st.trusted_nodes[node] = now;
  // Bounded: restarted members bring new processes; forget the longest unseen ones.
  while (st.trusted_nodes.size() > defaults::trusted_peer_processes_max) {
    auto oldest = st.trusted_nodes.begin();
    for (auto i = st.trusted_nodes.begin(); i != st.trusted_nodes.end(); ++i)
      if (i->second < oldest->second)
        oldest = i;
    st.trusted_nodes.erase(oldest);
  }
}

v1::PeerWelcome make_welcome(distro_actor_t* self) {
  auto& st = self->state;
  v1::PeerWelcome welcome;
  welcome.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  welcome.set_cluster_name(st.cfg->cluster_name);
  welcome.set_address(st.self_address);
  welcome.set_node_id(st.node_id);
  return welcome;
}

/// The peer handshake (see actors/member/peer_auth.hpp): PeerHello, then PeerAuth when this node
/// has a cluster secret. Refuses another cluster, protocol version or secret.
caf::result<envelope, caf::actor> on_peer_handshake(distro_actor_t* self, const envelope& env) {
  auto& st = self->state;
  const auto& sender = self->current_sender();
  std::string claimed;
  auto refuse = [&](const std::string& why) {
    log().warn("distro {} refused peer {}: {}", st.self_address,
               claimed.empty() ? sender_text(self) : claimed.substr(0, 256), why);
    return caf::result<envelope, caf::actor>{
      pack(make_error(v1::Error::INVALID_ARGUMENT, "peer", why)), caf::actor{}};
  };
  if (!sender) {
    // CAF could not attribute the message to a process: the connection it came over is not (or no
    // longer) mapped to a node. The reply cannot reach the dialler; name who it claims to be.
    v1::PeerHello claim;
    if (unpack(env, claim))
      claimed = claim.address() + " (id " + claim.node_id().substr(0, 64) + ")";
    return refuse("anonymous handshake: the connection it came over is not attributed to a node");
  }
  auto now = actor_now_ms(self);
  for (auto i = st.pending_auths.begin(); i != st.pending_auths.end();)
    i = i->second.expires_ms < now ? st.pending_auths.erase(i) : std::next(i);
  const auto& secret = st.cfg->cluster_secret;
  if (holds<v1::PeerAuth>(env)) {
    v1::PeerAuth auth;
    if (!unpack(env, auth))
      return refuse("malformed PeerAuth");
    auto i = st.pending_auths.find(auth.nonce());
    if (i == st.pending_auths.end() || i->second.node != sender->node())
      return refuse("PeerAuth for no open handshake");
    auto pending = i->second;
    st.pending_auths.erase(i);
    claimed = pending.dialer_address;
    auto expected = peer_auth::hello_proof(secret, auth.nonce(), pending.dialer_nonce,
                                           pending.dialer_address, st.self_address);
    if (!peer_auth::same_proof(expected, auth.proof()))
      return refuse("wrong cluster secret");
    trust(self, sender->node());
    log().info("distro {} authenticated peer {}", st.self_address, claimed);
    return {pack(make_welcome(self)), caf::actor_cast<caf::actor>(st.peer_port)};
  }
  v1::PeerHello hello;
  if (!unpack(env, hello))
    return refuse("malformed PeerHello");
  claimed = hello.address();
  if (hello.protocol_version() != v1::PROTOCOL_VERSION_CURRENT)
    return refuse("protocol version " + std::to_string(hello.protocol_version())
                  + " is not supported");
  if (hello.cluster_name() != st.cfg->cluster_name)
    return refuse("cluster '" + hello.cluster_name().substr(0, 256) + "' is not '"
                  + st.cfg->cluster_name + "'");
  auto welcome = make_welcome(self);
  // An unauthenticated cluster, or a probe (no nonce) of a process that proved itself already: no
  // challenge. A hello with a nonce is a dial: the dialler authenticates this node too, so it gets
  // the challenge even from a trusted process (one that lost its connection and dials again).
  bool probe = hello.nonce().empty() && st.trusted_nodes.count(sender->node()) > 0;
  if (secret.empty() || probe) {
    trust(self, sender->node());
    return {pack(welcome), caf::actor_cast<caf::actor>(st.peer_port)};
  }
  if (hello.nonce().size() != peer_auth::nonce_bytes)
    return refuse("PeerHello without a handshake nonce");
  if (st.pending_auths.size() >= defaults::pending_peer_handshakes_max)
    return refuse("too many handshakes in progress");
  auto nonce = peer_auth::make_nonce();
  welcome.set_nonce(nonce);
  welcome.set_proof(peer_auth::welcome_proof(secret, hello.nonce(), nonce, st.self_address,
                                             hello.address()));
  st.pending_auths.emplace(nonce, distro_actor_state::pending_auth{
                                    sender->node(), hello.nonce(), hello.address(),
                                    now + defaults::peer_handshake_timeout_ms});
  return {pack(welcome), caf::actor{}};
}

/// A local client changed (empty services and no `base_seq`: it is gone). `seq` numbers the
/// announcements of the sending client actor; with `base_seq`, `services` holds only the services
/// changed since that announcement.
void on_local_change(distro_actor_t* self, const client_id& id, client_services& services,
                     client_beats& beats, std::uint64_t seq,
                     std::optional<std::uint64_t> base_seq) {
  auto& st = self->state;
  if (!local_only(self, "distro", "sync") || !st.protocol)
    return;
  distro_protocol::local_change change;
  change.id = id;
  change.deleted = services.empty() && !base_seq;
  change.services = std::move(services);
  if (!change.deleted)
    change.beats = std::move(beats);
  const auto& sender = self->current_sender();
  change.announcer = sender ? sender->id() : 0;
  change.seq = seq;
  change.base_seq = base_seq;
  auto fx = st.protocol->on_local_change(std::move(change), actor_now_ms(self));
  if (!fx.announce_whole.empty() && sender) {
    // The changes did not follow what Distro holds of the client: the actor sends it whole.
    log().debug("distro asks client {} to announce itself whole", bounded(id));
    self->send(caf::actor_cast<client_actor>(sender), sync_atom_v);
  }
  carry(self, std::move(fx));
}

/// The PEER PORT: the handle authenticated peers talk to. It lists only the node-to-node protocol
/// and hands each request to the distro actor, which checks that the sending process is trusted.
peer_port_actor::behavior_type peer_port_behavior(peer_port_actor::pointer self,
                                                  distro_actor distro) {
  install_default_handlers(self, "peer port");
  self->monitor(distro);
  self->set_down_handler([=](caf::down_msg& dm) {
    if (trusted_down(self, dm))
      self->quit(dm.reason);
  });
  return {
    [=](peer_atom atom, const envelope& env) { return self->delegate(distro, atom, env); },
    [=](sync_atom atom, const envelope& env) { return delegate_envelope(self, distro, atom, env); },
    [=](verify_atom atom, const envelope& env) {
      return delegate_envelope(self, distro, atom, env);
    },
    [=](snapshot_atom atom, const envelope& env) {
      return delegate_envelope(self, distro, atom, env);
    },
    [=](forward_atom atom, const envelope& env) {
      return delegate_envelope(self, distro, atom, env);
    },
    [=](raft_atom atom, const envelope& env) { self->delegate(distro, atom, env); },
    [=](pwrite_atom atom, const envelope& env) {
      return delegate_envelope(self, distro, atom, env);
    },
  };
}

distro_actor::behavior_type distro_behavior(distro_actor_t* self,
                                            std::shared_ptr<const node_config> cfg,
                                            peer_spawner spawn_peer) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.spawn_peer = std::move(spawn_peer);
  st.self_address = st.cfg->listen.to_string();
  st.node_id = make_node_id();
  install_default_handlers(self, "distro");
  st.peer_port = self->spawn(peer_port_behavior, caf::actor_cast<distro_actor>(self));
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (!trusted_down(self, dm))
      return;
    if (st.gateway && dm.source == st.gateway.address()) {
      self->quit(dm.reason);
      return;
    }
    // A failed peer actor is replaced; its member counts as disconnected meanwhile.
    for (auto& [name, peer] : st.peers) {
      if (peer.address() != dm.source)
        continue;
      auto member = name;
      log().error("distro restarted the peer actor of {} ({})", member,
                  self->system().render(dm.reason));
      st.peers.erase(member);
      spawn_peers(self, st.members);
      if (st.tracker) {
        if (auto name = member_name(self, member))
          members_changed(self, st.tracker->on_connection_lost(*name, actor_now_ms(self)));
        arm_timer(self, std::nullopt);
      }
      return;
    }
  });
  return {
    [=](start_atom, gateway_actor gateway) {
      if (!local_only(self, "distro", "start"))
        return;
      auto& st = self->state;
      st.gateway = gateway;
      self->monitor(gateway);
      auto now = actor_now_ms(self);
      if (st.cfg->cluster_secret.empty() && st.cfg->members.size() > 1)
        log().warn("distro {} runs an UNAUTHENTICATED cluster: any process that reaches port {} "
                   "can join it and change its data; set cluster_secret or cluster_secret_file",
                   st.self_address, st.cfg->listen.port);
      st.identity = std::make_unique<member_identity>(st.self_address,
                                                      addresses(st.cfg->members));
      st.tracker = std::make_unique<member_tracker>(st.self_address, st.identity->names(),
                                                    member_tracker_config{st.cfg->distro}, now);
      distro_config dc{st.cfg->distro};
      dc.clients_max = st.cfg->limits.clients_max + st.cfg->limits.replica_clients_max;
      dc.beat_unhealthy_timeout_ms = st.cfg->heartbeat.unhealthy_timeout_ms;
      st.protocol = std::make_unique<distro_protocol>(st.self_address, dc);
      st.peer_rules.instances_per_client_max = st.cfg->limits.instances_per_client_max;
      st.members = st.cfg->members;
      spawn_peers(self, st.members);
      carry(self, st.protocol->start(st.tracker->view(), now));
      send_view(self);
      dial_due(self);
      arm_timer(self, std::nullopt);
    },
    // A local client changed; the gateway's deletion of a failed client carries no beats.
    [=](sync_atom, const client_id& id, std::uint64_t seq, client_services& services) {
      client_beats none;
      on_local_change(self, id, services, none, seq, std::nullopt);
    },
    [=](sync_atom, const client_id& id, std::uint64_t seq, client_services& services,
        client_beats& beats) { on_local_change(self, id, services, beats, seq, std::nullopt); },
    [=](sync_atom, const client_id& id, std::uint64_t seq, std::uint64_t base_seq,
        client_services& changed, client_beats& beats) {
      on_local_change(self, id, changed, beats, seq, base_seq);
    },
    // The gateway forgot a client actor: tell it what Distro holds of that client now. Sent like
    // the ops of carry(), so it reaches the gateway after every op sent before.
    [=](resync_atom, const client_id& id) {
      if (!local_only(self, "distro", "resync"))
        return;
      auto& st = self->state;
      if (!st.gateway)
        return;
      distro_protocol::local_op op;
      op.id = id;
      op.what = distro_protocol::local_op::kind::remove;
      if (st.protocol)
        op = st.protocol->resync(id);
      self->send(st.gateway, resync_atom_v, static_cast<std::int32_t>(op.what), op.id,
                 op.revision, std::move(op.services), op.local, std::move(op.beats));
    },
    [=](reload_atom, const std::vector<std::string>& members) {
      if (!local_only(self, "distro", "reload"))
        return;
      auto& st = self->state;
      if (!st.tracker)
        return;
      std::vector<host_port> parsed;
      for (auto& m : members) {
        auto x = parse_host_port(m);
        if (auto* hp = std::get_if<host_port>(&x))
          parsed.push_back(*hp);
      }
      st.members = parsed;
      spawn_peers(self, parsed);
      st.identity->set_listed(addresses(parsed));
      members_changed(self, st.tracker->set_members(st.identity->names(), actor_now_ms(self)));
      dial_due(self);
      arm_timer(self, std::nullopt);
    },
    // -- from other nodes -------------------------------------------------------
    [=](peer_atom, const envelope& env) { return on_peer_handshake(self, env); },
    [=](sync_atom, const envelope& env) -> envelope {
      if (!from_trusted_peer(self, "a SyncBatch"))
        return untrusted_reply();
      auto& st = self->state;
      v1::SyncBatch msg;
      if (!st.protocol || !unpack(env, msg))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request", "malformed SyncBatch"));
      std::vector<distro::dropped_client> dropped;
      auto batch = distro::from_wire(msg, st.peer_rules, dropped);
      report_drops(self, msg.source(), "SyncBatch", dropped);
      if (st.tracker->state(msg.source())) // member names are the nodes' own addresses
        count(self, msg.source(), counter::syncs_received);
      carry(self, st.protocol->on_sync_batch(batch, actor_now_ms(self)));
      return pack(v1::Ack{});
    },
    [=](verify_atom, const envelope& env) -> envelope {
      if (!from_trusted_peer(self, "a VerifyBatch"))
        return untrusted_reply();
      auto& st = self->state;
      v1::VerifyBatch msg;
      if (!st.protocol || !unpack(env, msg))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request", "malformed VerifyBatch"));
      if (auto err = distro::check(msg)) {
        log().warn("distro refused a VerifyBatch from {}: {}: {}", bounded(msg.source()),
                   err->field, err->message);
        return pack(make_error(v1::Error::INVALID_ARGUMENT, err->field, err->message));
      }
      std::vector<distro::dropped_client> dropped;
      auto batch = distro::from_wire(msg, dropped);
      report_drops(self, msg.source(), "VerifyBatch", dropped);
      if (st.tracker->state(msg.source()))
        count(self, msg.source(), counter::verifies_received);
      auto outcome = st.protocol->on_verify_batch(batch, actor_now_ms(self));
      carry(self, std::move(outcome.fx));
      return pack(distro::to_wire(outcome.reply));
    },
    [=](snapshot_atom, const envelope& env) -> envelope {
      if (!from_trusted_peer(self, "a SnapshotRequest"))
        return untrusted_reply();
      auto& st = self->state;
      v1::SnapshotRequest msg;
      if (!st.protocol || !unpack(env, msg))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request",
                               "malformed SnapshotRequest"));
      if (auto err = distro::check(msg)) {
        log().warn("distro refused a SnapshotRequest from {}: {}: {}", bounded(msg.source()),
                   err->field, err->message);
        return pack(make_error(v1::Error::INVALID_ARGUMENT, err->field, err->message));
      }
      auto outcome = st.protocol->on_snapshot_request(distro::from_wire(msg), actor_now_ms(self));
      carry(self, std::move(outcome.fx));
      if (!outcome.reply)
        return pack(make_error(v1::Error::UNAVAILABLE, "", "node " + st.self_address
                                                             + " is not ready"));
      // One line per load (its first chunk), not one per chunk.
      if (msg.after().empty())
        log().info("distro {} sends a snapshot to {}: {} clients in its first chunk{}",
                   st.self_address, bounded(msg.source()), outcome.reply->clients.size(),
                   outcome.reply->more ? ", more follow" : ", the whole snapshot");
      return envelope{v1::Snapshot::descriptor()->full_name(), distro::encode(*outcome.reply)};
    },
    [=](forward_atom atom, const envelope& env) -> caf::result<envelope> {
      if (!from_trusted_peer(self, "a ForwardedRequest"))
        return untrusted_reply();
      if (!self->state.gateway)
        return pack(make_error(v1::Error::UNAVAILABLE, "", "node is starting"));
      // Asked on this actor's own behalf: the gateway takes in-process messages only.
      auto rp = self->make_response_promise<envelope>();
      self->request(self->state.gateway, std::chrono::milliseconds(defaults::request_timeout_ms),
                    atom, env)
        .then([=](envelope& reply) mutable { rp.deliver(std::move(reply)); },
              [=](caf::error& err) mutable {
                rp.deliver(pack(make_error(v1::Error::UNAVAILABLE, "",
                                           "the forwarded request failed: "
                                             + self->system().render(err))));
              });
      return rp;
    },
    // -- Raft ---------------------------------------------------------------------
    [=](start_atom, raft_port_actor raft) {
      if (!local_only(self, "distro", "start"))
        return;
      self->state.raft = std::move(raft);
      if (self->state.protocol)
        send_view(self);
    },
    [=](raft_atom, const envelope& env) {
      // The peer port sends on behalf of the member (the sender is the member's actor).
      if (!from_trusted_peer(self, "a RaftMessage"))
        return;
      if (self->state.raft)
        self->send(self->state.raft, raft_atom_v, env);
    },
    [=](pwrite_atom atom, const envelope& env) -> caf::result<envelope> {
      if (!from_trusted_peer(self, "a PersistentOp"))
        return untrusted_reply();
      auto& st = self->state;
      if (!st.raft)
        return pack(make_error(v1::Error::UNAVAILABLE, "",
                               "node " + st.self_address + " has no Raft (no data_dir)"));
      return relay_envelope(self, st.raft, std::chrono::milliseconds(st.cfg->raft.write_timeout_ms),
                            atom, env);
    },
    [=](raft_atom atom, const std::string& node, envelope& env) {
      if (!local_only(self, "distro", "raft"))
        return;
      if (auto peer = peer_for(self, node))
        self->send(peer, atom, std::move(env));
    },
    [=](pwrite_atom atom, const std::string& node, const envelope& env)
      -> caf::result<envelope> {
      if (!local_only(self, "distro", "pwrite"))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request",
                               "not accepted from another process"));
      auto peer = peer_for(self, node);
      if (!peer)
        return pack(make_error(v1::Error::UNAVAILABLE, "",
                               "the Raft leader " + node + " is not a member"));
      return delegate_envelope(self, peer, atom, env);
    },
    // -- from the gateway ------------------------------------------------------
    [=](forward_atom atom, const std::string& node, const envelope& env)
      -> caf::result<envelope> {
      if (!local_only(self, "distro", "forward"))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request", "not accepted from another process"));
      auto peer = peer_for(self, node);
      if (!peer)
        return pack(make_error(v1::Error::UNAVAILABLE, "",
                               "the responsible node " + node + " is not a member"));
      return delegate_envelope(self, peer, atom, env);
    },
    // -- from peer actors -------------------------------------------------------
    [=](peer_up_atom, const std::string& listed, const std::string& node,
        const std::string& node_id) {
      if (!local_only(self, "distro", "peer_up"))
        return;
      auto& st = self->state;
      auto now = actor_now_ms(self);
      auto outcome = st.identity->on_announce(listed, node, node_id);
      if (outcome.renamed && listed != node)
        log().info("member {} is node {} (id {})", listed, node, node_id);
      if (!outcome.problem.empty())
        log().error("member {} is left out of the cluster: {}", listed, outcome.problem);
      if (outcome.members_changed) {
        members_changed(self, st.tracker->set_members(st.identity->names(), now));
        dial_due(self);
      }
      if (auto name = member_name(self, listed))
        members_changed(self, st.tracker->on_success(*name, now));
      else if (!outcome.problem.empty())
        send_view(self);
      arm_timer(self, std::nullopt);
    },
    [=](peer_fail_atom, const std::string& listed, const std::string& why) {
      if (!local_only(self, "distro", "peer_fail"))
        return;
      auto& st = self->state;
      auto name = member_name(self, listed);
      if (!name)
        return;
      auto& member = *name;
      auto before = st.tracker->state(member);
      auto ch = st.tracker->on_failure(member, actor_now_ms(self));
      if (before && *before != member_state::down)
        log().warn("member {} failed: {}", member, why);
      else
        log().debug("member {} still unreachable: {}", member, why);
      members_changed(self, ch);
      arm_timer(self, std::nullopt);
    },
    [=](peer_lost_atom, const std::string& listed, const std::string& why) {
      if (!local_only(self, "distro", "peer_lost"))
        return;
      auto name = member_name(self, listed);
      if (!name)
        return;
      log().warn("member {} lost: {}", listed, why);
      members_changed(self, self->state.tracker->on_connection_lost(*name, actor_now_ms(self)));
      arm_timer(self, std::nullopt);
    },
    [=](sync_res_atom, const std::string& listed, std::uint64_t id, bool ok) {
      if (!local_only(self, "distro", "sync_res"))
        return;
      if (auto member = member_name(self, listed)) {
        count(self, *member, ok ? counter::syncs_ok : counter::syncs_failed);
        carry(self, self->state.protocol->on_sync_result(*member, id, ok, actor_now_ms(self)));
      }
    },
    [=](verify_res_atom, const std::string& listed, std::uint64_t id, bool ok,
        const envelope& env) {
      if (!local_only(self, "distro", "verify_res"))
        return;
      auto name = member_name(self, listed);
      if (!name)
        return;
      auto& member = *name;
      std::optional<distro::verify_reply> reply;
      v1::VerifyReply msg;
      if (ok && unpack(env, msg)) {
        if (auto err = distro::check(msg)) {
          log().warn("distro refused a VerifyReply from {}: {}: {}", member, err->field,
                     err->message);
        } else {
          std::vector<distro::dropped_client> dropped;
          reply = distro::from_wire(msg, dropped);
          report_drops(self, member, "VerifyReply", dropped);
        }
      }
      count(self, member, reply ? counter::verifies_ok : counter::verifies_failed);
      auto fx = self->state.protocol->on_verify_result(member, id, reply, actor_now_ms(self));
      count(self, member, counter::repairs, fx.log.verify_mismatches);
      carry(self, std::move(fx));
    },
    [=](snap_res_atom, const std::string& listed, std::uint64_t id, std::int32_t status,
        const envelope& env) {
      if (!local_only(self, "distro", "snap_res"))
        return;
      auto& st = self->state;
      auto name = member_name(self, listed);
      if (!name)
        return;
      auto& member = *name;
      auto now = actor_now_ms(self);
      v1::Snapshot msg;
      const auto* asked = st.protocol->snapshot_in_flight(member, id);
      if (status == 0 && asked != nullptr && unpack(env, msg)) {
        if (auto err = distro::check(msg, *asked)) {
          log().warn("distro refused a Snapshot chunk from {}: {}: {}; loading again", member,
                     err->field, err->message);
          carry(self, st.protocol->on_snapshot_result(
                        member, id, distro_protocol::snapshot_status::failed, nullptr, now));
          return;
        }
        std::vector<distro::dropped_client> dropped;
        auto snap = distro::from_wire(msg, st.peer_rules, dropped);
        report_drops(self, member, "Snapshot", dropped);
        carry(self, st.protocol->on_snapshot_result(member, id,
                                                    distro_protocol::snapshot_status::ok, &snap,
                                                    now));
        return;
      }
      auto s = status == 2 ? distro_protocol::snapshot_status::unavailable
                           : distro_protocol::snapshot_status::failed;
      carry(self, st.protocol->on_snapshot_result(member, id, s, nullptr, now));
    },
    [=](counters_atom) {
      if (local_only(self, "distro", "counters"))
        hand_over_counters(self);
    },
    [=](owner_counts_atom) -> envelope {
      v1::ClusterCounts out;
      if (!local_only(self, "distro", "owner_counts") || !self->state.protocol)
        return pack(out);
      for (auto& [node, n] : self->state.protocol->instances_by_owner()) {
        auto* m = out.add_members();
        m->set_node(node);
        m->set_instances(n);
      }
      return pack(out);
    },
    [=](tick_atom, std::uint64_t generation) {
      if (!local_only(self, "distro", "tick"))
        return;
      auto& st = self->state;
      if (generation != st.timer_generation || !st.protocol)
        return;
      st.timer_due.reset();
      dial_due(self);
      carry(self, st.protocol->tick(actor_now_ms(self)));
    },
  };
}

} // namespace

distro_actor spawn_distro_actor(caf::actor_system& sys, std::shared_ptr<const node_config> cfg,
                                peer_spawner spawn_peer) {
  return sys.spawn(distro_behavior, std::move(cfg), std::move(spawn_peer));
}

} // namespace registry
