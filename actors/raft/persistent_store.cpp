#include "actors/raft/persistent_store.hpp"

#include <algorithm>
#include <limits>
#include <tuple>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include "config/defaults.hpp"
#include "messages/convert.hpp"
#include "messages/raft.pb.h"

namespace registry::raft {

namespace {

v1::HealthCheck to_wire(const health_check_spec& x) {
  v1::HealthCheck out;
  out.set_type(x.type == health_check_spec::kind::http   ? v1::HealthCheck::HTTP
               : x.type == health_check_spec::kind::none ? v1::HealthCheck::NONE
                                                         : v1::HealthCheck::TCP);
  out.set_path(x.path);
  return out;
}

health_check_spec from_wire(const v1::HealthCheck& x) {
  health_check_spec out;
  out.type = x.type() == v1::HealthCheck::HTTP   ? health_check_spec::kind::http
             : x.type() == v1::HealthCheck::NONE ? health_check_spec::kind::none
                                                 : health_check_spec::kind::tcp;
  out.path = x.path();
  return out;
}

v1::PersistentOp to_wire_op(const persistent_op& x) {
  v1::PersistentOp out;
  registry::to_wire(x.service, *out.mutable_service());
  switch (x.what) {
    case persistent_op::kind::reg:
      out.set_kind(v1::PersistentOp::REGISTER);
      break;
    case persistent_op::kind::dereg:
      out.set_kind(v1::PersistentOp::DEREGISTER);
      break;
    case persistent_op::kind::health:
      out.set_kind(v1::PersistentOp::HEALTH);
      break;
    case persistent_op::kind::update:
      out.set_kind(v1::PersistentOp::UPDATE);
      break;
    case persistent_op::kind::threshold:
      out.set_kind(v1::PersistentOp::THRESHOLD);
      out.set_protect_threshold(x.protect_threshold);
      return out; // a setting of the service: no instance
  }
  registry::to_wire(x.inst, *out.mutable_instance());
  *out.mutable_check() = to_wire(x.check);
  return out;
}

std::optional<persistent_op> from_wire_op(const v1::PersistentOp& x) {
  persistent_op out;
  switch (x.kind()) {
    case v1::PersistentOp::REGISTER:
      out.what = persistent_op::kind::reg;
      break;
    case v1::PersistentOp::DEREGISTER:
      out.what = persistent_op::kind::dereg;
      break;
    case v1::PersistentOp::HEALTH:
      out.what = persistent_op::kind::health;
      break;
    case v1::PersistentOp::UPDATE:
      out.what = persistent_op::kind::update;
      break;
    case v1::PersistentOp::THRESHOLD:
      out.what = persistent_op::kind::threshold;
      out.protect_threshold = x.protect_threshold();
      break;
    default:
      return std::nullopt;
  }
  out.service = registry::from_wire(x.service());
  out.inst = registry::from_wire(x.instance());
  out.inst.ephemeral = false;
  out.check = from_wire(x.check());
  return out;
}

/// The REGISTER op of a record (what a snapshot holds for it).
std::string encode_record(const service_key& key, const persistent_store::record& rec) {
  persistent_op op;
  op.service = key;
  op.inst = rec.inst;
  op.check = rec.check;
  return to_wire_op(op).SerializeAsString();
}

/// Field 1 of PersistentSnapshot (`repeated PersistentOp records`), length-delimited.
constexpr std::uint32_t snapshot_records_tag = google::protobuf::internal::WireFormatLite::MakeTag(
  1, google::protobuf::internal::WireFormatLite::WIRETYPE_LENGTH_DELIMITED);

bool by_position(const instance& a, const instance& b) {
  return std::tie(a.cluster, a.ip, a.port) < std::tie(b.cluster, b.ip, b.port);
}

} // namespace

std::string to_string(const health_check_spec& x) {
  switch (x.type) {
    case health_check_spec::kind::http:
      return "http:" + x.path;
    case health_check_spec::kind::none:
      return "none";
    default:
      return "tcp";
  }
}

std::optional<health_check_spec> parse_health_check(const std::string& text) {
  health_check_spec out;
  if (text == "tcp")
    return out;
  if (text == "none") {
    out.type = health_check_spec::kind::none;
    return out;
  }
  if (text.rfind("http:/", 0) == 0) {
    out.type = health_check_spec::kind::http;
    out.path = text.substr(5);
    return out;
  }
  return std::nullopt;
}

std::optional<std::string> check_protect_threshold(double value) {
  // NaN fails both comparisons and is refused.
  if ((value >= 0.0 && value <= 1.0) || value == -1.0)
    return std::nullopt;
  return "a protect threshold is 0..1, or -1 to switch protection off for the service, not "
         + std::to_string(value);
}

std::string encode(const persistent_op& x) {
  return to_wire_op(x).SerializeAsString();
}

std::optional<persistent_op> decode(const std::string& bytes) {
  v1::PersistentOp msg;
  if (!msg.ParseFromString(bytes))
    return std::nullopt;
  return from_wire_op(msg);
}

persistent_store::apply_result persistent_store::apply(const std::string& bytes) {
  auto op = decode(bytes);
  if (!op) {
    apply_result result;
    result.ok = false;
    result.detail = "malformed persistent command";
    return result;
  }
  return apply(*op);
}

persistent_store::apply_result persistent_store::apply(const persistent_op& x) {
  apply_result result;
  auto identity = instance_identity(x.inst.ip, x.inst.port, x.inst.cluster);
  auto client = persistent_client_id(x.inst.ip, x.inst.port);
  switch (x.what) {
    case persistent_op::kind::reg: {
      auto inst = x.inst;
      inst.ephemeral = false;
      if (inst.instance_id.empty())
        inst.instance_id = make_instance_id(inst, x.service);
      auto& records = services_[x.service];
      auto [at, added] = records.try_emplace(identity);
      auto& slot = at->second;
      if (added)
        ++instances_;
      if (!added && slot.inst == inst && slot.check == x.check) {
        result.detail = "unchanged";
        return result;
      }
      slot.inst = std::move(inst);
      slot.check = x.check;
      slot.encoded = encode_record(x.service, slot);
      result.changed = x.service;
      result.client = client;
      return result;
    }
    case persistent_op::kind::dereg: {
      auto i = services_.find(x.service);
      if (i == services_.end() || i->second.erase(identity) == 0) {
        result.detail = "no such instance";
        return result;
      }
      --instances_;
      if (i->second.empty())
        services_.erase(i);
      result.changed = x.service;
      result.client = client;
      return result;
    }
    case persistent_op::kind::health: {
      auto i = services_.find(x.service);
      if (i == services_.end()) {
        result.detail = "no such instance";
        return result;
      }
      auto j = i->second.find(identity);
      if (j == i->second.end()) {
        result.detail = "no such instance";
        return result;
      }
      if (j->second.inst.healthy == x.inst.healthy) {
        result.detail = "unchanged";
        return result;
      }
      j->second.inst.healthy = x.inst.healthy;
      j->second.encoded = encode_record(x.service, j->second);
      result.changed = x.service;
      result.client = client;
      result.healthy_now = x.inst.healthy;
      return result;
    }
    case persistent_op::kind::update: {
      record* rec = nullptr;
      if (auto i = services_.find(x.service); i != services_.end())
        if (auto j = i->second.find(identity); j != i->second.end())
          rec = &j->second;
      if (rec == nullptr) {
        result.ok = false;
        result.detail = "instance not exist: " + x.inst.ip + ":" + std::to_string(x.inst.port) + ":"
                        + x.inst.cluster + " in service " + x.service.grouped_name();
        return result;
      }
      auto& inst = rec->inst;
      if (inst.weight == x.inst.weight && inst.enabled == x.inst.enabled
          && inst.metadata == x.inst.metadata) {
        result.detail = "unchanged";
        return result;
      }
      inst.weight = x.inst.weight;
      inst.enabled = x.inst.enabled;
      inst.metadata = x.inst.metadata;
      rec->encoded = encode_record(x.service, *rec);
      result.changed = x.service;
      result.client = client;
      return result;
    }
    case persistent_op::kind::threshold: {
      if (auto why = check_protect_threshold(x.protect_threshold)) {
        result.ok = false;
        result.detail = *why;
        return result;
      }
      auto i = thresholds_.find(x.service);
      if (i != thresholds_.end() && i->second == x.protect_threshold) {
        result.detail = "unchanged";
        return result;
      }
      if (i == thresholds_.end() && thresholds_.size() >= defaults::persistent_thresholds_max) {
        result.ok = false;
        result.detail = std::to_string(thresholds_.size())
                        + " services hold a protect threshold, the limit is "
                        + std::to_string(defaults::persistent_thresholds_max);
        return result;
      }
      thresholds_[x.service] = x.protect_threshold;
      result.threshold_now = std::make_pair(x.service, x.protect_threshold);
      return result;
    }
  }
  result.ok = false;
  result.detail = "unknown persistent command";
  return result;
}

std::string persistent_store::snapshot() const {
  // The PersistentSnapshot wire format written directly: one length-delimited field 1 per record,
  // from the bytes each record keeps (the same bytes the message's own serializer would write).
  std::size_t bytes = 0;
  for (const auto& [key, records] : services_)
    for (const auto& [identity, rec] : records)
      bytes += rec.encoded.size() + 6;
  std::string result;
  result.reserve(bytes);
  {
    google::protobuf::io::StringOutputStream raw{&result};
    google::protobuf::io::CodedOutputStream out{&raw};
    for (const auto& [key, records] : services_)
      for (const auto& [identity, rec] : records) {
        out.WriteTag(snapshot_records_tag);
        out.WriteVarint32(static_cast<std::uint32_t>(rec.encoded.size()));
        out.WriteRaw(rec.encoded.data(), static_cast<int>(rec.encoded.size()));
      }
    // Then the services' settings (few: encoded here).
    for (const auto& [key, value] : thresholds_) {
      persistent_op op;
      op.what = persistent_op::kind::threshold;
      op.service = key;
      op.protect_threshold = value;
      auto one = encode(op);
      out.WriteTag(snapshot_records_tag);
      out.WriteVarint32(static_cast<std::uint32_t>(one.size()));
      out.WriteRaw(one.data(), static_cast<int>(one.size()));
    }
  }
  return result;
}

bool persistent_store::restore(const std::string& bytes) {
  // Read field by field so that each record keeps its bytes (no encoding again at restart).
  google::protobuf::io::CodedInputStream in{reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size())};
  in.SetTotalBytesLimit(std::numeric_limits<int>::max());
  std::map<service_key, std::map<std::string, record>> next;
  std::map<service_key, double> next_thresholds;
  v1::PersistentOp msg;
  while (auto tag = in.ReadTag()) {
    if (tag != snapshot_records_tag) {
      if (!google::protobuf::internal::WireFormatLite::SkipField(&in, tag))
        return false;
      continue;
    }
    std::uint32_t size = 0;
    std::string one;
    if (!in.ReadVarint32(&size) || !in.ReadString(&one, static_cast<int>(size)))
      return false;
    if (!msg.ParseFromString(one))
      return false;
    auto op = from_wire_op(msg);
    if (op && op->what == persistent_op::kind::threshold
        && !check_protect_threshold(op->protect_threshold)) {
      next_thresholds[op->service] = op->protect_threshold;
      continue;
    }
    if (!op || op->what != persistent_op::kind::reg)
      return false;
    auto& slot = next[op->service][instance_identity(op->inst.ip, op->inst.port, op->inst.cluster)];
    slot.inst = op->inst;
    slot.check = op->check;
    slot.encoded = std::move(one);
  }
  if (!in.ConsumedEntireMessage())
    return false;
  services_ = std::move(next);
  thresholds_ = std::move(next_thresholds);
  instances_ = 0;
  for (const auto& kv : services_)
    instances_ += kv.second.size();
  return true;
}

std::vector<instance> persistent_store::instances_of(const service_key& key,
                                                     const client_id& client) const {
  std::vector<instance> result;
  auto i = services_.find(key);
  if (i == services_.end())
    return result;
  for (const auto& [identity, rec] : i->second)
    if (persistent_client_id(rec.inst.ip, rec.inst.port) == client)
      result.push_back(rec.inst);
  std::sort(result.begin(), result.end(), by_position);
  return result;
}

std::vector<std::tuple<service_key, client_id, std::vector<instance>>>
persistent_store::all_client_instances() const {
  std::vector<std::tuple<service_key, client_id, std::vector<instance>>> result;
  for (const auto& [key, records] : services_) {
    std::map<client_id, std::vector<instance>> by_client;
    for (const auto& [identity, rec] : records)
      by_client[persistent_client_id(rec.inst.ip, rec.inst.port)].push_back(rec.inst);
    for (auto& [client, xs] : by_client) {
      std::sort(xs.begin(), xs.end(), by_position);
      result.emplace_back(key, client, std::move(xs));
    }
  }
  return result;
}

std::vector<std::pair<service_key, client_id>> persistent_store::all_clients() const {
  std::vector<std::pair<service_key, client_id>> result;
  for (const auto& [key, records] : services_) {
    std::vector<client_id> ids;
    for (const auto& [identity, rec] : records)
      ids.push_back(persistent_client_id(rec.inst.ip, rec.inst.port));
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (auto& id : ids)
      result.emplace_back(key, std::move(id));
  }
  return result;
}

std::vector<std::pair<service_key, persistent_store::record>>
persistent_store::all_records() const {
  std::vector<std::pair<service_key, record>> result;
  for (const auto& [key, records] : services_)
    for (const auto& [identity, rec] : records)
      result.emplace_back(key, rec);
  return result;
}

const persistent_store::record* persistent_store::find(const service_key& key,
                                                       const std::string& ip, std::uint32_t port,
                                                       const std::string& cluster) const {
  auto i = services_.find(key);
  if (i == services_.end())
    return nullptr;
  auto j = i->second.find(instance_identity(ip, port, cluster));
  return j == i->second.end() ? nullptr : &j->second;
}

bool snapshot_worthwhile(std::size_t entries_since, std::size_t instances, std::size_t threshold) {
  auto wanted = std::max(threshold, instances / defaults::raft_snapshot_instances_per_entry);
  return entries_since >= std::min(wanted, std::max(threshold, defaults::raft_snapshot_interval_entries_max));
}

} // namespace registry::raft
