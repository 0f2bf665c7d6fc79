// registry-bench verify-bytes: the bytes of one Distro verify round per peer, for N session clients
// that one node is responsible for and its peer holds copies of.
//
// It drives two distro_protocol instances (the node's own Distro logic, actors/distro) and measures
// the VerifyBatch and VerifyReply messages they exchange as distro_wire encodes them for the network
// (protobuf bytes of the message, before CAF's few bytes of framing). Three rounds:
//   * idle: every copy is in sync (digest only);
//   * churn: `changes` clients changed since the last sync (digest, the detail of the buckets that
//     differ, and the replies);
//   * the full list of (client, revision) that every round sent before digests, for comparison.
// It also times the receiver's work for an idle digest round (its CPU cost stays O(clients)).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include "actors/distro/distro_protocol.hpp"
#include "actors/distro/distro_wire.hpp"
#include "tools/bench/common.hpp"

namespace bench {

namespace {

using registry::distro_protocol;
namespace distro = registry::distro;

const std::string node_a = "10.0.0.1:8848";
const std::string node_b = "10.0.0.2:8848";

registry::client_services one_instance(std::uint32_t port) {
  registry::instance x;
  x.ip = "10.1.0.1";
  x.port = port;
  x.instance_id = x.ip + "#" + std::to_string(port);
  return {{registry::service_key{"public", "DEFAULT_GROUP", "orders"}, {x}}};
}

std::string session_id(std::size_t n) {
  return node_a + "/" + std::to_string(n) + "/1700000000000";
}

struct round_bytes {
  std::size_t batches = 0;
  std::size_t batch_bytes = 0;
  std::size_t reply_bytes = 0;
  double receiver_ms = 0;
};

/// One verify round from `a` to `b` at `now`, with the detail a digest's reply asks for.
round_bytes verify_round(distro_protocol& a, distro_protocol& b, registry::time_ms now) {
  round_bytes result;
  auto fx = a.tick(now);
  for (auto& v : fx.verifies) {
    if (v.peer != node_b)
      continue;
    auto out = std::make_optional(v);
    while (out) {
      ++result.batches;
      result.batch_bytes += distro::to_wire(out->batch).ByteSizeLong();
      auto t0 = steady::now();
      auto reply = b.on_verify_batch(out->batch, now);
      result.receiver_ms += std::chrono::duration<double, std::milli>(steady::now() - t0).count();
      result.reply_bytes += distro::to_wire(reply.reply).ByteSizeLong();
      auto back = a.on_verify_result(out->peer, out->verify_id, reply.reply, now);
      out.reset();
      for (auto& next : back.verifies)
        if (next.peer == node_b)
          out = next;
    }
  }
  return result;
}

} // namespace

int cmd_verify_bytes(std::size_t clients, std::size_t changes) {
  registry::distro_config cfg;
  cfg.clients_max = 2 * clients + 16;
  std::vector<registry::member_view> members{{node_a, registry::member_state::up},
                                             {node_b, registry::member_state::up}};
  distro_protocol a{node_a, cfg};
  distro_protocol b{node_b, cfg};
  registry::time_ms now = 0;
  // A starts alone-ready (B is not ready: it asks for a snapshot), takes its clients, then serves B
  // its snapshot, so B holds a copy of each with A as the source.
  auto fa = a.start({{node_a, registry::member_state::up}}, now);
  for (std::size_t i = 0; i < clients; ++i)
    a.on_local_change({session_id(i), one_instance(8080), false, {}}, now);
  a.on_members(members, now);
  auto fb = b.start(members, now);
  if (fb.snapshot_requests.empty()) {
    std::fprintf(stderr, "verify-bytes: the peer asked for no snapshot\n");
    return 1;
  }
  // The snapshot comes in chunks: serve each one B asks for until its load is complete.
  auto requests = std::move(fb.snapshot_requests);
  while (!requests.empty()) {
    auto rq = requests.front();
    auto snap = a.on_snapshot_request(rq.request, now);
    if (!snap.reply) {
      std::fprintf(stderr, "verify-bytes: the node served no snapshot\n");
      return 1;
    }
    requests = b.on_snapshot_result(node_a, rq.request_id, distro_protocol::snapshot_status::ok,
                                    &*snap.reply, now)
                 .snapshot_requests;
  }
  if (!b.ready()) {
    std::fprintf(stderr, "verify-bytes: the peer is not ready after its snapshot load\n");
    return 1;
  }
  // Both sides acknowledge whatever syncs the start produced, so that only verify remains.
  now += cfg.verify_interval_ms;
  verify_round(a, b, now); // B learns A is ready, A learns B is
  now += cfg.verify_interval_ms;
  auto idle = verify_round(a, b, now);

  for (std::size_t i = 0; i < changes && i < clients; ++i)
    a.on_local_change({session_id(i * (clients / std::max<std::size_t>(changes, 1))),
                       one_instance(9090), false, {}},
                      now + 1);
  now += cfg.verify_interval_ms;
  auto churn = verify_round(a, b, now);

  distro::verify_batch full{node_a, {}};
  for (std::size_t i = 0; i < clients; ++i)
    full.clients.push_back({session_id(i), registry::content_revision(one_instance(8080))});
  auto full_bytes = distro::to_wire(full).ByteSizeLong();

  json out{{"clients", clients},
           {"buckets", cfg.verify_buckets},
           {"idle_batches", idle.batches},
           {"idle_verify_bytes", idle.batch_bytes + idle.reply_bytes},
           {"idle_receiver_ms", std::round(idle.receiver_ms * 10) / 10},
           {"changes", changes},
           {"churn_batches", churn.batches},
           {"churn_verify_bytes", churn.batch_bytes + churn.reply_bytes},
           {"full_list_bytes", full_bytes}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

} // namespace bench
