#pragma once
/// registry-bench: shared pieces of the load generator.
///
/// The bench speaks the registry's CAF protocol directly (messages/PROTOCOL.md), the same path the
/// client library uses: a CAF system configured by wire::configure_system, envelopes carrying the
/// protobuf messages of registry.proto, sessions opened with Hello. Every request carries a timeout,
/// every run a duration, every wait a deadline, and every subcommand a watchdog that ends the process.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/common/transport.hpp"
#include "config/tls.hpp"
#include "messages/registry.pb.h"
#include "messages/type_ids.hpp"

namespace bench {

using json = nlohmann::ordered_json;
using steady = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;
using registry::wire::envelope;
namespace v1 = registry::v1;

/// CAF settings of the bench process. The heartbeat values must equal the nodes'
/// session.caf_heartbeat_interval_ms / caf_connection_timeout_ms (defaults 1000 / 5000).
struct caf_settings {
  std::int64_t hb_ms = 1000;
  std::int64_t timeout_ms = 5000;
  int threads = 2;
  /// TLS to the nodes (README, TLS): `tls` alone for anonymous TLS, the files for certificates.
  bool tls = false;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
};

/// An actor system configured like every other process of the project.
struct system_holder {
  registry::tls_file_pins tls_pins;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  explicit system_holder(const caf_settings& s);
};

/// Milliseconds (fractional) since `t0`.
inline double ms_since(steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

/// Splits "a,b,c".
std::vector<std::string> split(const std::string& text, char sep);

/// Connects to the actor published at HOST:PORT with CAF's asynchronous connect and a timeout.
/// Returns an invalid handle and sets `why` on failure.
caf::actor connect(caf::actor_system& sys, const std::string& host_port, ms timeout,
                   std::string* why = nullptr);

/// Connects, retrying every 5 ms until `deadline` (for nodes that are still starting).
caf::actor connect_retry(caf::actor_system& sys, const std::string& host_port,
                         steady::time_point deadline, std::string* why = nullptr);

/// Connects to every node within 15 s, or ends the process with an error JSON line in `out`.
std::vector<caf::actor> connect_all(caf::actor_system& sys, const std::vector<std::string>& nodes,
                                    json& out);

/// Nearest-rank percentile of `v` (sorted in place); NaN when empty.
double percentile(std::vector<double>& v, double p);

/// p50/p99/max/count of samples as JSON fields named `<prefix>_p50_<unit>` etc.
void add_latency(json& out, const std::string& prefix, const std::string& unit,
                 std::vector<double> v);

/// Prints one JSON object on one line to stdout and flushes.
void print_json(const json& j);

/// Prints `j`, flushes and ends the process at once (no CAF shutdown that could hang).
[[noreturn]] void finish(const json& j, int code = 0);

/// Ends the process with exit code 3 and an error JSON line after `limit` (bounded runs).
void start_watchdog(std::chrono::seconds limit, const std::string& what);

// -- child processes -------------------------------------------------------------------------

/// Path of this executable (to start copies of itself).
std::string self_exe();

struct child_proc {
  pid_t pid = -1;
  int out_fd = -1; ///< read end of its stdout when started with a pipe, else -1
};

/// Starts argv[0] with SIGKILL as parent-death signal. stdout goes to a pipe when `out_file` is
/// empty, else to that file (stderr too when `err_to_out`); stderr otherwise stays ours.
child_proc spawn_child(const std::vector<std::string>& argv, const std::string& out_file = "",
                       bool err_to_out = false);

/// Reads one line from `fd` within `timeout`; false on timeout or EOF.
bool read_line(int fd, std::string& line, ms timeout);

/// SIGTERM, wait up to `grace`, then SIGKILL; reaps. Returns the wait status or -1.
int stop_child(pid_t pid, ms grace);

/// VmRSS of a process in bytes (0 when unreadable).
std::uint64_t rss_bytes(pid_t pid);

// -- wire helpers ----------------------------------------------------------------------------

/// Service names used by the bench: namespace public, group DEFAULT_GROUP.
v1::RegisterRequest make_register(const std::string& service, const std::string& ip,
                                  std::uint32_t port);
/// A BatchRegisterRequest of `count` instances ip:first_port, ip:first_port+1, ...
v1::BatchRegisterRequest make_batch_register(const std::string& service, const std::string& ip,
                                             std::uint32_t first_port, std::uint32_t count);
v1::QueryRequest make_query(const std::string& service);
std::string bench_ip(std::uint64_t index); ///< 10.x.y.z from an index (unique below 2^24)

/// Blocking helpers for main() (never inside actors).
std::optional<v1::Status> fetch_status(caf::scoped_actor& self, const caf::actor& gateway,
                                       ms timeout, std::string* why = nullptr);
/// Returns whether `service` at `gateway` holds ip:port; nullopt when the query failed.
std::optional<bool> has_instance(caf::scoped_actor& self, const caf::actor& gateway,
                                 const std::string& service, const std::string& ip,
                                 std::uint32_t port, ms timeout);
/// True when a ServiceInfo envelope holds ip:port.
bool info_has(const envelope& env, const std::string& ip, std::uint32_t port);

// -- session load (register, fill, background load, query setup) ------------------------------

/// Counters shared by all client actors of one run.
struct run_counters {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> ok{0};          ///< acks received before stop
  std::atomic<std::uint64_t> refused{0};     ///< Error replies
  std::atomic<std::uint64_t> failed{0};      ///< CAF errors (timeouts, ...)
  std::atomic<std::uint64_t> acked{0};       ///< acks received, also after stop
  std::atomic<std::uint64_t> instances_ok{0}; ///< instances in the acks counted by `ok`
  std::atomic<std::uint64_t> sent{0};        ///< requests sent
  std::atomic<std::uint64_t> finished{0};    ///< requests answered in any way
  std::atomic<std::uint64_t> sessions_ok{0};
  std::atomic<std::uint64_t> sessions_failed{0};
  std::atomic<std::uint64_t> clients_done{0}; ///< clients that sent all their instances
  std::atomic<std::uint64_t> closed{0};       ///< clients that ended (after bye)
  std::mutex m;
  std::string first_error;
  void note_error(const std::string& what);
};

/// Latency samples of one actor (µs); read by main under the mutex.
struct sample_box {
  std::mutex m;
  std::vector<float> us;
};

/// How one session client registers.
struct reg_plan {
  std::uint64_t client_index = 0; ///< makes the instance addresses unique
  std::uint32_t instances = 100;  ///< instances to register
  std::uint32_t inflight = 4;     ///< requests in flight
  std::uint32_t services = 100;   ///< spread over this many services
  /// > 0: BatchRegisterRequests of this many instances, each batch in a service of its own (a
  /// batch replaces the client's instances in its service); 0: one RegisterRequest per instance.
  std::uint32_t batch = 0;
  std::string service_prefix = "bench-svc-";
  double rate_per_s = 0;          ///< > 0: paced by start_pacer's permits; 0: as fast as possible
  ms request_timeout{10000};
};

/// Spawns a session client: it says hello to `gateway` at once and registers after a start_atom.
/// bye_atom closes its session (bounded) and ends it.
caf::actor spawn_reg_client(caf::actor_system& sys, caf::actor gateway, reg_plan plan,
                            std::shared_ptr<run_counters> counters,
                            std::shared_ptr<sample_box> samples);

/// Paced load: hands `rate` permits per second round-robin to `clients` (each a registration)
/// until counters->stop. Clients must have been planned with rate_per_s > 0.
caf::actor start_pacer(caf::actor_system& sys, std::vector<caf::actor> clients, double rate,
                       std::shared_ptr<run_counters> counters);

/// Opens `n` sessions round-robin on `gateways`, at most `wave` hellos at a time. Returns the
/// clients (also those whose hello failed; counters say how many). `plan_for(i)` gives each plan.
std::vector<caf::actor> open_sessions(caf::actor_system& sys,
                                      const std::vector<caf::actor>& gateways, std::size_t n,
                                      const std::function<reg_plan(std::size_t)>& plan_for,
                                      const std::shared_ptr<run_counters>& counters,
                                      std::vector<std::shared_ptr<sample_box>>* samples,
                                      std::size_t wave, steady::time_point deadline);

/// Sends bye to every client and waits until all ended or `deadline`.
void close_sessions(const std::vector<caf::actor>& clients,
                    const std::shared_ptr<run_counters>& counters, steady::time_point deadline);

/// Runs `actors` actors with `window` requests in flight each, sending (query_atom, envelope) to
/// `gateway` round-robin over `requests` for `duration_s`; replies of kind `expect_kind` count.
/// Fills `<prefix>_per_s`, `<prefix>_p50_us`, `<prefix>_p99_us`, ... into `out`.
void run_request_load(caf::actor_system& sys, const caf::actor& gateway,
                      std::shared_ptr<const std::vector<envelope>> requests,
                      const std::string& expect_kind, std::size_t actors, std::uint32_t window,
                      double duration_s, const std::string& prefix, json& out);

/// Instances each node holds (-1 where the status request failed).
std::vector<std::int64_t> instance_counts(caf::actor_system& sys,
                                          const std::vector<caf::actor>& gateways);

/// After a run: waits until every node holds at most `baseline[i]` instances again (removals
/// replicated), so the next run starts from a quiet cluster. Returns the ms waited, -1 on timeout.
double settle(caf::actor_system& sys, const std::vector<caf::actor>& gateways,
              const std::vector<std::int64_t>& baseline, ms timeout);

/// Polls `cond` every 5 ms until it holds or `deadline` passes.
bool wait_for(const std::function<bool()>& cond, steady::time_point deadline);

// -- subcommands ------------------------------------------------------------------------------

struct common_opts {
  caf_settings caf;
  std::vector<std::string> nodes;
  double duration_s = 5;
  std::int64_t max_s = 0; ///< watchdog (0 = derived from the duration)
};

/// `batch` > 0: batch registrations (instances/s), see reg_plan::batch.
int cmd_register(const common_opts& o, std::size_t clients, std::uint32_t per_client,
                 std::uint32_t inflight, std::uint32_t services, std::uint32_t batch = 0);
int cmd_fill(const common_opts& o, std::size_t clients, std::uint64_t instances,
             std::uint32_t inflight, std::uint32_t services, double hold_s, pid_t rss_pid);
int cmd_query(const common_opts& o, std::size_t actors, std::uint32_t inflight,
              std::uint32_t services, std::uint32_t instances_per_service);
int cmd_replication(const common_opts& o, const std::string& write, const std::string& read,
                    double background_rate, std::uint32_t background_per_client,
                    std::uint32_t probes, const std::string& trace_file);
int cmd_push(const common_opts& o, const std::string& write, const std::string& same,
             const std::string& other, std::uint32_t probes);
int cmd_crash(const common_opts& o, const std::string& session_node, std::uint32_t rounds);
int cmd_crash_child(const common_opts& o, const std::string& service, const std::string& ip,
                    std::uint32_t port, double hold_s);
int cmd_pingpong(const common_opts& o, std::size_t actors, std::uint32_t inflight,
                 std::uint32_t reply_hosts);
int cmd_pingpong_server(const common_opts& o, double hold_s, std::uint32_t reply_hosts);
int cmd_status(const common_opts& o, bool wait_ready, std::size_t wait_members,
               std::uint64_t wait_instances, double timeout_s);
int cmd_join(const common_opts& o, const std::string& registryd, const std::string& config,
             const std::string& log, std::uint64_t expect_instances, double timeout_s,
             double applied_timeout_s);
/// Persistent instances through Raft (tools/bench/raft.cpp).
int cmd_raft_write(const common_opts& o, std::size_t actors, std::uint32_t inflight,
                   std::uint64_t count, std::uint32_t services, const std::string& prefix);
int cmd_raft_failover(const common_opts& o, const std::vector<int>& pids, double timeout_s);
int cmd_raft_health(const common_opts& o, std::uint64_t instances, std::size_t nports,
                    double warmup_s, std::int64_t interval_ms);
int cmd_verify_bytes(std::size_t clients, std::size_t changes);
int cmd_report(const std::string& results, const std::string& json_out, const std::string& mode);

} // namespace bench
