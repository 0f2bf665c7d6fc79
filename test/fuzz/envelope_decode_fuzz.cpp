// Fuzz target: decoding of every envelope kind a node or a client accepts, along the path the
// actors take (wire::unpack, messages/convert from_wire, messages/validate, distro_wire from_wire).
//
// Input: the first byte picks the kind (test/fuzz/wire_kinds.hpp), the rest is the payload. Besides
// "no crash, no sanitizer report", it checks that what passed validation survives a round trip
// through the wire unchanged, and that a Distro message decodes to the same thing after re-encoding.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "actors/distro/distro_wire.hpp"
#include "messages/convert.hpp"
#include "messages/type_ids.hpp"
#include "messages/validate.hpp"
#include "test/fuzz/fuzz_check.hpp"
#include "test/fuzz/wire_kinds.hpp"

namespace {

using namespace registry;
using registry::fuzz::wire_kind;

// -- round trips -------------------------------------------------------------------------------------

void check_key_round_trip(const service_key& key) {
  v1::ServiceRef ref;
  to_wire(key, ref);
  FUZZ_CHECK(from_wire(ref) == key);
}

void check_instance_round_trip(const instance& x) {
  v1::Instance w;
  to_wire(x, w);
  auto back = from_wire(w);
  apply_defaults(back);
  FUZZ_CHECK(back == x);
}

/// Equal, where a NaN weight equals a NaN weight: Distro takes a peer's instances as they come
/// (nodes validate before they replicate), so a NaN weight from the wire must survive unchanged.
bool same(const instance& a, const instance& b) {
  if (std::isnan(a.weight) && std::isnan(b.weight)) {
    auto x = a;
    auto y = b;
    x.weight = y.weight = 0;
    return x == y;
  }
  return a == b;
}

bool same(const client_services& a, const client_services& b) {
  if (a.size() != b.size())
    return false;
  for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j) {
    if (!(i->first == j->first) || i->second.size() != j->second.size())
      return false;
    for (std::size_t k = 0; k < i->second.size(); ++k)
      if (!same(i->second[k], j->second[k]))
        return false;
  }
  return true;
}

bool same(const distro::client_data& a, const distro::client_data& b) {
  return a.id == b.id && a.revision == b.revision && a.deleted == b.deleted && a.owner == b.owner
         && same(a.services, b.services);
}

template <class Batch>
bool same_clients(const Batch& a, const Batch& b) {
  if (a.source != b.source || a.clients.size() != b.clients.size())
    return false;
  for (std::size_t i = 0; i < a.clients.size(); ++i)
    if (!same(a.clients[i], b.clients[i]))
      return false;
  return true;
}

// -- the node's decode paths ---------------------------------------------------------------------------

/// Register and beat bodies, as the client actor decodes them.
void decode_instance_request(const v1::ServiceRef& ref, const v1::Instance& wire_x) {
  auto key = from_wire(ref);
  if (validate_service_key(key))
    return;
  check_key_round_trip(key);
  auto x = from_wire(wire_x);
  apply_defaults(x);
  if (validate_instance(x))
    return;
  check_instance_round_trip(x);
  auto id = make_instance_id(x, key);
  FUZZ_CHECK(!id.empty());
  FUZZ_CHECK(is_heartbeat_client(heartbeat_client_id(x.ip, x.port)));
}

/// A batch register, as the client actor decodes it: what passes holds 1..max distinct instances,
/// each surviving a round trip.
void decode_batch_register(const v1::BatchRegisterRequest& m) {
  auto key = from_wire(m.service());
  if (validate_service_key(key))
    return;
  std::vector<instance> xs;
  for (const auto& wire_x : m.instances()) {
    xs.push_back(from_wire(wire_x));
    apply_defaults(xs.back());
  }
  if (auto e = validate_instance_batch(xs)) {
    FUZZ_CHECK(e->field.rfind("instances", 0) == 0);
    return;
  }
  FUZZ_CHECK(!xs.empty() && xs.size() <= defaults::batch_register_instances_max);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    check_instance_round_trip(xs[i]);
    for (std::size_t j = 0; j < i; ++j)
      FUZZ_CHECK(!xs[i].same_identity(xs[j]));
  }
}

void decode_clusters(const google::protobuf::RepeatedPtrField<std::string>& clusters) {
  for (auto& c : clusters)
    if (validate_cluster(c))
      return;
}

/// Peer data as the distro actor checks it (default limits).
const distro::peer_rules rules;

/// Every client kept passes the checks; kept and dropped add up to what was sent.
void check_kept(const std::vector<distro::client_data>& kept,
                const std::vector<distro::dropped_client>& dropped, std::size_t sent) {
  FUZZ_CHECK(kept.size() + dropped.size() == sent);
  for (auto& x : kept) {
    FUZZ_CHECK(!distro::check(x, rules));
    FUZZ_CHECK(!validate_client(x.id, x.services, rules.instances_per_client_max) || x.deleted);
  }
  for (auto& d : dropped)
    FUZZ_CHECK(!d.error.field.empty());
}

template <class Message, class F>
void with(const wire::envelope& env, F f) {
  Message msg;
  if (wire::unpack(env, msg))
    f(msg);
}

void decode(wire_kind kind, const wire::envelope& env) {
  switch (kind) {
    case wire_kind::register_request:
      with<v1::RegisterRequest>(env, [](auto& m) { decode_instance_request(m.service(), m.instance()); });
      break;
    case wire_kind::batch_register_request:
      with<v1::BatchRegisterRequest>(env, [](auto& m) { decode_batch_register(m); });
      break;
    case wire_kind::beat_request:
      with<v1::BeatRequest>(env, [](auto& m) { decode_instance_request(m.service(), m.instance()); });
      break;
    case wire_kind::deregister_request:
      with<v1::DeregisterRequest>(env, [](auto& m) {
        auto key = from_wire(m.service());
        if (validate_service_key(key))
          return;
        auto cluster = m.cluster().empty() ? std::string{defaults::cluster} : m.cluster();
        (void) validate_cluster(cluster);
        (void) heartbeat_client_id(m.ip(), m.port());
      });
      break;
    case wire_kind::query_request:
      with<v1::QueryRequest>(env, [](auto& m) {
        auto key = from_wire(m.service());
        if (!validate_service_key(key))
          decode_clusters(m.clusters());
      });
      break;
    case wire_kind::subscribe_request:
      with<v1::SubscribeRequest>(env, [](auto& m) {
        auto key = from_wire(m.service());
        if (!validate_service_key(key))
          decode_clusters(m.clusters());
      });
      break;
    case wire_kind::list_services_request:
      with<v1::ListServicesRequest>(env, [](auto& m) {
        service_key prefix{m.namespace_id(), m.group(), "x"};
        apply_defaults(prefix);
        if (validate_service_key(prefix))
          return;
        auto page = m.page() == 0 ? 1u : m.page();
        auto size = m.size() == 0 ? defaults::page_size_default : m.size();
        (void) validate_page(page, size);
      });
      break;
    case wire_kind::status_request:
      with<v1::StatusRequest>(env, [](auto&) {});
      break;
    case wire_kind::members_request:
      with<v1::MembersRequest>(env, [](auto&) {});
      break;
    case wire_kind::hello:
      with<v1::Hello>(env, [](auto& m) { (void) m.protocol_version(); });
      break;
    case wire_kind::service_info:
      // The client library's decoding of a query reply or a push.
      with<v1::ServiceInfo>(env, [](auto& m) {
        auto info = from_wire(m);
        FUZZ_CHECK(!info.key.group.empty() && !info.key.namespace_id.empty());
        FUZZ_CHECK(info.hosts.size() == static_cast<std::size_t>(m.hosts_size()));
        if (validate_service_key(info.key))
          return;
        v1::ServiceInfo again;
        to_wire(info, again);
        auto back = from_wire(again);
        FUZZ_CHECK(back.key == info.key);
        FUZZ_CHECK(back.hosts.size() == info.hosts.size());
      });
      break;
    case wire_kind::service_list:
      with<v1::ServiceList>(env, [](auto&) {});
      break;
    case wire_kind::member_list:
      with<v1::MemberList>(env, [](auto&) {});
      break;
    case wire_kind::status:
      with<v1::Status>(env, [](auto&) {});
      break;
    case wire_kind::welcome:
      with<v1::Welcome>(env, [](auto&) {});
      break;
    case wire_kind::ack:
      with<v1::Ack>(env, [](auto&) {});
      break;
    case wire_kind::error:
      with<v1::Error>(env, [](auto& m) { (void) v1::Error::Code_Name(m.code()); });
      break;
    case wire_kind::peer_hello:
      with<v1::PeerHello>(env, [](auto&) {});
      break;
    case wire_kind::peer_welcome:
      with<v1::PeerWelcome>(env, [](auto&) {});
      break;
    case wire_kind::sync_batch:
      with<v1::SyncBatch>(env, [](auto& m) {
        std::vector<distro::dropped_client> dropped, again;
        auto batch = distro::from_wire(m, rules, dropped);
        check_kept(batch.clients, dropped, static_cast<std::size_t>(m.clients_size()));
        FUZZ_CHECK(same_clients(distro::from_wire(distro::to_wire(batch), rules, again), batch));
        FUZZ_CHECK(again.empty());
      });
      break;
    case wire_kind::snapshot:
      with<v1::Snapshot>(env, [](auto& m) {
        std::vector<distro::dropped_client> dropped, again;
        auto snap = distro::from_wire(m, rules, dropped);
        check_kept(snap.clients, dropped, static_cast<std::size_t>(m.clients_size()));
        auto back = distro::from_wire(distro::to_wire(snap), rules, again);
        FUZZ_CHECK(same_clients(back, snap));
        FUZZ_CHECK(back.more == snap.more && back.last == snap.last);
        FUZZ_CHECK(again.empty());
        // A chunk that passes the check answers its request: bounded, in order, within the cursor.
        distro::snapshot_request asked{"", "", 1000, 0};
        if (!distro::check(m, asked) && (m.more() || !m.last().empty())) {
          FUZZ_CHECK(m.clients_size() <= 1000);
          FUZZ_CHECK(!m.last().empty());
          for (int k = 0; k < m.clients_size(); ++k) {
            FUZZ_CHECK(m.clients(k).client_id() <= m.last());
            FUZZ_CHECK(k == 0 || m.clients(k - 1).client_id() < m.clients(k).client_id());
          }
        }
      });
      break;
    case wire_kind::verify_batch:
      with<v1::VerifyBatch>(env, [](auto& m) {
        std::vector<distro::dropped_client> dropped, again;
        auto refused = distro::check(m);
        auto batch = distro::from_wire(m, dropped);
        FUZZ_CHECK(batch.clients.size() + dropped.size() == static_cast<std::size_t>(m.clients_size()));
        auto wire = distro::to_wire(batch);
        FUZZ_CHECK(distro::check(wire).has_value() == refused.has_value());
        auto back = distro::from_wire(wire, again);
        FUZZ_CHECK(back.source == batch.source && back.clients.size() == batch.clients.size());
        FUZZ_CHECK(back.buckets == batch.buckets && back.digests == batch.digests
                   && back.listed == batch.listed);
        FUZZ_CHECK(again.empty());
        if (!refused) {
          FUZZ_CHECK(batch.buckets <= defaults::verify_buckets_max);
          for (auto b : batch.listed)
            FUZZ_CHECK(b < batch.buckets);
        }
      });
      break;
    case wire_kind::verify_reply:
      with<v1::VerifyReply>(env, [](auto& m) {
        std::vector<distro::dropped_client> dropped, again;
        auto reply = distro::from_wire(m, dropped);
        FUZZ_CHECK(reply.missing.size() + dropped.size() == static_cast<std::size_t>(m.missing_size()));
        auto back = distro::from_wire(distro::to_wire(reply), again);
        FUZZ_CHECK(back.missing == reply.missing && back.differing == reply.differing);
        if (!distro::check(m))
          for (auto b : reply.differing)
            FUZZ_CHECK(b < defaults::verify_buckets_max);
        FUZZ_CHECK(again.empty());
      });
      break;
    case wire_kind::snapshot_request:
      with<v1::SnapshotRequest>(env, [](auto& m) {
        auto back = distro::from_wire(distro::to_wire(distro::from_wire(m)));
        FUZZ_CHECK(back.source == m.source() && back.after == m.after());
        FUZZ_CHECK(back.clients_max == m.clients_max() && back.instances_max == m.instances_max());
        if (!distro::check(m) && !m.after().empty())
          FUZZ_CHECK(m.clients_max() > 0);
      });
      break;
    case wire_kind::forwarded_request:
      // The gateway re-packs the inner request and routes it like a direct one.
      with<v1::ForwardedRequest>(env, [](auto& m) {
        switch (m.request_case()) {
          case v1::ForwardedRequest::kRegister:
            decode(wire_kind::register_request, wire::pack(m.register_()));
            break;
          case v1::ForwardedRequest::kBeat:
            decode(wire_kind::beat_request, wire::pack(m.beat()));
            break;
          case v1::ForwardedRequest::kDeregister:
            decode(wire_kind::deregister_request, wire::pack(m.deregister()));
            break;
          default:
            break;
        }
      });
      break;
  }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr); // a payload with bad UTF-8 is refused, not logged
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  auto kind = fuzz::kind_of_byte(data[0]);
  wire::envelope env{fuzz::kind_name(kind),
                     std::string{reinterpret_cast<const char*>(data + 1), size - 1}};
  decode(kind, env);
  // A payload under another kind is refused by unpack, never misread.
  v1::RegisterRequest probe;
  if (kind != wire_kind::register_request)
    FUZZ_CHECK(!wire::unpack(env, probe));
  return 0;
}
