#include "messages/convert.hpp"

#include <algorithm>

#include "config/defaults.hpp"

namespace registry {

// -- instance ------------------------------------------------------------------

instance from_wire(const v1::Instance& x) {
  instance r;
  r.instance_id = x.instance_id();
  r.ip = x.ip();
  r.port = x.port();
  // Explicit presence (proto3 optional): an unset field takes Nacos's default.
  r.weight = x.has_weight() ? x.weight() : 1.0;
  r.healthy = x.has_healthy() ? x.healthy() : true;
  r.enabled = x.has_enabled() ? x.enabled() : true;
  r.ephemeral = x.has_ephemeral() ? x.ephemeral() : true;
  r.cluster = x.cluster().empty() ? std::string{defaults::cluster} : x.cluster();
  r.metadata.reserve(x.metadata_size());
  for (const auto& [k, v] : x.metadata())
    r.metadata.emplace_back(k, v);
  std::sort(r.metadata.begin(), r.metadata.end()); // protobuf maps have no order
  return r;
}

void to_wire(const instance& x, v1::Instance& out) {
  out.Clear();
  out.set_instance_id(x.instance_id);
  out.set_ip(x.ip);
  out.set_port(x.port);
  out.set_weight(x.weight);
  out.set_healthy(x.healthy);
  out.set_enabled(x.enabled);
  out.set_ephemeral(x.ephemeral);
  out.set_cluster(x.cluster);
  auto& md = *out.mutable_metadata();
  for (const auto& [k, v] : x.metadata)
    md[k] = v;
}

// -- service key -----------------------------------------------------------------

service_key from_wire(const v1::ServiceRef& x) {
  service_key k;
  k.namespace_id = x.namespace_id().empty() ? std::string{defaults::namespace_id} : x.namespace_id();
  k.group = x.group().empty() ? std::string{defaults::group} : x.group();
  k.name = x.service();
  return k;
}

void to_wire(const service_key& x, v1::ServiceRef& out) {
  out.Clear();
  out.set_namespace_id(x.namespace_id);
  out.set_group(x.group);
  out.set_service(x.name);
}

// -- service info ------------------------------------------------------------------

void to_wire(const service_info& x, v1::ServiceInfo& out) {
  out.Clear();
  const std::string grouped = x.key.grouped_name();
  out.set_name(grouped);
  out.set_group_name(x.key.group);
  out.set_namespace_id(x.key.namespace_id);
  out.set_clusters(x.clusters);
  out.set_cache_millis(x.cache_millis);
  out.set_last_ref_time(x.last_ref_time_ms);
  out.set_reach_protection_threshold(x.reach_protection_threshold);
  out.mutable_hosts()->Reserve(static_cast<int>(x.hosts.size()));
  for (const auto& h : x.hosts) {
    auto* w = out.add_hosts();
    to_wire(h, *w);
    w->set_service_name(grouped);
    // The node stores no instance id that equals the default one (ip#port#cluster#group@@service),
    // so every copy of an instance saves that string; replies always carry the id.
    if (h.instance_id.empty())
      w->set_instance_id(make_instance_id(h, x.key));
  }
}

service_info from_wire(const v1::ServiceInfo& x) {
  service_info r;
  // name is GROUP@@SERVICE; group_name, when given, wins over the prefix.
  const std::string& name = x.name();
  const std::string sep = defaults::group_separator;
  auto pos = name.find(sep);
  if (pos == std::string::npos) {
    r.key.name = name;
  } else {
    r.key.group = name.substr(0, pos);
    r.key.name = name.substr(pos + sep.size());
  }
  if (!x.group_name().empty())
    r.key.group = x.group_name();
  if (r.key.group.empty())
    r.key.group = defaults::group;
  r.key.namespace_id = x.namespace_id().empty() ? std::string{defaults::namespace_id}
                                                : x.namespace_id();
  r.clusters = x.clusters();
  r.cache_millis = x.cache_millis();
  r.last_ref_time_ms = x.last_ref_time();
  r.reach_protection_threshold = x.reach_protection_threshold();
  r.hosts.reserve(x.hosts_size());
  for (const auto& h : x.hosts())
    r.hosts.push_back(from_wire(h));
  return r;
}

// -- Distro client data --------------------------------------------------------------

void to_wire(const client_id& id, std::uint64_t revision, const client_services& services,
             v1::ClientData& out) {
  // deleted and owner are the caller's business: left as they are.
  out.set_client_id(id);
  out.set_revision(revision);
  out.clear_services();
  for (const auto& [key, xs] : services) {
    if (xs.empty())
      continue;
    auto* cs = out.add_services();
    to_wire(key, *cs->mutable_service());
    for (const auto& x : xs)
      to_wire(x, *cs->add_instances());
  }
}

client_services services_from_wire(const v1::ClientData& x) {
  client_services r;
  if (x.deleted())
    return r; // a deleted client publishes nothing
  for (const auto& cs : x.services()) {
    if (cs.instances_size() == 0)
      continue;
    auto& xs = r[from_wire(cs.service())].mutate();
    xs.reserve(xs.size() + static_cast<std::size_t>(cs.instances_size()));
    for (const auto& i : cs.instances())
      xs.push_back(from_wire(i));
  }
  return r;
}

// -- errors ------------------------------------------------------------------------

v1::Error make_error(v1::Error::Code code, const std::string& field, const std::string& message) {
  v1::Error e;
  e.set_code(code);
  e.set_field(field);
  e.set_message(message);
  return e;
}

} // namespace registry
