// Readiness under CAF's deterministic scheduler: a joining node says ready, and takes queries, only
// once the snapshot it loaded is in every index (the barrier through every client actor and then
// every service actor). The test holds the client and service actors back after the snapshot
// arrived, so a node that skipped the barrier would answer from half-filled indexes.

#include <doctest/doctest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "actors/distro/distro_actor.hpp"
#include "actors/distro/distro_wire.hpp"
#include "actors/gateway/gateway_actor.hpp"
#include "messages/convert.hpp"
#include "messages/model_inspect.hpp"
#include "messages/type_ids.hpp"
#include "test/support/deterministic_system.hpp"

using namespace registry;
using namespace registry::wire;

namespace {

const std::string peer_address = "127.0.0.1:8850";

/// What the stand-in peer actor saw: the snapshot requests the distro actor sent it.
struct peer_log {
  std::vector<std::uint64_t> snapshot_requests;
  std::vector<v1::SnapshotRequest> requests; ///< the same requests, decoded
};

/// A peer actor that connects nowhere: it records snapshot requests and drops everything else.
peer_actor::behavior_type stub_peer(peer_actor::pointer, std::shared_ptr<peer_log> log) {
  return {
    [](dial_atom) {},
    [](tick_atom) {},
    [](sync_atom, std::uint64_t, const envelope&) {},
    [](verify_atom, std::uint64_t, const envelope&) {},
    [=](snapshot_atom, std::uint64_t id, const envelope& env) {
      log->snapshot_requests.push_back(id);
      v1::SnapshotRequest x;
      unpack(env, x);
      log->requests.push_back(x);
    },
    [](forward_atom, const envelope&) -> envelope { return {}; },
    [](raft_atom, const envelope&) {},
    [](pwrite_atom, const envelope&) -> envelope { return {}; },
  };
}

/// The name of an actor job ("client", "service", "gateway", ...), or "" for other jobs.
std::string job_name(caf::resumable* job) {
  auto* actor = dynamic_cast<caf::local_actor*>(job);
  return actor ? actor->name() : "";
}

struct ready_fixture : test::deterministic_system {
  std::shared_ptr<node_config> node_cfg = std::make_shared<node_config>();
  std::shared_ptr<peer_log> peer = std::make_shared<peer_log>();
  distro_actor distro;
  gateway_actor gateway;

  ready_fixture() {
    node_cfg->listen = host_port{"127.0.0.1", 8848};
    node_cfg->members = {node_cfg->listen, host_port{"127.0.0.1", 8850}};
    node_cfg->distro.snapshot_timeout_ms = 200;
    node_cfg->distro.snapshot_retry_delay_ms = 100;
    auto log = peer;
    distro = spawn_distro_actor(*sys, node_cfg, [log](caf::actor_system& s, peer_settings,
                                                      distro_actor) {
      return s.spawn(stub_peer, log);
    });
    gateway = spawn_gateway_actor(*sys, node_cfg, distro);
    (*self)->send(distro, start_atom_v, gateway);
    sched->run();
  }

  ~ready_fixture() {
    (*self)->send_exit(distro, caf::exit_reason::user_shutdown);
    (*self)->send_exit(gateway, caf::exit_reason::user_shutdown);
    sched->run();
  }

  /// Runs every job but those of actors named in `held` (their mailboxes keep filling).
  void run_all_but(std::vector<std::string> held) {
    sched->run_jobs_filtered([&](caf::resumable* job) {
      auto name = job_name(job);
      return std::find(held.begin(), held.end(), name) == held.end();
    });
  }

  /// Asks the gateway; only the actors not in `held` run meanwhile. Nothing when no reply came
  /// (the gateway handed the request to a held actor).
  std::optional<envelope> ask(const envelope& request, std::vector<std::string> held,
                              bool status = false) {
    auto handle = status ? (*self)->request(gateway, caf::infinite, status_atom_v, request)
                         : (*self)->request(gateway, caf::infinite, query_atom_v, request);
    run_all_but(held);
    if ((*self)->mailbox().empty())
      return std::nullopt;
    std::optional<envelope> result;
    handle.receive([&](envelope& env) { result = std::move(env); },
                   [&](caf::error& err) { FAIL("request failed: " << sys->render(err)); });
    return result;
  }

  v1::Status status(std::vector<std::string> held = {}) {
    v1::Status st;
    auto reply = ask(pack(v1::StatusRequest{}), held, true);
    REQUIRE(reply.has_value());
    REQUIRE(unpack(*reply, st));
    return st;
  }

  /// The reply to a query of `service` (a ServiceInfo or an Error), if it came.
  std::optional<envelope> query(const std::string& service, std::vector<std::string> held = {}) {
    v1::QueryRequest req;
    req.mutable_service()->set_service(service);
    return ask(pack(req), held);
  }

  /// The error code of a reply, "answered with data", or "no reply".
  static std::string refusal(const std::optional<envelope>& reply) {
    v1::Error err;
    if (!reply)
      return "no reply (handed to a held actor)";
    if (!unpack(*reply, err))
      return "answered with data";
    return v1::Error::Code_Name(err.code());
  }
};

/// A snapshot from the peer: `sessions` session clients of the peer, each with one instance of
/// `service`.
distro::snapshot peer_snapshot(const std::string& service, int sessions) {
  distro::snapshot s;
  s.source = peer_address;
  for (int k = 0; k < sessions; ++k) {
    distro::client_data c;
    c.id = peer_address + "/1/" + std::to_string(k);
    instance x;
    x.ip = "10.1." + std::to_string(k / 250) + "." + std::to_string(k % 250);
    x.port = 8080;
    c.services[service_key{"public", "DEFAULT_GROUP", service}].mutate().push_back(x);
    c.revision = content_revision(c.services);
    c.owner = peer_address;
    s.clients.push_back(std::move(c));
  }
  return s;
}

} // namespace

TEST_CASE("ready: a joining node refuses queries until the loaded snapshot is in every index") {
  ready_fixture f;
  // The peer answers; the node asks it for a snapshot and refuses queries meanwhile.
  (*f.self)->send(f.distro, peer_up_atom_v, peer_address, peer_address, std::string{"peer-run-1"});
  f.sched->run();
  REQUIRE(f.peer->snapshot_requests.size() == 1);
  CHECK_FALSE(f.status().ready());
  CHECK(f.refusal(f.query("orders")) == "UNAVAILABLE");

  // The snapshot arrives. Client and service actors are held back: the replicas are handed to
  // them but not applied, so the indexes are still empty.
  const int sessions = 40;
  v1::Snapshot wire_snapshot = distro::to_wire(peer_snapshot("orders", sessions));
  (*f.self)->send(f.distro, snap_res_atom_v, peer_address, f.peer->snapshot_requests.front(),
                  std::int32_t{0}, pack(wire_snapshot));
  f.run_all_but({"client", "service"});
  CHECK_FALSE(f.status({"client", "service"}).ready());
  CHECK(f.refusal(f.query("orders", {"client", "service"})) == "UNAVAILABLE");

  // The client actors apply their replicas; the service actors have not indexed them yet.
  f.run_all_but({"service"});
  CHECK_FALSE(f.status({"service"}).ready());
  CHECK(f.refusal(f.query("orders", {"service"})) == "UNAVAILABLE");

  // Everything runs: the barrier answers, the node is ready and returns every instance.
  f.sched->run();
  CHECK(f.status().ready());
  auto reply = f.query("orders");
  REQUIRE(reply.has_value());
  v1::ServiceInfo info;
  REQUIRE(unpack(*reply, info));
  CHECK(info.hosts_size() == sessions);
}

namespace {

/// Clients `from`..`to` - 1 of peer_snapshot as one chunk; `more`: another follows.
v1::Snapshot chunk_of(const distro::snapshot& all, std::size_t from, std::size_t to, bool more) {
  distro::snapshot part;
  part.source = all.source;
  part.clients.assign(all.clients.begin() + static_cast<std::ptrdiff_t>(from),
                      all.clients.begin() + static_cast<std::ptrdiff_t>(to));
  part.more = more;
  part.last = part.clients.back().id;
  return distro::to_wire(part);
}

} // namespace

TEST_CASE("ready: a snapshot in chunks makes the node ready only when the last chunk is in every "
          "index; a lost chunk loads it again from the first") {
  using namespace std::chrono_literals;
  ready_fixture f;
  (*f.self)->send(f.distro, peer_up_atom_v, peer_address, peer_address, std::string{"peer-run-1"});
  f.sched->run();
  REQUIRE(f.peer->requests.size() == 1);
  CHECK(f.peer->requests[0].after().empty());
  CHECK(f.peer->requests[0].clients_max() == defaults::snapshot_chunk_clients_max);
  // The peer sends chunks smaller than asked (its own bound): ids sort as strings, so the
  // snapshot is sorted first.
  const int sessions = 12;
  auto all = peer_snapshot("orders", sessions);
  std::sort(all.clients.begin(), all.clients.end(),
            [](const auto& x, const auto& y) { return x.id < y.id; });
  auto answer = [&](std::size_t k, const v1::Snapshot& chunk) {
    (*f.self)->send(f.distro, snap_res_atom_v, peer_address, f.peer->snapshot_requests.at(k),
                    std::int32_t{0}, pack(chunk));
  };
  // The first chunk is applied; the second is asked for at once, after the first one's last.
  answer(0, chunk_of(all, 0, 4, true));
  f.sched->run();
  REQUIRE(f.peer->requests.size() == 2);
  CHECK(f.peer->requests[1].after() == all.clients[3].id);
  CHECK_FALSE(f.status().ready());
  CHECK(f.refusal(f.query("orders")) == "UNAVAILABLE");

  // The second chunk is lost: its timeout fails the load, which starts again from the first
  // chunk after the retry delay. The node stays not ready, though a third of the data is in.
  f.sched->advance_time(250ms);
  f.sched->run();
  f.sched->advance_time(150ms);
  f.sched->run();
  REQUIRE(f.peer->requests.size() == 3);
  CHECK(f.peer->requests[2].after().empty());
  CHECK_FALSE(f.status().ready());
  // The lost chunk's late answer changes nothing.
  answer(1, chunk_of(all, 4, 8, true));
  f.sched->run();
  CHECK(f.peer->requests.size() == 3);
  CHECK_FALSE(f.status().ready());

  // This time every chunk arrives. The last is handed to client and service actors that are held
  // back: not ready until the barrier passed them.
  answer(2, chunk_of(all, 0, 4, true));
  f.sched->run();
  REQUIRE(f.peer->requests.size() == 4);
  answer(3, chunk_of(all, 4, 8, true));
  f.sched->run();
  REQUIRE(f.peer->requests.size() == 5);
  CHECK(f.peer->requests[4].after() == all.clients[7].id);
  CHECK_FALSE(f.status().ready());
  answer(4, chunk_of(all, 8, sessions, false));
  f.run_all_but({"client", "service"});
  CHECK_FALSE(f.status({"client", "service"}).ready());
  CHECK(f.refusal(f.query("orders", {"client", "service"})) == "UNAVAILABLE");
  f.run_all_but({"service"});
  CHECK_FALSE(f.status({"service"}).ready());
  f.sched->run();
  CHECK(f.status().ready());
  CHECK(f.peer->requests.size() == 5);
  auto reply = f.query("orders");
  REQUIRE(reply.has_value());
  v1::ServiceInfo info;
  REQUIRE(unpack(*reply, info));
  CHECK(info.hosts_size() == sessions);
  CHECK(f.status().instances() == sessions);
}

TEST_CASE("ready: a chunk that breaks the wire rules fails the load, which starts again") {
  using namespace std::chrono_literals;
  ready_fixture f;
  (*f.self)->send(f.distro, peer_up_atom_v, peer_address, peer_address, std::string{"peer-run-1"});
  f.sched->run();
  REQUIRE(f.peer->requests.size() == 1);
  auto all = peer_snapshot("orders", 6);
  std::sort(all.clients.begin(), all.clients.end(),
            [](const auto& x, const auto& y) { return x.id < y.id; });
  // Out of order: refused (clients[1].client_id), the load fails; after the retry delay it
  // starts again from the first chunk.
  auto bad = chunk_of(all, 0, 3, true);
  bad.mutable_clients()->SwapElements(0, 1);
  (*f.self)->send(f.distro, snap_res_atom_v, peer_address, f.peer->snapshot_requests.at(0),
                  std::int32_t{0}, pack(bad));
  f.sched->run();
  CHECK(f.peer->requests.size() == 1);
  CHECK_FALSE(f.status().ready());
  f.sched->advance_time(150ms);
  f.sched->run();
  REQUIRE(f.peer->requests.size() == 2);
  CHECK(f.peer->requests[1].after().empty());
  (*f.self)->send(f.distro, snap_res_atom_v, peer_address, f.peer->snapshot_requests.at(1),
                  std::int32_t{0}, pack(chunk_of(all, 0, 6, false)));
  f.sched->run();
  CHECK(f.status().ready());
  CHECK(f.status().instances() == 6);
}
