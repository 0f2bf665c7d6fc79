// The web console's endpoints (actors/http/console_api) against a fake node: paging and search,
// the JSON of each page, parameter refusals naming the field, auth, and the headers of the files.

#include <doctest/doctest.h>

#include <map>

#include <nlohmann/json.hpp>

#include "actors/auth/user_auth.hpp"
#include "actors/http/console_api.hpp"
#include "actors/http/console_assets.hpp"
#include "actors/service/service_index.hpp"
#include "messages/convert.hpp"
#include "messages/raft.pb.h"
#include "messages/registry.pb.h"

using namespace registry;
using namespace registry::http;
using json = nlohmann::json;

namespace {

/// Answers list with `names` (paged as the gateway pages) and each ServiceDetailRequest with a
/// detail holding `instances_per_service` instances; counts the calls.
class fake_node : public node_port {
public:
  std::vector<std::string> names;
  int instances_per_service = 2;
  std::map<gateway_op, int> calls;

  void call(gateway_op op, wire_msg request, reply_fn done) override {
    ++calls[op];
    if (op == gateway_op::list) {
      v1::ListServicesRequest req;
      REQUIRE(req.ParseFromString(request.payload));
      v1::ServiceList list;
      list.set_count(static_cast<std::uint32_t>(names.size()));
      auto first = (req.page() - 1) * req.size();
      for (auto i = first; i < names.size() && i < first + req.size(); ++i)
        list.add_services(names[i]);
      return done({"registry.v1.ServiceList", list.SerializeAsString()});
    }
    if (op == gateway_op::query && request.kind == "registry.v1.ServiceDetailRequest") {
      v1::ServiceDetailRequest req;
      REQUIRE(req.ParseFromString(request.payload));
      v1::ServiceDetail d;
      *d.mutable_service() = req.service();
      for (int i = 0; i < instances_per_service; ++i) {
        auto* x = d.add_instances();
        x->mutable_instance()->set_ip("10.0.0." + std::to_string(i + 1));
        x->mutable_instance()->set_port(80);
        x->mutable_instance()->set_healthy(i == 0);
        x->mutable_instance()->set_cluster("DEFAULT");
        (*x->mutable_instance()->mutable_metadata())["note"] = "<img src=x onerror=alert(1)>";
        x->set_client_id("10.0.0." + std::to_string(i + 1) + ":80#true");
        x->set_owner("127.0.0.1:7848");
      }
      d.add_subscribers()->set_client_id("127.0.0.1:7848/1/1");
      d.set_protect_threshold(0.5);
      d.set_reach_protection_threshold(true);
      return done({"registry.v1.ServiceDetail", d.SerializeAsString()});
    }
    if (op == gateway_op::status && request.kind == "registry.v1.StatusRequest") {
      v1::Status st;
      st.set_address("127.0.0.1:7848");
      st.set_ready(true);
      st.set_instances(7);
      auto* self = st.add_members();
      self->set_address("127.0.0.1:7848");
      self->set_state("SELF");
      auto* peer = st.add_members();
      peer->set_address("127.0.0.1:7850");
      peer->set_state("UP");
      auto* c = st.add_distro_peers();
      c->set_peer("127.0.0.1:7850");
      c->set_syncs_ok(4);
      c->set_repairs(2);
      return done({"registry.v1.Status", st.SerializeAsString()});
    }
    if (op == gateway_op::status && request.kind == "registry.v1.ClusterCountsRequest") {
      v1::ClusterCounts counts;
      auto* a = counts.add_members();
      a->set_address("127.0.0.1:7850");
      a->set_ready(true);
      a->set_clients(5);
      a->set_instances(8);
      return done({"registry.v1.ClusterCounts", counts.SerializeAsString()});
    }
    if (op == gateway_op::status) {
      v1::RaftStatus r;
      r.set_enabled(true);
      r.set_role("leader");
      r.set_term(3);
      r.set_leader("127.0.0.1:7848");
      r.set_commit_index(9);
      auto* m = r.add_members();
      m->set_id("127.0.0.1:7850");
      m->set_match_index(9);
      return done({"registry.v1.RaftStatus", r.SerializeAsString()});
    }
    done({"", "not served by the fake"});
  }
  void subscribe_udp(const service_key&, const std::string&, const std::string&, std::uint16_t,
                     reply_fn done) override {
    done({"", "not served by the fake"});
  }
};

response get(console_api& api, const std::string& target, const std::string& token = "") {
  request req;
  req.method = "GET";
  req.target = target;
  req.access_token = token;
  response out;
  bool answered = false;
  api.handle(req, [&](response r) {
    out = std::move(r);
    answered = true;
  });
  REQUIRE(answered); // the fake answers at once
  return out;
}

std::string header(const response& r, const std::string& name) {
  for (auto& [k, v] : r.headers)
    if (k == name)
      return v;
  return "";
}

} // namespace

TEST_CASE("console: a page of the names that hold the search, case-insensitive") {
  std::vector<std::string> names{"billing", "orders", "pay-gw", "payments", "users"};
  auto all = page_of_names(names, "", 1, 2);
  CHECK(all.count == 5);
  CHECK(all.names == std::vector<std::string>{"billing", "orders"});
  CHECK(page_of_names(names, "", 3, 2).names == std::vector<std::string>{"users"});
  CHECK(page_of_names(names, "", 4, 2).names.empty());
  auto pay = page_of_names(names, "PAY", 1, 20);
  CHECK(pay.count == 2);
  CHECK(pay.names == std::vector<std::string>{"pay-gw", "payments"});
  CHECK(page_of_names(names, "zzz", 1, 20).count == 0);
}

TEST_CASE("console: services fan out one detail per listed service, in name order") {
  fake_node node;
  for (int i = 0; i < 700; ++i) // more than one gateway page (500)
    node.names.push_back("svc-" + std::to_string(1000 + i));
  console_api api{api_settings{}, node};
  auto r = get(api, "/console/api/services?search=svc-16&pageNo=2&pageSize=5");
  REQUIRE(r.status == 200);
  auto body = json::parse(r.body);
  CHECK(body["count"] == 100); // svc-1600 .. svc-1699
  REQUIRE(body["services"].size() == 5);
  CHECK(body["services"][0]["name"] == "svc-1605");
  CHECK(body["services"][4]["name"] == "svc-1609");
  auto& s = body["services"][0];
  CHECK(s["instances"] == 2);
  CHECK(s["healthyInstances"] == 1);
  CHECK(s["subscribers"] == 1);
  CHECK(s["reachProtectionThreshold"] == true);
  CHECK(s["kind"] == "ephemeral");
  CHECK(body["truncated"] == false);
  CHECK(node.calls[gateway_op::list] == 2);
  CHECK(node.calls[gateway_op::query] == 5);
  CHECK(header(r, "X-Content-Type-Options") == "nosniff");
}

TEST_CASE("console: a service's instances carry owner, metadata as data, subscribers") {
  fake_node node;
  console_api api{api_settings{}, node};
  auto r = get(api, "/console/api/service?serviceName=orders&groupName=G1");
  REQUIRE(r.status == 200);
  auto body = json::parse(r.body);
  CHECK(body["name"] == "orders");
  CHECK(body["groupName"] == "G1");
  REQUIRE(body["hosts"].size() == 2);
  CHECK(body["hosts"][0]["owner"] == "127.0.0.1:7848");
  CHECK(body["hosts"][0]["enabled"] == true); // unset: Nacos's default
  CHECK(body["hosts"][0]["metadata"]["note"] == "<img src=x onerror=alert(1)>");
  CHECK(body["subscriberList"][0]["clientId"] == "127.0.0.1:7848/1/1");
}

TEST_CASE("console: the cluster joins status, Distro counters and Raft per member") {
  fake_node node;
  console_api api{api_settings{}, node};
  auto r = get(api, "/console/api/cluster");
  REQUIRE(r.status == 200);
  auto body = json::parse(r.body);
  CHECK(body["node"]["ready"] == true);
  CHECK(body["raft"]["role"] == "leader");
  CHECK(body["raft"]["term"] == 3);
  REQUIRE(body["members"].size() == 2);
  CHECK(body["members"][0]["self"] == true);
  CHECK(body["members"][0]["counts"]["instances"] == 7);
  CHECK(body["members"][1]["distro"]["syncsOk"] == 4);
  CHECK(body["members"][1]["distro"]["repairs"] == 2);
  CHECK(body["members"][1]["raft"]["matchIndex"] == 9);
  CHECK(body["members"][1]["ready"] == true);
  CHECK(body["members"][1]["ownedClients"] == 5);
  CHECK(body["members"][1]["ownedInstances"] == 8);
  CHECK(!body["members"][0].contains("ownedClients")); // not in the counts: not invented
}

TEST_CASE("console: bad parameters are refused naming the field") {
  fake_node node;
  console_api api{api_settings{}, node};
  auto field_of = [&](const std::string& target) {
    auto r = get(api, target);
    CHECK(r.status == 400);
    return json::parse(r.body)["field"].get<std::string>();
  };
  CHECK(field_of("/console/api/services?pageSize=0") == "pageSize");
  CHECK(field_of("/console/api/services?pageSize=101") == "pageSize");
  CHECK(field_of("/console/api/services?pageNo=x") == "pageNo");
  CHECK(field_of("/console/api/services?namespaceId=bad%20ns") == "namespaceId");
  CHECK(field_of("/console/api/services?groupName=a@@b") == "groupName");
  CHECK(field_of("/console/api/services?search=" + std::string(600, 'a')) == "search");
  CHECK(field_of("/console/api/service") == "serviceName");
  CHECK(field_of("/console/api/service?serviceName=@x") == "serviceName");
  CHECK(get(api, "/console/api/nothing").status == 404);
  CHECK(node.calls.empty());
}

TEST_CASE("console: with auth on, only the session endpoint and the files answer without a token") {
  fake_node node;
  auto line = auth::user_store::make_line("alice", "wonderland");
  auto users = auth::user_store::parse(line + "\n");
  REQUIRE(std::holds_alternative<auth::user_store>(users));
  api_settings s;
  s.auth = std::make_shared<auth::authenticator>(
    std::get<auth::user_store>(users),
    auth::token_signer{"0123456789abcdef0123456789abcdef", 60000});
  s.now_ms = [] { return std::int64_t{1000}; };
  console_api api{s, node};
  auto session = get(api, "/console/api/session");
  CHECK(session.status == 200);
  CHECK(json::parse(session.body)["auth"] == true);
  CHECK(get(api, "/").status == 200);
  for (auto target : {"/console/api/services", "/console/api/service?serviceName=a",
                      "/console/api/cluster", "/console/api/services?pageSize=0"}) {
    auto r = get(api, target);
    CHECK(r.status == 403);
    CHECK(json::parse(r.body)["field"] == "accessToken");
  }
  CHECK(node.calls.empty());
  std::string token;
  REQUIRE(s.auth->login("alice", "wonderland", 1000, token).ok);
  CHECK(get(api, "/console/api/cluster", token).status == 200);
  CHECK(get(api, "/console/api/services?accessToken=" + token).status == 200);
}

TEST_CASE("console: the files are embedded and served with the CSP, nosniff and no inline script") {
  fake_node node;
  console_api api{api_settings{}, node};
  auto page = get(api, "/");
  CHECK(page.status == 200);
  CHECK(page.content_type.rfind("text/html", 0) == 0);
  CHECK(page.body.find("<script src=\"/console/console.js\"") != std::string::npos);
  CHECK(page.body.find("<script>") == std::string::npos);
  auto csp = header(page, "Content-Security-Policy");
  CHECK(csp.find("default-src 'self'") != std::string::npos);
  CHECK(csp.find("unsafe-inline") == std::string::npos);
  CHECK(header(page, "X-Content-Type-Options") == "nosniff");
  auto js = get(api, "/console/console.js");
  CHECK(js.content_type.rfind("text/javascript", 0) == 0);
  // Registry data reaches the page as text only.
  CHECK(js.body.find("innerHTML") == std::string::npos);
  CHECK(js.body.find("textContent") != std::string::npos);
  CHECK(get(api, "/console/console.css").content_type.rfind("text/css", 0) == 0);
  CHECK(find_console_asset("/nope") == nullptr);
  request post;
  post.method = "POST";
  post.target = "/";
  int status = 0;
  api.handle(post, [&](response r) { status = r.status; });
  CHECK(status == 405);
}

TEST_CASE("service_index: all_with_clients keeps each publisher of an instance") {
  service_index index{service_key{"public", "DEFAULT_GROUP", "orders"}};
  instance a;
  a.ip = "10.0.0.2";
  a.port = 80;
  a.enabled = false;
  instance b;
  b.ip = "10.0.0.1";
  b.port = 80;
  index.put("client-b", {a});
  index.put("client-a", {a, b});
  auto all = index.all_with_clients();
  REQUIRE(all.size() == 3);
  CHECK(all[0].second.ip == "10.0.0.1");
  CHECK(all[1].first == "client-a");
  CHECK(all[2].first == "client-b");
  CHECK(all[2].second.enabled == false); // disabled instances are shown, unlike select()
}
