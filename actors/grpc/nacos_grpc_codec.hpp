#pragma once
/// Nacos 2.x's gRPC messages, decoded and encoded. Plain C++: no gRPC, no CAF. A Payload carries the
/// Java class name of its body (`metadata.type`) and the body's JSON; `decode` turns both into one
/// checked request (today's validation rules, Nacos's error codes), and the encoders write the JSON
/// that the strictest real client accepts (reference: nacos-grpc.md §1 and §4.9): every response
/// has resultCode, errorCode and success; a server request has "headers":{} and a string
/// requestId; a ServiceInfo has every field, never null.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "messages/model.hpp"

namespace registry::v1 {
class ServiceInfo;
} // namespace registry::v1

namespace registry::grpc_api {

/// Nacos's error codes (com.alibaba.nacos.api.exception.NacosException and remote ErrorCode).
namespace code {
inline constexpr int ok = 0;
inline constexpr int server_starting = 300;
inline constexpr int unregistered = 301;
inline constexpr int no_handler = 302;
inline constexpr int bad_param = 400;
inline constexpr int no_right = 403;
inline constexpr int server_error = 500;
inline constexpr int bad_payload = 502;
inline constexpr int over_threshold = 503;
inline constexpr int client_disconnect = -401;
} // namespace code

/// What a Payload asks for (its metadata.type).
enum class kind {
  server_check,               ///< ServerCheckRequest (unary, before setup)
  health_check,               ///< HealthCheckRequest (unary keep-alive)
  connection_setup,           ///< ConnectionSetupRequest (first message on the stream)
  instance,                   ///< InstanceRequest: register / deregister an ephemeral instance
  batch_instance,             ///< BatchInstanceRequest: the connection's whole set in a service
  persistent_instance,        ///< PersistentInstanceRequest: through Raft
  service_query,              ///< ServiceQueryRequest
  subscribe_service,          ///< SubscribeServiceRequest (subscribe / unsubscribe)
  service_list,               ///< ServiceListRequest
  notify_subscriber_response, ///< the client's answer to a push (on the stream)
  client_detection_response,  ///< the client's answer to a probe (on the stream)
  connect_reset_response,     ///< the client's answer to a ConnectResetRequest (on the stream)
};

/// The Java class name of a request kind (metadata.type).
const char* type_name(kind k);

/// Whether `type` is a message this server decodes (a bounded label for metrics).
bool known_type(std::string_view type);

/// Register or deregister (InstanceRequest, PersistentInstanceRequest).
enum class instance_op { register_instance, deregister_instance };

/// One decoded, checked message. Only the fields of its kind are meaningful.
struct request {
  kind what = kind::health_check;
  /// Stream answers: the requestId they answer and their resultCode.
  std::string request_id;
  int result_code = 200;
  /// Naming requests: the service, with defaults applied ("" namespace = public).
  service_key key;
  instance_op op = instance_op::register_instance;
  /// InstanceRequest/PersistentInstanceRequest: one; BatchInstanceRequest: the whole set (maybe
  /// none). Defaults applied, validated.
  std::vector<instance> instances;
  /// ServiceQueryRequest "cluster" / SubscribeServiceRequest "clusters", verbatim (the client keys
  /// its cache on it); `cluster_list` the same split, checked, sorted, without duplicates.
  std::string clusters;
  std::vector<std::string> cluster_list;
  bool healthy_only = false;
  bool subscribe = true;
  std::uint32_t page_no = 1;
  std::uint32_t page_size = 10;
  /// ConnectionSetupRequest: the client negotiates abilities (it sent an abilityTable) and waits
  /// for SetupAckRequest.
  bool negotiates_abilities = false;
  std::string client_version;
};

/// Why a Payload is refused: a Nacos error code and a text naming the field.
struct failure {
  int code = code::bad_param;
  std::string message;
};

/// Decodes a Payload's type and JSON body. JSON null and an absent field are alike; unknown fields
/// are ignored; a field of the wrong type is an error naming it (400); unparsable JSON is 502;
/// an unknown type is 302.
std::variant<request, failure> decode(std::string_view type, std::string_view body,
                                      std::size_t batch_instances_max);

/// A whole encoded message: its metadata.type and its JSON body.
struct message {
  std::string type;
  std::string body;
};

// -- responses (unary) -------------------------------------------------------------------------

/// ErrorResponse: resultCode is the code too, as Nacos answers (clients test only != 200).
message error_response(int error_code, const std::string& text);
message server_check_response(const std::string& connection_id);
message health_check_response();
/// InstanceResponse / BatchInstanceResponse, echoing the request's type string.
message instance_response(kind request_kind, instance_op op);
/// QueryServiceResponse and SubscribeServiceResponse around a ServiceInfo JSON object text.
message query_service_response(const std::string& service_info_json);
message subscribe_service_response(const std::string& service_info_json);
message service_list_response(std::uint64_t count, const std::vector<std::string>& bare_names);

// -- server requests (on the stream) -------------------------------------------------------------

message notify_subscriber_request(const std::string& request_id,
                                  const std::string& service_info_json);
message client_detection_request(const std::string& request_id);
/// ConnectResetRequest: move to server_ip:server_port (the HTTP port), or anywhere when empty.
message connect_reset_request(const std::string& request_id, const std::string& server_ip,
                              const std::string& server_port, const std::string& connection_id);
message setup_ack_request(bool persistent_by_grpc);

/// Nacos 2.x's ServiceInfo JSON: `name` bare, `groupName` apart, `clusters` verbatim, enabled hosts
/// only (the gRPC paths of Nacos filter disabled instances), every field present; `allIPs` and
/// `allIps` both (Go reads one, Python the other).
std::string service_info_json(const v1::ServiceInfo& info, const std::string& clusters,
                              std::int64_t last_ref_time_ms, std::int64_t cache_millis);

/// A ServiceInfo's JSON split around its lastRefTime (which differs per connection), with what a
/// connection needs of the message: its service and its own lastRefTime.
struct service_info_parts {
  std::string before_ref;
  std::string after_ref;
  service_key key;
  std::int64_t last_ref_time_ms = 0;
  std::string text(std::int64_t ref) const {
    return before_ref + std::to_string(ref) + after_ref;
  }
};

/// The JSON parts of a registry.v1.ServiceInfo payload as service_info_json writes it, from a
/// process-wide cache keyed by the payload and `clusters`: every query of an unchanged service
/// skips the protobuf parse and the JSON writing. Thread-safe; at most `entries_max` entries (the
/// cache starts over when full). nullptr when the payload is no ServiceInfo.
std::shared_ptr<const service_info_parts> cached_service_info(const std::string& payload,
                                                              const std::string& clusters,
                                                              std::int64_t cache_millis);

/// Splits a comma-separated cluster list as the clients write it ("" = all clusters).
std::vector<std::string> split_clusters(const std::string& text);

} // namespace registry::grpc_api
