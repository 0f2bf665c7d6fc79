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
    auto i = resolved_.find(key);
    return i == resolved_.end() ? nullptr : &i->second;
  }

  /// Whether `key` has a route (resolved or resolving).
  bool has_route(const service_key& key) const {
    return resolved_.count(key) > 0 || resolving_.count(key) > 0;
  }

  bool resolving(const service_key& key) const {
    return resolving_.count(key) > 0;
  }

  std::size_t size() const {
    return resolved_.size() + resolving_.size();
  }

  std::size_t queued(const service_key& key) const {
    auto i = resolving_.find(key);
    return i == resolving_.end() ? 0 : i->second.size();
  }

  // -- updates ---------------------------------------------------------------------------------

  /// An update for `key` whose route is not resolved (find() returned nullptr). `idle(key)` says
  /// whether the client holds nothing in a service, so that its route may be forgotten to make
  /// room. `op` is moved from only when queued (outcome queued).
  template <class IdlePredicate>
  enqueue_result enqueue(const service_key& key, Op&& op, IdlePredicate idle) {
    enqueue_result result{outcome::full, std::nullopt};
    if (resolved_.count(key) > 0)
      return result; // a resolved route takes no queue: the caller sends at once
    auto i = resolving_.find(key);
    if (i != resolving_.end()) {
      if (i->second.size() >= queued_max_)
        return result;
      i->second.push_back(std::move(op));
      result.what = outcome::queued;
      return result;
    }
    if (size() >= routes_max_) {
      auto victim = resolved_.end();
      for (auto j = resolved_.begin(); j != resolved_.end(); ++j)
        if (idle(j->first)) {
          victim = j;
          break;
        }
      if (victim == resolved_.end())
        return result;
      result.evicted = std::move(victim->second);
      resolved_.erase(victim);
    }
    resolving_[key];
    result.what = outcome::resolve;
    return result;
  }

  /// The handle of `key` is known: the route is resolved; returns the queued updates, oldest
  /// first, for the caller to send in that order. Nothing happens for a route that is not
  /// resolving (it was forgotten meanwhile): the updates are empty then.
  std::vector<Op> resolved(const service_key& key, Handle handle) {
    auto i = resolving_.find(key);
    if (i == resolving_.end())
      return {};
    auto queue = std::move(i->second);
    resolving_.erase(i);
    resolved_.emplace(key, std::move(handle));
    return queue;
  }

  /// The handle of `key` could not be found: the route goes; returns its queued updates to fail.
  std::vector<Op> failed(const service_key& key) {
    auto i = resolving_.find(key);
    if (i == resolving_.end())
      return {};
    auto queue = std::move(i->second);
    resolving_.erase(i);
    return queue;
  }

  /// Forgets every resolved route whose handle matches `pred` (its service actor went away);
  /// returns their keys. The next update of such a service resolves it again.
  template <class Predicate>
  std::vector<service_key> forget_if(Predicate pred) {
    std::vector<service_key> result;
    for (auto i = resolved_.begin(); i != resolved_.end();) {
      if (pred(i->second)) {
        result.push_back(i->first);
        i = resolved_.erase(i);
      } else {
        ++i;
      }
    }
    return result;
  }

  /// Forgets every route (the client ends): returns the resolved handles and the queued updates.
  std::pair<std::vector<Handle>, std::vector<Op>> clear() {
    std::pair<std::vector<Handle>, std::vector<Op>> result;
    for (auto& kv : resolved_)
      result.first.push_back(std::move(kv.second));
    for (auto& kv : resolving_)
      for (auto& op : kv.second)
        result.second.push_back(std::move(op));
    resolved_.clear();
    resolving_.clear();
    return result;
  }

private:
  std::size_t routes_max_;
  std::size_t queued_max_;
  /// A client holds one route per service it publishes in, nearly all resolved: a resolved route
  /// is only its handle, and the queues of the few resolving ones are kept apart.
  std::map<service_key, Handle> resolved_;
  std::map<service_key, std::vector<Op>> resolving_; ///< updates waiting, oldest first
};

} // namespace registry
