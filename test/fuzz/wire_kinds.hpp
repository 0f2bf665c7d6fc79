#pragma once
/// The protobuf messages that travel inside a `wire::envelope` to a node or a client, in a fixed
/// order: the fuzz targets pick one with the first byte of their input, and make_corpus writes seeds
/// in the same order. Append new kinds at the end so that existing corpus files keep their meaning.

#include <cstddef>
#include <cstdint>
#include <string>

#include "messages/distro.pb.h"
#include "messages/registry.pb.h"

namespace registry::fuzz {

enum class wire_kind : std::uint8_t {
  // client -> node (gateway or session actor)
  register_request,
  deregister_request,
  beat_request,
  query_request,
  list_services_request,
  subscribe_request,
  status_request,
  members_request,
  hello,
  // node -> client (replies and pushes)
  service_info,
  service_list,
  member_list,
  status,
  welcome,
  ack,
  error,
  // node -> node (distro)
  peer_hello,
  peer_welcome,
  sync_batch,
  verify_batch,
  verify_reply,
  snapshot_request,
  snapshot,
  forwarded_request,
  // client -> node (session actor), appended later
  batch_register_request,
};

inline constexpr std::size_t wire_kind_count = 25;

inline wire_kind kind_of_byte(std::uint8_t b) {
  return static_cast<wire_kind>(b % wire_kind_count);
}

/// The envelope `kind` text (the message's full protobuf name).
inline std::string kind_name(wire_kind k) {
  switch (k) {
    case wire_kind::register_request: return v1::RegisterRequest::descriptor()->full_name();
    case wire_kind::deregister_request: return v1::DeregisterRequest::descriptor()->full_name();
    case wire_kind::beat_request: return v1::BeatRequest::descriptor()->full_name();
    case wire_kind::query_request: return v1::QueryRequest::descriptor()->full_name();
    case wire_kind::list_services_request:
      return v1::ListServicesRequest::descriptor()->full_name();
    case wire_kind::subscribe_request: return v1::SubscribeRequest::descriptor()->full_name();
    case wire_kind::status_request: return v1::StatusRequest::descriptor()->full_name();
    case wire_kind::members_request: return v1::MembersRequest::descriptor()->full_name();
    case wire_kind::hello: return v1::Hello::descriptor()->full_name();
    case wire_kind::service_info: return v1::ServiceInfo::descriptor()->full_name();
    case wire_kind::service_list: return v1::ServiceList::descriptor()->full_name();
    case wire_kind::member_list: return v1::MemberList::descriptor()->full_name();
    case wire_kind::status: return v1::Status::descriptor()->full_name();
    case wire_kind::welcome: return v1::Welcome::descriptor()->full_name();
    case wire_kind::ack: return v1::Ack::descriptor()->full_name();
    case wire_kind::error: return v1::Error::descriptor()->full_name();
    case wire_kind::peer_hello: return v1::PeerHello::descriptor()->full_name();
    case wire_kind::peer_welcome: return v1::PeerWelcome::descriptor()->full_name();
    case wire_kind::sync_batch: return v1::SyncBatch::descriptor()->full_name();
    case wire_kind::verify_batch: return v1::VerifyBatch::descriptor()->full_name();
    case wire_kind::verify_reply: return v1::VerifyReply::descriptor()->full_name();
    case wire_kind::snapshot_request: return v1::SnapshotRequest::descriptor()->full_name();
    case wire_kind::snapshot: return v1::Snapshot::descriptor()->full_name();
    case wire_kind::forwarded_request: return v1::ForwardedRequest::descriptor()->full_name();
    case wire_kind::batch_register_request:
      return v1::BatchRegisterRequest::descriptor()->full_name();
  }
  return {};
}

static_assert(static_cast<std::size_t>(wire_kind::batch_register_request) + 1 == wire_kind_count);

} // namespace registry::fuzz
