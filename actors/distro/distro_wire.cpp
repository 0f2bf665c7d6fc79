#include "actors/distro/distro_wire.hpp"

#include <algorithm>

#include "config/defaults.hpp"
#include "messages/convert.hpp"

namespace registry::distro {

void to_wire(const client_data& x, v1::ClientData& out) {
  registry::to_wire(x.id, x.revision, x.services, out);
  out.set_deleted(x.deleted);
  out.set_owner(x.owner);
  if (x.beats.empty())
    return;
  for (auto& cs : *out.mutable_services()) {
    auto bi = x.beats.find(registry::from_wire(cs.service()));
    if (bi == x.beats.end())
      continue;
    for (auto& wire_x : cs.instances()) {
      auto inst = registry::from_wire(wire_x);
      auto ai = bi->second.find(instance_identity(inst.ip, inst.port, inst.cluster));
      if (ai == bi->second.end())
        continue;
      auto* b = cs.add_beats();
      b->set_ip(inst.ip);
      b->set_port(inst.port);
      b->set_cluster(inst.cluster);
      b->set_age_ms(static_cast<std::uint64_t>(std::max<time_ms>(0, ai->second.age_ms)));
      b->set_marked_unhealthy(ai->second.marked_unhealthy);
    }
  }
}

client_data from_wire(const v1::ClientData& x) {
  client_data result;
  result.id = x.client_id();
  result.revision = x.revision();
  result.deleted = x.deleted();
  result.owner = x.owner();
  if (result.deleted)
    return result;
  result.services = services_from_wire(x);
  for (auto& cs : x.services()) {
    if (cs.beats_size() == 0)
      continue;
    auto& ages = result.beats[registry::from_wire(cs.service())];
    for (auto& b : cs.beats()) {
      auto cluster = b.cluster().empty() ? std::string{defaults::cluster} : b.cluster();
      auto age = static_cast<time_ms>(
        std::min<std::uint64_t>(b.age_ms(), static_cast<std::uint64_t>(defaults::beat_age_ms_max)));
      ages[instance_identity(b.ip(), b.port(), cluster)] = beat_age{age, b.marked_unhealthy()};
    }
  }
  return result;
}

v1::SyncBatch to_wire(const sync_batch& x) {
  v1::SyncBatch result;
  result.set_source(x.source);
  for (auto& c : x.clients)
    to_wire(c, *result.add_clients());
  return result;
}

sync_batch from_wire(const v1::SyncBatch& x) {
  sync_batch result;
  result.source = x.source();
  for (auto& c : x.clients())
    result.clients.push_back(from_wire(c));
  return result;
}

v1::VerifyBatch to_wire(const verify_batch& x) {
  v1::VerifyBatch result;
  result.set_source(x.source);
  for (auto& c : x.clients) {
    auto* r = result.add_clients();
    r->set_client_id(c.id);
    r->set_revision(c.revision);
  }
  return result;
}

verify_batch from_wire(const v1::VerifyBatch& x) {
  verify_batch result;
  result.source = x.source();
  for (auto& c : x.clients())
    result.clients.push_back(client_revision{c.client_id(), c.revision()});
  return result;
}

v1::VerifyReply to_wire(const verify_reply& x) {
  v1::VerifyReply result;
  for (auto& id : x.missing)
    result.add_missing(id);
  return result;
}

verify_reply from_wire(const v1::VerifyReply& x) {
  verify_reply result;
  result.missing.assign(x.missing().begin(), x.missing().end());
  return result;
}

v1::SnapshotRequest to_wire(const snapshot_request& x) {
  v1::SnapshotRequest result;
  result.set_source(x.source);
  return result;
}

snapshot_request from_wire(const v1::SnapshotRequest& x) {
  return snapshot_request{x.source()};
}

v1::Snapshot to_wire(const snapshot& x) {
  v1::Snapshot result;
  result.set_source(x.source);
  for (auto& c : x.clients)
    to_wire(c, *result.add_clients());
  return result;
}

snapshot from_wire(const v1::Snapshot& x) {
  snapshot result;
  result.source = x.source();
  for (auto& c : x.clients())
    result.clients.push_back(from_wire(c));
  return result;
}

} // namespace registry::distro
