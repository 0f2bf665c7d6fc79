#include "actors/grpc/nacos_grpc_codec.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "actors/common/json_text.hpp"
#include "config/defaults.hpp"
#include "messages/registry.pb.h"
#include "messages/validate.hpp"

namespace registry::grpc_api {

namespace {

using json = nlohmann::json;

struct kind_name {
  kind what;
  const char* name;
};

constexpr kind_name kind_names[] = {
  {kind::server_check, "ServerCheckRequest"},
  {kind::health_check, "HealthCheckRequest"},
  {kind::connection_setup, "ConnectionSetupRequest"},
  {kind::instance, "InstanceRequest"},
  {kind::batch_instance, "BatchInstanceRequest"},
  {kind::persistent_instance, "PersistentInstanceRequest"},
  {kind::service_query, "ServiceQueryRequest"},
  {kind::subscribe_service, "SubscribeServiceRequest"},
  {kind::service_list, "ServiceListRequest"},
  {kind::notify_subscriber_response, "NotifySubscriberResponse"},
  {kind::client_detection_response, "ClientDetectionResponse"},
  {kind::connect_reset_response, "ConnectResetResponse"},
};

/// A field error: 400 and the field's path.
failure bad(const std::string& field, const std::string& problem) {
  return failure{code::bad_param, field + ": " + problem};
}

const char* json_type(const json& v) {
  return v.type_name();
}

/// A member of `obj`, or nullptr when absent or null (clients send null for "not set").
const json* member(const json& obj, const char* name) {
  auto i = obj.find(name);
  if (i == obj.end() || i->is_null())
    return nullptr;
  return &*i;
}

std::optional<failure> read_string(const json& obj, const char* name, const std::string& path,
                                   std::string& out) {
  auto* v = member(obj, name);
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_string())
    return bad(path, std::string{"expected a string, got "} + json_type(*v));
  out = v->get<std::string>();
  return std::nullopt;
}

/// The same, into an interned field (names of services and clusters).
std::optional<failure> read_string(const json& obj, const char* name, const std::string& path,
                                   interned_string& out) {
  std::string text = out;
  if (auto f = read_string(obj, name, path, text))
    return f;
  out = text;
  return std::nullopt;
}

std::optional<failure> read_bool(const json& obj, const char* name, const std::string& path,
                                 bool& out) {
  auto* v = member(obj, name);
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_boolean())
    return bad(path, std::string{"expected true or false, got "} + json_type(*v));
  out = v->get<bool>();
  return std::nullopt;
}

std::optional<failure> read_int(const json& obj, const char* name, const std::string& path,
                                std::int64_t min, std::int64_t max, std::int64_t& out) {
  auto* v = member(obj, name);
  if (v == nullptr)
    return std::nullopt;
  std::int64_t x = 0;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max))
      return bad(path, "expected at most " + std::to_string(max));
    x = v->get<std::int64_t>();
  } else if (v->is_number_float()) {
    // Some clients write every number as a double; accept whole values only.
    auto d = v->get<double>();
    if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(min)
        || d > static_cast<double>(max))
      return bad(path, "expected an integer from " + std::to_string(min) + " to "
                         + std::to_string(max));
    x = static_cast<std::int64_t>(d);
  } else {
    return bad(path, std::string{"expected an integer, got "} + json_type(*v));
  }
  if (x < min || x > max)
    return bad(path, "expected an integer from " + std::to_string(min) + " to "
                       + std::to_string(max) + ", got " + std::to_string(x));
  out = x;
  return std::nullopt;
}

std::optional<failure> from_field(const std::optional<field_error>& e, const std::string& prefix) {
  if (!e)
    return std::nullopt;
  return bad(prefix + e->field, e->message);
}

/// The service of a naming request: namespace ("" = public, as Python 2.0 sends), group, name.
std::optional<failure> read_service(const json& body, service_key& key) {
  if (auto f = read_string(body, "namespace", "namespace", key.namespace_id))
    return f;
  if (auto f = read_string(body, "groupName", "groupName", key.group))
    return f;
  if (auto f = read_string(body, "serviceName", "serviceName", key.name))
    return f;
  if (key.name.empty())
    return bad("serviceName", "required, and not empty");
  apply_defaults(key);
  return from_field(validate_service_key(key), "");
}

std::optional<failure> read_instance(const json& v, const std::string& path, bool persistent,
                                     instance& x) {
  if (!v.is_object())
    return bad(path, std::string{"expected an object, got "} + json_type(v));
  if (auto f = read_string(v, "instanceId", path + ".instanceId", x.instance_id))
    return f;
  if (auto f = read_string(v, "ip", path + ".ip", x.ip))
    return f;
  if (x.ip.empty())
    return bad(path + ".ip", "required, and not empty");
  std::int64_t port = 0;
  if (auto f = read_int(v, "port", path + ".port", 1, 65535, port))
    return f;
  if (port == 0)
    return bad(path + ".port", "required (1 to 65535)");
  x.port = static_cast<std::uint32_t>(port);
  if (auto* w = member(v, "weight")) {
    if (!w->is_number())
      return bad(path + ".weight", std::string{"expected a number, got "} + json_type(*w));
    x.weight = w->get<double>();
  }
  if (auto f = read_bool(v, "healthy", path + ".healthy", x.healthy))
    return f;
  if (auto f = read_bool(v, "enabled", path + ".enabled", x.enabled))
    return f;
  x.ephemeral = !persistent;
  x.cluster.clear();
  if (auto f = read_string(v, "clusterName", path + ".clusterName", x.cluster))
    return f;
  if (auto* meta = member(v, "metadata")) {
    if (!meta->is_object())
      return bad(path + ".metadata", std::string{"expected an object, got "} + json_type(*meta));
    if (meta->size() > defaults::metadata_entries_max)
      return bad(path + ".metadata", "expected at most "
                                         + std::to_string(defaults::metadata_entries_max)
                                         + " entries, got " + std::to_string(meta->size()));
    for (auto it = meta->begin(); it != meta->end(); ++it) {
      if (!it.value().is_string())
        return bad(path + ".metadata." + it.key(),
                   std::string{"expected a string, got "} + json_type(it.value()));
      x.metadata.emplace_back(it.key(), it.value().get<std::string>());
    }
    std::sort(x.metadata.begin(), x.metadata.end());
  }
  apply_defaults(x);
  return from_field(validate_instance(x, persistent), path + ".");
}

std::optional<failure> read_clusters(const std::string& text, const std::string& path,
                                     std::vector<std::string>& out) {
  out = split_clusters(text);
  for (auto& c : out)
    if (auto e = validate_cluster(c))
      return bad(path, e->message);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return std::nullopt;
}

std::optional<failure> decode_body(const json& body, request& r, std::size_t batch_max) {
  switch (r.what) {
    case kind::server_check:
    case kind::health_check:
      return std::nullopt;
    case kind::connection_setup: {
      // Java 2.3+ and Python 3 send an abilityTable (even {}) and wait for SetupAckRequest.
      r.negotiates_abilities = member(body, "abilityTable") != nullptr;
      return read_string(body, "clientVersion", "clientVersion", r.client_version);
    }
    case kind::notify_subscriber_response:
    case kind::client_detection_response:
    case kind::connect_reset_response: {
      if (auto f = read_string(body, "requestId", "requestId", r.request_id))
        return f;
      std::int64_t rc = 200;
      if (auto f = read_int(body, "resultCode", "resultCode", -100000, 100000, rc))
        return f;
      r.result_code = static_cast<int>(rc);
      return std::nullopt;
    }
    case kind::instance:
    case kind::persistent_instance: {
      if (auto f = read_service(body, r.key))
        return f;
      std::string type;
      if (auto f = read_string(body, "type", "type", type))
        return f;
      if (type == "registerInstance")
        r.op = instance_op::register_instance;
      else if (type == "deregisterInstance")
        r.op = instance_op::deregister_instance;
      else
        return bad("type", "expected registerInstance or deregisterInstance, got \"" + type
                             + "\"");
      auto* inst = member(body, "instance");
      if (inst == nullptr)
        return bad("instance", "required");
      instance x;
      if (auto f = read_instance(*inst, "instance", r.what == kind::persistent_instance, x))
        return f;
      r.instances.push_back(std::move(x));
      return std::nullopt;
    }
    case kind::batch_instance: {
      if (auto f = read_service(body, r.key))
        return f;
      std::string type;
      if (auto f = read_string(body, "type", "type", type))
        return f;
      if (type != "batchRegisterInstance")
        return bad("type", "expected batchRegisterInstance, got \"" + type + "\"");
      auto* list = member(body, "instances");
      if (list != nullptr && !list->is_array())
        return bad("instances", std::string{"expected an array, got "} + json_type(*list));
      if (list != nullptr) {
        if (list->size() > batch_max)
          return bad("instances", "expected at most " + std::to_string(batch_max)
                                    + " instances, got " + std::to_string(list->size()));
        for (std::size_t i = 0; i < list->size(); ++i) {
          instance x;
          if (auto f = read_instance((*list)[i], "instances[" + std::to_string(i) + "]", false, x))
            return f;
          for (auto& y : r.instances)
            if (y.same_identity(x))
              return bad("instances[" + std::to_string(i) + "]",
                         "the same ip, port and cluster as another instance of the batch");
          r.instances.push_back(std::move(x));
        }
      }
      return std::nullopt;
    }
    case kind::service_query: {
      if (auto f = read_service(body, r.key))
        return f;
      if (auto f = read_string(body, "cluster", "cluster", r.clusters))
        return f;
      if (auto f = read_clusters(r.clusters, "cluster", r.cluster_list))
        return f;
      if (auto f = read_bool(body, "healthyOnly", "healthyOnly", r.healthy_only))
        return f;
      // Python writes "healthOnly".
      return read_bool(body, "healthOnly", "healthOnly", r.healthy_only);
    }
    case kind::subscribe_service: {
      if (auto f = read_service(body, r.key))
        return f;
      if (auto f = read_string(body, "clusters", "clusters", r.clusters))
        return f;
      if (auto f = read_clusters(r.clusters, "clusters", r.cluster_list))
        return f;
      return read_bool(body, "subscribe", "subscribe", r.subscribe);
    }
    case kind::service_list: {
      if (auto f = read_string(body, "namespace", "namespace", r.key.namespace_id))
        return f;
      if (auto f = read_string(body, "groupName", "groupName", r.key.group))
        return f;
      r.key.name = "x"; // only namespace and group are checked
      apply_defaults(r.key);
      if (auto f = from_field(validate_service_key(r.key), ""))
        return f;
      r.key.name.clear();
      std::int64_t page = 1;
      std::int64_t size = 10;
      if (auto f = read_int(body, "pageNo", "pageNo", 1, 1000000, page))
        return f;
      if (auto f = read_int(body, "pageSize", "pageSize", 1, defaults::page_size_max, size))
        return f;
      r.page_no = static_cast<std::uint32_t>(page);
      r.page_size = static_cast<std::uint32_t>(size);
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json ok_base() {
  return json{{"resultCode", 200}, {"errorCode", 0}, {"success", true}};
}

json server_request_base(const std::string& request_id, const char* module) {
  return json{{"headers", json::object()}, {"requestId", request_id}, {"module", module}};
}

} // namespace

const char* type_name(kind k) {
  for (auto& kn : kind_names)
    if (kn.what == k)
      return kn.name;
  return "";
}

bool known_type(std::string_view type) {
  for (auto& kn : kind_names)
    if (type == kn.name)
      return true;
  return false;
}

std::vector<std::string> split_clusters(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos)
      comma = text.size();
    auto part = text.substr(start, comma - start);
    auto b = part.find_first_not_of(" \t");
    auto e = part.find_last_not_of(" \t");
    if (b != std::string::npos)
      out.push_back(part.substr(b, e - b + 1));
    start = comma + 1;
  }
  return out;
}

std::variant<request, failure> decode(std::string_view type, std::string_view body,
                                      std::size_t batch_instances_max) {
  request r;
  bool known = false;
  for (auto& kn : kind_names)
    if (type == kn.name) {
      r.what = kn.what;
      known = true;
    }
  if (!known)
    return failure{code::no_handler,
                   "RequestHandler Not Found: unknown payload type \""
                     + std::string{type.substr(0, 128)} + "\""};
  json parsed = json::parse(body.begin(), body.end(), nullptr, false);
  if (body.empty())
    parsed = json::object();
  if (parsed.is_discarded())
    return failure{code::bad_payload, std::string{"body: not valid JSON for "} + type_name(r.what)};
  if (!parsed.is_object())
    return failure{code::bad_payload, std::string{"body: expected a JSON object, got "}
                                        + json_type(parsed)};
  if (auto f = decode_body(parsed, r, batch_instances_max))
    return *f;
  return r;
}

message error_response(int error_code, const std::string& text) {
  json j{{"resultCode", error_code == code::ok ? 500 : error_code},
         {"errorCode", error_code},
         {"message", text},
         {"success", false}};
  return {"ErrorResponse", dump(j)};
}

message server_check_response(const std::string& connection_id) {
  auto j = ok_base();
  j["connectionId"] = connection_id;
  j["supportAbilityNegotiation"] = true;
  return {"ServerCheckResponse", dump(j)};
}

message health_check_response() {
  return {"HealthCheckResponse", dump(ok_base())};
}

message instance_response(kind request_kind, instance_op op) {
  auto j = ok_base();
  if (request_kind == kind::batch_instance) {
    j["type"] = "batchRegisterInstance";
    return {"BatchInstanceResponse", dump(j)};
  }
  j["type"] = op == instance_op::register_instance ? "registerInstance" : "deregisterInstance";
  return {"InstanceResponse", dump(j)};
}

message query_service_response(const std::string& service_info) {
  // The ServiceInfo is already JSON text: splice it in rather than parse it again.
  return {"QueryServiceResponse",
          R"({"resultCode":200,"errorCode":0,"success":true,"serviceInfo":)" + service_info + "}"};
}

message subscribe_service_response(const std::string& service_info) {
  return {"SubscribeServiceResponse",
          R"({"resultCode":200,"errorCode":0,"message":"success","success":true,"serviceInfo":)"
            + service_info + "}"};
}

message service_list_response(std::uint64_t count, const std::vector<std::string>& names) {
  auto j = ok_base();
  j["count"] = count;
  j["serviceNames"] = names;
  return {"ServiceListResponse", dump(j)};
}

message notify_subscriber_request(const std::string& request_id, const std::string& service_info) {
  json quoted = request_id;
  return {"NotifySubscriberRequest",
          R"({"headers":{},"module":"naming","requestId":)" + dump(quoted) + R"(,"serviceInfo":)"
            + service_info + "}"};
}

message client_detection_request(const std::string& request_id) {
  return {"ClientDetectionRequest", dump(server_request_base(request_id, "internal"))};
}

message connect_reset_request(const std::string& request_id, const std::string& server_ip,
                              const std::string& server_port, const std::string& connection_id) {
  auto j = server_request_base(request_id, "internal");
  if (!server_ip.empty()) {
    j["serverIp"] = server_ip;
    j["serverPort"] = server_port;
  }
  j["connectionId"] = connection_id;
  return {"ConnectResetRequest", dump(j)};
}

message setup_ack_request(bool persistent_by_grpc) {
  json j{{"headers", json::object()},
         {"module", "internal"},
         {"requestId", ""},
         {"abilityTable", {{"supportPersistentInstanceByGrpc", persistent_by_grpc}}}};
  return {"SetupAckRequest", dump(j)};
}

std::string service_info_json(const v1::ServiceInfo& info, const std::string& clusters,
                              std::int64_t last_ref_time_ms, std::int64_t cache_millis) {
  // Written directly (the hottest answer: queries, subscribes, pushes); keys as Nacos's Jackson
  // writes them. Our ServiceInfo names the service GROUP@@NAME; Nacos 2.x clients key their cache
  // on groupName@@name, so `name` is bare.
  std::string_view bare = info.name();
  if (auto at = bare.find("@@"); at != std::string_view::npos)
    bare = bare.substr(at + 2);
  auto flag = [](bool b) { return b ? "true" : "false"; };
  std::string out;
  out.reserve(256 + static_cast<std::size_t>(info.hosts_size()) * 256);
  out += "{\"name\":";
  append_json_string(out, bare);
  out += ",\"groupName\":";
  append_json_string(out, info.group_name());
  out += ",\"clusters\":";
  append_json_string(out, clusters);
  out += ",\"cacheMillis\":";
  out += std::to_string(cache_millis);
  out += ",\"hosts\":[";
  bool first = true;
  for (const auto& h : info.hosts()) {
    if (h.has_enabled() && !h.enabled())
      continue;
    out += first ? "{" : ",{";
    first = false;
    out += "\"instanceId\":";
    append_json_string(out, h.instance_id());
    out += ",\"ip\":";
    append_json_string(out, h.ip());
    out += ",\"port\":";
    out += std::to_string(h.port());
    out += ",\"weight\":";
    append_json_double(out, h.has_weight() ? h.weight() : 1.0);
    out += ",\"healthy\":";
    out += flag(!h.has_healthy() || h.healthy());
    out += ",\"enabled\":true,\"ephemeral\":";
    out += flag(!h.has_ephemeral() || h.ephemeral());
    out += ",\"clusterName\":";
    append_json_string(out, h.cluster());
    out += ",\"serviceName\":";
    append_json_string(out, h.service_name().empty() ? info.name() : h.service_name());
    out += ",\"metadata\":{";
    // Sorted keys, as the HTTP API writes them (protobuf's map has no order).
    std::vector<const google::protobuf::MapPair<std::string, std::string>*> meta;
    meta.reserve(h.metadata().size());
    for (const auto& kv : h.metadata())
      meta.push_back(&kv);
    std::sort(meta.begin(), meta.end(), [](auto* x, auto* y) { return x->first < y->first; });
    for (std::size_t i = 0; i < meta.size(); ++i) {
      if (i > 0)
        out += ",";
      append_json_string(out, meta[i]->first);
      out += ":";
      append_json_string(out, meta[i]->second);
    }
    out += "}}";
  }
  out += "],\"lastRefTime\":";
  out += std::to_string(last_ref_time_ms < 0 ? 0 : last_ref_time_ms);
  out += ",\"checksum\":\"\",\"allIPs\":false,\"allIps\":false,\"reachProtectionThreshold\":";
  out += flag(info.reach_protection_threshold());
  out += ",\"valid\":true}";
  return out;
}

std::shared_ptr<const service_info_parts> cached_service_info(const std::string& payload,
                                                              const std::string& clusters,
                                                              std::int64_t cache_millis) {
  static std::mutex mtx;
  static std::unordered_map<std::string, std::shared_ptr<const service_info_parts>> entries;
  std::string cache_key;
  cache_key.reserve(clusters.size() + 24 + payload.size());
  cache_key.append(clusters).append(1, '\0').append(std::to_string(cache_millis)).append(1, '\0');
  cache_key.append(payload);
  {
    std::lock_guard<std::mutex> guard{mtx};
    if (auto i = entries.find(cache_key); i != entries.end())
      return i->second;
  }
  v1::ServiceInfo info;
  if (!info.ParseFromString(payload))
    return nullptr;
  auto parts = std::make_shared<service_info_parts>();
  // A marker lastRefTime that cannot occur in the text otherwise splits it.
  constexpr std::int64_t marker = -1;
  auto whole = service_info_json(info, clusters, marker, cache_millis);
  const std::string ref_key = "\"lastRefTime\":0,";
  auto at = whole.rfind(ref_key);
  if (at == std::string::npos)
    return nullptr;
  parts->before_ref = whole.substr(0, at + ref_key.size() - 2);
  parts->after_ref = whole.substr(at + ref_key.size() - 1);
  parts->key.namespace_id = info.namespace_id().empty() ? "public" : info.namespace_id();
  parts->key.group = info.group_name();
  std::string_view name = info.name();
  if (auto sep = name.find("@@"); sep != std::string_view::npos)
    name = name.substr(sep + 2);
  parts->key.name = std::string{name};
  parts->last_ref_time_ms = info.last_ref_time();
  std::lock_guard<std::mutex> guard{mtx};
  if (entries.size() >= defaults::grpc_service_info_cache_entries_max)
    entries.clear();
  entries.emplace(std::move(cache_key), parts);
  return parts;
}

} // namespace registry::grpc_api
