#pragma once
/// A client actor's routes to its service actors (no CAF).
///
/// A client sends its service updates (put, drop, subscribe) straight to the service actor of each
/// service; the gateway only finds or creates that actor, once per service: the first update of a
/// service goes through the gateway (which finds or creates the actor and hands the update on),
/// and the actor's answer names it, resolving the route. A route is one of:
///
///     (none) --submit--> resolving --resolved(h)--> resolved(h) --forget--> (none)
///                            |                          |
///                            +--failed-->  (none)       +--evicted (idle, at the bound)--> (none)
///
/// While a route is resolving, the client's updates for that service wait in its queue, in the
/// order they were submitted, and go out in that order once the handle is known: together with the
/// FIFO order of one sender's messages to one receiver, a client's updates reach its service in the
/// order it made them (a drop never overtakes a put). Every update carries the client's whole state
/// in the service, so an update lost to a service actor that went away is repaired by sending the
/// current state to its successor (the actor's job: it monitors every resolved handle).
///
/// Bounds: at most `routes_max` routes (overflow: a resolved route with nothing queued that the
/// caller calls idle is forgotten; with none, the update is refused) and `queued_max` updates per
/// resolving route (overflow: refused). A refused update is handed back to the caller.

#include <cstddef>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "messages/model.hpp"

namespace registry {

template <class Handle, class Op>
class service_routes {
public:
  // -- member types ----------------------------------------------------------------------------

  enum class outcome {
    resolve, ///< a new route, resolving: the caller sends `op` through the gateway now
    queued,  ///< the route is resolving already: `op` waits behind the updates before it
    full,    ///< refused (route table or queue full): `op` is left with the caller
  };

  struct enqueue_result {
    outcome what;
    /// A route forgotten to make room; its handle is no longer used (the caller stops monitoring).
    std::optional<Handle> evicted;
  };

  // -- constructors ----------------------------------------------------------------------------

  service_routes(std::size_t routes_max, std::size_t queued_max)
    : routes_max_(routes_max), queued_max_(queued_max) {
    // nop
  }

  // -- lookups ---------------------------------------------------------------------------------

  /// The handle for `key` when its route is resolved, else nullptr (no route, or resolving).
  const Handle* find(const service_key& key) const {
    auto i = routes_.find(key);
    return i == routes_.end() || !i->second.handle ? nullptr : &*i->second.handle;
  }

  /// Whether `key` has a route (resolved or resolving).
  bool has_route(const service_key& key) const {
    return routes_.count(key) > 0;
  }

  bool resolving(const service_key& key) const {
    auto i = routes_.find(key);
    return i != routes_.end() && !i->second.handle;
  }

  std::size_t size() const {
    return routes_.size();
  }

  std::size_t queued(const service_key& key) const {
    auto i = routes_.find(key);
    return i == routes_.end() ? 0 : i->second.queue.size();
  }

  // -- updates ---------------------------------------------------------------------------------

  /// An update for `key` whose route is not resolved (find() returned nullptr). `idle(key)` says
  /// whether the client holds nothing in a service, so that its route may be forgotten to make
  /// room. `op` is moved from only when queued (outcome queued).
  template <class IdlePredicate>
  enqueue_result enqueue(const service_key& key, Op&& op, IdlePredicate idle) {
    enqueue_result result{outcome::full, std::nullopt};
    auto i = routes_.find(key);
    if (i != routes_.end()) {
      if (i->second.handle || i->second.queue.size() >= queued_max_)
        return result; // a resolved route takes no queue: the caller sends at once
      i->second.queue.push_back(std::move(op));
      result.what = outcome::queued;
      return result;
    }
    if (routes_.size() >= routes_max_) {
      auto victim = routes_.end();
      for (auto j = routes_.begin(); j != routes_.end(); ++j)
        if (j->second.handle && j->second.queue.empty() && idle(j->first)) {
          victim = j;
          break;
        }
      if (victim == routes_.end())
        return result;
      result.evicted = std::move(victim->second.handle);
      routes_.erase(victim);
    }
    routes_[key];
    result.what = outcome::resolve;
    return result;
  }

  /// The handle of `key` is known: the route is resolved; returns the queued updates, oldest
  /// first, for the caller to send in that order. Nothing happens for a route that is not
  /// resolving (it was forgotten meanwhile): the updates are empty then.
  std::vector<Op> resolved(const service_key& key, Handle handle) {
    auto i = routes_.find(key);
    if (i == routes_.end() || i->second.handle)
      return {};
    i->second.handle = std::move(handle);
    return std::exchange(i->second.queue, {});
  }

  /// The handle of `key` could not be found: the route goes; returns its queued updates to fail.
  std::vector<Op> failed(const service_key& key) {
    auto i = routes_.find(key);
    if (i == routes_.end() || i->second.handle)
      return {};
    auto result = std::move(i->second.queue);
    routes_.erase(i);
    return result;
  }

  /// Forgets every resolved route whose handle matches `pred` (its service actor went away);
  /// returns their keys. The next update of such a service resolves it again.
  template <class Predicate>
  std::vector<service_key> forget_if(Predicate pred) {
    std::vector<service_key> result;
    for (auto i = routes_.begin(); i != routes_.end();) {
      if (i->second.handle && pred(*i->second.handle)) {
        result.push_back(i->first);
        i = routes_.erase(i);
      } else {
        ++i;
      }
    }
    return result;
  }

  /// Forgets every route (the client ends): returns the resolved handles and the queued updates.
  std::pair<std::vector<Handle>, std::vector<Op>> clear() {
    std::pair<std::vector<Handle>, std::vector<Op>> result;
    for (auto& kv : routes_) {
      if (kv.second.handle)
        result.first.push_back(std::move(*kv.second.handle));
      for (auto& op : kv.second.queue)
        result.second.push_back(std::move(op));
    }
    routes_.clear();
    return result;
  }

private:
  struct route {
    std::optional<Handle> handle; ///< none while resolving
    std::vector<Op> queue;        ///< waiting for the handle, oldest first
  };

  std::size_t routes_max_;
  std::size_t queued_max_;
  std::map<service_key, route> routes_;
};

} // namespace registry
