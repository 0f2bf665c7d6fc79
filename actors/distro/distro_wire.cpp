#include "actors/distro/distro_wire.hpp"

#include <algorithm>
#include <limits>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include "config/defaults.hpp"
#include "messages/convert.hpp"
#include "messages/validate.hpp"

namespace registry::distro {

namespace {

/// The clients of a SyncBatch or Snapshot that pass check(); the others go to `dropped`.
template <class Clients>
std::vector<client_data> checked_clients(const Clients& xs, const peer_rules& rules,
                                         std::vector<dropped_client>& dropped) {
  std::vector<client_data> result;
  result.reserve(static_cast<std::size_t>(xs.size()));
  for (auto& wire_x : xs) {
    auto x = from_wire(wire_x);
    if (auto err = check(x, rules))
      dropped.push_back(dropped_client{std::move(x.id), std::move(*err)});
    else
      result.push_back(std::move(x));
  }
  return result;
}

} // namespace

std::optional<field_error> check(const client_data& x, const peer_rules& rules) {
  if (x.deleted)
    return validate_client_id(x.id);
  if (auto err = validate_client(x.id, x.services, rules.instances_per_client_max))
    return err;
  if (x.services.empty())
    return field_error{"services", "a client that is not deleted holds no instance"};
  if (x.revision != content_revision(x.services))
    return field_error{"revision", "the revision is not the content revision of the client"};
  return std::nullopt;
}

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

sync_batch from_wire(const v1::SyncBatch& x, const peer_rules& rules,
                     std::vector<dropped_client>& dropped) {
  sync_batch result;
  result.source = x.source();
  result.clients = checked_clients(x.clients(), rules, dropped);
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
  result.set_buckets(x.buckets);
  result.mutable_digests()->Add(x.digests.begin(), x.digests.end());
  result.mutable_listed()->Add(x.listed.begin(), x.listed.end());
  return result;
}

std::string sync_encoder::encode(const sync_batch& x) {
  using wire_format = google::protobuf::internal::WireFormatLite;
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream{&out};
    google::protobuf::io::CodedOutputStream coded{&stream};
    // Field by field as SerializeAsString writes a SyncBatch: source (1), then each client (2).
    if (!x.source.empty())
      wire_format::WriteString(v1::SyncBatch::kSourceFieldNumber, x.source, &coded);
    for (const auto& c : x.clients) {
      auto key = std::make_tuple(c.id, c.revision, c.deleted);
      auto i = encoded_.find(key);
      if (i == encoded_.end()) {
        v1::ClientData data;
        to_wire(c, data);
        i = encoded_.emplace(std::move(key), data.SerializeAsString()).first;
      }
      coded.WriteTag(wire_format::MakeTag(v1::SyncBatch::kClientsFieldNumber,
                                          wire_format::WIRETYPE_LENGTH_DELIMITED));
      coded.WriteVarint32(static_cast<std::uint32_t>(i->second.size()));
      coded.WriteString(i->second);
    }
  }
  return out;
}

std::string encode(const snapshot& x) {
  using wire_format = google::protobuf::internal::WireFormatLite;
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream{&out};
    google::protobuf::io::CodedOutputStream coded{&stream};
    // Field by field as SerializeAsString writes a Snapshot. One ClientData is reused: cleared,
    // it keeps its allocations, so a chunk costs no message tree of its own to build and free.
    if (!x.source.empty())
      wire_format::WriteString(v1::Snapshot::kSourceFieldNumber, x.source, &coded);
    v1::ClientData data;
    std::string bytes;
    for (const auto& c : x.clients) {
      data.Clear();
      to_wire(c, data);
      bytes.clear();
      data.AppendToString(&bytes);
      coded.WriteTag(wire_format::MakeTag(v1::Snapshot::kClientsFieldNumber,
                                          wire_format::WIRETYPE_LENGTH_DELIMITED));
      coded.WriteVarint32(static_cast<std::uint32_t>(bytes.size()));
      coded.WriteString(bytes);
    }
    if (x.more)
      wire_format::WriteBool(v1::Snapshot::kMoreFieldNumber, true, &coded);
    if (!x.last.empty())
      wire_format::WriteString(v1::Snapshot::kLastFieldNumber, x.last, &coded);
  }
  return out;
}

std::optional<field_error> check(const v1::VerifyBatch& x) {
  auto buckets = x.buckets();
  if (buckets > defaults::verify_buckets_max)
    return field_error{"buckets", "expected at most " + std::to_string(defaults::verify_buckets_max)
                                    + ", got " + std::to_string(buckets)};
  if (x.digests_size() > 0 && static_cast<std::uint32_t>(x.digests_size()) != buckets)
    return field_error{"digests", "expected one per bucket (" + std::to_string(buckets) + "), got "
                                    + std::to_string(x.digests_size())};
  if (x.digests_size() > 0 && x.listed_size() > 0)
    return field_error{"listed", "a digest lists no buckets"};
  if (buckets == 0 && x.listed_size() > 0)
    return field_error{"listed", "buckets listed without a bucket count"};
  if (x.listed_size() > static_cast<int>(buckets))
    return field_error{"listed", "more buckets listed than there are"};
  for (auto b : x.listed())
    if (b >= buckets)
      return field_error{"listed", "bucket " + std::to_string(b) + " is not below "
                                     + std::to_string(buckets)};
  return std::nullopt;
}

std::optional<field_error> check(const v1::VerifyReply& x) {
  auto max = defaults::verify_buckets_max;
  if (static_cast<std::uint64_t>(x.differing_size()) > max)
    return field_error{"differing", "expected at most " + std::to_string(max) + " buckets"};
  for (auto b : x.differing())
    if (b >= max)
      return field_error{"differing", "bucket " + std::to_string(b) + " is not below "
                                        + std::to_string(max)};
  return std::nullopt;
}

verify_batch from_wire(const v1::VerifyBatch& x, std::vector<dropped_client>& dropped) {
  verify_batch result;
  result.source = x.source();
  result.buckets = x.buckets();
  result.digests.assign(x.digests().begin(), x.digests().end());
  result.listed.assign(x.listed().begin(), x.listed().end());
  result.clients.reserve(static_cast<std::size_t>(x.clients_size()));
  for (auto& c : x.clients()) {
    if (auto err = validate_client_id(c.client_id()))
      dropped.push_back(dropped_client{c.client_id(), std::move(*err)});
    else
      result.clients.push_back(client_revision{c.client_id(), c.revision()});
  }
  return result;
}

v1::VerifyReply to_wire(const verify_reply& x) {
  v1::VerifyReply result;
  for (auto& id : x.missing)
    result.add_missing(id);
  result.mutable_differing()->Add(x.differing.begin(), x.differing.end());
  return result;
}

verify_reply from_wire(const v1::VerifyReply& x, std::vector<dropped_client>& dropped) {
  verify_reply result;
  result.missing.reserve(static_cast<std::size_t>(x.missing_size()));
  for (auto& id : x.missing()) {
    if (auto err = validate_client_id(id))
      dropped.push_back(dropped_client{id, std::move(*err)});
    else
      result.missing.push_back(id);
  }
  result.differing.assign(x.differing().begin(), x.differing().end());
  return result;
}

std::optional<field_error> check(const v1::SnapshotRequest& x) {
  if (x.after().empty())
    return std::nullopt;
  if (auto err = validate_client_id(x.after()))
    return field_error{"after", err->message};
  if (x.clients_max() == 0)
    return field_error{"clients_max", "a request after a cursor asks for a chunk: expected at "
                                      "least 1"};
  return std::nullopt;
}

std::optional<field_error> check(const v1::Snapshot& x, const snapshot_request& request) {
  bool chunk = x.more() || !x.last().empty();
  if (!chunk) {
    // A sender without chunks: its whole snapshot, which answers only a request from the start.
    if (!request.after.empty())
      return field_error{"last", "a chunk names its last client; expected the chunk after '"
                                   + request.after.substr(0, 256) + "'"};
    return std::nullopt;
  }
  if (request.clients_max == 0)
    return field_error{"more", "the whole snapshot was asked for, got a chunk"};
  if (x.last().empty())
    return field_error{"last", "a chunk with more to follow names its last client"};
  if (auto err = validate_client_id(x.last()))
    return field_error{"last", err->message};
  if (!request.after.empty() && x.last() <= request.after)
    return field_error{"last", "does not move past the cursor '" + request.after.substr(0, 256)
                                 + "'"};
  if (static_cast<std::size_t>(x.clients_size()) > request.clients_max)
    return field_error{"clients", "expected at most " + std::to_string(request.clients_max)
                                    + " clients, got " + std::to_string(x.clients_size())};
  const std::string* previous = request.after.empty() ? nullptr : &request.after;
  for (int k = 0; k < x.clients_size(); ++k) {
    const auto& id = x.clients(k).client_id();
    auto field = "clients[" + std::to_string(k) + "].client_id";
    if (previous != nullptr && id <= *previous)
      return field_error{field, "clients come in id order after the cursor"};
    if (id > x.last())
      return field_error{field, "sorts after the chunk's last client"};
    previous = &id;
  }
  return std::nullopt;
}

v1::SnapshotRequest to_wire(const snapshot_request& x) {
  v1::SnapshotRequest result;
  result.set_source(x.source);
  result.set_after(x.after);
  result.set_clients_max(static_cast<std::uint32_t>(
    std::min<std::size_t>(x.clients_max, std::numeric_limits<std::uint32_t>::max())));
  result.set_instances_max(static_cast<std::uint32_t>(
    std::min<std::size_t>(x.instances_max, std::numeric_limits<std::uint32_t>::max())));
  return result;
}

snapshot_request from_wire(const v1::SnapshotRequest& x) {
  return snapshot_request{x.source(), x.after(), x.clients_max(), x.instances_max()};
}

v1::Snapshot to_wire(const snapshot& x) {
  v1::Snapshot result;
  result.set_source(x.source);
  for (auto& c : x.clients)
    to_wire(c, *result.add_clients());
  result.set_more(x.more);
  result.set_last(x.last);
  return result;
}

snapshot from_wire(const v1::Snapshot& x, const peer_rules& rules,
                   std::vector<dropped_client>& dropped) {
  snapshot result;
  result.source = x.source();
  result.clients = checked_clients(x.clients(), rules, dropped);
  result.more = x.more();
  result.last = x.last();
  return result;
}

std::optional<drop_counter::line> drop_counter::count(const std::string& peer, time_ms now_ms) {
  ++total_;
  auto i = peers_.find(peer);
  if (i == peers_.end()) {
    if (peers_.size() >= defaults::members_max)
      peers_.clear();
    i = peers_.emplace(peer, per_peer{}).first;
  }
  auto& p = i->second;
  ++p.total;
  ++p.unlogged;
  if (p.logged_ms && now_ms < *p.logged_ms + interval_ms_)
    return std::nullopt;
  line result{p.unlogged, p.total};
  p.unlogged = 0;
  p.logged_ms = now_ms;
  return result;
}

} // namespace registry::distro
