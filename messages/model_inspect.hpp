#pragma once
/// CAF inspection of the model types, so they can travel in in-process messages between the node's
/// actors (model.hpp itself stays free of CAF for the protocol classes and the client library).

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>

#include "messages/model.hpp"

namespace registry {

/// Travels as its text; loading interns it again.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, interned_string& x) {
  std::string text = x.str();
  auto store = caf::meta::load_callback([&]() -> caf::error {
    x = interned_string{text};
    return caf::none;
  });
  return f(text, store);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, service_key& x) {
  return f(caf::meta::type_name("registry::service_key"), x.namespace_id, x.group, x.name);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, instance& x) {
  return f(caf::meta::type_name("registry::instance"), x.instance_id, x.ip, x.port, x.weight,
           x.healthy, x.enabled, x.ephemeral, x.cluster, x.metadata);
}

/// An in-process message carries the shared list as is; inspecting it (to print or to serialize)
/// goes through a copy of its instances.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, instance_list& x) {
  std::vector<instance> xs = x.get();
  auto store = caf::meta::load_callback([&]() -> caf::error {
    x = instance_list{std::move(xs)};
    return caf::none;
  });
  return f(caf::meta::type_name("registry::instance_list"), xs, store);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, beat_mark& x) {
  return f(caf::meta::type_name("registry::beat_mark"), x.last_beat_ms, x.marked_unhealthy);
}

} // namespace registry
