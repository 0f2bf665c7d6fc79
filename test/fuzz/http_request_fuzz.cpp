// Fuzz target: HTTP request parsing and parameter decoding. The input is a raw HTTP/1.1 request as a
// client could send it; it goes through Beast's request parser with the node's limits (as
// http_server reads it) and, when it parses, through nacos_api (target, query and form decoding,
// typed reads, validation, routing) against a fake node that answers every call at once. Every
// request must be answered exactly once with a sane status, and the parameter decoders must agree
// with themselves.

#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "actors/http/http_params.hpp"
#include "actors/http/nacos_api.hpp"
#include "messages/convert.hpp"
#include "test/fuzz/fuzz_check.hpp"

namespace {

using namespace registry;
using namespace registry::http;
namespace bhttp = boost::beast::http;

/// Answers like a node with one instance in every service.
class fake_node : public node_port {
public:
  void call(gateway_op op, wire_msg request, reply_fn done) override {
    FUZZ_CHECK(!request.kind.empty());
    switch (op) {
      case gateway_op::query:
        return done(service_info());
      case gateway_op::list: {
        v1::ServiceList list;
        list.set_count(1);
        list.add_services("demo");
        return done({"registry.v1.ServiceList", list.SerializeAsString()});
      }
      case gateway_op::status:
      case gateway_op::members: {
        v1::Status st;
        st.set_ready(true);
        return done({"registry.v1.Status", st.SerializeAsString()});
      }
      default:
        // Alternate between success and a refusal to cover both paths.
        if (++calls_ % 2 == 0)
          return done({"registry.v1.Ack", v1::Ack{}.SerializeAsString()});
        return done({"registry.v1.Error",
                     make_error(v1::Error::INVALID_ARGUMENT, "ip", "bad ip").SerializeAsString()});
    }
  }
  void subscribe_udp(const service_key&, const std::string&, const std::string&, std::uint16_t,
                     reply_fn done) override {
    done(service_info());
  }

private:
  static wire_msg service_info() {
    v1::ServiceInfo info;
    info.set_name("DEFAULT_GROUP@@demo");
    info.set_group_name("DEFAULT_GROUP");
    auto* h = info.add_hosts();
    h->set_ip("10.0.0.1");
    h->set_port(8080);
    h->set_cluster("DEFAULT");
    (*h->mutable_metadata())["k"] = "v";
    return {"registry.v1.ServiceInfo", info.SerializeAsString()};
  }
  unsigned calls_ = 0;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  // The decoders alone, on the whole input as a target and as a form body.
  {
    std::string path;
    params p;
    param_limits limits;
    limits.params_max = 16;
    limits.value_bytes_max = 256;
    if (!parse_target(text, path, p, limits))
      FUZZ_CHECK(p.size() <= limits.params_max);
    std::string decoded;
    if (url_decode(text, decoded, true))
      FUZZ_CHECK(decoded.size() <= text.size());
    std::vector<std::pair<std::string, std::string>> meta;
    if (!parse_metadata(text, meta))
      for (std::size_t i = 1; i < meta.size(); ++i)
        FUZZ_CHECK(meta[i - 1].first < meta[i].first);
  }
  // The request as the server reads it.
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(4096);
  parser.body_limit(8192);
  parser.eager(true);
  boost::beast::error_code ec;
  auto used = parser.put(boost::asio::buffer(text.data(), text.size()), ec);
  FUZZ_CHECK(used <= size);
  if (!ec && !parser.is_done())
    parser.put_eof(ec);
  if (ec || !parser.is_done())
    return 0;
  auto& msg = parser.get();
  request req;
  req.method = std::string{msg.method_string()};
  req.target = std::string{msg.target()};
  req.body = msg.body();
  req.content_type = std::string{msg[bhttp::field::content_type]};
  req.remote_ip = "127.0.0.1";
  fake_node node;
  api_settings settings;
  settings.limits.params_max = 32;
  nacos_api api{settings, node};
  int answers = 0;
  api.handle(req, [&](response r) {
    ++answers;
    FUZZ_CHECK(r.status >= 200 && r.status < 600);
  });
  FUZZ_CHECK(answers == 1);
  (void) route_label(req.method, req.target);
  return 0;
}
