// Decoding of HTTP targets, query strings and form bodies, and the typed reads with Nacos's texts.

#include <doctest/doctest.h>

#include "actors/http/http_params.hpp"

using namespace registry::http;

TEST_CASE("http_params: targets split into a decoded path and parameters") {
  std::string path;
  params p;
  REQUIRE(!parse_target("/nacos//v1/ns/instance/?serviceName=DEFAULT_GROUP%40%40demo&ip=1.2.3.4&a+b=c+d&flag",
                        path, p, {}));
  CHECK(path == "/nacos/v1/ns/instance");
  REQUIRE(p.get("serviceName"));
  CHECK(*p.get("serviceName") == "DEFAULT_GROUP@@demo");
  CHECK(*p.get("a b") == "c d");
  CHECK(p.get("flag")->empty());
  CHECK(p.get("missing") == nullptr);
}

TEST_CASE("http_params: the first value wins; bounds and bad escapes are refused") {
  params p;
  REQUIRE(!parse_urlencoded("x=1&x=2", p, {}));
  CHECK(*p.get("x") == "1");
  params q;
  param_limits tight;
  tight.params_max = 2;
  tight.value_bytes_max = 4;
  CHECK(parse_urlencoded("a=1&b=2&c=3", q, tight));
  params r;
  auto e = parse_urlencoded("a=12345", r, tight);
  REQUIRE(e);
  CHECK(e->message.find("should not exceed 4") != std::string::npos);
  params s;
  CHECK(parse_urlencoded("a=%zz", s, {}));
  CHECK(parse_urlencoded("a=%4", s, {}));
  std::string out;
  CHECK(!url_decode("%", out, false));
  CHECK(url_decode("%41%42", out, false));
  CHECK(out == "AB");
}

TEST_CASE("http_params: typed reads answer Nacos's texts") {
  params p;
  p.add("port", "abc");
  p.add("big", "70000");
  p.add("flag", "TRUE");
  p.add("bad", "yes");
  p.add("w", "1.5");
  std::int64_t n = 0;
  auto e = read_int(p, "port", std::nullopt, 1, 65535, n);
  REQUIRE(e);
  CHECK(e->message == "Param 'port' is illegal, expected an integer, got 'abc'.");
  e = read_int(p, "big", std::nullopt, 1, 65535, n);
  REQUIRE(e);
  CHECK(e->message == "Param 'big' is illegal, the value should be between 1 and 65535.");
  e = read_int(p, "none", std::nullopt, 1, 65535, n);
  REQUIRE(e);
  CHECK(e->message == "Parameter 'none' is missing");
  CHECK(!read_int(p, "none", 7, 1, 65535, n));
  CHECK(n == 7);
  bool b = false;
  CHECK(!read_bool(p, "flag", false, b));
  CHECK(b);
  CHECK(read_bool(p, "bad", false, b));
  double d = 0;
  CHECK(!read_double(p, "w", 1.0, d));
  CHECK(d == 1.5);
  std::string s;
  CHECK(required(p, "ip", s)->message == "Parameter 'ip' is missing");
}

TEST_CASE("http_params: metadata as JSON or k=v, service names with and without a group") {
  std::vector<std::pair<std::string, std::string>> m;
  REQUIRE(!parse_metadata("{\"zone\":\"z1\",\"version\":1,\"on\":true}", m));
  REQUIRE(m.size() == 3);
  CHECK(m[0] == std::make_pair(std::string{"on"}, std::string{"true"}));
  CHECK(m[2] == std::make_pair(std::string{"zone"}, std::string{"z1"}));
  REQUIRE(!parse_metadata("a=1,b=2", m));
  CHECK(m.size() == 2);
  CHECK(!parse_metadata("", m));
  CHECK(m.empty());
  auto e = parse_metadata("{broken", m);
  REQUIRE(e);
  CHECK(e->message == "metadata format incorrect:{broken");
  CHECK(parse_metadata("novalue", m));
  CHECK(parse_metadata("{\"a\":{\"nested\":1}}", m));
  std::string g, n;
  REQUIRE(!split_service_name("MYGROUP@@svc", "DEFAULT_GROUP", g, n));
  CHECK(g == "MYGROUP");
  CHECK(n == "svc");
  REQUIRE(!split_service_name("svc", "G2", g, n));
  CHECK(g == "G2");
  CHECK(split_service_name("@@svc", "G", g, n)->message
        == "Param 'serviceName' is illegal, groupName can't be empty");
  CHECK(split_service_name("a@@b@@c", "G", g, n));
  CHECK(is_form_content_type("application/x-www-form-urlencoded; charset=UTF-8"));
  CHECK(!is_form_content_type("application/json"));
}
