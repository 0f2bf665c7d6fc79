#include "actors/http/nacos_api.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string_view>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "actors/common/json_text.hpp"
#include "config/defaults.hpp"
#include "messages/convert.hpp"
#include "messages/raft.pb.h"
#include "messages/validate.hpp"

namespace registry::http {

/// Text from outside may hold bytes that are not UTF-8: they are replaced (U+FFFD) in replies,
/// never thrown on.
constexpr auto invalid_utf8 = nlohmann::json::error_handler_t::replace;

namespace {

using json = nlohmann::json;
using done_fn = std::function<void(response)>;

constexpr const char* text_plain = "text/plain;charset=UTF-8";
constexpr const char* ack_kind = "registry.v1.Ack";
constexpr const char* error_kind = "registry.v1.Error";

/// Which API a route belongs to: v1 answers bare bodies and text errors, v2 wraps everything in
/// {"code","message","data"}.
enum class api { v1, v2 };

/// Nacos 2.x ErrorCode values used in v2 replies.
namespace code {
constexpr int ok = 0;
constexpr int parameter_missing = 10000;
constexpr int parameter_invalid = 20001; // PARAMETER_VALIDATE_ERROR
constexpr int not_found = 20004;
constexpr int service_name_error = 21000;
constexpr int weight_error = 21001;
constexpr int instance_metadata_error = 21002;
constexpr int instance_not_found = 21003;
constexpr int instance_error = 21004;
constexpr int server_error = 30000;
} // namespace code

/// A failure on its way to the client.
struct failure {
  int status = 400;
  int code = code::parameter_invalid;
  std::string message;
};

std::string v2_summary(int c) {
  switch (c) {
    case code::parameter_missing:
      return "parameter missing";
    case code::parameter_invalid:
      return "parameter validate error";
    case code::not_found:
      return "resource not found";
    case code::service_name_error:
      return "service name error";
    case code::weight_error:
      return "weight error";
    case code::instance_metadata_error:
      return "instance metadata error";
    case code::instance_not_found:
      return "instance not found";
    case code::instance_error:
      return "instance error";
    default:
      return "server error";
  }
}

response fail(api a, const failure& f) {
  response r;
  r.status = f.status;
  if (a == api::v1) {
    r.body = f.message;
    r.content_type = text_plain;
  } else {
    r.body = json{{"code", f.code}, {"message", v2_summary(f.code)}, {"data", f.message}}.dump(
      -1, ' ', false, invalid_utf8);
  }
  return r;
}

failure from_param_error(const param_error& e) {
  bool is_missing = e.message.rfind("Parameter '", 0) == 0;
  return {e.status, is_missing ? code::parameter_missing : code::parameter_invalid, e.message};
}

/// A field error of messages/validate, with the v2 code Nacos uses for that field.
failure from_field_error(const field_error& e) {
  int c = code::parameter_invalid;
  if (e.field == "serviceName")
    c = code::service_name_error;
  else if (e.field == "weight")
    c = code::weight_error;
  else if (e.field == "metadata")
    c = code::instance_metadata_error;
  else if (e.field == "clusterName" || e.field == "cluster" || e.field == "ip"
           || e.field == "port" || e.field == "ephemeral")
    c = code::instance_error;
  return {400, c, e.message};
}

/// The failure an Error reply (or no reply) of the node stands for.
failure from_node(const wire_msg& reply) {
  if (reply.kind.empty())
    return {503, code::server_error, "the node did not answer: " + reply.payload};
  v1::Error err;
  if (reply.kind != error_kind || !err.ParseFromString(reply.payload))
    return {500, code::server_error, "unexpected reply " + reply.kind};
  switch (err.code()) {
    case v1::Error::INVALID_ARGUMENT:
      return from_field_error({err.field(), err.message()});
    case v1::Error::NOT_FOUND:
      return {404, code::not_found, err.message()};
    case v1::Error::LIMIT_EXCEEDED:
      return {400, code::parameter_invalid, err.message()};
    case v1::Error::UNAVAILABLE:
      return {503, code::server_error, err.message()};
    default:
      return {500, code::server_error, err.message()};
  }
}

response ok_json(api a, json data) {
  response r;
  if (a == api::v1)
    r.body = data.dump(-1, ' ', false, invalid_utf8);
  else
    r.body = json{{"code", code::ok}, {"message", "success"}, {"data", std::move(data)}}.dump(
      -1, ' ', false, invalid_utf8);
  return r;
}

/// "ok": v1 writes answer the bare text, v2 wraps it.
response ok_text(api a) {
  if (a == api::v2)
    return ok_json(a, "ok");
  response r;
  r.body = "ok";
  r.content_type = text_plain;
  return r;
}

/// A reply handler for writes: an Ack answers "ok", anything else the failure it stands for.
reply_fn ok_or_fail(api a, done_fn done) {
  return [a, done](wire_msg reply) {
    if (reply.kind == ack_kind)
      return done(ok_text(a)); // an Ack also for an unknown instance on deregister, as Nacos
    done(fail(a, from_node(reply)));
  };
}

template <class Message>
wire_msg pack(const Message& m) {
  return {Message::descriptor()->full_name(), m.SerializeAsString()};
}

// -- decoding shared by the routes ---------------------------------------------

/// namespaceId, serviceName (grouped or not) and groupName into a validated key.
std::optional<failure> read_service(const params& p, service_key& key, bool name_required = true) {
  std::string raw_name;
  if (auto e = required(p, "serviceName", raw_name)) {
    if (name_required)
      return from_param_error(*e);
  }
  auto* ns = p.get_any({"namespaceId", "tenant"});
  key.namespace_id = ns != nullptr && !ns->empty() ? *ns : defaults::namespace_id;
  auto* group = p.get("groupName");
  std::string group_name = group != nullptr && !group->empty() ? *group : defaults::group;
  std::string split_group;
  std::string split_name;
  if (auto e = split_service_name(raw_name, group_name, split_group, split_name))
    return from_param_error(*e);
  key.group = split_group;
  key.name = split_name;
  if (!name_required && key.name.empty())
    key.name = "x"; // only namespace and group are checked
  if (auto e = validate_service_key(key))
    return from_field_error(*e);
  return std::nullopt;
}

/// ip, port, cluster, weight, enabled, healthy, ephemeral, metadata of a write.
/// `persistent_allowed`: ephemeral=false passes here (the gateway writes it through Raft, or
/// refuses it when the node has no data_dir).
std::optional<failure> read_instance(const params& p, instance& x, bool persistent_allowed) {
  if (auto e = required(p, "ip", x.ip))
    return from_param_error(*e);
  std::int64_t port = 0;
  if (auto e = read_int(p, "port", std::nullopt, 1, 65535, port))
    return from_param_error(*e);
  x.port = static_cast<std::uint32_t>(port);
  auto* cluster = p.get_any({"clusterName", "cluster"});
  x.cluster = cluster != nullptr && !cluster->empty() ? *cluster : defaults::cluster;
  if (auto e = read_double(p, "weight", 1.0, x.weight))
    return from_param_error(*e);
  // Nacos reads "enabled" and, from older clients such as the npm one, "enable".
  bool enabled = true;
  auto* enabled_param = p.get_any({"enabled", "enable"});
  if (enabled_param != nullptr) {
    params one;
    one.add("enabled", *enabled_param);
    if (auto e = read_bool(one, "enabled", true, enabled))
      return from_param_error(*e);
  }
  x.enabled = enabled;
  if (auto e = read_bool(p, "healthy", true, x.healthy))
    return from_param_error(*e);
  if (auto e = read_bool(p, "ephemeral", true, x.ephemeral))
    return from_param_error(*e);
  if (auto* meta = p.get("metadata")) {
    std::vector<std::pair<std::string, std::string>> parsed;
    if (auto e = parse_metadata(*meta, parsed))
      return failure{400, code::instance_metadata_error, e->message};
    x.metadata.assign(parsed.begin(), parsed.end());
  }
  if (auto e = validate_instance(x, persistent_allowed))
    return from_field_error(*e);
  return std::nullopt;
}

json metadata_json(const v1::Instance& h) {
  json m = json::object();
  for (auto& [k, v] : h.metadata())
    m[k] = v;
  return m;
}

/// One host of a ServiceInfo as Nacos's JSON, written directly: a list reply is the hottest path
/// of the HTTP API, and building a JSON document first cost most of its time in allocations.
/// Keys in the order nlohmann's writer uses (sorted), so both writers give the same text.
void append_host(std::string& out, const v1::Instance& h, const std::string& grouped,
                 const api_settings& s) {
  bool healthy = h.has_healthy() ? h.healthy() : true;
  auto flag = [](bool b) { return b ? "true" : "false"; };
  out += "{\"clusterName\":";
  append_json_string(out, h.cluster());
  out += ",\"enabled\":";
  out += flag(h.has_enabled() ? h.enabled() : true);
  out += ",\"ephemeral\":";
  out += flag(h.has_ephemeral() ? h.ephemeral() : true);
  out += ",\"healthy\":";
  out += flag(healthy);
  out += ",\"instanceHeartBeatInterval\":" + std::to_string(s.beat_interval_ms);
  out += ",\"instanceHeartBeatTimeOut\":" + std::to_string(s.unhealthy_timeout_ms);
  out += ",\"instanceId\":";
  append_json_string(out, h.instance_id());
  out += ",\"instanceIdGenerator\":\"simple\",\"ip\":";
  append_json_string(out, h.ip());
  out += ",\"ipDeleteTimeout\":" + std::to_string(s.delete_timeout_ms);
  out += ",\"marked\":false,\"metadata\":{";
  // Sorted, as a JSON object of nlohmann's (protobuf maps have no order).
  std::vector<const google::protobuf::MapPair<std::string, std::string>*> meta;
  meta.reserve(h.metadata().size());
  for (auto& kv : h.metadata())
    meta.push_back(&kv);
  std::sort(meta.begin(), meta.end(), [](auto* x, auto* y) { return x->first < y->first; });
  for (std::size_t i = 0; i < meta.size(); ++i) {
    if (i > 0)
      out.push_back(',');
    append_json_string(out, meta[i]->first);
    out.push_back(':');
    append_json_string(out, meta[i]->second);
  }
  out += "},\"port\":" + std::to_string(h.port());
  out += ",\"serviceName\":";
  append_json_string(out, h.service_name().empty() ? grouped : h.service_name());
  out += ",\"valid\":";
  out += flag(healthy);
  out += ",\"weight\":";
  append_json_double(out, h.has_weight() ? h.weight() : 1.0);
  out.push_back('}');
}

} // namespace

std::string service_info_text(const v1::ServiceInfo& info, const std::string& clusters,
                              std::int64_t cache_millis, const api_settings& s, bool healthy_only,
                              bool with_dom) {
  std::string out;
  out.reserve(256 + 512 * static_cast<std::size_t>(info.hosts_size()));
  out += "{\"allIPs\":false,\"cacheMillis\":" + std::to_string(cache_millis);
  out += ",\"checksum\":\"\",\"clusters\":";
  append_json_string(out, clusters);
  if (with_dom) {
    out += ",\"dom\":";
    append_json_string(out, info.name());
  }
  out += ",\"groupName\":";
  append_json_string(out, info.group_name());
  out += ",\"hosts\":[";
  bool first = true;
  for (auto& h : info.hosts()) {
    if (healthy_only && h.has_healthy() && !h.healthy())
      continue;
    if (!first)
      out.push_back(',');
    first = false;
    append_host(out, h, info.name(), s);
  }
  out += "],\"lastRefTime\":" + std::to_string(info.last_ref_time());
  out += ",\"name\":";
  append_json_string(out, info.name());
  out += ",\"reachProtectionThreshold\":";
  out += info.reach_protection_threshold() ? "true" : "false";
  out += ",\"valid\":true}";
  return out;
}

namespace {

/// A route: decodes and answers one kind of request.
using handler = void (*)(api, const request&, const params&, const api_settings&, node_port&,
                         done_fn);

// -- /instance -------------------------------------------------------------------

void register_instance(api a, const request&, const params& p, const api_settings&,
                       node_port& port, done_fn done) {
  v1::RegisterRequest req;
  service_key key;
  instance x;
  if (auto f = read_service(p, key))
    return done(fail(a, *f));
  // Persistent instances (ephemeral=false) go through Raft, as Go and older Java clients send
  // them over HTTP.
  if (auto f = read_instance(p, x, true))
    return done(fail(a, *f));
  to_wire(key, *req.mutable_service());
  to_wire(x, *req.mutable_instance());
  port.call(gateway_op::reg, pack(req), ok_or_fail(a, done));
}

void deregister_instance(api a, const request&, const params& p, const api_settings&,
                         node_port& port, done_fn done) {
  service_key key;
  if (auto f = read_service(p, key))
    return done(fail(a, *f));
  v1::DeregisterRequest req;
  to_wire(key, *req.mutable_service());
  std::string ip;
  if (auto e = required(p, "ip", ip))
    return done(fail(a, from_param_error(*e)));
  std::int64_t port_number = 0;
  if (auto e = read_int(p, "port", std::nullopt, 1, 65535, port_number))
    return done(fail(a, from_param_error(*e)));
  auto* cluster = p.get_any({"clusterName", "cluster"});
  std::string cluster_name = cluster != nullptr && !cluster->empty() ? *cluster : defaults::cluster;
  if (auto e = validate_cluster(cluster_name))
    return done(fail(a, from_field_error(*e)));
  bool ephemeral = true;
  if (auto e = read_bool(p, "ephemeral", true, ephemeral))
    return done(fail(a, from_param_error(*e)));
  req.set_ip(ip);
  req.set_port(static_cast<std::uint32_t>(port_number));
  req.set_cluster(cluster_name);
  req.set_persistent(!ephemeral);
  port.call(gateway_op::dereg, pack(req), ok_or_fail(a, done));
}

/// A reply handler: a ServiceInfo goes to `then`, anything else is answered as the failure.
template <class Then>
reply_fn service_info_or_fail(api a, done_fn done, Then then) {
  return [a, done, then](wire_msg reply) {
    v1::ServiceInfo info;
    if (reply.kind != v1::ServiceInfo::descriptor()->full_name()
        || !info.ParseFromString(reply.payload))
      return done(fail(a, from_node(reply)));
    then(info);
  };
}

/// Queries `key` and hands the ServiceInfo to `then`, or answers the failure.
template <class Then>
void query_then(api a, node_port& port, const service_key& key,
                const std::vector<std::string>& clusters, bool healthy_only, done_fn done,
                Then then) {
  v1::QueryRequest req;
  to_wire(key, *req.mutable_service());
  for (auto& c : clusters)
    req.add_clusters(c);
  req.set_healthy_only(healthy_only);
  port.call(gateway_op::query, pack(req), service_info_or_fail(a, done, then));
}

void get_instance(api a, const request&, const params& p, const api_settings& s,
                  node_port& port, done_fn done) {
  service_key key;
  if (auto f = read_service(p, key))
    return done(fail(a, *f));
  std::string ip;
  if (auto e = required(p, "ip", ip))
    return done(fail(a, from_param_error(*e)));
  std::int64_t port_number = 0;
  if (auto e = read_int(p, "port", std::nullopt, 1, 65535, port_number))
    return done(fail(a, from_param_error(*e)));
  auto* cluster = p.get_any({"clusterName", "cluster"});
  std::string cluster_name = cluster != nullptr && !cluster->empty() ? *cluster : defaults::cluster;
  if (auto e = validate_cluster(cluster_name))
    return done(fail(a, from_field_error(*e)));
  query_then(a, port, key, {cluster_name}, false, done, [=](const v1::ServiceInfo& info) {
    if (info.hosts_size() == 0)
      return done(fail(a, {404, code::instance_not_found,
                           "no ips found for cluster " + cluster_name + " in service "
                             + key.grouped_name()}));
    for (auto& h : info.hosts()) {
      if (h.ip() != ip || h.port() != static_cast<std::uint32_t>(port_number))
        continue;
      json body{{"service", info.name()},
                {"ip", h.ip()},
                {"port", h.port()},
                {"clusterName", h.cluster()},
                {"weight", h.has_weight() ? h.weight() : 1.0},
                {"healthy", h.has_healthy() ? h.healthy() : true},
                {"instanceId", h.instance_id()},
                {"metadata", metadata_json(h)}};
      if (a == api::v2) {
        body["serviceName"] = info.name();
        body.erase("service");
      }
      (void) s;
      return done(ok_json(a, std::move(body)));
    }
    done(fail(a, {404, code::instance_not_found, "no matched ip found!"}));
  });
}

/// PUT /instance: the instance must exist; its fields are replaced by the request's.
void update_instance(api a, const request& r, const params& p, const api_settings& s,
                     node_port& port, done_fn done) {
  service_key key;
  instance x;
  if (auto f = read_service(p, key))
    return done(fail(a, *f));
  if (auto f = read_instance(p, x, true))
    return done(fail(a, *f));
  // The service's detail, not a query: a query leaves out disabled instances and those with
  // weight 0, and exactly those must be updatable (brought back online). ephemeral=false names a
  // persistent instance: its weight, enabled and metadata change through Raft (its health is the
  // checks').
  v1::ServiceDetailRequest detail_req;
  to_wire(key, *detail_req.mutable_service());
  port.call(gateway_op::query, pack(detail_req), [=, &port](wire_msg reply) {
    v1::ServiceDetail detail;
    if (reply.kind != v1::ServiceDetail::descriptor()->full_name()
        || !detail.ParseFromString(reply.payload))
      return done(fail(a, from_node(reply)));
    bool found = std::any_of(detail.instances().begin(), detail.instances().end(), [&](auto& d) {
      auto& h = d.instance();
      return h.ip() == x.ip && h.port() == x.port && h.cluster() == x.cluster
             && is_persistent_client(d.client_id()) == !x.ephemeral;
    });
    if (!found)
      return done(fail(a, {400, code::instance_not_found,
                           "instance not exist: " + x.ip + ":" + std::to_string(x.port) + ":"
                             + x.cluster + " in service " + key.grouped_name()}));
    if (x.ephemeral)
      return register_instance(a, r, p, s, port, done);
    v1::PersistentOp op;
    op.set_kind(v1::PersistentOp::UPDATE);
    to_wire(key, *op.mutable_service());
    to_wire(x, *op.mutable_instance());
    port.call(gateway_op::update_persistent, pack(op), ok_or_fail(a, done));
  });
}

// -- /instance/list ----------------------------------------------------------------

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> result;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    auto item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty())
      result.push_back(item);
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return result;
}

void list_instances(api a, const request& r, const params& p, const api_settings& s,
                    node_port& port, done_fn done) {
  service_key key;
  if (auto f = read_service(p, key))
    return done(fail(a, *f));
  auto* clusters_param = p.get_any(a == api::v1 ? std::initializer_list<std::string_view>{"clusters"}
                                                : std::initializer_list<std::string_view>{
                                                  "clusterName", "clusters"});
  std::string clusters = clusters_param != nullptr ? *clusters_param : "";
  auto cluster_list = split_list(clusters);
  for (auto& c : cluster_list)
    if (auto e = validate_cluster(c))
      return done(fail(a, from_field_error(*e)));
  bool healthy_only = false;
  if (auto e = read_bool(p, "healthyOnly", false, healthy_only))
    return done(fail(a, from_param_error(*e)));
  std::int64_t udp_port = 0;
  if (auto e = read_int(p, "udpPort", 0, 0, 65535, udp_port))
    return done(fail(a, from_param_error(*e)));
  bool subscribe = a == api::v1 && udp_port > 0 && s.push_enabled && !r.remote_ip.empty();
  auto cache_millis = subscribe ? s.cache_millis : std::min<std::int64_t>(3000, s.cache_millis);
  auto answer = [=](const v1::ServiceInfo& info) {
    response r;
    auto body = service_info_text(info, clusters, cache_millis, s, healthy_only, a == api::v1);
    r.body = a == api::v1 ? std::move(body)
                          : "{\"code\":" + std::to_string(code::ok)
                              + ",\"data\":" + body + ",\"message\":\"success\"}";
    done(std::move(r));
  };
  if (!subscribe)
    return query_then(a, port, key, cluster_list, false, done, answer);
  // The query first: it refuses while the node is not ready, and answers an unknown service
  // without creating it; then the subscription (which answers the same view).
  query_then(a, port, key, cluster_list, false, done, [=, &port](const v1::ServiceInfo&) {
    // Pushes go to the address the request came from (see README: clientIP is not trusted).
    port.subscribe_udp(key, clusters, r.remote_ip, static_cast<std::uint16_t>(udp_port),
                       service_info_or_fail(a, done, answer));
  });
}

// -- /instance/beat -----------------------------------------------------------------

void beat_instance(api a, const request&, const params& p, const api_settings& s,
                   node_port& port, done_fn done) {
  service_key key;
  if (auto f = read_service(p, key))
    return done(fail(a, *f));
  instance x;
  auto* beat = p.get("beat");
  if (beat != nullptr && !beat->empty()) {
    auto doc = json::parse(*beat, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
      return done(fail(a, {400, code::parameter_invalid, "Param 'beat' is illegal, expected a JSON object."}));
    try {
      x.ip = doc.value("ip", std::string{});
      auto port_value = doc.value("port", json{});
      if (port_value.is_number_integer() && port_value.get<std::int64_t>() >= 1
          && port_value.get<std::int64_t>() <= 65535)
        x.port = port_value.get<std::uint32_t>();
      else if (!port_value.is_null())
        return done(fail(a, {400, code::instance_error,
                             "Param 'port' is illegal, the value should be between 1 and 65535."}));
      x.cluster = doc.value("cluster", std::string{});
      auto weight = doc.value("weight", json{});
      if (weight.is_number())
        x.weight = weight.get<double>();
      auto meta = doc.value("metadata", json::object());
      if (meta.is_object())
        for (auto& [k, v] : meta.items())
          x.metadata.emplace_back(k, v.is_string() ? v.get<std::string>()
                                                   : v.dump(-1, ' ', false, invalid_utf8));
      std::sort(x.metadata.begin(), x.metadata.end());
    } catch (const json::exception&) {
      return done(fail(a, {400, code::parameter_invalid, "Param 'beat' is illegal, expected a JSON object."}));
    }
  }
  // A light beat (no beat JSON) names the instance in parameters; so may a full one.
  if (x.ip.empty() && p.get("ip") != nullptr)
    x.ip = *p.get("ip");
  if (x.port == 0 && p.get("port") != nullptr) {
    std::int64_t port_number = 0;
    if (auto e = read_int(p, "port", std::nullopt, 1, 65535, port_number))
      return done(fail(a, from_param_error(*e)));
    x.port = static_cast<std::uint32_t>(port_number);
  }
  if (x.cluster.empty()) {
    auto* cluster = p.get_any({"clusterName", "cluster"});
    x.cluster = cluster != nullptr && !cluster->empty() ? *cluster : defaults::cluster;
  }
  if (x.ip.empty())
    return done(fail(a, from_param_error(missing("ip"))));
  if (x.port == 0)
    return done(fail(a, from_param_error(missing("port"))));
  if (auto e = validate_instance(x))
    return done(fail(a, from_field_error(*e)));
  v1::BeatRequest req;
  to_wire(key, *req.mutable_service());
  to_wire(x, *req.mutable_instance());
  auto interval = s.beat_interval_ms;
  port.call(gateway_op::beat, pack(req), [a, done, interval](wire_msg reply) {
    if (reply.kind != ack_kind)
      return done(fail(a, from_node(reply)));
    json body{{"clientBeatInterval", interval}, {"code", 10200}, {"lightBeatEnabled", true}};
    done(ok_json(a, std::move(body)));
  });
}

// -- services ---------------------------------------------------------------------

void list_services(api a, const request&, const params& p, const api_settings&, node_port& port,
                   done_fn done) {
  std::int64_t page = 1;
  std::int64_t size = defaults::page_size_default;
  // v1 requires pageNo and pageSize; v2 defaults them.
  std::optional<std::int64_t> page_default, size_default;
  if (a == api::v2) {
    page_default = 1;
    size_default = defaults::page_size_default;
  }
  if (auto e = read_int(p, "pageNo", page_default, 1, INT32_MAX, page))
    return done(fail(a, from_param_error(*e)));
  if (auto e = read_int(p, "pageSize", size_default, 1, defaults::page_size_max, size))
    return done(fail(a, from_param_error(*e)));
  service_key key;
  if (auto f = read_service(p, key, false))
    return done(fail(a, *f));
  v1::ListServicesRequest req;
  req.set_namespace_id(key.namespace_id);
  req.set_group(key.group);
  req.set_page(static_cast<std::uint32_t>(page));
  req.set_size(static_cast<std::uint32_t>(size));
  port.call(gateway_op::list, pack(req), [a, done](wire_msg reply) {
    v1::ServiceList list;
    if (reply.kind != v1::ServiceList::descriptor()->full_name()
        || !list.ParseFromString(reply.payload))
      return done(fail(a, from_node(reply)));
    json names = json::array();
    for (auto& n : list.services())
      names.push_back(n);
    if (a == api::v1)
      return done(ok_json(a, json{{"count", list.count()}, {"doms", std::move(names)}}));
    done(ok_json(a, json{{"count", list.count()}, {"services", std::move(names)}}));
  });
}

// -- operator, cluster and health -------------------------------------------------

template <class Then>
void status_then(api a, node_port& port, done_fn done, Then then) {
  port.call(gateway_op::status, pack(v1::StatusRequest{}), [a, done, then](wire_msg reply) {
    v1::Status st;
    if (reply.kind != v1::Status::descriptor()->full_name() || !st.ParseFromString(reply.payload))
      return done(fail(a, from_node(reply)));
    then(st);
  });
}

void operator_metrics(api a, const request&, const params& p, const api_settings&,
                      node_port& port, done_fn done) {
  bool only_status = false;
  if (auto e = read_bool(p, "onlyStatus", false, only_status))
    return done(fail(a, from_param_error(*e)));
  status_then(a, port, done, [=](const v1::Status& st) {
    std::string status = st.ready() ? "UP" : "DOWN";
    if (only_status)
      return done(ok_json(a, json{{"status", status}}));
    done(ok_json(a, json{{"status", status},
                         {"serviceCount", st.services()},
                         {"instanceCount", st.instances()},
                         {"subscribeCount", st.subscribers()},
                         {"clientCount", st.clients()},
                         {"responsibleClientCount", st.clients()},
                         {"ephemeralIpPortClientCount", st.clients()},
                         {"persistentIpPortClientCount", 0},
                         {"connectionBasedClientCount", 0}}));
  });
}

void liveness(api, const request&, const params&, const api_settings&, node_port&,
              done_fn done) {
  response r;
  r.body = "OK";
  r.content_type = text_plain;
  done(r);
}

void readiness(api a, const request&, const params&, const api_settings&, node_port& port,
               done_fn done) {
  port.call(gateway_op::status, pack(v1::StatusRequest{}), [a, done](wire_msg reply) {
    v1::Status st;
    response r;
    r.content_type = text_plain;
    if (reply.kind == v1::Status::descriptor()->full_name() && st.ParseFromString(reply.payload)
        && st.ready()) {
      r.body = "OK";
    } else {
      r.status = 500;
      r.body = "naming not in readiness";
    }
    (void) a;
    done(r);
  });
}

// -- services and the catalog ----------------------------------------------------------

/// GET /service: a service exists while it has instances (services are not stored apart from
/// them; see README).
void get_service(api a, const request&, const params& p, const api_settings&, node_port& port,
                 done_fn done) {
  service_key key;
  if (auto f = read_service(p, key))
    return done(fail(a, *f));
  v1::ServiceDetailRequest req;
  to_wire(key, *req.mutable_service());
  port.call(gateway_op::query, pack(req), [=](wire_msg reply) {
    v1::ServiceDetail detail;
    if (reply.kind != v1::ServiceDetail::descriptor()->full_name()
        || !detail.ParseFromString(reply.payload))
      return done(fail(a, from_node(reply)));
    if (detail.instances_size() == 0)
      return done(fail(a, {404, code::not_found, "service " + key.grouped_name() + " not found!"}));
    std::set<std::string> cluster_names;
    for (auto& d : detail.instances())
      cluster_names.insert(d.instance().cluster());
    json clusters = json::array();
    json cluster_map = json::object();
    for (auto& c : cluster_names) {
      json one{{"name", c}, {"healthChecker", {{"type", "NONE"}}}, {"metadata", json::object()}};
      clusters.push_back(one);
      cluster_map[c] = one;
    }
    if (a == api::v1)
      return done(ok_json(a, json{{"namespaceId", key.namespace_id},
                                  {"groupName", key.group},
                                  {"name", key.name},
                                  {"protectThreshold", detail.protect_threshold()},
                                  {"metadata", json::object()},
                                  {"selector", {{"type", "none"}}},
                                  {"clusters", clusters}}));
    done(ok_json(a, json{{"namespace", key.namespace_id},
                         {"groupName", key.group},
                         {"serviceName", key.name},
                         {"clusterMap", cluster_map},
                         {"metadata", json::object()},
                         {"protectThreshold", detail.protect_threshold()},
                         {"selector", {{"type", "none"}}},
                         {"ephemeral", !detail.persistent()}}));
  });
}

/// DELETE /service: only an empty service can go, and an empty one does not exist here.
void delete_service(api a, const request&, const params& p, const api_settings&,
                    node_port& port, done_fn done) {
  service_key key;
  if (auto f = read_service(p, key))
    return done(fail(a, *f));
  query_then(a, port, key, {}, false, done, [=](const v1::ServiceInfo& info) {
    if (info.hosts_size() > 0)
      return done(fail(a, {400, 21009,
                           "Service " + key.grouped_name()
                             + " is not empty, can't be delete. Please unregister instance first"}));
    done(fail(a, {404, code::not_found, "service " + key.grouped_name() + " not found!"}));
  });
}

/// POST / PUT /service: a service keeps one setting of its own, its protect threshold, written
/// through Raft (so it needs data_dir) and applied on every member; it overrides the YAML's
/// discovery.service_thresholds. PUT changes a service this node knows (Nacos: "not found"
/// otherwise); POST may name one that has no instances yet. Metadata and selectors are not kept
/// and are refused rather than dropped.
void write_service(api a, const request& r, const params& p, const api_settings&, node_port& port,
                   done_fn done) {
  service_key key;
  if (auto f = read_service(p, key))
    return done(fail(a, *f));
  for (const char* unkept : {"metadata", "selector"})
    if (auto* v = p.get(unkept); v != nullptr && !v->empty() && *v != "{}"
                                 && !(std::string_view{unkept} == "selector"
                                      && v->find("\"none\"") != std::string::npos))
      return done(fail(a, {400, code::parameter_invalid,
                           std::string{unkept} + ": services keep no " + unkept
                             + " here; only protectThreshold can be set"}));
  bool update = r.method == "PUT";
  if (update && p.get("protectThreshold") == nullptr)
    return done(fail(a, {400, code::parameter_invalid,
                         "protectThreshold: required (the one setting a service keeps here)"}));
  double threshold = 0;
  if (auto e = read_double(p, "protectThreshold", 0.0, threshold))
    return done(fail(a, from_param_error(*e)));
  v1::PersistentOp req;
  req.set_kind(v1::PersistentOp::THRESHOLD);
  to_wire(key, *req.mutable_service());
  req.set_protect_threshold(threshold);
  port.call(update ? gateway_op::update_service : gateway_op::create_service, pack(req),
            ok_or_fail(a, done));
}

/// GET /catalog/services (console): one page of services with their instance counts.
void catalog_services(api a, const request&, const params& p, const api_settings&,
                      node_port& port, done_fn done) {
  std::int64_t page = 1;
  std::int64_t size = defaults::page_size_default;
  if (auto e = read_int(p, "pageNo", 1, 1, INT32_MAX, page))
    return done(fail(a, from_param_error(*e)));
  if (auto e = read_int(p, "pageSize", defaults::page_size_default, 1, defaults::page_size_max, size))
    return done(fail(a, from_param_error(*e)));
  params group_params;
  group_params.add("namespaceId", p.get("namespaceId") ? *p.get("namespaceId") : "");
  group_params.add("groupName", p.get("groupNameParam") ? *p.get("groupNameParam")
                                : p.get("groupName") ? *p.get("groupName") : "");
  service_key prefix;
  if (auto f = read_service(group_params, prefix, false))
    return done(fail(a, *f));
  v1::ListServicesRequest req;
  req.set_namespace_id(prefix.namespace_id);
  req.set_group(prefix.group);
  req.set_page(static_cast<std::uint32_t>(page));
  req.set_size(static_cast<std::uint32_t>(size));
  port.call(gateway_op::list, pack(req), [a, done, prefix, &port](wire_msg reply) {
    v1::ServiceList list;
    if (reply.kind != v1::ServiceList::descriptor()->full_name()
        || !list.ParseFromString(reply.payload))
      return done(fail(a, from_node(reply)));
    struct fan {
      json items = json::array();
      std::size_t left = 0;
      std::mutex mtx;
    };
    auto count = list.count();
    if (list.services_size() == 0)
      return done(ok_json(a, json{{"count", count}, {"serviceList", json::array()}}));
    auto state = std::make_shared<fan>();
    state->left = static_cast<std::size_t>(list.services_size());
    for (auto& name : list.services()) {
      service_key key = prefix;
      key.name = name;
      v1::QueryRequest q;
      to_wire(key, *q.mutable_service());
      port.call(gateway_op::query, pack(q), [=](wire_msg r) {
        v1::ServiceInfo info;
        json item{{"name", key.name}, {"groupName", key.group}};
        std::set<std::string> clusters;
        int healthy = 0;
        if (r.kind == v1::ServiceInfo::descriptor()->full_name() && info.ParseFromString(r.payload))
          for (auto& h : info.hosts()) {
            clusters.insert(h.cluster());
            healthy += (!h.has_healthy() || h.healthy()) ? 1 : 0;
          }
        item["clusterCount"] = clusters.size();
        item["ipCount"] = info.hosts_size();
        item["healthyInstanceCount"] = healthy;
        item["triggerFlag"] = "false";
        std::lock_guard<std::mutex> guard{state->mtx};
        state->items.push_back(std::move(item));
        if (--state->left == 0)
          done(ok_json(a, json{{"count", count}, {"serviceList", std::move(state->items)}}));
      });
    }
  });
}

/// GET /operator/switches: the node's switches in Nacos's shape (read-only).
void operator_switches(api a, const request&, const params&, const api_settings& s, node_port&,
                       done_fn done) {
  done(ok_json(a, json{{"name", "00-00---000-NACOS_SWITCH_DOMAIN-000---00-00"},
                       {"masters", nullptr},
                       {"adWeightMap", json::object()},
                       {"defaultPushCacheMillis", s.cache_millis},
                       {"clientBeatInterval", s.beat_interval_ms},
                       {"defaultCacheMillis", 3000},
                       {"distroThreshold", 0.7},
                       {"healthCheckEnabled", true},
                       {"autoChangeHealthCheckEnabled", true},
                       {"distroEnabled", true},
                       {"enableStandalone", true},
                       {"pushEnabled", s.push_enabled},
                       {"checkTimes", 3},
                       {"httpHealthParams", {{"max", 5000}, {"min", 500}, {"factor", 0.85}}},
                       {"tcpHealthParams", {{"max", 5000}, {"min", 1000}, {"factor", 0.75}}},
                       {"mysqlHealthParams", {{"max", 3000}, {"min", 2000}, {"factor", 0.65}}},
                       {"incrementalList", json::array()},
                       {"serverStatusSynchronizationPeriodMillis", 2000},
                       {"serviceStatusSynchronizationPeriodMillis", 5000},
                       {"disableAddIP", false},
                       {"sendBeatOnly", false},
                       {"lightBeatEnabled", true},
                       {"limitedUrlMap", json::object()},
                       {"distroServerExpiredMillis", 10000},
                       {"pushGoVersion", "0.1.0"},
                       {"pushJavaVersion", "0.1.0"},
                       {"pushPythonVersion", "0.4.3"},
                       {"pushCVersion", "1.0.12"},
                       {"pushCSharpVersion", "0.9.0"},
                       {"enableAuthentication", false},
                       {"overriddenServerStatus", nullptr},
                       {"defaultInstanceEphemeral", true},
                       {"healthCheckWhiteList", json::array()},
                       {"checksum", nullptr}}));
}

/// GET /nacos/v1/core/cluster/nodes: the members as this node sees them. Addresses are the
/// members' CAF addresses (a node does not know its peers' HTTP ports).
void cluster_nodes(api a, const request&, const params& p, const api_settings&, node_port& port,
                   done_fn done) {
  auto* keyword = p.get("keyword");
  std::string filter = keyword != nullptr ? *keyword : "";
  port.call(gateway_op::members, pack(v1::MembersRequest{}), [a, done, filter](wire_msg reply) {
    v1::MemberList members;
    if (reply.kind != v1::MemberList::descriptor()->full_name()
        || !members.ParseFromString(reply.payload))
      return done(fail(a, from_node(reply)));
    json data = json::array();
    for (auto& m : members.members()) {
      if (!filter.empty() && m.address().find(filter) == std::string::npos)
        continue;
      auto colon = m.address().rfind(':');
      std::string state = m.state() == "SELF" || m.state() == "UP" ? "UP"
                          : m.state() == "SUSPICIOUS"              ? "SUSPICIOUS"
                          : m.state() == "CONFLICT"                ? "ISOLATION"
                                                                   : "DOWN";
      json member{{"ip", m.address().substr(0, colon)},
                  {"port", colon == std::string::npos ? 0 : std::atoi(m.address().c_str() + colon + 1)},
                  {"state", state},
                  {"address", m.address()},
                  {"extendInfo", {{"node", m.node()}, {"problem", m.problem()}}},
                  {"failAccessCnt", 0},
                  {"abilities", json::object()}};
      data.push_back(std::move(member));
    }
    response r;
    r.body = json{{"code", 200}, {"message", nullptr}, {"data", std::move(data)}}.dump(
      -1, ' ', false, invalid_utf8);
    done(r);
  });
}

// -- auth ----------------------------------------------------------------------------

/// POST /nacos/v1/auth/login and /auth/users/login: username and password give an accessToken.
void login(api a, const request&, const params& p, const api_settings& s, node_port&,
           done_fn done) {
  if (!s.auth)
    return done(fail(a, {400, code::parameter_invalid, "auth is off on this node (auth.enabled)"}));
  std::string user;
  std::string password;
  if (auto e = required(p, "username", user))
    return done(fail(a, from_param_error(*e)));
  if (auto* pw = p.get("password"))
    password = *pw;
  std::string token;
  auto r = s.auth->login(user, password, now_of(s), token);
  if (!r.ok)
    return done(fail(a, {r.status, 10001, r.message}));
  done(ok_json(api::v1, json{{"accessToken", token},
                             {"tokenTtl", s.auth->signer().ttl_ms() / 1000},
                             {"globalAdmin", false},
                             {"username", user}}));
}

struct route {
  const char* method;
  const char* path;
  api version;
  handler fn;
  bool open = false; ///< served without credentials when auth is on
};

const route routes[] = {
  {"POST", "/nacos/v1/ns/instance", api::v1, register_instance},
  {"DELETE", "/nacos/v1/ns/instance", api::v1, deregister_instance},
  {"PUT", "/nacos/v1/ns/instance", api::v1, update_instance},
  {"GET", "/nacos/v1/ns/instance", api::v1, get_instance},
  {"GET", "/nacos/v1/ns/instance/list", api::v1, list_instances},
  {"PUT", "/nacos/v1/ns/instance/beat", api::v1, beat_instance},
  {"GET", "/nacos/v1/ns/service/list", api::v1, list_services},
  {"GET", "/nacos/v1/ns/operator/metrics", api::v1, operator_metrics},
  {"GET", "/nacos/v1/ns/operator/switches", api::v1, operator_switches},
  {"GET", "/nacos/v1/ns/service", api::v1, get_service},
  {"DELETE", "/nacos/v1/ns/service", api::v1, delete_service},
  {"POST", "/nacos/v1/ns/service", api::v1, write_service},
  {"PUT", "/nacos/v1/ns/service", api::v1, write_service},
  {"GET", "/nacos/v1/ns/catalog/services", api::v1, catalog_services},
  {"GET", "/nacos/v1/core/cluster/nodes", api::v1, cluster_nodes},
  {"GET", "/nacos/v2/ns/service", api::v2, get_service},
  {"DELETE", "/nacos/v2/ns/service", api::v2, delete_service},
  {"POST", "/nacos/v2/ns/service", api::v2, write_service},
  {"PUT", "/nacos/v2/ns/service", api::v2, write_service},
  {"GET", "/nacos/v1/console/health/liveness", api::v1, liveness, true},
  {"GET", "/nacos/v1/console/health/readiness", api::v1, readiness, true},
  {"POST", "/nacos/v1/auth/login", api::v1, login, true},
  {"POST", "/nacos/v1/auth/users/login", api::v1, login, true},
  {"POST", "/nacos/v2/ns/instance", api::v2, register_instance},
  {"DELETE", "/nacos/v2/ns/instance", api::v2, deregister_instance},
  {"PUT", "/nacos/v2/ns/instance", api::v2, update_instance},
  {"GET", "/nacos/v2/ns/instance", api::v2, get_instance},
  {"GET", "/nacos/v2/ns/instance/list", api::v2, list_instances},
  {"PUT", "/nacos/v2/ns/instance/beat", api::v2, beat_instance},
  {"GET", "/nacos/v2/ns/service/list", api::v2, list_services},
  {"GET", "/nacos/v2/console/health/liveness", api::v2, liveness, true},
  {"GET", "/nacos/v2/console/health/readiness", api::v2, readiness, true},
};

/// "/nacos/v1/ns/ops/..." is Nacos's alias of "/nacos/v1/ns/operator/...".
std::string canonical_path(const std::string& path) {
  static const std::string ops = "/nacos/v1/ns/ops/";
  if (path.rfind(ops, 0) == 0)
    return "/nacos/v1/ns/operator/" + path.substr(ops.size());
  return path;
}

const route* find_route(const std::string& method, const std::string& path, bool& path_known) {
  auto canonical = canonical_path(path);
  path_known = false;
  for (auto& r : routes) {
    if (canonical != r.path)
      continue;
    path_known = true;
    if (method == r.method)
      return &r;
  }
  return nullptr;
}

} // namespace

std::string route_label(const std::string& method, const std::string& path) {
  bool known = false;
  if (auto* r = find_route(method, path, known))
    return std::string{r->method} + " " + r->path;
  return "other";
}

std::int64_t now_of(const api_settings& s) {
  if (s.now_ms)
    return s.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

nacos_api::nacos_api(api_settings settings, node_port& port)
  : settings_(std::move(settings)), port_(port) {
  // nop
}

void nacos_api::handle(const request& req, std::function<void(response)> done,
                       std::string* path_out) {
  std::string path;
  params p;
  if (auto e = parse_target(req.target, path, p, settings_.limits)) {
    response r;
    r.status = e->status;
    r.body = e->message;
    r.content_type = text_plain;
    return done(r);
  }
  if (path_out != nullptr)
    *path_out = path;
  if (!req.body.empty() && is_form_content_type(req.content_type)) {
    if (auto e = parse_urlencoded(req.body, p, settings_.limits)) {
      response r;
      r.status = e->status;
      r.body = e->message;
      r.content_type = text_plain;
      return done(r);
    }
  }
  bool path_known = false;
  auto* r = find_route(req.method, path, path_known);
  if (r == nullptr) {
    response out;
    out.content_type = text_plain;
    if (path_known) {
      out.status = 405;
      out.body = "Request method '" + req.method + "' not supported";
    } else {
      out.status = 404;
      out.body = "no such API: " + path.substr(0, 200);
    }
    return done(out);
  }
  if (settings_.auth && !r->open) {
    auto* token = p.get("accessToken");
    auto* user = p.get("username");
    auto* password = p.get("password");
    auto verdict = settings_.auth->check(token != nullptr ? *token : req.access_token,
                                         user != nullptr ? *user : "",
                                         password != nullptr ? *password : "",
                                         now_of(settings_));
    if (!verdict.ok)
      return done(fail(r->version, {verdict.status, 10001, verdict.message}));
  }
  r->fn(r->version, req, p, settings_, port_, std::move(done));
}

std::string service_info_json(const std::string& payload, const std::string& clusters,
                              std::int64_t cache_millis, const api_settings& settings,
                              bool healthy_only) {
  v1::ServiceInfo info;
  if (!info.ParseFromString(payload))
    return "{}";
  return service_info_text(info, clusters, cache_millis, settings, healthy_only, true);
}

} // namespace registry::http
