// The direct writer of Nacos's ServiceInfo JSON (actors/http/nacos_api.cpp) against the document
// a plain nlohmann::json build gives for the same message.

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "actors/http/nacos_api.hpp"
#include "messages/registry.pb.h"

using namespace registry;
using json = nlohmann::json;

namespace {

/// The reference: Nacos's fields built as a document.
json reference(const v1::ServiceInfo& info, const std::string& clusters, std::int64_t cache_millis,
               const http::api_settings& s, bool healthy_only) {
  json hosts = json::array();
  for (auto& h : info.hosts()) {
    bool healthy = h.has_healthy() ? h.healthy() : true;
    if (healthy_only && !healthy)
      continue;
    json meta = json::object();
    for (auto& [k, v] : h.metadata())
      meta[k] = v;
    hosts.push_back({{"instanceId", h.instance_id()},
                     {"ip", h.ip()},
                     {"port", h.port()},
                     {"weight", h.has_weight() ? h.weight() : 1.0},
                     {"healthy", healthy},
                     {"enabled", h.has_enabled() ? h.enabled() : true},
                     {"ephemeral", h.has_ephemeral() ? h.ephemeral() : true},
                     {"clusterName", h.cluster()},
                     {"serviceName", h.service_name().empty() ? info.name() : h.service_name()},
                     {"metadata", meta},
                     {"valid", healthy},
                     {"marked", false},
                     {"instanceHeartBeatInterval", s.beat_interval_ms},
                     {"instanceHeartBeatTimeOut", s.unhealthy_timeout_ms},
                     {"ipDeleteTimeout", s.delete_timeout_ms},
                     {"instanceIdGenerator", "simple"}});
  }
  return {{"name", info.name()},          {"dom", info.name()},
          {"groupName", info.group_name()}, {"clusters", clusters},
          {"cacheMillis", cache_millis},  {"hosts", hosts},
          {"lastRefTime", info.last_ref_time()}, {"checksum", ""},
          {"allIPs", false},              {"reachProtectionThreshold", info.reach_protection_threshold()},
          {"valid", true}};
}

v1::ServiceInfo sample() {
  v1::ServiceInfo info;
  info.set_name("DEFAULT_GROUP@@orders");
  info.set_group_name("DEFAULT_GROUP");
  info.set_last_ref_time(1764500000123);
  info.set_reach_protection_threshold(true);
  const double weights[] = {1.0, 0.5, 100.0, 3.25, 1e-3};
  for (int i = 0; i < 5; ++i) {
    auto* h = info.add_hosts();
    h->set_instance_id("10.0.0." + std::to_string(i) + "#8080#DEFAULT#DEFAULT_GROUP@@orders");
    h->set_ip("10.0.0." + std::to_string(i));
    h->set_port(8080 + i);
    if (i != 0)
      h->set_weight(weights[i]);
    if (i % 2 == 1)
      h->set_healthy(false);
    if (i == 3)
      h->set_enabled(false);
    h->set_cluster(i == 4 ? "z\"one" : "DEFAULT");
    if (i == 2)
      h->set_service_name("other");
    (*h->mutable_metadata())["zone"] = "z" + std::to_string(i);
    (*h->mutable_metadata())["a\\b"] = "tab\there, newline\nhere, ctl\x01, é, 漢, 😀";
    (*h->mutable_metadata())["version"] = "1.2";
  }
  return info;
}

} // namespace

TEST_CASE("nacos json: the direct ServiceInfo writer gives the reference document") {
  http::api_settings s;
  s.beat_interval_ms = 5000;
  s.unhealthy_timeout_ms = 15000;
  s.delete_timeout_ms = 30000;
  auto info = sample();
  for (bool healthy_only : {false, true}) {
    auto text = http::service_info_text(info, "DEFAULT,z\"one", 3000, s, healthy_only, true);
    auto want = reference(info, "DEFAULT,z\"one", 3000, s, healthy_only);
    CHECK(json::parse(text) == want);
    // The same bytes as nlohmann's writer (keys sorted, same number forms).
    CHECK(text == want.dump());
    auto v2 = http::service_info_text(info, "", 3000, s, healthy_only, false);
    CHECK(json::parse(v2).count("dom") == 0);
  }
  v1::ServiceInfo empty;
  CHECK(json::parse(http::service_info_text(empty, "", 10, s, false, true))
        == reference(empty, "", 10, s, false));
}

TEST_CASE("nacos json: bytes that are not UTF-8 are replaced, never thrown on") {
  http::api_settings s;
  v1::ServiceInfo info;
  info.set_name("g@@s\xD9");
  auto* h = info.add_hosts();
  h->set_ip("10.0.0.1");
  // A lone continuation byte, a truncated sequence, an overlong form, a surrogate.
  (*h->mutable_metadata())["k\x80"] = std::string{"\xE6\xBC"} + "x" + "\xC0\xAF" + "\xED\xA0\x80";
  auto text = http::service_info_text(info, "", 10, s, false, true);
  json doc;
  REQUIRE_NOTHROW(doc = json::parse(text));
  CHECK(doc["name"] == "g@@s\xEF\xBF\xBD");
  CHECK(doc["hosts"][0]["metadata"].begin().key() == "k\xEF\xBF\xBD");
}
