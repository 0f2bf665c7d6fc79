#pragma once
/// Conversion between the in-memory model (messages/model.hpp) and the wire (registry.proto,
/// distro.proto): the only place that knows both.

#include "messages/distro.pb.h"
#include "messages/model.hpp"
#include "messages/registry.pb.h"

namespace registry {

instance from_wire(const v1::Instance& x);
void to_wire(const instance& x, v1::Instance& out);

service_key from_wire(const v1::ServiceRef& x); ///< with defaults applied to empty fields
void to_wire(const service_key& x, v1::ServiceRef& out);

/// hosts get their serviceName (GROUP@@SERVICE) filled in.
void to_wire(const service_info& x, v1::ServiceInfo& out);
service_info from_wire(const v1::ServiceInfo& x);

/// A client's whole state for Distro.
void to_wire(const client_id& id, std::uint64_t revision, const client_services& services,
             v1::ClientData& out);
client_services services_from_wire(const v1::ClientData& x);

/// An error reply.
v1::Error make_error(v1::Error::Code code, const std::string& field, const std::string& message);
inline v1::Error make_error(const field_error& e) {
  return make_error(v1::Error::INVALID_ARGUMENT, e.field, e.message);
}

} // namespace registry
