#include "actors/service/service_actor.hpp"

#include <caf/all.hpp>

#include "actors/common/clock.hpp"
#include "actors/common/handlers.hpp"
#include "actors/common/log.hpp"
#include "actors/service/service_index.hpp"
#include "config/defaults.hpp"
#include "messages/convert.hpp"
#include "messages/model_inspect.hpp"
#include "messages/type_ids.hpp"

namespace registry {

namespace {

using namespace wire;

struct subscriber_entry {
  client_id owner;
  std::string clusters;
  subscriber_actor handle;
};

struct service_state {
  static inline const char* name = "service";

  std::unique_ptr<service_index> index;
  std::unique_ptr<push_scheduler> pushes;
  service_settings settings;
  gateway_actor parent;
  std::map<subscriber_id, subscriber_entry> subscribers;
  std::map<std::pair<client_id, std::string>, subscriber_id> subscriber_ids;
  subscriber_id next_subscriber_id = 1;
  std::uint64_t timer_generation = 0;
  std::optional<time_ms> timer_due;
  /// Encoded ServiceInfo per cluster filter, valid for `cache_revision`.
  std::map<std::string, envelope> encoded;
  std::uint64_t cache_revision = ~std::uint64_t{0};
  bool stats_pending = false; ///< a flush_atom is queued (see report_stats)
};

using service_actor_t = service_actor::stateful_base<service_state>;

std::vector<std::string> split_clusters(const std::string& clusters) {
  std::vector<std::string> result;
  std::string::size_type start = 0;
  while (start <= clusters.size() && !clusters.empty()) {
    auto comma = clusters.find(',', start);
    auto item = clusters.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty())
      result.push_back(item);
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return result;
}

std::string join_clusters(const google::protobuf::RepeatedPtrField<std::string>& xs) {
  std::vector<std::string> sorted(xs.begin(), xs.end());
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string result;
  for (auto& x : sorted) {
    if (!result.empty())
      result += ',';
    result += x;
  }
  return result;
}

/// The protected view for one cluster filter, encoded once per index revision.
const envelope& view(service_actor_t* self, const std::string& clusters) {
  auto& st = self->state;
  // Bounded: one-off cluster filters must not grow the cache without limit.
  if (st.cache_revision != st.index->revision()
      || st.encoded.size() >= defaults::encoded_views_per_service_max) {
    st.encoded.clear();
    st.cache_revision = st.index->revision();
  }
  auto i = st.encoded.find(clusters);
  if (i != st.encoded.end())
    return i->second;
  selection sel;
  sel.clusters = split_clusters(clusters);
  auto info = st.index->select(sel, st.settings.protect_threshold, system_now_ms(),
                               st.settings.cache_millis);
  v1::ServiceInfo msg;
  to_wire(info, msg);
  return st.encoded.emplace(clusters, pack(msg)).first->second;
}

/// The console's view of the service (ServiceDetail); owners are the gateway's to fill in.
envelope detail(service_actor_t* self) {
  auto& st = self->state;
  v1::ServiceDetail out;
  to_wire(st.index->key(), *out.mutable_service());
  for (auto& [client, x] : st.index->all_with_clients()) {
    auto* d = out.add_instances();
    to_wire(x, *d->mutable_instance());
    d->set_client_id(client);
  }
  for (auto& [id, sub] : st.subscribers) {
    auto* s = out.add_subscribers();
    s->set_client_id(sub.owner);
    s->set_clusters(sub.clusters);
  }
  out.set_protect_threshold(st.settings.protect_threshold);
  auto info = st.index->select({}, st.settings.protect_threshold, system_now_ms(),
                               st.settings.cache_millis);
  out.set_reach_protection_threshold(info.reach_protection_threshold);
  out.set_persistent(st.index->holds_persistent());
  return pack(out);
}

/// Reports the counts to the gateway, once per burst of changes (see flush_stats).
void report_stats(service_actor_t* self) {
  auto& st = self->state;
  if (st.stats_pending)
    return;
  st.stats_pending = true;
  self->send(self, flush_atom_v);
}

void flush_stats(service_actor_t* self) {
  auto& st = self->state;
  st.stats_pending = false;
  self->send(st.parent, svc_stats_atom_v, st.index->key(),
             static_cast<std::uint64_t>(st.index->instance_count()),
             static_cast<std::uint64_t>(st.subscribers.size()));
}

void carry_out(service_actor_t* self, const push_scheduler::effects& fx);

void push_to(service_actor_t* self, subscriber_id id) {
  auto& st = self->state;
  auto i = st.subscribers.find(id);
  if (i == st.subscribers.end())
    return;
  auto handle = i->second.handle;
  auto owner = i->second.owner;
  self->request(handle, std::chrono::milliseconds(st.settings.push_timeout_ms), push_atom_v,
                view(self, i->second.clusters))
    .then(
      [=](const envelope&) {
        carry_out(self, self->state.pushes->on_push_result(id, true, actor_now_ms(self)));
      },
      [=](caf::error& err) {
        log().warn("service {} failed push to client {}: {}; retrying",
                   bounded(self->state.index->key().to_string()), bounded(owner),
                   self->system().render(err));
        carry_out(self, self->state.pushes->on_push_result(id, false, actor_now_ms(self)));
      });
}

void arm_timer(service_actor_t* self, time_ms due) {
  auto& st = self->state;
  if (st.timer_due && *st.timer_due <= due)
    return; // an earlier timer is armed; it re-arms for later work
  st.timer_due = due;
  auto gen = ++st.timer_generation;
  auto delay = std::max<time_ms>(0, due - actor_now_ms(self));
  self->delayed_send(self, std::chrono::milliseconds(delay), tick_atom_v, gen);
}

void forget_subscriber(service_actor_t* self, subscriber_id id) {
  auto& st = self->state;
  auto i = st.subscribers.find(id);
  if (i == st.subscribers.end())
    return;
  st.subscriber_ids.erase({i->second.owner, i->second.clusters});
  st.subscribers.erase(i);
  st.pushes->remove_subscriber(id);
}

void carry_out(service_actor_t* self, const push_scheduler::effects& fx) {
  for (auto id : fx.push_to)
    push_to(self, id);
  for (auto id : fx.dropped) {
    auto& st = self->state;
    auto i = st.subscribers.find(id);
    if (i != st.subscribers.end()) {
      auto reason = "no push acknowledged for " + std::to_string(st.settings.push.drop_after_ms)
                    + " ms";
      log().warn("service {} dropped subscriber {}: {}", bounded(st.index->key().to_string()),
                 bounded(i->second.owner), reason);
      // Tell it, so that it subscribes again; it may be gone, so the answer does not matter.
      v1::SubscriptionDropped msg;
      to_wire(st.index->key(), *msg.mutable_service());
      msg.set_clusters(i->second.clusters);
      msg.set_reason(reason);
      self->request(i->second.handle, std::chrono::milliseconds(st.settings.push_timeout_ms),
                    push_atom_v, pack(msg))
        .then([](const envelope&) {}, [](const caf::error&) {});
    }
    forget_subscriber(self, id);
  }
  if (!fx.dropped.empty())
    report_stats(self);
  if (fx.wake_at)
    arm_timer(self, *fx.wake_at);
}

/// Puts what `client` publishes here into the index, as a svc_put does: the refusal, or nothing
/// (`put` becomes true when the index changed).
std::optional<envelope> put_entry(service_actor_t* self, const client_id& client,
                                  instance_list& xs, bool& put) {
  auto& st = self->state;
  // A service is ephemeral or persistent by its first instance; refuse mixing (Nacos 2.x).
  // Persistent instances are committed through Raft already: they are shown regardless.
  if (!xs.empty() && !is_persistent_client(client) && st.index->holds_persistent())
    return pack(make_error(v1::Error::INVALID_ARGUMENT, "ephemeral",
                           "Current service " + st.index->key().grouped_name()
                             + " is persistent service, can't register ephemeral instance."));
  if (!xs.empty() && is_persistent_client(client) && st.index->holds_ephemeral())
    log().warn("service {} holds ephemeral and persistent instances",
               st.index->key().to_string());
  auto total = st.index->instance_count() - st.index->count_of(client) + xs.size();
  if (total > st.settings.instances_max)
    return pack(make_error(v1::Error::LIMIT_EXCEEDED, "instances",
                           "service " + st.index->key().grouped_name() + " would hold "
                             + std::to_string(total) + " instances, the limit is "
                             + std::to_string(st.settings.instances_max)));
  if (st.index->put(client, std::move(xs)))
    put = true;
  return std::nullopt;
}

void changed(service_actor_t* self) {
  if (self->state.settings.push_enabled)
    carry_out(self, self->state.pushes->on_change(actor_now_ms(self)));
  report_stats(self);
}

service_actor::behavior_type service_behavior(service_actor_t* self, service_key key,
                                              service_settings settings, gateway_actor parent) {
  auto& st = self->state;
  st.index = std::make_unique<service_index>(key);
  st.pushes = std::make_unique<push_scheduler>(settings.push);
  st.settings = settings;
  st.parent = parent;
  install_default_handlers(self, "service");
  // The service lives as long as its parent (the gateway).
  self->monitor(parent);
  // The gateway stops idle services. The monitor lives in the gateway, which outlives every
  // service, and would keep this actor's memory: it goes first.
  self->set_exit_handler([self](caf::exit_msg& em) {
    if (!from_this_node(self)) {
      log_foreign("service", "an exit message", sender_text(self));
      return;
    }
    if (em.reason) {
      self->demonitor(self->state.parent.address());
      self->quit(em.reason);
    }
  });
  self->set_down_handler([=](caf::down_msg& dm) {
    if (trusted_down(self, dm) && dm.source == self->state.parent.address())
      self->quit(dm.reason);
  });
  return {
    [=](svc_put_atom, const service_key&, const client_id& client,
        instance_list& xs) -> envelope {
      if (!local_only(self, "service", "svc_put"))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request", "not accepted from another process"));
      bool put = false;
      if (auto refusal = put_entry(self, client, xs, put))
        return *refusal;
      if (put)
        changed(self);
      return pack(v1::Ack{});
    },
    [=](svc_bulk_atom, service_entries_ptr& entries) {
      if (!local_only(self, "service", "svc_bulk") || !entries)
        return;
      // Every entry as a svc_put of its own, but one change (one revision of the views, one push
      // round) for the whole message.
      bool put = false;
      std::size_t refused = 0;
      std::optional<envelope> first_refusal;
      for (auto& [client, xs] : *entries)
        if (auto refusal = put_entry(self, client, xs, put)) {
          if (refused++ == 0)
            first_refusal = std::move(refusal);
        }
      if (put)
        changed(self);
      if (refused > 0) {
        v1::Error err;
        unpack(*first_refusal, err);
        log().warn("service {} refused {} of {} replicas: {}",
                   bounded(self->state.index->key().to_string()), refused, entries->size(),
                   bounded(err.message(), 4 * defaults::log_name_chars_max));
      }
    },
    [=](kind_atom) -> std::int32_t {
      if (!local_only(self, "service", "kind"))
        return 0;
      auto& index = *self->state.index;
      return index.holds_persistent() ? 2 : index.holds_ephemeral() ? 1 : 0;
    },
    [=](threshold_atom, double value) {
      if (!local_only(self, "service", "threshold"))
        return;
      auto& st = self->state;
      if (st.settings.protect_threshold == value)
        return;
      st.settings.protect_threshold = value;
      // Protection may now be reached or left: the views change without an index change.
      st.encoded.clear();
      st.cache_revision = ~std::uint64_t{0};
      changed(self);
    },
    [=](svc_drop_atom, const client_id& client) {
      if (!local_only(self, "service", "svc_drop"))
        return;
      auto& st = self->state;
      std::vector<subscriber_id> ids;
      for (auto& [id, entry] : st.subscribers)
        if (entry.owner == client)
          ids.push_back(id);
      for (auto id : ids)
        forget_subscriber(self, id);
      if (st.index->remove_client(client))
        changed(self);
      else if (!ids.empty())
        report_stats(self);
    },
    [=](svc_sub_atom, const client_id& client, const std::string& clusters,
        subscriber_actor subscriber) -> envelope {
      if (!local_only(self, "service", "svc_sub"))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request",
                               "not accepted from another process"));
      auto& st = self->state;
      auto k = std::make_pair(client, clusters);
      auto i = st.subscriber_ids.find(k);
      if (i == st.subscriber_ids.end()) {
        if (st.subscribers.size() >= st.settings.subscribers_max)
          return pack(make_error(v1::Error::LIMIT_EXCEEDED, "subscribers",
                                 "service " + st.index->key().grouped_name() + " has "
                                   + std::to_string(st.subscribers.size())
                                   + " subscribers, the limit is "
                                   + std::to_string(st.settings.subscribers_max)));
        auto id = st.next_subscriber_id++;
        st.subscriber_ids.emplace(k, id);
        st.subscribers.emplace(id, subscriber_entry{client, clusters, std::move(subscriber)});
        st.pushes->add_subscriber(id);
        log().debug("service {} added subscriber {}{}", bounded(st.index->key().to_string()),
                    bounded(client), clusters.empty() ? "" : " for clusters " + bounded(clusters));
        report_stats(self);
      } else {
        st.subscribers[i->second].handle = std::move(subscriber);
      }
      return view(self, clusters);
    },
    [=](svc_unsub_atom, const client_id& client, const std::string& clusters) -> envelope {
      if (!local_only(self, "service", "svc_unsub"))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request", "not accepted from another process"));
      auto& st = self->state;
      auto i = st.subscriber_ids.find({client, clusters});
      if (i != st.subscriber_ids.end()) {
        forget_subscriber(self, i->second);
        report_stats(self);
      }
      return pack(v1::Ack{});
    },
    [=](query_atom, const envelope& env) -> envelope {
      if (holds<v1::ServiceDetailRequest>(env))
        return detail(self);
      v1::QueryRequest req;
      if (!unpack(env, req))
        return pack(make_error(v1::Error::INVALID_ARGUMENT, "request", "malformed QueryRequest"));
      auto& st = self->state;
      selection sel;
      sel.clusters.assign(req.clusters().begin(), req.clusters().end());
      sel.healthy_only = req.healthy_only();
      if (!sel.healthy_only)
        return view(self, join_clusters(req.clusters()));
      auto info = st.index->select(sel, st.settings.protect_threshold, system_now_ms(),
                                   st.settings.cache_millis);
      v1::ServiceInfo msg;
      to_wire(info, msg);
      return pack(msg);
    },
    // Everything the gateway sent before is in the index.
    [=](barrier_atom) { return local_only(self, "service", "barrier"); },
    [=](flush_atom) {
      if (local_only(self, "service", "flush"))
        flush_stats(self);
    },
    [=](tick_atom, std::uint64_t generation) {
      if (!local_only(self, "service", "tick"))
        return;
      auto& st = self->state;
      if (generation != st.timer_generation)
        return;
      st.timer_due.reset();
      carry_out(self, st.pushes->on_tick(actor_now_ms(self)));
    },
  };
}

} // namespace

service_actor spawn_service_actor(caf::actor_system& sys, service_key key,
                                  service_settings settings, gateway_actor parent) {
  return sys.spawn(service_behavior, std::move(key), std::move(settings), std::move(parent));
}

} // namespace registry
