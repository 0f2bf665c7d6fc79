#include "test/fault/fault_harness.hpp"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <sstream>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "config/defaults.hpp"
#include "messages/registry.pb.h"
#include "messages/type_ids.hpp"
#include "test/fault/tcp_proxy.hpp"
#include "test/support/node_fixture.hpp"

namespace registry::test::fault {

namespace {

namespace limits = registry::defaults::fault;
namespace v1 = registry::v1;
using namespace registry::wire;
using ms = std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

/// The CAF heartbeat settings of every process of the tier (as node_fixture's session_config()).
constexpr std::int64_t caf_heartbeat_ms = 200;
constexpr std::int64_t caf_timeout_ms = 1000;

std::int64_t ms_since(steady::time_point t0) {
  return std::chrono::duration_cast<ms>(steady::now() - t0).count();
}

std::string fault_load_path() {
  return FAULT_LOAD_PATH;
}

std::uint64_t rss_bytes(pid_t pid) {
  std::istringstream in{read_file("/proc/" + std::to_string(pid) + "/status")};
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stoull(line.substr(6)) * 1024;
  return 0;
}

// -- probe: queries nodes directly over CAF ----------------------------------------------------

class probe {
public:
  probe() {
    configure_system(cfg_, caf_heartbeat_ms, caf_timeout_ms, 2);
    sys_ = std::make_unique<caf::actor_system>(cfg_);
  }

  caf::actor connect(const std::string& address) {
    auto colon = address.rfind(':');
    auto host = address.substr(0, colon);
    auto port = static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1)));
    caf::actor result;
    caf::scoped_actor self{*sys_};
    self->request(sys_->middleman().actor_handle(), ms(2000), caf::connect_atom_v, host, port)
      .receive(
        [&](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
          result = caf::actor_cast<caf::actor>(ptr);
        },
        [&](caf::error&) {});
    return result;
  }

  std::optional<v1::Status> status(const std::string& address) {
    auto gw = connect(address);
    if (!gw)
      return std::nullopt;
    std::optional<v1::Status> result;
    caf::scoped_actor self{*sys_};
    self->request(gw, ms(3000), status_atom_v, pack(v1::StatusRequest{}))
      .receive(
        [&](envelope& env) {
          v1::Status st;
          if (unpack(env, st))
            result = std::move(st);
        },
        [&](caf::error&) {});
    return result;
  }

  /// Every instance of `services` at the node (nullopt when a query failed).
  std::optional<service_view> view(const std::string& address,
                                   const std::vector<std::string>& services) {
    auto gw = connect(address);
    if (!gw)
      return std::nullopt;
    service_view result;
    caf::scoped_actor self{*sys_};
    // Pipelined: every query is sent first, then the replies are collected.
    for (auto& s : services) {
      v1::QueryRequest req;
      req.mutable_service()->set_namespace_id("public");
      req.mutable_service()->set_group("DEFAULT_GROUP");
      req.mutable_service()->set_service(s);
      self->send(gw, query_atom_v, pack(req));
    }
    bool ok = true;
    for (std::size_t i = 0; i < services.size(); ++i) {
      bool got = false;
      self->receive(
        [&](envelope& env) {
          v1::ServiceInfo info;
          got = true;
          if (!unpack(env, info)) {
            ok = false;
            return;
          }
          auto name = info.name();
          auto at = name.find("@@");
          auto& hosts = result[at == std::string::npos ? name : name.substr(at + 2)];
          for (auto& h : info.hosts())
            hosts.insert(h.ip() + ":" + std::to_string(h.port()));
        },
        caf::after(ms(5000)) >> [&] { ok = false; });
      if (!got)
        return std::nullopt;
    }
    if (!ok)
      return std::nullopt;
    for (auto i = result.begin(); i != result.end();)
      i = i->second.empty() ? result.erase(i) : std::next(i);
    return result;
  }

private:
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
};

// -- the cluster -------------------------------------------------------------------------------

class cluster {
public:
  explicit cluster(const scenario& sc) : sc_(sc) {
    for (int i = 0; i < sc.nodes; ++i)
      ports_.push_back(free_port());
    if (sc.proxies) {
      proxies_.resize(static_cast<std::size_t>(sc.nodes));
      for (int i = 0; i < sc.nodes; ++i)
        for (int j = 0; j < sc.nodes; ++j)
          proxies_[i].push_back(i == j ? nullptr : std::make_unique<tcp_proxy>(ports_[j]));
    }
    for (int i = 0; i < sc.nodes; ++i) {
      nodes_.push_back(std::make_unique<test_node>(ports_[i], ports_, sc.node_yaml));
      excluded_.emplace_back();
    }
    for (int i = 0; i < sc.nodes; ++i)
      write_config(i);
  }

  int size() const { return static_cast<int>(nodes_.size()); }
  test_node& node(int i) { return *nodes_[static_cast<std::size_t>(i)]; }
  std::string address(int i) const { return "127.0.0.1:" + std::to_string(ports_[i]); }

  /// "A,B,C" rotated so that client process `k` starts at another node.
  std::string node_list(int k) const {
    std::string result;
    for (int i = 0; i < size(); ++i)
      result += (i ? "," : "") + address((i + k) % size());
    return result;
  }

  /// Node `i`'s config: its own address and every member not excluded, each other one by the
  /// proxy i->j when the proxy layout is on.
  void write_config(int i) {
    std::string members = address(i);
    for (int j = 0; j < size(); ++j) {
      if (j == i || excluded_[i].count(j))
        continue;
      members += ", " + (sc_.proxies ? proxies_[i][j]->address() : address(j));
    }
    auto& path = node(i).config_path();
    std::istringstream in{read_file(path)};
    std::string text;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("members:", 0) == 0)
        line = "members: [" + members + "]";
      else if (line.rfind("  level:", 0) == 0)
        line = "  level: " + sc_.log_level;
      text += line + "\n";
    }
    // Write a new file and rename it, so the node never reads half a file.
    write_file(path + ".tmp", text);
    std::filesystem::rename(path + ".tmp", path);
  }

  void set_member(int i, int j, bool listed) {
    if (listed)
      excluded_[i].erase(j);
    else
      excluded_[i].insert(j);
    write_config(i);
    node(i).process().signal(SIGHUP);
  }

  void set_link(int a, int b, proxy_mode mode) {
    proxies_[a][b]->set_mode(mode);
    proxies_[b][a]->set_mode(mode);
  }

  bool start(probe& p) {
    for (auto& n : nodes_)
      n->launch();
    return wait_ready(p, ms(limits::recovery_timeout_ms)) && wait_connected(ms(limits::recovery_timeout_ms));
  }

  bool wait_ready(probe& p, ms timeout) {
    return wait_until(
      [&] {
        for (int i = 0; i < size(); ++i) {
          auto st = p.status(address(i));
          if (!st || !st->ready())
            return false;
        }
        return true;
      },
      timeout);
  }

  /// Every node sees every listed member UP (by whatever address it lists them).
  bool wait_connected(ms timeout) {
    return wait_until(
      [&] {
        for (int i = 0; i < size(); ++i) {
          auto j = node(i).ctl_json({"members"});
          if (!j.is_object())
            return false;
          int up = 0;
          for (auto& m : j["members"])
            up += m["state"] == "UP" ? 1 : 0;
          if (up < size() - 1)
            return false;
        }
        return true;
      },
      timeout);
  }

  std::string keep_logs(std::uint64_t seed) {
    auto dir = std::filesystem::temp_directory_path() / ("registry-fault-seed-" + std::to_string(seed));
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    for (int i = 0; i < size(); ++i) {
      std::filesystem::copy_file(node(i).dir() + "/node.log", dir / ("n" + std::to_string(i) + ".log"),
                                 std::filesystem::copy_options::overwrite_existing, ec);
      std::filesystem::copy_file(node(i).config_path(), dir / ("n" + std::to_string(i) + ".yaml"),
                                 std::filesystem::copy_options::overwrite_existing, ec);
    }
    return dir.string();
  }

private:
  const scenario& sc_;
  std::vector<int> ports_;
  std::vector<std::vector<std::unique_ptr<tcp_proxy>>> proxies_;
  std::vector<std::unique_ptr<test_node>> nodes_;
  std::vector<std::set<int>> excluded_;
};

// -- load --------------------------------------------------------------------------------------

struct load_process {
  int index = 0;
  std::string state_file;
  child_process proc;
  std::size_t settles = 0; ///< "settled" lines seen so far
};

std::size_t count_lines(const child_process& p, const std::string& prefix) {
  std::size_t n = 0;
  for (auto& line : p.out_lines())
    n += line.rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

class load {
public:
  load(const scenario& sc, cluster& c, const std::string& dir) : sc_(sc), c_(c), dir_(dir) {}

  /// Live processes carry the scenario's load; doomed ones a tenth of it (at least one client).
  load_process start(int index, bool doomed = false) {
    auto sessions = doomed ? std::max<std::size_t>(1, sc_.sessions / 10) : sc_.sessions;
    auto beats = doomed ? std::max<std::size_t>(1, sc_.beats / 10) : sc_.beats;
    load_process lp;
    lp.index = index;
    lp.state_file = dir_ + "/load-" + std::to_string(index) + ".state";
    std::vector<std::string> argv{fault_load_path(),
                                  "--nodes", c_.node_list(index),
                                  "--index", std::to_string(index),
                                  "--sessions", std::to_string(sessions),
                                  "--instances", std::to_string(sc_.instances),
                                  "--slots", std::to_string(sc_.slots),
                                  "--beats", std::to_string(beats),
                                  "--beat-ms", std::to_string(sc_.beat_ms),
                                  "--services", std::to_string(sc_.services),
                                  "--churn-ms", std::to_string(sc_.churn_ms),
                                  "--seed", std::to_string(sc_.seed * 1000 + static_cast<std::uint64_t>(index)),
                                  "--state", lp.state_file,
                                  "--hb-ms", std::to_string(caf_heartbeat_ms),
                                  "--timeout-ms", std::to_string(caf_timeout_ms),
                                  "--threads", std::to_string(sc_.load_threads)};
    lp.proc = child_process{argv, dir_, "load-" + std::to_string(index)};
    return lp;
  }

  /// A registryctl session client (`register --hold`) or heartbeat client (`beat --every-ms`).
  child_process start_ctl(bool session, int k, std::string& line) {
    auto ip = std::string{session ? "12.0.0." : "12.0.1."} + std::to_string(k);
    auto service = "fault-svc-" + std::to_string(k % static_cast<int>(sc_.services));
    line = service + " " + ip + ":80";
    std::vector<std::string> args;
    if (session)
      args = {"register", service, ip + ":80", "--hold"};
    else
      args = {"beat", service, ip + ":80", "--every-ms", std::to_string(sc_.beat_ms)};
    return c_.node(0).start_ctl_on(c_.node_list(k), args,
                                   std::string{session ? "ctl-session-" : "ctl-beat-"} + std::to_string(k));
  }

private:
  const scenario& sc_;
  cluster& c_;
  std::string dir_;
};

std::vector<std::string> service_names(std::size_t n) {
  std::vector<std::string> result;
  for (std::size_t k = 0; k < n; ++k)
    result.push_back("fault-svc-" + std::to_string(k));
  return result;
}

void add_lines(service_view& view, const std::string& text) {
  std::istringstream in{text};
  std::string service, address;
  while (in >> service >> address)
    view[service].insert(address);
}

} // namespace

/// An authenticated cluster, as in production: every reconnect after a freeze or a partition
/// runs the whole handshake.
const std::string fault_cluster_secret_yaml = "cluster_secret: fault-harness-secret-0123456789\n";

scenario ci_scenario(std::uint64_t seed, bool partitions) {
  scenario sc;
  sc.seed = seed;
  sc.nodes = 3;
  sc.proxies = partitions;
  sc.plan.duration_ms = 14000;
  sc.plan.gap_ms_min = 300;
  sc.plan.gap_ms_max = 1000;
  sc.plan.hold_ms_min = 400;
  sc.plan.hold_ms_max = 1800;
  sc.plan.concurrent_max = 2;
  sc.plan.doomed_clients = 1;
  sc.node_yaml = cluster_timings + fault_cluster_secret_yaml;
  return sc;
}

scenario long_scenario(std::uint64_t seed, bool partitions, int minutes) {
  scenario sc = ci_scenario(seed, partitions);
  sc.nodes = 3;
  sc.rounds = 1000;
  sc.run_ms_min = static_cast<std::int64_t>(minutes) * 60 * 1000;
  // One fault at a time, each held long enough for thousands of sessions to move and redo.
  sc.plan.duration_ms = 30000;
  sc.plan.gap_ms_min = 2000;
  sc.plan.gap_ms_max = 6000;
  sc.plan.hold_ms_min = 1000;
  sc.plan.hold_ms_max = 5000;
  sc.plan.concurrent_max = 1;
  // 10k clients, 100k instances: 4 processes x (2250 session clients x 11 instances + 250
  // heartbeat clients).
  sc.load_processes = 4;
  sc.sessions = 2250;
  sc.instances = 11;
  sc.slots = 13;
  sc.beats = 250;
  sc.beat_ms = 3000;
  sc.services = 1000;
  sc.churn_ms = 60000;
  sc.load_threads = 2;
  sc.log_level = "info";
  sc.node_yaml = "heartbeat:\n  interval_ms: 3000\n  unhealthy_timeout_ms: 9000\n"
                 "  delete_timeout_ms: 15000\n  check_interval_ms: 500\n"
                 "distro:\n  verify_interval_ms: 1000\n  lone_ready_wait_ms: 2000\n"
                 "  snapshot_retry_delay_ms: 500\n  reconnect_backoff_min_ms: 100\n"
                 "  reconnect_backoff_max_ms: 1000\n" + fault_cluster_secret_yaml;
  sc.convergence_timeout_ms = 30000;
  sc.late_wait_ms = 60000;
  sc.keep_going = true;
  sc.trace_convergence = true;
  return sc;
}

run_report run_scenario(const scenario& sc, std::ostream& out) {
  run_report report;
  auto dir = make_temp_dir();
  probe p;
  cluster c{sc};
  load ld{sc, c, dir};
  auto fail = [&](const std::string& why) {
    report.ok = false;
    report.failure = why;
    report.kept_logs = c.keep_logs(sc.seed);
    out << "fault: FAILED: " << why << "\nfault: node logs kept in " << report.kept_logs
        << ", client output in " << dir << "\n";
    return report;
  };
  out << "fault: seed " << sc.seed << ", " << sc.nodes << " nodes, "
      << (sc.proxies ? "proxy layout (partitions on)" : "direct layout (partitions off)") << "\n";
  if (!c.start(p)) {
    return fail("the cluster did not start");
  }

  // Live load processes have indexes 1.., doomed ones 100.., registryctl clients 12.0.x.y.
  std::vector<load_process> live;
  for (int k = 1; k <= sc.load_processes; ++k)
    live.push_back(ld.start(k));
  std::vector<child_process> ctl_live;
  std::string ctl_lines;
  for (int k = 1; k <= sc.ctl_clients; ++k)
    for (bool session : {true, false}) {
      std::string line;
      ctl_live.push_back(ld.start_ctl(session, k, line));
      ctl_lines += line + "\n";
    }
  // The first registrations of every client, at a pessimistic 500 per second on a loaded machine.
  auto ready_timeout = ms(limits::recovery_timeout_ms
                          + static_cast<std::int64_t>(sc.load_processes * sc.sessions * sc.instances) * 2);
  for (std::size_t k = 0; k < ctl_live.size(); ++k)
    if (!ctl_live[k].wait_for_output(k % 2 == 0 ? "registered" : "beating", ready_timeout)) {
      return fail("registryctl client " + std::to_string(k) + " did not start: "
                  + ctl_live[k].err());
    }
  for (auto& lp : live)
    if (!lp.proc.wait_for_output("ready", ready_timeout)) {
      return fail("load process " + std::to_string(lp.index) + " did not open its sessions: "
                  + (lp.proc.out_lines().empty() ? "" : lp.proc.out_lines().back())
                  + lp.proc.err().substr(lp.proc.err().size() > 400 ? lp.proc.err().size() - 400 : 0));
    }
  for (int i = 0; i < c.size(); ++i)
    report.rss_start.push_back(rss_bytes(c.node(i).process().pid()));

  auto services = service_names(sc.services);
  auto run_t0 = steady::now();
  for (int round = 0; round < sc.rounds; ++round) {
    if (sc.run_ms_min > 0 && round > 0 && ms_since(run_t0) >= sc.run_ms_min)
      break;
    round_report rr;
    rr.seed = sc.seed + static_cast<std::uint64_t>(round);
    auto popts = sc.plan;
    popts.seed = rr.seed;
    popts.nodes = sc.nodes;
    popts.partitions = sc.proxies;
    auto plan = make_fault_plan(popts);
    out << "fault: round " << round << " seed " << rr.seed << ": " << plan.size() << " steps\n";

    // Doomed clients of this round: killed -9 by the plan's kill_client steps.
    std::vector<load_process> doomed;
    std::vector<child_process> ctl_doomed;
    for (int d = 0; d < popts.doomed_clients; ++d) {
      doomed.push_back(ld.start(100 + (round * popts.doomed_clients + d) % 100, true));
      std::string line;
      ctl_doomed.push_back(ld.start_ctl((round + d) % 2 == 0, 100 + d, line));
    }
    for (auto& lp : doomed)
      if (!lp.proc.wait_for_output("ready", ready_timeout))
        return fail("doomed load process " + std::to_string(lp.index) + " did not open its sessions");
    // Resume churn after the previous round's check.
    if (round > 0)
      for (auto& lp : live)
        lp.proc.signal(SIGUSR2);

    auto t0 = steady::now();
    for (auto& ev : plan) {
      // The schedule: wait for the step's time (not for a condition).
      std::this_thread::sleep_until(t0 + ms(ev.at_ms));
      out << "fault: " << ev.describe() << "\n" << std::flush;
      if (!ev.is_heal() && ev.kind != fault_event::kill_client)
        ++rr.faults;
      switch (ev.kind) {
        case fault_event::kill_node:
          c.node(ev.a).process().signal(SIGKILL);
          c.node(ev.a).process().wait(ms(5000));
          break;
        case fault_event::restart_node:
          c.node(ev.a).launch();
          break;
        case fault_event::stop_node:
          c.node(ev.a).process().signal(SIGSTOP);
          break;
        case fault_event::cont_node:
          c.node(ev.a).process().signal(SIGCONT);
          break;
        case fault_event::drop_member:
          c.set_member(ev.a, ev.b, false);
          break;
        case fault_event::restore_member:
          c.set_member(ev.a, ev.b, true);
          break;
        case fault_event::partition_cut:
          c.set_link(ev.a, ev.b, proxy_mode::cut);
          break;
        case fault_event::partition_stall:
          c.set_link(ev.a, ev.b, proxy_mode::stall);
          break;
        case fault_event::heal_partition:
          c.set_link(ev.a, ev.b, proxy_mode::open);
          break;
        case fault_event::kill_client: {
          auto i = static_cast<std::size_t>(ev.a);
          if (i < doomed.size()) {
            doomed[i].proc.signal(SIGKILL);
            doomed[i].proc.wait(ms(5000));
          }
          if (i < ctl_doomed.size()) {
            ctl_doomed[i].signal(SIGKILL);
            ctl_doomed[i].wait(ms(5000));
          }
          break;
        }
      }
    }
    auto healed = steady::now();
    out << "fault: faults stopped after " << ms_since(t0) << " ms (" << rr.faults << " faults)\n";

    // Every node running and ready, every live client settled on what it wants.
    for (int i = 0; i < c.size(); ++i)
      if (!c.node(i).process().running())
        return fail("node n" + std::to_string(i) + " is not running after the faults (exit: "
                    + c.node(i).process().err() + ")");
    if (!c.wait_ready(p, ms(limits::recovery_timeout_ms)))
      return fail("a node was not ready " + std::to_string(limits::recovery_timeout_ms)
                  + " ms after the faults");
    rr.ready_ms = ms_since(healed);
    for (auto& lp : live) {
      if (!lp.proc.running())
        return fail("live load process " + std::to_string(lp.index) + " died: " + lp.proc.err());
      lp.proc.signal(SIGUSR1);
    }
    service_view expected;
    for (auto& lp : live) {
      ++lp.settles;
      if (!wait_until([&] { return count_lines(lp.proc, "settled") + count_lines(lp.proc, "unsettled") >= lp.settles; },
                      ms(limits::recovery_timeout_ms + 5000)))
        return fail("load process " + std::to_string(lp.index) + " did not answer SIGUSR1");
      if (count_lines(lp.proc, "unsettled") > 0)
        return fail("load process " + std::to_string(lp.index)
                    + " could not get every instance acknowledged within "
                    + std::to_string(limits::recovery_timeout_ms) + " ms: "
                    + lp.proc.out_lines().back());
      add_lines(expected, read_file(lp.state_file));
    }
    add_lines(expected, ctl_lines);
    for (auto& [_, hosts] : expected)
      rr.expected += hosts.size();
    rr.settled_ms = ms_since(healed);

    // The check: every node returns exactly the expected lists.
    std::vector<view_diff> diffs(static_cast<std::size_t>(c.size()));
    std::vector<bool> answered(static_cast<std::size_t>(c.size()));
    std::optional<steady::time_point> traced;
    auto views_agree = [&] {
      bool all = true;
      for (int i = 0; i < c.size(); ++i) {
        auto v = p.view(c.address(i), services);
        answered[i] = v.has_value();
        diffs[i] = v ? compare_views(expected, *v) : view_diff{};
        all = all && v && diffs[i].same();
      }
      if (!all && sc.trace_convergence && (!traced || ms_since(*traced) >= 1000)) {
        traced = steady::now();
        out << "fault:   +" << ms_since(healed) << " ms:";
        for (int i = 0; i < c.size(); ++i) {
          out << " n" << i << " ";
          if (!answered[i]) {
            out << "no answer;";
            continue;
          }
          out << diffs[i].lost << " lost " << diffs[i].ghosted << " ghosted";
          for (std::size_t k = 0; k < diffs[i].examples.size() && k < 2; ++k)
            out << " (" << diffs[i].examples[k] << ")";
          out << ";";
        }
        out << "\n" << std::flush;
      }
      return all;
    };
    auto converged = wait_until(views_agree, ms(sc.convergence_timeout_ms));
    rr.convergence_ms = converged ? ms_since(healed) : -1;
    for (auto& d : diffs) {
      rr.lost += d.lost;
      rr.ghosted += d.ghosted;
    }
    if (!converged && sc.late_wait_ms > 0) {
      // Slow or stuck? Keep polling a while to tell (the round has failed either way).
      auto diffs_at_deadline = diffs;
      bool late = wait_until(views_agree, ms(sc.late_wait_ms));
      out << "fault: round " << round << ": "
          << (late ? "converged late, " + std::to_string(ms_since(healed)) + " ms after the last heal"
                   : "still not converged " + std::to_string(ms_since(healed)) + " ms after the last heal")
          << "\n";
      diffs = diffs_at_deadline;
    }
    for (int i = 0; i < c.size(); ++i)
      rr.rss.push_back(rss_bytes(c.node(i).process().pid()));
    out << "fault: round " << round << " seed " << rr.seed << ": " << rr.expected
        << " instances expected, " << (converged ? "converged " + std::to_string(rr.convergence_ms) + " ms after the last heal" : "NOT converged")
        << " (every node ready after " << rr.ready_ms << " ms, load settled after "
        << rr.settled_ms << " ms)"
        << ", lost " << rr.lost << ", ghosted " << rr.ghosted << "; RSS MiB";
    for (auto bytes : rr.rss)
      out << " " << bytes / (1024 * 1024);
    out << "\n" << std::flush;
    report.rounds.push_back(rr);
    if (!converged) {
      std::string why = "round " + std::to_string(round) + ": nodes did not return the expected "
                        "instance lists within " + std::to_string(sc.convergence_timeout_ms) + " ms";
      for (int i = 0; i < c.size(); ++i) {
        why += "\n  n" + std::to_string(i) + " (" + c.address(i) + "): "
               + (answered[i] ? std::to_string(diffs[i].lost) + " lost, "
                                  + std::to_string(diffs[i].ghosted) + " ghosted"
                              : std::string{"no answer"});
        for (auto& e : diffs[i].examples)
          why += "\n    " + e;
      }
      if (!sc.keep_going)
        return fail(why);
      // Long mode: record the first failure, keep the logs, and go on with the next round.
      out << "fault: round " << round << " FAILED: " << why << "\n";
      if (report.failure.empty()) {
        report.failure = why;
        report.kept_logs = c.keep_logs(rr.seed);
        out << "fault: node logs kept in " << report.kept_logs << "\n";
      }
      continue;
    }
  }
  for (int i = 0; i < c.size(); ++i)
    report.rss_end.push_back(rss_bytes(c.node(i).process().pid()));
  report.ok = report.failure.empty();
  if (report.ok)
    remove_tree(dir);
  return report;
}

} // namespace registry::test::fault
