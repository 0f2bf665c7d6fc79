// Fuzz target: a gRPC Payload as a Nacos 2.x client sends it (the type, then the JSON body) through
// the codec. It must return a request or a failure, never crash; a decoded request's fields obey
// the validation rules (re-encoding the answers must not throw either).
#include <cstddef>
#include <cstdint>
#include <string>

#include "actors/grpc/nacos_grpc_codec.hpp"
#include "messages/registry.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace registry::grpc_api;
  // First line: the type (or an index into the known types); the rest: the body.
  std::string text(reinterpret_cast<const char*>(data), size);
  auto nl = text.find('\n');
  std::string type = nl == std::string::npos ? text : text.substr(0, nl);
  std::string body = nl == std::string::npos ? "" : text.substr(nl + 1);
  static const char* known[] = {"InstanceRequest", "BatchInstanceRequest",
                                "PersistentInstanceRequest", "ServiceQueryRequest",
                                "SubscribeServiceRequest", "ServiceListRequest",
                                "ConnectionSetupRequest", "NotifySubscriberResponse"};
  if (type.size() == 1 && type[0] >= '0' && type[0] < '8')
    type = known[type[0] - '0'];
  auto r = decode(type, body, 100);
  if (auto* req = std::get_if<request>(&r)) {
    for (auto& x : req->instances)
      if (x.port == 0 || x.ip.empty())
        __builtin_trap();
    registry::v1::ServiceInfo info;
    info.set_name(req->key.grouped_name());
    info.set_group_name(req->key.group);
    for (auto& x : req->instances) {
      auto* h = info.add_hosts();
      h->set_ip(x.ip);
      h->set_port(x.port);
      for (auto& [k, v] : x.metadata)
        (*h->mutable_metadata())[k] = v;
    }
    (void) service_info_json(info, req->clusters, 1, 1);
  } else {
    (void) error_response(std::get<failure>(r).code, std::get<failure>(r).message);
  }
  return 0;
}
