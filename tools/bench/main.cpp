// registry-bench: the load generator of tools/bench.sh.
//
// One binary, one subcommand per figure; each prints one JSON object on stdout (and ends by
// itself: every request has a timeout, every run a duration, every process a watchdog).
//
//   registry-bench register    --nodes H:P[,H:P] --clients N --instances-per-client K --inflight W --duration-s S [--batch B]
//   registry-bench query       --nodes H:P --actors A --inflight W --duration-s S
//   registry-bench replication --write H:P --read H:P [--background-rate R] --probes N --duration-s S
//   registry-bench push        --write H:P --same H:P --other H:P --probes N --duration-s S
//   registry-bench crash       --nodes H:P,... --session-node H:P --rounds N
//   registry-bench fill        --nodes H:P --instances N --clients C [--rss-pid P] --hold-s S
//   registry-bench caf-pingpong --actors A --inflight W --duration-s S   (starts its own server)
//   registry-bench status      --nodes H:P [--wait-ready] [--wait-members N] [--timeout-s S]
//   registry-bench join        --nodes H:P --registryd PATH --config FILE --log FILE --expect-instances N
//   registry-bench raft-write  --nodes H:P,... --writers N --inflight W [--count N] --duration-s S
//   registry-bench raft-failover --nodes H:P,... --pids P,... [--timeout-s S]
//   registry-bench raft-health --nodes H:P --instances N --ports K --duration-s S
//   registry-bench report      --results FILE [--json FILE] [--mode quick|standard]
//
// The bench speaks the registry's CAF protocol (messages/PROTOCOL.md) like the client library:
// sessions (Hello -> Welcome + session actor), RegisterRequest to the session actor, QueryRequest to
// the gateway, pushes acknowledged with Ack. CAF heartbeats must match the nodes' session settings
// (--hb-ms/--timeout-ms, defaults 1000/5000 as config/defaults.hpp).

#include <csignal>
#include <iostream>

#include <CLI/CLI.hpp>

#include "config/defaults.hpp"
#include "tools/bench/common.hpp"

namespace {

void add_common(CLI::App* cmd, bench::common_opts& o, std::string& nodes, bool with_nodes = true) {
  if (with_nodes)
    cmd->add_option("--nodes", nodes, "gateways as HOST:PORT[,HOST:PORT...]");
  cmd->add_option("--hb-ms", o.caf.hb_ms, "CAF heartbeat interval (= nodes' session.caf_heartbeat_interval_ms)");
  cmd->add_option("--timeout-ms", o.caf.timeout_ms, "CAF connection timeout (= nodes' session.caf_connection_timeout_ms)");
  cmd->add_option("--threads", o.caf.threads, "CAF scheduler threads of this process");
  cmd->add_flag("--tls", o.caf.tls, "TLS to the nodes (alone: anonymous TLS)");
  cmd->add_option("--tls-ca", o.caf.tls_ca, "PEM CA file (certificate mode, with --tls-cert/--tls-key)");
  cmd->add_option("--tls-cert", o.caf.tls_cert, "PEM client certificate");
  cmd->add_option("--tls-key", o.caf.tls_key, "PEM key of --tls-cert");
  cmd->add_option("--duration-s", o.duration_s, "length of the measured run");
  cmd->add_option("--max-s", o.max_s, "watchdog: the process ends after this many seconds");
}

} // namespace

int main(int argc, char** argv) {
  // A dying reader must not kill us half-way through a JSON line.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"registry-bench: load generator for registryd (see tools/bench.sh)"};
  app.require_subcommand(1);
  bench::common_opts o;
  std::string nodes;

  // register
  std::size_t clients = 2000;
  std::uint32_t per_client = 100, inflight = 4, services = 100;
  auto* reg = app.add_subcommand("register", "ephemeral registrations/s over sessions");
  add_common(reg, o, nodes);
  reg->add_option("--clients", clients, "session clients");
  reg->add_option("--instances-per-client", per_client, "instances each client registers (<= 1000)");
  reg->add_option("--inflight", inflight, "requests in flight per client");
  reg->add_option("--services", services, "services the instances spread over");
  std::uint32_t batch = 0;
  reg->add_option("--batch", batch,
                  "instances per BatchRegisterRequest, each batch in a service of its own (0 = one "
                  "RegisterRequest per instance); prints instances_per_s")
    ->check(CLI::Range(0u, static_cast<unsigned>(registry::defaults::batch_register_instances_max)));

  // fill
  std::uint64_t fill_instances = 100000;
  std::size_t fill_clients = 1000;
  std::uint32_t fill_services = 1000;
  double hold_s = 300;
  auto* fill = app.add_subcommand("fill", "register N instances, print, hold the sessions until killed");
  add_common(fill, o, nodes);
  fill->add_option("--instances", fill_instances, "instances in total");
  fill->add_option("--clients", fill_clients, "session clients");
  fill->add_option("--inflight", inflight, "requests in flight per client");
  fill->add_option("--services", fill_services, "services the instances spread over");
  fill->add_option("--hold-s", hold_s, "hold the sessions this long at most");
  int rss_pid = 0;
  fill->add_option("--rss-pid", rss_pid, "node process whose RSS growth per instance is measured");

  // query
  std::size_t actors = 8;
  std::uint32_t q_inflight = 16, q_services = 10, q_per_service = 10;
  auto* query = app.add_subcommand("query", "queries/s with p50/p99 latency");
  add_common(query, o, nodes);
  query->add_option("--actors", actors, "querying actors");
  query->add_option("--inflight", q_inflight, "queries in flight per actor");
  query->add_option("--services", q_services, "services queried (round-robin)");
  query->add_option("--instances-per-service", q_per_service, "instances per service");

  // caf-pingpong
  auto* ping = app.add_subcommand("caf-pingpong", "reference: plain CAF request/response between two processes");
  add_common(ping, o, nodes, false);
  ping->add_option("--actors", actors, "requesting actors");
  ping->add_option("--inflight", q_inflight, "requests in flight per actor");
  std::uint32_t reply_hosts = 10;
  ping->add_option("--reply-hosts", reply_hosts,
                   "hosts in the ServiceInfo reply (10 = the query benchmark's reply size)");
  auto* ping_srv = app.add_subcommand("caf-pingpong-server", "(internal) the reference's server");
  add_common(ping_srv, o, nodes, false);
  ping_srv->add_option("--hold-s", hold_s, "serve this long at most");
  ping_srv->add_option("--reply-hosts", reply_hosts, "hosts in the reply");
  ping_srv->group("");

  // replication
  std::string write, read, same, other;
  double bg_rate = 0;
  std::uint32_t probes = 200;
  auto* repl = app.add_subcommand("replication", "register at A -> visible at C (query polling every 1 ms)");
  add_common(repl, o, nodes, false);
  repl->add_option("--write", write, "node A (HOST:PORT)")->required();
  repl->add_option("--read", read, "node C (HOST:PORT)")->required();
  repl->add_option("--background-rate", bg_rate, "background registrations/s at A (0 = none)");
  repl->add_option("--probes", probes, "probes at most");
  std::string trace_file;
  repl->add_option("--trace", trace_file, "write each probe's start and latency (ms) to this file");
  std::uint32_t bg_per_client = 20;
  repl->add_option("--background-per-client", bg_per_client,
                   "instances each background session registers (clients = rate x time / this)");

  // push
  auto* push = app.add_subcommand("push", "register -> subscriber notified, same and other node");
  add_common(push, o, nodes, false);
  push->add_option("--write", write, "node the writer registers at")->required();
  push->add_option("--same", same, "subscriber node (same as the writer's)");
  push->add_option("--other", other, "subscriber node (another one)")->required();
  push->add_option("--probes", probes, "probes at most");

  // crash
  std::string session_node;
  std::uint32_t rounds = 3;
  auto* crash = app.add_subcommand("crash", "kill -9 a session client -> its instance gone at every node");
  add_common(crash, o, nodes);
  crash->add_option("--session-node", session_node, "node the session client uses (default: first)");
  crash->add_option("--rounds", rounds, "rounds");
  std::string service, ip;
  std::uint32_t port = 1;
  auto* crash_child = app.add_subcommand("crash-child", "(internal) the session client to kill");
  add_common(crash_child, o, nodes);
  crash_child->add_option("--service", service)->required();
  crash_child->add_option("--ip", ip)->required();
  crash_child->add_option("--port", port)->required();
  crash_child->add_option("--hold-s", hold_s);
  crash_child->group("");

  // status
  bool wait_ready = false;
  std::size_t wait_members = 0;
  std::uint64_t wait_instances = 0;
  double timeout_s = 30;
  auto* status = app.add_subcommand("status", "a node's status; optionally wait for a condition");
  add_common(status, o, nodes);
  status->add_flag("--wait-ready", wait_ready, "wait until the node is ready");
  status->add_option("--wait-members", wait_members, "wait until the member list has N entries");
  status->add_option("--wait-instances", wait_instances, "wait until the node holds N instances");
  status->add_option("--timeout-s", timeout_s, "give up after this long");

  // join
  std::string registryd, config, log;
  std::uint64_t expect = 0;
  auto* join = app.add_subcommand("join", "start a node (registryd --config FILE) and time it to ready");
  add_common(join, o, nodes);
  join->add_option("--registryd", registryd, "path of registryd")->required();
  join->add_option("--config", config, "its YAML config")->required();
  join->add_option("--log", log, "its log file")->required();
  join->add_option("--expect-instances", expect, "also time until it holds N instances");
  join->add_option("--timeout-s", timeout_s, "give up waiting for ready after this long");
  double applied_timeout_s = 20;
  join->add_option("--applied-timeout-s", applied_timeout_s,
                   "after ready, wait this long at most for --expect-instances");

  // raft-write
  std::size_t writers = 16;
  std::uint32_t w_inflight = 16, w_services = 1000;
  std::uint64_t w_count = 0;
  std::string w_prefix = "bench-raft-";
  auto* rwrite = app.add_subcommand("raft-write", "persistent registrations/s and commit latency");
  add_common(rwrite, o, nodes);
  rwrite->add_option("--writers", writers, "writing actors (spread over the nodes)");
  rwrite->add_option("--inflight", w_inflight, "writes in flight per writer");
  rwrite->add_option("--count", w_count, "stop after this many instances (0 = run the duration)");
  rwrite->add_option("--services", w_services, "services the instances spread over");
  rwrite->add_option("--prefix", w_prefix, "service name prefix");

  // raft-failover
  std::string pid_list;
  double fo_timeout_s = 15;
  auto* rfail = app.add_subcommand("raft-failover", "kill -9 the Raft leader -> next acknowledged write");
  add_common(rfail, o, nodes);
  rfail->add_option("--pids", pid_list, "process ids of the nodes, in the order of --nodes")->required();
  rfail->add_option("--timeout-s", fo_timeout_s, "give up after this long");

  // raft-health
  std::uint64_t h_instances = 10000;
  std::size_t h_ports = 100;
  double h_warmup_s = 6;
  std::int64_t h_interval_ms = 1000;
  auto* rhealth = app.add_subcommand("raft-health", "TCP health checks of persistent instances: checks/s and round time");
  add_common(rhealth, o, nodes);
  rhealth->add_option("--instances", h_instances, "TCP-checked persistent instances");
  rhealth->add_option("--ports", h_ports, "ports per 127.1.x.y address (instances / ports addresses)");
  rhealth->add_option("--warmup-s", h_warmup_s, "after registering, wait this long before measuring");
  rhealth->add_option("--interval-ms", h_interval_ms, "the node's health_check.interval_min_ms (for the report)");

  // report
  std::string results, json_out, mode = "standard";
  std::size_t v_clients = 10000, v_changes = 1000;
  auto* vbytes = app.add_subcommand("verify-bytes", "bytes of one Distro verify round per peer (in process)");
  vbytes->add_option("--clients", v_clients, "session clients the node is responsible for");
  vbytes->add_option("--changes", v_changes, "clients changed before the churn round");

  auto* report = app.add_subcommand("report", "median/spread table (and JSON) from collected runs");
  report->add_option("--results", results, "JSON lines written by tools/bench.sh")->required();
  report->add_option("--json", json_out, "write the figures as JSON to this file");
  report->add_option("--mode", mode, "quick or standard");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.nodes = bench::split(nodes, ',');
  auto need_nodes = [&](CLI::App* cmd) {
    if (cmd->parsed() && o.nodes.empty()) {
      std::cerr << "registry-bench " << cmd->get_name() << ": --nodes is required\n";
      std::exit(2);
    }
  };
  for (auto* cmd : {reg, fill, query, crash, crash_child, status, join, rwrite, rfail, rhealth})
    need_nodes(cmd);

  try {
    if (reg->parsed())
      return bench::cmd_register(o, clients, per_client, inflight, services, batch);
    if (fill->parsed())
      return bench::cmd_fill(o, fill_clients, fill_instances, inflight, fill_services, hold_s, rss_pid);
    if (query->parsed())
      return bench::cmd_query(o, actors, q_inflight, q_services, q_per_service);
    if (ping->parsed())
      return bench::cmd_pingpong(o, actors, q_inflight, reply_hosts);
    if (ping_srv->parsed())
      return bench::cmd_pingpong_server(o, hold_s, reply_hosts);
    if (repl->parsed())
      return bench::cmd_replication(o, write, read, bg_rate, bg_per_client, probes, trace_file);
    if (push->parsed())
      return bench::cmd_push(o, write, same.empty() ? write : same, other, probes);
    if (crash->parsed())
      return bench::cmd_crash(o, session_node.empty() ? o.nodes.front() : session_node, rounds);
    if (crash_child->parsed())
      return bench::cmd_crash_child(o, service, ip, port, hold_s);
    if (status->parsed())
      return bench::cmd_status(o, wait_ready, wait_members, wait_instances, timeout_s);
    if (join->parsed())
      return bench::cmd_join(o, registryd, config, log, expect, timeout_s, applied_timeout_s);
    if (rwrite->parsed())
      return bench::cmd_raft_write(o, writers, w_inflight, w_count, w_services, w_prefix);
    if (rfail->parsed()) {
      std::vector<int> pids;
      for (auto& x : bench::split(pid_list, ','))
        pids.push_back(std::stoi(x));
      return bench::cmd_raft_failover(o, pids, fo_timeout_s);
    }
    if (rhealth->parsed())
      return bench::cmd_raft_health(o, h_instances, h_ports, h_warmup_s, h_interval_ms);
    if (vbytes->parsed())
      return bench::cmd_verify_bytes(v_clients, v_changes);
    if (report->parsed())
      return bench::cmd_report(results, json_out, mode);
  } catch (const std::exception& e) { // e.g. bad --tls-* files
    std::cerr << "registry-bench: " << e.what() << "\n";
    return 2;
  }
  return 2;
}
