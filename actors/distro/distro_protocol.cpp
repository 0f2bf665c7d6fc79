#include "actors/distro/distro_protocol.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace registry {

namespace {

/// Assertions for programmer errors, on in every build: a broken invariant here loses or resurrects
/// clients across the cluster, which is worse than a crash with a message.
[[noreturn]] void check_failed(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: distro_protocol check failed: %s\n", file, line, what);
  std::abort();
}

#define DISTRO_CHECK(cond)                                                     \
  ((cond) ? (void)0 : check_failed(#cond, __FILE__, __LINE__))

/// FNV-1a 64 over a canonical byte stream: integers little-endian, strings length-prefixed, so that no
/// two different field sequences give the same bytes.
class canonical_hash {
public:
  void u64(std::uint64_t x) {
    for (int i = 0; i < 8; ++i) {
      h_ ^= static_cast<unsigned char>(x >> (8 * i));
      h_ *= 0x100000001b3ULL;
    }
  }

  void str(const std::string& x) {
    u64(x.size());
    for (unsigned char c : x) {
      h_ ^= c;
      h_ *= 0x100000001b3ULL;
    }
  }

  void real(double x) {
    if (x == 0.0)
      x = 0.0; // -0.0 and 0.0 are the same weight
    std::uint64_t bits = 0;
    static_assert(sizeof(bits) == sizeof(x));
    std::memcpy(&bits, &x, sizeof(bits));
    u64(bits);
  }

  std::uint64_t value() const {
    return h_;
  }

private:
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

std::uint64_t instance_hash(const instance& x) {
  canonical_hash h;
  h.u64(x.instance_id.hash());
  h.u64(x.ip.hash());
  h.u64(x.port);
  h.real(x.weight);
  h.u64((x.healthy ? 1u : 0u) | (x.enabled ? 2u : 0u) | (x.ephemeral ? 4u : 0u));
  h.u64(x.cluster.hash());
  h.u64(x.metadata.size());
  for (const auto& [k, v] : x.metadata) {
    h.u64(k.hash());
    h.u64(v.hash());
  }
  return h.value();
}

/// One service's instances: their sorted hashes (the same instances in another order are the same
/// content).
std::uint64_t instances_hash(const std::vector<instance>& instances) {
  std::vector<std::uint64_t> xs;
  xs.reserve(instances.size());
  for (const auto& x : instances)
    xs.push_back(instance_hash(x));
  std::sort(xs.begin(), xs.end());
  canonical_hash h;
  h.u64(xs.size());
  for (auto x : xs)
    h.u64(x);
  return h.value();
}

/// Ages as sent (measured at `now_ms`).
distro::client_beat_ages to_ages(const client_beats& xs, time_ms now_ms) {
  distro::client_beat_ages result;
  for (const auto& [key, marks] : xs)
    for (const auto& [ident, m] : marks)
      result[key][ident] =
        distro::beat_age{std::max<time_ms>(0, now_ms - m.last_beat_ms), m.marked_unhealthy};
  return result;
}

/// Times on the receiver's clock at arrival (`now_ms`); a negative age counts as 0. Only instances
/// of `services` are kept, so the marks are bounded by the client's instances.
client_beats from_ages(const distro::client_beat_ages& xs, const client_services& services,
                       time_ms now_ms) {
  client_beats result;
  for (const auto& [key, instances] : services) {
    auto ai = xs.find(key);
    if (ai == xs.end())
      continue;
    for (const auto& x : instances) {
      auto ident = instance_identity(x.ip, x.port, x.cluster);
      auto i = ai->second.find(ident);
      if (i != ai->second.end())
        result[key][ident] =
          beat_mark{now_ms - std::max<time_ms>(0, i->second.age_ms), i->second.marked_unhealthy};
    }
  }
  return result;
}

/// The instances of a client, over all its services.
std::size_t instance_count(const client_services& xs) {
  std::size_t result = 0;
  for (const auto& [key, instances] : xs)
    result += instances.size();
  return result;
}

/// The latest beat of any instance (0 without any).
time_ms newest_beat(const client_beats& xs) {
  time_ms result = 0;
  for (const auto& [key, marks] : xs)
    for (const auto& [ident, m] : marks)
      result = std::max(result, m.last_beat_ms);
  return result;
}

/// `ours` with every instance's beat from `theirs` where that one is later.
client_beats merge_beats(client_beats ours, const client_beats& theirs) {
  for (const auto& [key, marks] : theirs)
    for (const auto& [ident, m] : marks) {
      auto& mine = ours[key][ident];
      if (m.last_beat_ms > mine.last_beat_ms)
        mine = m;
    }
  return ours;
}

} // namespace

// -- configuration -------------------------------------------------------------------

distro_config::distro_config(const node_config::distro_t& x)
  : sync_delay_ms(x.sync_delay_ms),
    sync_timeout_ms(x.sync_timeout_ms),
    sync_retry_delay_ms(x.sync_retry_delay_ms),
    verify_interval_ms(x.verify_interval_ms),
    verify_timeout_ms(x.verify_timeout_ms),
    copy_expiry_verify_rounds(x.copy_expiry_verify_rounds),
    snapshot_timeout_ms(x.snapshot_timeout_ms),
    snapshot_retry_delay_ms(x.snapshot_retry_delay_ms),
    lone_ready_wait_ms(x.lone_ready_wait_ms) {
  // nop
}

std::string validate(const distro_config& x) {
  if (x.sync_delay_ms < 0)
    return "sync_delay_ms must not be negative";
  if (x.sync_timeout_ms <= 0)
    return "sync_timeout_ms must be positive";
  if (x.sync_retry_delay_ms <= 0)
    return "sync_retry_delay_ms must be positive";
  if (x.sync_batch_clients_max < 1)
    return "sync_batch_clients_max must be at least 1";
  if (x.verify_interval_ms <= 0)
    return "verify_interval_ms must be positive";
  if (x.verify_timeout_ms <= 0)
    return "verify_timeout_ms must be positive";
  // One round would expire a copy whenever a single verify arrives a little late.
  if (x.copy_expiry_verify_rounds < 2)
    return "copy_expiry_verify_rounds must be at least 2";
  if (x.snapshot_timeout_ms <= 0)
    return "snapshot_timeout_ms must be positive";
  if (x.snapshot_retry_delay_ms <= 0)
    return "snapshot_retry_delay_ms must be positive";
  if (x.snapshot_chunk_clients_max < 1)
    return "snapshot_chunk_clients_max must be at least 1";
  if (x.snapshot_chunk_instances_max < 1)
    return "snapshot_chunk_instances_max must be at least 1";
  if (x.lone_ready_wait_ms < 0)
    return "lone_ready_wait_ms must not be negative";
  if (x.clients_max < 1)
    return "clients_max must be at least 1";
  if (x.tombstones_max < 1)
    return "tombstones_max must be at least 1";
  if (x.members_max < 1)
    return "members_max must be at least 1";
  if (x.beat_unhealthy_timeout_ms <= 0)
    return "beat_unhealthy_timeout_ms must be positive";
  if (x.verify_buckets < 1 || x.verify_buckets > defaults::verify_buckets_max)
    return "verify_buckets must be between 1 and " + std::to_string(defaults::verify_buckets_max);
  return {};
}

std::uint64_t verify_id_hash(const client_id& id) {
  canonical_hash h;
  h.str(id);
  return h.value() == 0 ? 1 : h.value();
}

std::uint32_t verify_bucket_of(std::uint64_t id_hash, std::uint32_t buckets) {
  return static_cast<std::uint32_t>(id_hash % buckets);
}

std::uint32_t verify_bucket(const client_id& id, std::uint32_t buckets) {
  return verify_bucket_of(verify_id_hash(id), buckets);
}

namespace {

/// Two words mixed by a finalizer (splitmix64's) that spreads every bit of both over the result,
/// so that the results of different inputs do not cancel in a sum by accident.
std::uint64_t mix64(std::uint64_t a, std::uint64_t b) {
  auto x = a ^ (b * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

} // namespace

std::uint64_t verify_share_of(std::uint64_t id_hash, std::uint64_t revision) {
  return mix64(id_hash, revision); // shares are summed per bucket
}

std::uint64_t verify_share(const client_id& id, std::uint64_t revision) {
  return verify_share_of(verify_id_hash(id), revision);
}

std::uint64_t service_term(const service_key& key, const instance_list& instances) {
  canonical_hash h;
  // Each part's hash is kept with its interned text: a key costs three words, not its bytes.
  h.u64(key.namespace_id.hash());
  h.u64(key.group.hash());
  h.u64(key.name.hash());
  // Kept with the shared list: a change rehashes only the services that changed.
  h.u64(instances.digest(instances_hash));
  return mix64(h.value(), 0); // terms are summed per client
}

std::uint64_t services_terms(const client_services& services) {
  std::uint64_t sum = 0;
  for (const auto& [key, instances] : services)
    sum += service_term(key, instances);
  return sum;
}

std::uint64_t revision_of_terms(std::size_t services, std::uint64_t terms) {
  auto result = mix64(terms, services);
  return result == 0 ? 1 : result;
}

std::uint64_t content_revision(const client_services& services) {
  return revision_of_terms(services.size(), services_terms(services));
}

bool distro_protocol::events::any() const {
  return batches_sent + batches_failed + batches_retried + verify_failed + verify_mismatches
             + verify_missing + copies_applied + copies_removed + copies_expired + copies_refused
             + conflicts + stale_sessions + taken_over + handed_over + snapshot_failures
             + snapshot_chunks
             + stale_results + members_refused + unknown_sources + malformed
           > 0
         || snapshot_loaded.has_value() || ready_alone;
}

// -- constructors --------------------------------------------------------------------

distro_protocol::distro_protocol(std::string self, distro_config cfg)
  : self_(std::move(self)), cfg_(cfg) {
  DISTRO_CHECK(!self_.empty());
  DISTRO_CHECK(validate(cfg_).empty());
}

// -- inputs ----------------------------------------------------------------------------

distro_protocol::effects distro_protocol::start(const std::vector<member_view>& members,
                                                time_ms now_ms) {
  DISTRO_CHECK(!started_);
  effects fx;
  started_ = true;
  started_ms_ = now_ms;
  next_attempt_ms_ = now_ms;
  next_sweep_ms_ = now_ms + cfg_.verify_interval_ms;
  update_members(members, now_ms, fx);
  if (peers_.empty()) {
    // Standalone: nobody to load from.
    ready_ = true;
    fx.ready_changed = true;
    next_verify_ms_ = now_ms;
  }
  remap(now_ms, fx);
  finish(now_ms, fx);
  DISTRO_CHECK(!routing_.empty());
  return fx;
}

distro_protocol::effects distro_protocol::on_local_change(local_change x, time_ms now_ms) {
  DISTRO_CHECK(started_);
  DISTRO_CHECK(!x.id.empty());
  effects fx;
  auto i = records_.find(x.id);
  bool responsible = responsible_node(x.id) == self_;
  if (x.deleted) {
    // Nothing recorded means nothing was ever sent: peers cannot hold a copy from us.
    if (i != records_.end() && !i->second.tombstone)
      make_tombstone(x.id, now_ms);
  } else {
    bool partial = x.base_seq.has_value();
    std::uint64_t terms = 0;
    if (partial) {
      bool applies = i != records_.end() && !i->second.tombstone && x.announcer != 0
                     && i->second.announcer == x.announcer
                     && i->second.announced_seq == *x.base_seq;
      if (!applies) {
        fx.announce_whole.push_back(x.id);
        finish(now_ms, fx);
        return fx;
      }
      // Changed in place (no copy of the whole client), and so is the sum of its services' terms:
      // a change costs the services it names, not all the client's services.
      auto& held = i->second.services;
      terms = i->second.announced_terms;
      for (auto& [key, xs] : x.services) {
        auto h = held.find(key);
        if (h != held.end())
          terms -= service_term(h->first, h->second);
        if (xs.empty()) {
          if (h != held.end())
            held.erase(h);
          continue;
        }
        terms += service_term(key, xs);
        if (h != held.end())
          h->second = std::move(xs);
        else
          held.emplace(key, std::move(xs));
      }
    } else {
      terms = services_terms(x.services);
    }
    auto count = partial ? i->second.services.size() : x.services.size();
    auto revision = revision_of_terms(count, terms);
    bool same = i != records_.end() && !i->second.tombstone && i->second.revision == revision;
    if (!same) {
      auto& r = records_[x.id];
      if (r.tombstone)
        tombstones_.erase({r.tombstone_seq, x.id});
      if (!partial) // the change is this node's to keep (no second copy)
        r.services = std::move(x.services);
      r.revision = revision;
      r.tombstone = false;
      r.adopted = false;
      r.local = responsible;
      renew(r, self_, now_ms);
      r.vouched_ms = 0;
      r.beats = real_beats(r, x.beats);
      mark_pending_all(x.id);
    } else if (auto beats = real_beats(i->second, x.beats); i->second.beats != beats) {
      // Only the beat clocks moved on: peers need them to continue the clocks on a take-over.
      i->second.beats = std::move(beats);
      mark_pending_all(x.id);
    }
    auto& announced = records_[x.id];
    announced.announcer = x.announcer;
    announced.announced_seq = x.seq;
    announced.announced_terms = terms;
    if (!responsible) {
      records_[x.id].raised.clear(); // a replica's clocks are not run here
      // The client actor acted as if responsible, the routing says otherwise (a re-mapping raced
      // with the write): its change still travels, and the actor becomes a replica.
      fx.apply.push_back(local_op{local_op::kind::hand_over, x.id, revision, {}, false, {}});
      ++fx.log.handed_over;
    }
  }
  finish(now_ms, fx);
  return fx;
}

distro_protocol::effects distro_protocol::on_members(const std::vector<member_view>& members,
                                                     time_ms now_ms) {
  DISTRO_CHECK(started_);
  effects fx;
  update_members(members, now_ms, fx);
  remap(now_ms, fx);
  finish(now_ms, fx);
  return fx;
}

distro_protocol::effects distro_protocol::on_sync_result(const std::string& peer,
                                                         std::uint64_t batch_id, bool ok,
                                                         time_ms now_ms) {
  DISTRO_CHECK(started_);
  effects fx;
  auto i = peers_.find(peer);
  if (i == peers_.end() || !i->second.in_flight || i->second.in_flight->id != batch_id) {
    ++fx.log.stale_results;
  } else if (ok) {
    auto& p = i->second;
    auto ids = std::move(p.in_flight->ids);
    p.in_flight.reset();
    p.failure_streak = 0;
    // Answered in time: the next batches may grow again (doubling up to sync_batch_clients_max).
    p.batch_limit = std::min(cfg_.sync_batch_clients_max, batch_limit(p) * 2);
    for (const auto& id : ids)
      gc_tombstone(id);
  } else {
    fail_sync(i->second, now_ms, fx);
  }
  finish(now_ms, fx);
  return fx;
}

distro_protocol::effects distro_protocol::on_sync_batch(const distro::sync_batch& x,
                                                        time_ms now_ms) {
  DISTRO_CHECK(started_);
  effects fx;
  // Data from a node that is not (yet) a member is applied all the same: membership changes reach
  // nodes at different times, and dropping a valid copy only delays it to the next verify.
  if (x.source == self_ || peers_.count(x.source) == 0)
    ++fx.log.unknown_sources;
  std::size_t seen = 0;
  for (const auto& c : x.clients) {
    if (seen++ >= cfg_.clients_max)
      break;
    apply_incoming(c, x.source, now_ms, fx);
  }
  finish(now_ms, fx);
  return fx;
}

distro_protocol::verify_outcome distro_protocol::on_verify_batch(const distro::verify_batch& x,
                                                                 time_ms now_ms) {
  DISTRO_CHECK(started_);
  verify_outcome out;
  auto& fx = out.fx;
  auto pi = peers_.find(x.source);
  if (pi == peers_.end()) {
    // Renewing on behalf of a stranger would keep copies alive that no member vouches for.
    ++fx.log.unknown_sources;
    finish(now_ms, fx);
    return out;
  }
  bool digest = x.buckets > 0 && !x.digests.empty();
  bool well_formed = x.buckets <= defaults::verify_buckets_max
                     && (x.digests.empty() || x.digests.size() == x.buckets)
                     && (x.buckets > 0 || x.listed.empty());
  if (!well_formed) {
    // The wire decoder refuses these; a malformed batch renews nothing and asks nothing.
    ++fx.log.malformed;
    finish(now_ms, fx);
    return out;
  }
  // Only a ready node verifies: the sender has its data now and may be routed to.
  set_peer_ready(pi->second, pi->first, true, now_ms);
  if (x.buckets == 0 || digest) {
    // A round: a detail answers the round its digest began.
    ++pi->second.verifies_received;
    pi->second.vouched_sweep = sweeps_;
  }
  remap(now_ms, fx);
  if (digest)
    verify_digests(x, now_ms, out);
  else
    verify_listed(x, now_ms, out);
  // A loading node renews what is listed but asks for nothing: its snapshot brings every client,
  // and asking would have the sender sync them all a second time beside the chunks.
  if (!ready_)
    out.reply = distro::verify_reply{};
  fx.log.verify_missing += out.reply.missing.size();
  finish(now_ms, fx);
  return out;
}

void distro_protocol::verify_listed(const distro::verify_batch& x, time_ms now_ms,
                                    verify_outcome& out) {
  // A detail speaks only for its listed buckets.
  std::vector<bool> listed;
  if (x.buckets > 0) {
    listed.assign(x.buckets, false);
    for (auto b : x.listed)
      if (b < x.buckets)
        listed[b] = true;
  }
  std::size_t seen = 0;
  for (const auto& e : x.clients) {
    if (seen++ >= cfg_.clients_max)
      break;
    if (x.buckets == 0 || listed[verify_bucket(e.id, x.buckets)])
      check_listed(e, x.source, now_ms, out, true);
  }
}

void distro_protocol::check_listed(const distro::client_revision& e, const std::string& source,
                                   time_ms now_ms, verify_outcome& out, bool report) {
  auto ri = records_.find(e.id);
  if (ri == records_.end()) {
    if (report)
      out.reply.missing.push_back(e.id);
    return;
  }
  auto& r = ri->second;
  if (r.local)
    return; // ours in our routing: the sender's view is behind; its copy is repaired by our verify
  if (r.tombstone) {
    if (report)
      out.reply.missing.push_back(e.id);
    return;
  }
  // Listed by a member that holds it: the client lives. A stale copy is kept (renewed) until
  // the sync that the reply asks for replaces it; expiring it would only lose its instances.
  renew(r, source, now_ms);
  if (r.revision != e.revision) {
    if (report)
      out.reply.missing.push_back(e.id);
  } else
    r.vouched_ms = now_ms; // the owner holds this content: a take-over may trust it (Beat clocks)
}

void distro_protocol::verify_digests(const distro::verify_batch& x, time_ms now_ms,
                                     verify_outcome& out) {
  // The clients whose change to this node is still on its way are listed beside the digests and
  // left out of them on both sides (a pending change would make its bucket differ every round
  // under churn); each renews its copy as in a full list, but none is reported stale or missing
  // (the sender has it pending already), and a pending delete (revision 0) is not checked at all.
  std::set<client_id> in_flight;
  std::size_t seen = 0;
  for (const auto& e : x.clients) {
    if (seen++ >= cfg_.clients_max)
      break;
    in_flight.insert(e.id);
    if (e.revision != 0)
      check_listed(e, x.source, now_ms, out, false);
  }
  // This node's digests over the copies the sender vouched for last. A bucket that matches holds
  // exactly the sender's clients at the sender's revisions: each of its copies is listed, as by a
  // full list. Any other bucket (a copy missing, stale, or from another source here, or a client
  // local here) is asked for in detail.
  std::vector<std::uint64_t> mine(x.buckets, 0);
  auto counted = [&](const client_id& id, const record& r) {
    return !r.local && !r.tombstone && r.source == x.source
           && (in_flight.empty() || in_flight.count(id) == 0);
  };
  for (const auto& [id, r] : records_)
    if (counted(id, r)) {
      auto h = id_hash_of(id, r);
      mine[verify_bucket_of(h, x.buckets)] += verify_share_of(h, r.revision);
    }
  std::vector<bool> same(x.buckets, false);
  for (std::uint32_t b = 0; b < x.buckets; ++b) {
    same[b] = mine[b] == x.digests[b];
    if (!same[b])
      out.reply.differing.push_back(b);
  }
  for (auto& [id, r] : records_)
    if (counted(id, r) && same[verify_bucket_of(id_hash_of(id, r), x.buckets)]) {
      renew(r, x.source, now_ms);
      r.vouched_ms = now_ms;
    }
}

distro_protocol::effects
distro_protocol::on_verify_result(const std::string& peer, std::uint64_t verify_id,
                                  const std::optional<distro::verify_reply>& x, time_ms now_ms) {
  DISTRO_CHECK(started_);
  effects fx;
  auto i = peers_.find(peer);
  if (i == peers_.end() || !i->second.verify_in_flight
      || i->second.verify_in_flight->id != verify_id) {
    ++fx.log.stale_results;
  } else if (!x) {
    i->second.verify_in_flight.reset();
    ++fx.log.verify_failed;
  } else {
    auto& p = i->second;
    auto digest_buckets = p.verify_in_flight->digest_buckets;
    p.verify_in_flight.reset();
    if (digest_buckets > 0 && !x->differing.empty() && ready_ && is_alive(p.state))
      send_verify(peer, p, verify_detail(digest_buckets, x->differing), now_ms, fx);
    std::size_t seen = 0;
    for (const auto& id : x->missing) {
      if (seen++ >= cfg_.clients_max)
        break;
      auto ri = records_.find(id);
      if (ri != records_.end() && ri->second.local && !ri->second.tombstone) {
        p.pending.insert(id);
        ++fx.log.verify_mismatches;
      }
    }
  }
  finish(now_ms, fx);
  return fx;
}

distro_protocol::snapshot_outcome
distro_protocol::on_snapshot_request(const distro::snapshot_request& x, time_ms now_ms) {
  DISTRO_CHECK(started_);
  snapshot_outcome out;
  auto pi = peers_.find(x.source);
  if (pi == peers_.end()) {
    ++out.fx.log.unknown_sources;
    finish(now_ms, out.fx);
    return out;
  }
  // A node that asks for (the first chunk of) a snapshot is loading: route nothing to it until it
  // verifies. Later chunks change nothing here: the sender keeps no state between chunks.
  if (x.after.empty()) {
    set_peer_ready(pi->second, pi->first, false, now_ms);
    remap(now_ms, out.fx);
  }
  if (ready_)
    out.reply = snapshot_chunk(x, now_ms);
  finish(now_ms, out.fx);
  return out;
}

distro::snapshot distro_protocol::snapshot_chunk(const distro::snapshot_request& x,
                                                 time_ms now_ms) const {
  distro::snapshot s;
  s.source = self_;
  bool chunked = x.clients_max > 0;
  auto clients_max = chunked ? std::min(x.clients_max, cfg_.snapshot_chunk_clients_max)
                             : records_.size();
  auto instances_max = cfg_.snapshot_chunk_instances_max;
  if (x.instances_max > 0)
    instances_max = std::min(instances_max, x.instances_max);
  std::size_t instances = 0;
  auto i = x.after.empty() ? records_.begin() : records_.upper_bound(x.after);
  for (; i != records_.end(); ++i) {
    const auto& [id, r] = *i;
    if (r.tombstone)
      continue;
    auto n = instance_count(r.services);
    if (chunked && !s.clients.empty()
        && (s.clients.size() >= clients_max || instances + n > instances_max)) {
      s.more = true; // a live client is left
      break;
    }
    s.clients.push_back(to_data(id, r, now_ms));
    s.last = id;
    instances += n;
  }
  DISTRO_CHECK(!s.more || !s.last.empty());
  DISTRO_CHECK(s.clients.size() <= std::max<std::size_t>(1, clients_max));
  return s;
}

distro_protocol::effects distro_protocol::on_snapshot_result(const std::string& peer,
                                                             std::uint64_t request_id,
                                                             snapshot_status status,
                                                             const distro::snapshot* x,
                                                             time_ms now_ms) {
  DISTRO_CHECK(started_);
  effects fx;
  if (!attempt_ || attempt_->id != request_id || attempt_->peer != peer) {
    ++fx.log.stale_results;
    finish(now_ms, fx);
    return fx;
  }
  if (status == snapshot_status::ok && x == nullptr)
    status = snapshot_status::failed; // an ok without data is the caller's bug; treat as failure
  auto pi = peers_.find(peer);
  DISTRO_CHECK(pi != peers_.end()); // removal of the peer fails the attempt
  // A chunk that announces more but does not move the cursor on would make the load endless.
  if (status == snapshot_status::ok && x->more && !(x->last > attempt_->request.after))
    status = snapshot_status::failed;
  if (status == snapshot_status::ok) {
    set_peer_ready(pi->second, peer, true, now_ms);
    pi->second.vouched_sweep = sweeps_;
    remap(now_ms, fx);
    ++attempt_->chunks;
    attempt_->clients += x->clients.size();
    ++fx.log.snapshot_chunks;
    // The last chunk makes the node ready before it is applied, so its clients are mapped with
    // self in the routing list at once; the earlier chunks' copies are re-mapped then.
    bool last = !x->more;
    if (last)
      snapshot_complete(peer, now_ms, fx);
    std::size_t seen = 0;
    for (const auto& c : x->clients) {
      if (seen++ >= cfg_.clients_max)
        break;
      apply_incoming(c, peer, now_ms, fx);
    }
    if (!last)
      ask_snapshot_chunk(peer, x->last, now_ms, fx);
  } else {
    fail_snapshot_attempt(fx);
    if (status == snapshot_status::unavailable) {
      set_peer_ready(pi->second, peer, false, now_ms);
      pi->second.unavailable = true;
      remap(now_ms, fx);
    }
  }
  finish(now_ms, fx);
  return fx;
}

distro_protocol::effects distro_protocol::tick(time_ms now_ms) {
  DISTRO_CHECK(started_);
  effects fx;
  finish(now_ms, fx);
  return fx;
}

// -- properties --------------------------------------------------------------------------

const distro::snapshot_request* distro_protocol::snapshot_in_flight(const std::string& peer,
                                                                    std::uint64_t request_id) const {
  if (!attempt_ || attempt_->peer != peer || attempt_->id != request_id)
    return nullptr;
  return &attempt_->request;
}

std::string distro_protocol::responsible_node(const client_id& id) const {
  return registry::responsible_node(routing_, id);
}

std::map<std::string, std::uint64_t> distro_protocol::instances_by_owner() const {
  std::map<std::string, std::uint64_t> result;
  for (const auto& [id, r] : records_) {
    if (r.tombstone)
      continue;
    auto owner = routing_.empty() ? self_ : responsible_node(id);
    auto& n = result[owner.empty() ? self_ : owner];
    for (const auto& [key, xs] : r.services)
      n += xs.size();
  }
  return result;
}

distro_protocol::local_op distro_protocol::resync(const client_id& id) const {
  local_op result;
  result.id = id;
  result.what = local_op::kind::remove;
  auto i = records_.find(id);
  if (i == records_.end() || i->second.tombstone)
    return result;
  if (auto owner = session_owner(id); owner && *owner == self_)
    return result;
  const auto& r = i->second;
  DISTRO_CHECK(!r.services.empty());
  result.what = local_op::kind::replace;
  result.revision = r.revision;
  result.services = r.services;
  result.local = r.local;
  if (r.local)
    result.beats = merge_beats(r.beats, r.raised); // the clocks the client actor ran
  return result;
}

const distro_protocol::record* distro_protocol::find(const client_id& id) const {
  auto i = records_.find(id);
  return i == records_.end() ? nullptr : &i->second;
}

std::size_t distro_protocol::pending_count(const std::string& peer) const {
  auto i = peers_.find(peer);
  return i == peers_.end() ? 0 : i->second.pending.size();
}

bool distro_protocol::is_pending(const std::string& peer, const client_id& id) const {
  auto i = peers_.find(peer);
  return i != peers_.end() && i->second.pending.count(id) > 0;
}

bool distro_protocol::sync_in_flight(const std::string& peer) const {
  auto i = peers_.find(peer);
  return i != peers_.end() && i->second.in_flight.has_value();
}

std::vector<member_view> distro_protocol::peers() const {
  std::vector<member_view> result;
  for (const auto& [name, p] : peers_)
    result.push_back(member_view{name, p.state, p.unresponsive});
  return result;
}

bool distro_protocol::peer_ready(const std::string& peer) const {
  auto i = peers_.find(peer);
  return i != peers_.end() && i->second.ready;
}

std::string distro_protocol::check_invariants() const {
  if (!started_)
    return {};
  if (routing_.empty())
    return "routing list is empty";
  if (!std::is_sorted(routing_.begin(), routing_.end())
      || std::adjacent_find(routing_.begin(), routing_.end()) != routing_.end())
    return "routing list is not sorted and unique";
  if (routing_ != compute_routing())
    return "routing list is out of date";
  if (peers_.size() + 1 > cfg_.members_max)
    return "more peers than members_max";
  if (ready_ && attempt_)
    return "a snapshot request in flight while ready";
  if (attempt_) {
    auto pi = peers_.find(attempt_->peer);
    if (pi == peers_.end() || !is_alive(pi->second.state))
      return "snapshot request in flight to a peer that is gone or DOWN: " + attempt_->peer;
  }
  for (const auto& [id, r] : records_) {
    if (r.local != (responsible_node(id) == self_))
      return "record " + id + ": local flag disagrees with the routing";
    if (r.adopted && (!r.local || r.tombstone))
      return "record " + id + ": adopted but not a live local client";
    if (!r.raised.empty() && (!r.local || r.tombstone))
      return "record " + id + ": raised beat clocks but not a live local client";
    if (r.tombstone && (r.revision != 0 || !r.services.empty()))
      return "record " + id + ": tombstone with content";
    if (r.tombstone != (tombstones_.count({r.tombstone_seq, id}) > 0))
      return "record " + id + ": tombstone order disagrees with the record";
    if (r.tombstone) {
      bool pending = false;
      for (const auto& [name, p] : peers_)
        pending = pending || p.pending.count(id) > 0 || (p.in_flight && p.in_flight->ids.count(id) > 0);
      if (!pending)
        return "record " + id + ": tombstone that no peer waits for";
    }
  }
  if (tombstones_.size() > cfg_.tombstones_max)
    return "more tombstones than tombstones_max";
  for (const auto& [seq, id] : tombstones_) {
    auto ri = records_.find(id);
    if (ri == records_.end() || !ri->second.tombstone)
      return "tombstone order holds " + id + ", which is no tombstone";
  }
  for (const auto& [name, p] : peers_) {
    if (p.pending.size() > records_.size())
      return "peer " + name + ": more pending than records";
    if (!is_alive(p.state))
      for (const auto& id : p.pending)
        if (auto ri = records_.find(id); ri != records_.end() && ri->second.tombstone)
          return "peer " + name + ": a delete pending for a DOWN peer: " + id;
    for (const auto& id : p.pending)
      if (records_.count(id) == 0)
        return "peer " + name + ": pending client without record: " + id;
    if (p.in_flight && p.in_flight->ids.size() > cfg_.sync_batch_clients_max)
      return "peer " + name + ": batch over sync_batch_clients_max";
    if (batch_limit(p) < 1)
      return "peer " + name + ": batch limit below 1";
    if (!is_alive(p.state) && (p.in_flight || p.verify_in_flight))
      return "peer " + name + ": request in flight to a DOWN peer";
  }
  return {};
}

// -- steps -------------------------------------------------------------------------------

void distro_protocol::finish(time_ms now_ms, effects& fx) {
  expire_requests(now_ms, fx);
  progress_load(now_ms, fx);
  if (ready_ && now_ms >= next_verify_ms_)
    verify_round(now_ms, fx);
  if (now_ms >= next_sweep_ms_)
    sweep_copies(now_ms, fx);
  for (auto& [name, p] : peers_)
    flush(name, p, now_ms, fx);
  fx.wake_at = next_wake(now_ms);
  DISTRO_CHECK(fx.wake_at.has_value());
  DISTRO_CHECK(*fx.wake_at > now_ms);
}

void distro_protocol::expire_requests(time_ms now_ms, effects& fx) {
  for (auto& [name, p] : peers_) {
    if (p.in_flight && now_ms >= p.in_flight->sent_ms + cfg_.sync_timeout_ms)
      fail_sync(p, now_ms, fx);
    if (p.verify_in_flight && now_ms >= p.verify_in_flight->sent_ms + cfg_.verify_timeout_ms) {
      p.verify_in_flight.reset();
      ++fx.log.verify_failed;
    }
  }
  if (attempt_ && now_ms >= attempt_->sent_ms + cfg_.snapshot_timeout_ms)
    fail_snapshot_attempt(fx);
}

void distro_protocol::progress_load(time_ms now_ms, effects& fx) {
  if (ready_)
    return;
  if (lone(now_ms)) {
    attempt_.reset(); // a late answer is ignored; peers' verify fills in what it would have brought
    tried_.clear();
    ready_ = true;
    fx.ready_changed = true;
    fx.log.ready_alone = true;
    next_verify_ms_ = now_ms;
    remap(now_ms, fx);
    return;
  }
  if (attempt_ || now_ms < next_attempt_ms_)
    return;
  // Next peer of this round: alive, not tried yet; proven ready first, then not known unavailable,
  // then by address.
  const std::string* best = nullptr;
  auto rank = [](const peer_state& p) { return p.ready ? 0 : (p.unavailable ? 2 : 1); };
  for (const auto& [name, p] : peers_) {
    if (!is_alive(p.state) || tried_.count(name) > 0)
      continue;
    if (best == nullptr || rank(p) < rank(peers_.at(*best)))
      best = &name;
  }
  if (best == nullptr) {
    // Round over (or nobody alive): wait, then start a new round.
    tried_.clear();
    next_attempt_ms_ = now_ms + cfg_.snapshot_retry_delay_ms;
    return;
  }
  attempt_.reset();
  ask_snapshot_chunk(*best, client_id{}, now_ms, fx);
}

void distro_protocol::verify_round(time_ms now_ms, effects& fx) {
  DISTRO_CHECK(ready_);
  std::optional<distro::verify_batch> batch; // built once for every peer
  for (auto& [name, p] : peers_)
    if (is_alive(p.state) && !p.verify_in_flight) {
      if (!batch)
        batch = verify_of_local();
      send_verify(name, p, verify_for_peer(*batch, p), now_ms, fx);
    }
  next_verify_ms_ = now_ms + cfg_.verify_interval_ms;
}

bool distro_protocol::copy_expired(const record& r, time_ms now_ms) const {
  auto limit = static_cast<time_ms>(cfg_.copy_expiry_verify_rounds) * cfg_.verify_interval_ms;
  auto pi = peers_.find(r.source);
  if (pi == peers_.end() || !pi->second.ready
      || !(is_alive(pi->second.state) || pi->second.unresponsive))
    return now_ms - r.renewed_ms >= limit; // nobody vouches for it any more
  // Its source is alive (or unresponsive on an open connection) and ready: only its own verifies
  // tell. Time on this node does not count (this node may have been frozen or starved while their
  // verifies waited in its mailbox).
  const auto& p = pi->second;
  // A member dropped from the list and added back starts counting again from 0.
  auto rounds = p.verifies_received >= r.renewed_round ? p.verifies_received - r.renewed_round
                                                       : p.verifies_received;
  if (rounds >= static_cast<std::uint64_t>(cfg_.copy_expiry_verify_rounds))
    return true; // verified that many times without it
  // A source that sends no verify at all does not see this node alive (it queues no deletes for
  // it either): the copy goes after a longer silence, counted in this node's own sweeps, so that a
  // node starved for longer than that does not count the time its verifies waited unread.
  return sweeps_ - p.vouched_sweep
         >= static_cast<std::uint64_t>(cfg_.copy_expiry_verify_rounds)
              * static_cast<std::uint64_t>(defaults::copy_expiry_silent_source_factor);
}

void distro_protocol::renew(record& r, const std::string& source, time_ms now_ms) {
  r.source = source;
  r.renewed_ms = now_ms;
  auto pi = peers_.find(source);
  r.renewed_round = pi == peers_.end() ? 0 : pi->second.verifies_received;
}

void distro_protocol::sweep_copies(time_ms now_ms, effects& fx) {
  ++sweeps_;
  for (auto i = records_.begin(); i != records_.end();) {
    auto& r = i->second;
    if (!r.local && !r.tombstone && copy_expired(r, now_ms)) {
      fx.apply.push_back(local_op{local_op::kind::remove, i->first, 0, {}, false, {}});
      ++fx.log.copies_expired;
      auto next = std::next(i);
      erase_record(i);
      i = next;
    } else {
      ++i;
    }
  }
  next_sweep_ms_ = now_ms + cfg_.verify_interval_ms;
}

void distro_protocol::flush(const std::string& name, peer_state& p, time_ms now_ms, effects& fx) {
  if (!is_alive(p.state) || p.in_flight || p.pending.empty() || now_ms < p.next_send_ms)
    return;
  outgoing_sync out;
  out.peer = name;
  out.batch_id = next_id_++;
  out.batch.source = self_;
  in_flight_sync f;
  f.id = out.batch_id;
  f.sent_ms = now_ms;
  // Round-robin from the cursor, so a busy client with a small id cannot starve the others.
  auto i = p.pending.upper_bound(p.cursor);
  auto limit = batch_limit(p);
  while (out.batch.clients.size() < limit && !p.pending.empty()) {
    if (i == p.pending.end())
      i = p.pending.begin();
    auto id = *i;
    i = p.pending.erase(i);
    auto ri = records_.find(id);
    DISTRO_CHECK(ri != records_.end());
    out.batch.clients.push_back(to_data(id, ri->second, now_ms));
    f.ids.insert(id);
    p.cursor = id;
  }
  DISTRO_CHECK(!out.batch.clients.empty());
  fx.log.batches_sent += 1;
  fx.log.clients_sent += out.batch.clients.size();
  if (p.failure_streak > 0)
    ++fx.log.batches_retried;
  p.in_flight = std::move(f);
  p.next_send_ms = now_ms + cfg_.sync_delay_ms;
  fx.syncs.push_back(std::move(out));
}

std::optional<time_ms> distro_protocol::next_wake(time_ms now_ms) const {
  time_ms result = next_sweep_ms_;
  auto consider = [&](time_ms t) { result = std::min(result, t); };
  for (const auto& [name, p] : peers_) {
    if (p.in_flight)
      consider(p.in_flight->sent_ms + cfg_.sync_timeout_ms);
    else if (is_alive(p.state) && !p.pending.empty())
      consider(p.next_send_ms);
    if (p.verify_in_flight)
      consider(p.verify_in_flight->sent_ms + cfg_.verify_timeout_ms);
  }
  if (ready_) {
    consider(next_verify_ms_);
  } else {
    consider(attempt_ ? attempt_->sent_ms + cfg_.snapshot_timeout_ms : next_attempt_ms_);
    if (now_ms < started_ms_ + cfg_.lone_ready_wait_ms)
      consider(started_ms_ + cfg_.lone_ready_wait_ms);
  }
  return result;
}

// -- helpers -------------------------------------------------------------------------------

void distro_protocol::update_members(const std::vector<member_view>& members, time_ms now_ms,
                                     effects& fx) {
  std::map<std::string, member_view> wanted;
  for (const auto& m : members)
    if (!m.address.empty() && m.address != self_)
      wanted[m.address] = m;
  while (wanted.size() + 1 > cfg_.members_max) {
    wanted.erase(std::prev(wanted.end()));
    ++fx.log.members_refused;
  }
  bool removed = false;
  for (auto i = peers_.begin(); i != peers_.end();) {
    if (wanted.count(i->first) > 0) {
      ++i;
      continue;
    }
    if (attempt_ && attempt_->peer == i->first)
      fail_snapshot_attempt(fx);
    tried_.erase(i->first);
    i = peers_.erase(i);
    removed = true;
  }
  for (const auto& [name, view] : wanted) {
    auto [i, added] = peers_.try_emplace(name);
    auto& p = i->second;
    auto before = added ? member_state::down : p.state;
    auto was_unresponsive = p.unresponsive;
    p.state = view.state;
    p.unresponsive = !is_alive(view.state) && view.unresponsive;
    if (is_alive(view.state) && !is_alive(before)) {
      peer_came_up(p, name, now_ms, fx);
    } else if (!is_alive(view.state) && is_alive(before)) {
      peer_went_down(p, name, now_ms, fx);
    } else if (was_unresponsive && !p.unresponsive) {
      // Its connection is gone now: what comes back may be a new run.
      p.ready = false;
      p.unavailable = false;
    }
  }
  if (removed) {
    // A removed peer no longer holds deletes back.
    std::vector<client_id> tombstones;
    for (const auto& [id, r] : records_)
      if (r.tombstone)
        tombstones.push_back(id);
    for (const auto& id : tombstones)
      gc_tombstone(id);
  }
}

void distro_protocol::apply_incoming(const distro::client_data& x, const std::string& source,
                                     time_ms now_ms, effects& fx) {
  if (x.id.empty())
    return;
  auto beats = from_ages(x.beats, x.services, now_ms);
  auto i = records_.find(x.id);
  if (i != records_.end() && i->second.local) {
    auto& r = i->second;
    bool same = r.tombstone ? x.deleted : (!x.deleted && r.revision == x.revision);
    // A heartbeat client is beaten where its beats arrive: a node whose view of the routing differs
    // from ours (a member one of us does not see yet) handles them and syncs the beat clocks here.
    bool beaten_later = is_heartbeat_client(x.id) && !x.deleted
                        && newest_beat(beats) > (r.tombstone ? r.renewed_ms : newest_beat(r.beats));
    if (same) {
      renew(r, r.source, now_ms);
      if (!r.tombstone && beaten_later) {
        // Same content, fresher clocks: our client actor must continue them, or it would expire a
        // client that is alive.
        r.beats = merge_beats(r.beats, beats);
        forget_raised_below(r);
        fx.apply.push_back(
          local_op{local_op::kind::replace, x.id, r.revision, r.services, true, r.beats});
      }
    } else if ((r.adopted && !r.tombstone) || beaten_later) {
      // Handed to us and not changed here since (the previous owner's newer write still applies),
      // or beaten elsewhere after anything this node knows of it (after its deletion here too):
      // the client is alive there, its data wins.
      if (x.deleted) {
        erase_record(i);
        fx.apply.push_back(local_op{local_op::kind::remove, x.id, 0, {}, false, {}});
        ++fx.log.copies_removed;
      } else {
        if (r.tombstone) {
          tombstones_.erase({r.tombstone_seq, x.id});
          r.tombstone = false;
        }
        r.adopted = true;
        r.revision = x.revision;
        r.services = x.services;
        r.announcer = 0; // written by another than the client actor
        renew(r, source, now_ms);
        r.vouched_ms = 0;
        r.beats = beats;
        r.raised.clear();
        fx.apply.push_back(
          local_op{local_op::kind::replace, x.id, r.revision, r.services, true, std::move(beats)});
        ++fx.log.copies_applied;
      }
    } else {
      ++fx.log.conflicts; // our own state wins; our verify repairs the sender's view
    }
    return;
  }
  if (auto owner = session_owner(x.id); owner && *owner == self_) {
    // A session of this node that it does not hold: it ended with a previous run of this node.
    DISTRO_CHECK(i == records_.end()); // a session of self is always local
    if (!x.deleted) {
      ++fx.log.stale_sessions;
      make_tombstone(x.id, now_ms); // bounded by tombstones_max; else the copies simply expire
    }
    return;
  }
  if (i != records_.end() && i->second.tombstone) {
    // We deleted a client that another node is responsible for now: its data wins over our delete.
    erase_record(i);
    i = records_.end();
  }
  if (x.deleted) {
    if (i != records_.end()) {
      erase_record(i);
      fx.apply.push_back(local_op{local_op::kind::remove, x.id, 0, {}, false, {}});
      ++fx.log.copies_removed;
    }
    return;
  }
  if (i != records_.end()) {
    auto& r = i->second;
    renew(r, source, now_ms);
    r.beats = beats; // newer clocks even when the content is the same
    if (r.revision == x.revision)
      return;
    r.vouched_ms = 0;
    r.revision = x.revision;
    r.services = x.services;
    r.announcer = 0; // written by another than the client actor
    fx.apply.push_back(local_op{local_op::kind::replace, x.id, r.revision, r.services, false, {}});
    ++fx.log.copies_applied;
    return;
  }
  if (live_count() >= cfg_.clients_max) {
    ++fx.log.copies_refused;
    return;
  }
  record r;
  r.revision = x.revision;
  r.services = x.services;
  r.announcer = 0; // written by another than the client actor
  r.local = responsible_node(x.id) == self_;
  r.adopted = r.local;
  renew(r, source, now_ms);
  r.beats = beats;
  fx.apply.push_back(local_op{local_op::kind::replace, x.id, r.revision, r.services, r.local,
                              r.local ? std::move(beats) : client_beats{}});
  ++fx.log.copies_applied;
  records_.emplace(x.id, std::move(r));
}

void distro_protocol::make_tombstone(const client_id& id, time_ms now_ms) {
  auto& r = records_[id];
  DISTRO_CHECK(!r.tombstone);
  r.tombstone_seq = next_tombstone_seq_++;
  tombstones_.emplace(r.tombstone_seq, id);
  r.revision = 0;
  r.services.clear();
  r.announcer = 0; // written by another than the client actor
  r.beats.clear();
  r.raised.clear();
  r.vouched_ms = 0;
  r.tombstone = true;
  r.adopted = false;
  r.local = responsible_node(id) == self_;
  renew(r, self_, now_ms);
  // Only alive peers wait for a delete: a DOWN peer's copy expires by itself (see the file comment).
  for (auto& [name, p] : peers_) {
    if (is_alive(p.state))
      p.pending.insert(id);
    else
      p.pending.erase(id);
  }
  gc_tombstone(id); // without alive peers nobody waits for it
  while (tombstones_.size() > cfg_.tombstones_max) {
    // Over the bound: the oldest delete is given up; the peers' copies expire.
    auto oldest = records_.find(tombstones_.begin()->second);
    DISTRO_CHECK(oldest != records_.end() && oldest->second.tombstone);
    erase_record(oldest);
  }
}

void distro_protocol::drop_down_deletes(peer_state& p) {
  DISTRO_CHECK(!p.in_flight);
  std::vector<client_id> dropped;
  for (auto i = p.pending.begin(); i != p.pending.end();) {
    auto ri = records_.find(*i);
    if (ri != records_.end() && ri->second.tombstone) {
      dropped.push_back(*i);
      i = p.pending.erase(i);
    } else {
      ++i;
    }
  }
  for (const auto& id : dropped)
    gc_tombstone(id);
}

std::size_t distro_protocol::live_count() const {
  DISTRO_CHECK(tombstones_.size() <= records_.size());
  return records_.size() - tombstones_.size();
}

void distro_protocol::erase_record(record_map::iterator i) {
  for (auto& [name, p] : peers_)
    p.pending.erase(i->first);
  if (i->second.tombstone)
    tombstones_.erase({i->second.tombstone_seq, i->first});
  records_.erase(i);
}

void distro_protocol::gc_tombstone(const client_id& id) {
  auto i = records_.find(id);
  if (i == records_.end() || !i->second.tombstone)
    return;
  for (const auto& [name, p] : peers_)
    if (p.pending.count(id) > 0 || (p.in_flight && p.in_flight->ids.count(id) > 0))
      return;
  erase_record(i);
}

void distro_protocol::mark_pending_all(const client_id& id) {
  DISTRO_CHECK(records_.count(id) > 0);
  for (auto& [name, p] : peers_)
    p.pending.insert(id);
}

void distro_protocol::send_verify(const std::string& name, peer_state& p,
                                  const distro::verify_batch& batch, time_ms now_ms, effects& fx) {
  DISTRO_CHECK(ready_);
  DISTRO_CHECK(!p.verify_in_flight);
  outgoing_verify out;
  out.peer = name;
  out.verify_id = next_id_++;
  out.batch = batch;
  p.verify_in_flight =
    verify_attempt{out.verify_id, now_ms, batch.digests.empty() ? 0 : batch.buckets};
  ++fx.log.verify_sent;
  fx.verifies.push_back(std::move(out));
}

std::uint64_t distro_protocol::id_hash_of(const client_id& id, const record& r) const {
  if (r.id_hash == 0)
    r.id_hash = verify_id_hash(id);
  return r.id_hash;
}

distro::verify_batch distro_protocol::verify_of_local() const {
  distro::verify_batch result;
  result.source = self_;
  auto responsible = [](const record& r) { return r.local && !r.tombstone; };
  // A full list of a few clients is no longer than the digests; count only up to that bound, so
  // a node with many clients copies none of their ids.
  std::size_t few = cfg_.verify_buckets / 8, count = 0;
  for (auto i = records_.begin(); i != records_.end() && count <= few; ++i)
    count += responsible(i->second) ? 1 : 0;
  if (count <= few) {
    for (const auto& [id, r] : records_)
      if (responsible(r))
        result.clients.push_back(distro::client_revision{id, r.revision});
    return result;
  }
  result.buckets = cfg_.verify_buckets;
  result.digests.assign(result.buckets, 0);
  for (const auto& [id, r] : records_)
    if (responsible(r)) {
      auto h = id_hash_of(id, r);
      result.digests[verify_bucket_of(h, result.buckets)] += verify_share_of(h, r.revision);
    }
  return result;
}

distro::verify_batch distro_protocol::verify_for_peer(const distro::verify_batch& all,
                                                      const peer_state& p) const {
  if (all.digests.empty())
    return all; // a full list: every client at its newest revision already
  auto result = all;
  auto add = [&](const client_id& id) {
    auto ri = records_.find(id);
    if (ri == records_.end() || (!ri->second.local && !ri->second.tombstone))
      return; // a copy: the peer's pending set may hold a handed-over client; not ours to list
    const auto& r = ri->second;
    if (r.tombstone) {
      result.clients.push_back(distro::client_revision{id, 0});
      return;
    }
    auto h = id_hash_of(id, r);
    result.digests[verify_bucket_of(h, result.buckets)] -= verify_share_of(h, r.revision);
    result.clients.push_back(distro::client_revision{id, r.revision});
  };
  for (const auto& id : p.pending)
    add(id);
  if (p.in_flight)
    for (const auto& id : p.in_flight->ids)
      if (p.pending.count(id) == 0)
        add(id);
  return result;
}

distro::verify_batch
distro_protocol::verify_detail(std::uint32_t buckets,
                               const std::vector<std::uint32_t>& differing) const {
  distro::verify_batch result;
  result.source = self_;
  result.buckets = buckets;
  std::vector<bool> asked(buckets, false);
  for (auto b : differing)
    if (b < buckets && !asked[b]) {
      asked[b] = true;
      result.listed.push_back(b);
    }
  for (const auto& [id, r] : records_)
    if (r.local && !r.tombstone && asked[verify_bucket_of(id_hash_of(id, r), buckets)])
      result.clients.push_back(distro::client_revision{id, r.revision});
  return result;
}

void distro_protocol::fail_sync(peer_state& p, time_ms now_ms, effects& fx) {
  DISTRO_CHECK(p.in_flight.has_value());
  // Back into the pending set; the next batch reads the then newest state of each.
  for (const auto& id : p.in_flight->ids)
    if (records_.count(id) > 0)
      p.pending.insert(id);
  // A batch that failed (mostly: not answered in time by a busy peer) is resent in halves, so a
  // loaded peer is not sent the same large batch again and again.
  p.batch_limit = std::max<std::size_t>(1, std::min(batch_limit(p), p.in_flight->ids.size()) / 2);
  p.in_flight.reset();
  ++p.failure_streak;
  p.next_send_ms = now_ms + cfg_.sync_retry_delay_ms;
  ++fx.log.batches_failed;
}

void distro_protocol::ask_snapshot_chunk(const std::string& peer, client_id after, time_ms now_ms,
                                         effects& fx) {
  if (!attempt_ || attempt_->peer != peer)
    attempt_ = snapshot_attempt{peer, 0, 0, {}, 0, 0};
  DISTRO_CHECK(after.empty() || after > attempt_->request.after); // every chunk moves on
  attempt_->id = next_id_++;
  attempt_->sent_ms = now_ms;
  attempt_->request = distro::snapshot_request{self_, std::move(after),
                                               cfg_.snapshot_chunk_clients_max,
                                               cfg_.snapshot_chunk_instances_max};
  fx.snapshot_requests.push_back(outgoing_snapshot_request{peer, attempt_->id, attempt_->request});
}

void distro_protocol::snapshot_complete(const std::string& peer, time_ms now_ms, effects& fx) {
  DISTRO_CHECK(attempt_ && attempt_->peer == peer);
  fx.log.snapshot_loaded = snapshot_loaded_event{peer, attempt_->clients, attempt_->chunks,
                                                 now_ms - started_ms_};
  attempt_.reset();
  tried_.clear();
  ready_ = true;
  fx.ready_changed = true;
  next_verify_ms_ = now_ms;
  remap(now_ms, fx); // self joins the routing list: the copies it is responsible for become local
}

void distro_protocol::fail_snapshot_attempt(effects& fx) {
  DISTRO_CHECK(attempt_.has_value());
  tried_.insert(attempt_->peer);
  attempt_.reset();
  ++fx.log.snapshot_failures;
}

void distro_protocol::peer_came_up(peer_state& p, const std::string& name, time_ms now_ms,
                                   effects& fx) {
  // Pending changes go out at once; a retry delay from before the outage no longer applies.
  p.next_send_ms = now_ms;
  if (ready_ && !p.verify_in_flight)
    // Tells the peer at once that we are ready.
    send_verify(name, p, verify_for_peer(verify_of_local(), p), now_ms, fx);
  if (!ready_ && !attempt_) {
    tried_.erase(name);
    next_attempt_ms_ = std::min(next_attempt_ms_, now_ms);
  }
}

void distro_protocol::peer_went_down(peer_state& p, const std::string& name, time_ms now_ms,
                                     effects& fx) {
  if (p.in_flight)
    fail_sync(p, now_ms, fx);
  drop_down_deletes(p);
  p.verify_in_flight.reset();
  // Whatever comes back may be a new run of that node: it must prove readiness again. Not so for
  // a member that only stopped answering on an open connection: that is still the same run.
  if (!p.unresponsive) {
    p.ready = false;
    p.unavailable = false;
  }
  if (attempt_ && attempt_->peer == name)
    fail_snapshot_attempt(fx);
}

void distro_protocol::set_peer_ready(peer_state& p, const std::string& name, bool ready,
                                     time_ms now_ms) {
  bool learned = ready && !p.ready;
  p.ready = ready;
  if (ready)
    p.unavailable = false;
  if (learned && !ready_ && !attempt_ && is_alive(p.state)) {
    // A peer just proved it is ready while we are still loading: ask it now.
    tried_.erase(name);
    next_attempt_ms_ = std::min(next_attempt_ms_, now_ms);
  }
}

void distro_protocol::remap(time_ms now_ms, effects& fx) {
  auto routing = compute_routing();
  if (routing == routing_)
    return;
  routing_ = std::move(routing);
  fx.routing_changed = routing_;
  for (auto& [id, r] : records_) {
    bool local = responsible_node(id) == self_;
    if (local == r.local)
      continue;
    r.local = local;
    if (r.tombstone)
      continue; // still sent to every peer; nothing to tell a client actor
    if (local) {
      r.adopted = true;
      // The beat clocks continue where the previous owner left them (as far as it reported them),
      // raised to its last vouch for a healthy copy (see Beat clocks in the header).
      fx.apply.push_back(
        local_op{local_op::kind::take_over, id, r.revision, {}, true, take_over_beats(r)});
      ++fx.log.taken_over;
    } else {
      r.adopted = false;
      r.raised.clear();
      r.vouched_ms = 0;
      // A fresh expiry clock: the new owner's verify has a full expiry time to reach us.
      renew(r, r.source, now_ms);
      // The new owner may lack our latest state: send it there.
      if (auto pi = peers_.find(responsible_node(id)); pi != peers_.end())
        pi->second.pending.insert(id);
      fx.apply.push_back(local_op{local_op::kind::hand_over, id, r.revision, {}, false, {}});
      ++fx.log.handed_over;
    }
  }
}

std::size_t distro_protocol::batch_limit(const peer_state& p) const {
  return p.batch_limit == 0 ? cfg_.sync_batch_clients_max
                            : std::min(p.batch_limit, cfg_.sync_batch_clients_max);
}

std::vector<std::string> distro_protocol::compute_routing() const {
  std::vector<std::string> result;
  if (ready_)
    result.push_back(self_);
  for (const auto& [name, p] : peers_)
    if (is_alive(p.state) && p.ready)
      result.push_back(name);
  if (result.empty())
    result.push_back(self_);
  std::sort(result.begin(), result.end());
  return result;
}

bool distro_protocol::lone(time_ms now_ms) const {
  if (now_ms < started_ms_ + cfg_.lone_ready_wait_ms)
    return false;
  for (const auto& [name, p] : peers_)
    if (is_alive(p.state) && !p.unavailable)
      return false;
  return true;
}

distro::client_data distro_protocol::to_data(const client_id& id, const record& r,
                                             time_ms now_ms) const {
  distro::client_data result;
  result.id = id;
  result.deleted = r.tombstone;
  if (!r.tombstone) {
    result.revision = r.revision;
    result.services = r.services;
    result.beats = to_ages(r.beats, now_ms);
  }
  result.owner = responsible_node(id);
  return result;
}

client_beats distro_protocol::take_over_beats(record& r) const {
  DISTRO_CHECK(r.local && !r.tombstone);
  auto result = r.beats;
  r.raised.clear();
  auto vouched_ms = std::exchange(r.vouched_ms, 0);
  if (vouched_ms == 0)
    return result;
  for (const auto& [key, xs] : r.services) {
    auto bi = r.beats.find(key);
    if (bi == r.beats.end())
      continue;
    for (const auto& x : xs) {
      // Healthy in the vouched content: its owner saw a beat within about an unhealthy timeout.
      if (!x.healthy)
        continue;
      auto ident = instance_identity(x.ip, x.port, x.cluster);
      auto mi = bi->second.find(ident);
      if (mi == bi->second.end() || mi->second.marked_unhealthy)
        continue; // unknown: the client actor starts it at the take-over anyway
      auto known_ms = mi->second.last_beat_ms;
      // Bounded over the last beat known: a dead instance lives at most one unhealthy timeout
      // longer, also when the vouch itself came from a raised clock.
      auto raised_ms =
        std::max(known_ms, std::min(vouched_ms, known_ms + cfg_.beat_unhealthy_timeout_ms));
      if (raised_ms == known_ms)
        continue;
      result[key][ident].last_beat_ms = raised_ms;
      r.raised[key][ident] = beat_mark{raised_ms, false};
    }
  }
  return result;
}

client_beats distro_protocol::real_beats(record& r, client_beats reported) const {
  // A raised clock reported unchanged means no beat since the take-over: the last real beat
  // stands. Any other value is a beat (or the instance is gone): the raise is over.
  for (auto ki = r.raised.begin(); ki != r.raised.end();) {
    auto ri = reported.find(ki->first);
    auto bi = r.beats.find(ki->first);
    auto& marks = ki->second;
    for (auto ii = marks.begin(); ii != marks.end();) {
      bool still = false;
      if (ri != reported.end() && bi != r.beats.end()) {
        auto rep = ri->second.find(ii->first);
        auto known = bi->second.find(ii->first);
        still = rep != ri->second.end() && known != bi->second.end()
                && rep->second.last_beat_ms == ii->second.last_beat_ms;
        if (still)
          rep->second.last_beat_ms = known->second.last_beat_ms;
      }
      ii = still ? std::next(ii) : marks.erase(ii);
    }
    ki = marks.empty() ? r.raised.erase(ki) : std::next(ki);
  }
  return reported;
}

void distro_protocol::forget_raised_below(record& r) const {
  // A later beat arrived from elsewhere: the raise of that instance is over.
  for (auto ki = r.raised.begin(); ki != r.raised.end();) {
    auto bi = r.beats.find(ki->first);
    auto& marks = ki->second;
    for (auto ii = marks.begin(); ii != marks.end();) {
      bool over = false;
      if (bi != r.beats.end())
        if (auto known = bi->second.find(ii->first); known != bi->second.end())
          over = known->second.last_beat_ms >= ii->second.last_beat_ms;
      ii = over ? marks.erase(ii) : std::next(ii);
    }
    ki = marks.empty() ? r.raised.erase(ki) : std::next(ki);
  }
}

} // namespace registry
