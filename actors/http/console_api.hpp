#pragma once
/// The web console: its pages (console_assets) and the JSON endpoints they poll, served on the
/// node's HTTP port next to Nacos's Open API. Plain C++ like nacos_api: no CAF and no sockets;
/// what needs the node goes through the same `node_port` (list, query, status, members and the
/// console's ServiceDetail query). The console's writes are not here: the page sends them to the
/// Open API (PUT /nacos/v1/ns/instance), so they take its validated path.
///
///   GET /console/api/session   {"auth":bool,"pollIntervalMs":N} (open: the page asks before login)
///   GET /console/api/services  namespaceId, groupName, search, pageNo, pageSize
///   GET /console/api/service   namespaceId, groupName, serviceName
///   GET /console/api/cluster   this node, its members, Distro figures and Raft
///
/// With auth on, every endpoint but session needs an access token (header accessToken,
/// Authorization: Bearer, or the accessToken parameter), as the Open API does. A bad parameter is
/// a 400 whose JSON names the field: {"status":400,"field":"pageSize","message":"..."}.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/http/nacos_api.hpp"

namespace registry::v1 {
class ServiceDetail;
class Status;
class RaftStatus;
class ClusterCounts;
} // namespace registry::v1

namespace registry::http {

/// True when `path` belongs to the console (its pages or its endpoints).
bool is_console_path(const std::string& path);

/// The headers every console response carries: the Content-Security-Policy (no inline script,
/// nothing from elsewhere), nosniff, no caching, no referrer, no framing.
std::vector<std::pair<std::string, std::string>> console_headers();

/// One page of the names that hold `search` (case-insensitive; "" = all), and how many do.
struct name_page {
  std::size_t count = 0;
  std::vector<std::string> names;
};
name_page page_of_names(const std::vector<std::string>& sorted_names, const std::string& search,
                        std::size_t page, std::size_t size);

/// A service as the services page lists it: counts of instances, healthy and enabled instances,
/// subscribers, the protect threshold, whether it is reached, ephemeral or persistent.
nlohmann::json service_summary_json(const v1::ServiceDetail& detail);
/// The service detail page: the summary plus every instance (with owner node) and subscriber.
nlohmann::json service_detail_json(const v1::ServiceDetail& detail);
/// The cluster page: this node's status and counts, each member with its state, readiness, the
/// clients it owns, its Distro figures, and Raft (`raft` and `counts` may be null: the node did
/// not answer them).
nlohmann::json cluster_json(const v1::Status& status, const v1::RaftStatus* raft,
                            const v1::ClusterCounts* counts);

class console_api {
public:
  console_api(api_settings settings, node_port& port);

  /// Serves one request whose path is_console_path(); `done` is called exactly once.
  void handle(const request& req, std::function<void(response)> done);

private:
  api_settings settings_;
  node_port& port_;
};

} // namespace registry::http
