#include "actors/raft/persistent_store.hpp"

#include <algorithm>
#include <tuple>

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
      auto& slot = services_[x.service][identity];
      if (slot.inst == inst && slot.check == x.check) {
        result.detail = "unchanged";
        return result;
      }
      slot.inst = std::move(inst);
      slot.check = x.check;
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
  v1::PersistentSnapshot out;
  for (const auto& [key, records] : services_)
    for (const auto& [identity, rec] : records) {
      persistent_op op;
      op.service = key;
      op.inst = rec.inst;
      op.check = rec.check;
      *out.add_records() = to_wire_op(op);
    }
  for (const auto& [key, value] : thresholds_) {
    persistent_op op;
    op.what = persistent_op::kind::threshold;
    op.service = key;
    op.protect_threshold = value;
    *out.add_records() = to_wire_op(op);
  }
  return out.SerializeAsString();
}

bool persistent_store::restore(const std::string& bytes) {
  v1::PersistentSnapshot msg;
  if (!msg.ParseFromString(bytes))
    return false;
  std::map<service_key, std::map<std::string, record>> next;
  std::map<service_key, double> next_thresholds;
  for (const auto& r : msg.records()) {
    auto op = from_wire_op(r);
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
  }
  services_ = std::move(next);
  thresholds_ = std::move(next_thresholds);
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

std::size_t persistent_store::instance_count() const {
  std::size_t n = 0;
  for (const auto& kv : services_)
    n += kv.second.size();
  return n;
}

} // namespace registry::raft
