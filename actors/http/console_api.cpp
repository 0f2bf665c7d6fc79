#include "actors/http/console_api.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <mutex>

#include "actors/http/console_assets.hpp"
#include "config/defaults.hpp"
#include "messages/convert.hpp"
#include "messages/raft.pb.h"
#include "messages/registry.pb.h"
#include "messages/validate.hpp"

namespace registry::http {

namespace {

using json = nlohmann::json;
using done_fn = std::function<void(response)>;

/// Registry data may hold bytes that are not UTF-8: replaced (U+FFFD), never thrown on.
constexpr auto invalid_utf8 = json::error_handler_t::replace;

response json_response(int status, const json& body) {
  response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, invalid_utf8);
  r.headers = console_headers();
  return r;
}

response refusal(int status, const std::string& field, const std::string& message) {
  return json_response(status, json{{"status", status}, {"field", field}, {"message", message}});
}

response refusal(const param_error& e, const std::string& field) {
  return refusal(e.status, field, e.message);
}

/// The refusal an Error reply (or no reply) of the node stands for.
response from_node(const wire_msg& reply) {
  if (reply.kind.empty())
    return refusal(503, "", "the node did not answer: " + reply.payload);
  v1::Error err;
  if (reply.kind != v1::Error::descriptor()->full_name() || !err.ParseFromString(reply.payload))
    return refusal(500, "", "unexpected reply " + reply.kind);
  switch (err.code()) {
    case v1::Error::INVALID_ARGUMENT:
    case v1::Error::LIMIT_EXCEEDED:
      return refusal(400, err.field(), err.message());
    case v1::Error::NOT_FOUND:
      return refusal(404, err.field(), err.message());
    case v1::Error::UNAVAILABLE:
      return refusal(503, err.field(), err.message());
    case v1::Error::UNAUTHORIZED:
      return refusal(403, err.field(), err.message());
    default:
      return refusal(500, err.field(), err.message());
  }
}

template <class Message>
wire_msg pack(const Message& m) {
  return {Message::descriptor()->full_name(), m.SerializeAsString()};
}

template <class Message>
bool unpack(const wire_msg& reply, Message& out) {
  return reply.kind == Message::descriptor()->full_name() && out.ParseFromString(reply.payload);
}

/// namespaceId and groupName (defaults when absent or empty), checked as the node checks them.
std::optional<response> read_scope(const params& p, service_key& key) {
  auto* ns = p.get("namespaceId");
  auto* group = p.get("groupName");
  key.namespace_id = ns != nullptr && !ns->empty() ? *ns : defaults::namespace_id;
  key.group = group != nullptr && !group->empty() ? *group : defaults::group;
  if (key.name.empty())
    key.name = "x"; // only namespace and group are checked here
  if (auto e = validate_service_key(key))
    return refusal(400, e->field, e->message);
  return std::nullopt;
}

json instance_json(const v1::InstanceDetail& d) {
  auto& h = d.instance();
  json meta = json::object();
  for (auto& [k, v] : h.metadata())
    meta[k] = v;
  return json{{"ip", h.ip()},
              {"port", h.port()},
              {"cluster", h.cluster()},
              {"weight", h.has_weight() ? h.weight() : 1.0},
              {"healthy", h.has_healthy() ? h.healthy() : true},
              {"enabled", h.has_enabled() ? h.enabled() : true},
              {"ephemeral", h.has_ephemeral() ? h.ephemeral() : true},
              {"instanceId", h.instance_id()},
              {"metadata", std::move(meta)},
              {"clientId", d.client_id()},
              {"owner", d.owner()}};
}

// -- /console/api/services ------------------------------------------------------------

/// Gathers the service names of `scope`, page after page of the gateway's list, up to
/// console_services_scanned_max; then `then(names, total)`.
void list_names(node_port& port, const service_key& scope, std::uint32_t page,
                std::shared_ptr<std::vector<std::string>> names, done_fn done,
                std::function<void(std::shared_ptr<std::vector<std::string>>, std::uint32_t)> then) {
  v1::ListServicesRequest req;
  req.set_namespace_id(scope.namespace_id);
  req.set_group(scope.group);
  req.set_page(page);
  req.set_size(defaults::page_size_max);
  port.call(gateway_op::list, pack(req),
            [&port, scope, page, names, done, then](wire_msg reply) {
              v1::ServiceList list;
              if (!unpack(reply, list))
                return done(from_node(reply));
              for (auto& n : list.services())
                names->push_back(n);
              bool more = list.services_size() > 0 && names->size() < list.count()
                          && names->size() < defaults::console_services_scanned_max;
              if (more)
                return list_names(port, scope, page + 1, names, done, then);
              then(names, list.count());
            });
}

void serve_services(const params& p, node_port& port, done_fn done) {
  service_key scope;
  if (auto r = read_scope(p, scope))
    return done(*r);
  std::string search;
  if (auto* s = p.get("search"))
    search = *s;
  if (search.size() > defaults::console_search_chars_max)
    return done(refusal(400, "search",
                        "Param 'search' is illegal, it is longer than "
                          + std::to_string(defaults::console_search_chars_max) + " characters."));
  std::int64_t page = 1;
  std::int64_t size = defaults::console_page_size_default;
  if (auto e = read_int(p, "pageNo", 1, 1, INT32_MAX, page))
    return done(refusal(*e, "pageNo"));
  if (auto e = read_int(p, "pageSize", defaults::console_page_size_default, 1,
                        defaults::console_page_size_max, size))
    return done(refusal(*e, "pageSize"));
  auto names = std::make_shared<std::vector<std::string>>();
  list_names(port, scope, 1, names, done, [=, &port](auto all, std::uint32_t total) {
    std::sort(all->begin(), all->end());
    auto selected = page_of_names(*all, search, static_cast<std::size_t>(page),
                                  static_cast<std::size_t>(size));
    json head{{"namespaceId", scope.namespace_id},
              {"groupName", scope.group},
              {"search", search},
              {"pageNo", page},
              {"pageSize", size},
              {"count", selected.count},
              {"truncated", all->size() < total}};
    if (selected.names.empty()) {
      head["services"] = json::array();
      return done(json_response(200, head));
    }
    struct fan {
      std::mutex mtx;
      std::vector<json> items;
      std::size_t left = 0;
    };
    auto state = std::make_shared<fan>();
    state->items.resize(selected.names.size());
    state->left = selected.names.size();
    for (std::size_t i = 0; i < selected.names.size(); ++i) {
      v1::ServiceDetailRequest req;
      service_key key = scope;
      key.name = selected.names[i];
      to_wire(key, *req.mutable_service());
      port.call(gateway_op::query, pack(req), [=](wire_msg reply) {
        v1::ServiceDetail detail;
        json item;
        if (unpack(reply, detail)) {
          item = service_summary_json(detail);
        } else {
          item = json{{"name", key.name}, {"groupName", key.group}, {"namespaceId", key.namespace_id},
                      {"error", from_node(reply).body}};
        }
        std::lock_guard<std::mutex> guard{state->mtx};
        state->items[i] = std::move(item);
        if (--state->left > 0)
          return;
        json out = head;
        out["services"] = std::move(state->items);
        done(json_response(200, out));
      });
    }
  });
}

// -- /console/api/service ---------------------------------------------------------------

void serve_service(const params& p, node_port& port, done_fn done) {
  service_key key;
  if (auto e = required(p, "serviceName", key.name))
    return done(refusal(*e, "serviceName"));
  if (auto r = read_scope(p, key))
    return done(*r);
  if (auto e = validate_service_key(key))
    return done(refusal(400, e->field, e->message));
  v1::ServiceDetailRequest req;
  to_wire(key, *req.mutable_service());
  port.call(gateway_op::query, pack(req), [done](wire_msg reply) {
    v1::ServiceDetail detail;
    if (!unpack(reply, detail))
      return done(from_node(reply));
    done(json_response(200, service_detail_json(detail)));
  });
}

// -- /console/api/cluster ---------------------------------------------------------------

void serve_cluster(node_port& port, done_fn done) {
  port.call(gateway_op::status, pack(v1::StatusRequest{}), [&port, done](wire_msg reply) {
    auto status = std::make_shared<v1::Status>();
    if (!unpack(reply, *status))
      return done(from_node(reply));
    port.call(gateway_op::status, pack(v1::RaftStatusRequest{}), [&port, status, done](wire_msg r) {
      auto raft = std::make_shared<v1::RaftStatus>();
      bool have_raft = unpack(r, *raft);
      port.call(gateway_op::status, pack(v1::ClusterCountsRequest{}),
                [status, raft, have_raft, done](wire_msg c) {
                  v1::ClusterCounts counts;
                  bool have_counts = unpack(c, counts);
                  done(json_response(200, cluster_json(*status, have_raft ? raft.get() : nullptr,
                                                       have_counts ? &counts : nullptr)));
                });
    });
  });
}

} // namespace

bool is_console_path(const std::string& path) {
  return path == "/" || path == "/console" || path.rfind("/console/", 0) == 0;
}

std::vector<std::pair<std::string, std::string>> console_headers() {
  return {{"Content-Security-Policy",
           "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'none'"},
          {"X-Content-Type-Options", "nosniff"},
          {"X-Frame-Options", "DENY"},
          {"Referrer-Policy", "no-referrer"},
          {"Cache-Control", "no-store"}};
}

name_page page_of_names(const std::vector<std::string>& sorted_names, const std::string& search,
                        std::size_t page, std::size_t size) {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  };
  auto needle = lower(search);
  name_page out;
  std::size_t first = page == 0 || size == 0 ? 0 : (page - 1) * size;
  for (auto& name : sorted_names) {
    if (!needle.empty() && lower(name).find(needle) == std::string::npos)
      continue;
    if (out.count >= first && out.names.size() < size)
      out.names.push_back(name);
    ++out.count;
  }
  return out;
}

json service_summary_json(const v1::ServiceDetail& d) {
  std::size_t healthy = 0;
  std::size_t enabled = 0;
  for (auto& x : d.instances()) {
    auto& h = x.instance();
    healthy += !h.has_healthy() || h.healthy() ? 1 : 0;
    enabled += !h.has_enabled() || h.enabled() ? 1 : 0;
  }
  bool persistent = d.persistent();
  return json{{"namespaceId", d.service().namespace_id()},
              {"groupName", d.service().group()},
              {"name", d.service().service()},
              {"instances", d.instances_size()},
              {"healthyInstances", healthy},
              {"enabledInstances", enabled},
              {"subscribers", d.subscribers_size()},
              {"protectThreshold", d.protect_threshold()},
              {"reachProtectionThreshold", d.reach_protection_threshold()},
              {"kind", persistent ? "persistent" : "ephemeral"}};
}

json service_detail_json(const v1::ServiceDetail& d) {
  auto out = service_summary_json(d);
  json instances = json::array();
  for (auto& x : d.instances())
    instances.push_back(instance_json(x));
  json subscribers = json::array();
  for (auto& s : d.subscribers())
    subscribers.push_back(json{{"clientId", s.client_id()}, {"clusters", s.clusters()}});
  out["hosts"] = std::move(instances);
  out["subscriberList"] = std::move(subscribers);
  return out;
}

json cluster_json(const v1::Status& st, const v1::RaftStatus* raft,
                  const v1::ClusterCounts* counts) {
  json node{{"address", st.address()},
            {"httpAddress", st.http_address()},
            {"clusterName", st.cluster_name()},
            {"version", st.version()},
            {"ready", st.ready()},
            {"security", st.security()},
            {"tls", st.tls()},
            {"clients", st.clients()},
            {"services", st.services()},
            {"instances", st.instances()},
            {"subscribers", st.subscribers()},
            {"raftRole", st.raft_role()},
            {"raftLeader", st.raft_leader()}};
  json members = json::array();
  for (auto& m : st.members()) {
    json member{{"address", m.address()},
                {"state", m.state()},
                {"node", m.node()},
                {"problem", m.problem()},
                {"self", m.state() == "SELF"}};
    for (auto& c : st.distro_peers()) {
      if (c.peer() != m.address())
        continue;
      member["distro"] = json{{"syncsOk", c.syncs_ok()},
                              {"syncsFailed", c.syncs_failed()},
                              {"verifiesOk", c.verifies_ok()},
                              {"verifiesFailed", c.verifies_failed()},
                              {"repairs", c.repairs()},
                              {"syncsReceived", c.syncs_received()},
                              {"verifiesReceived", c.verifies_received()}};
    }
    // Match and next indexes are the leader's knowledge; a follower's are zeros.
    if (raft != nullptr && raft->role() == "leader")
      for (auto& r : raft->members()) {
        if (r.id() != m.address() && r.id() != m.node())
          continue;
        member["raft"] = json{{"voter", r.voter()},
                              {"matchIndex", r.match_index()},
                              {"nextIndex", r.next_index()},
                              {"state", r.state()}};
      }
    if (counts != nullptr)
      for (auto& c : counts->members()) {
        if (c.address() != m.address())
          continue;
        member["ready"] = c.ready();
        member["ownedClients"] = c.clients();
        member["ownedInstances"] = c.instances();
      }
    if (m.state() == "SELF")
      member["counts"] = json{{"clients", st.clients()},
                              {"services", st.services()},
                              {"instances", st.instances()},
                              {"subscribers", st.subscribers()}};
    members.push_back(std::move(member));
  }
  json out{{"node", std::move(node)}, {"members", std::move(members)}};
  if (raft != nullptr) {
    out["raft"] = json{{"enabled", raft->enabled()},
                       {"id", raft->id()},
                       {"role", raft->role()},
                       {"term", raft->term()},
                       {"leader", raft->leader()},
                       {"commitIndex", raft->commit_index()},
                       {"appliedIndex", raft->applied_index()},
                       {"lastIndex", raft->last_index()},
                       {"snapshotIndex", raft->snapshot_index()},
                       {"persistentInstances", raft->persistent_instances()}};
  } else {
    out["raft"] = nullptr;
  }
  return out;
}

console_api::console_api(api_settings settings, node_port& port)
  : settings_(std::move(settings)), port_(port) {
  // nop
}

void console_api::handle(const request& req, std::function<void(response)> done) {
  std::string path;
  params p;
  if (auto e = parse_target(req.target, path, p, settings_.limits))
    return done(refusal(e->status, "", e->message));
  if (path == "/console" || path == "/console/")
    path = "/"; // the page under its other name
  if (auto* a = find_console_asset(path)) {
    response r;
    if (req.method != "GET" && req.method != "HEAD")
      return done(refusal(405, "", "Request method '" + req.method + "' not supported"));
    r.content_type = a->content_type;
    r.body = a->body;
    r.headers = console_headers();
    return done(r);
  }
  if (path.rfind("/console/api/", 0) != 0)
    return done(refusal(404, "", "no such console page: " + path.substr(0, 200)));
  if (req.method != "GET")
    return done(refusal(405, "", "Request method '" + req.method + "' not supported"));
  if (path == "/console/api/session")
    return done(json_response(200, json{{"auth", settings_.auth != nullptr},
                                        {"pollIntervalMs", defaults::console_poll_interval_ms}}));
  if (settings_.auth) {
    auto* token = p.get("accessToken");
    auto verdict = settings_.auth->check(token != nullptr ? *token : req.access_token, "", "",
                                         now_of(settings_));
    if (!verdict.ok)
      return done(refusal(verdict.status, "accessToken", verdict.message));
  }
  if (path == "/console/api/services")
    return serve_services(p, port_, std::move(done));
  if (path == "/console/api/service")
    return serve_service(p, port_, std::move(done));
  if (path == "/console/api/cluster")
    return serve_cluster(port_, std::move(done));
  done(refusal(404, "", "no such console endpoint: " + path.substr(0, 200)));
}

} // namespace registry::http
