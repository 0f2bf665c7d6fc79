// registry-bench: persistent instances through Raft (raft-write, raft-failover, raft-health).
//
// Writes are the wire path of registryctl and the client library's persistent register: a
// RegisterRequest with instance.ephemeral = false sent as (reg_atom, envelope) to a node's front
// door, answered with Ack once the entry is committed and applied. Many actors with a window of
// requests in flight each spread over the given nodes (followers forward to the leader), so the
// figure is what the cluster commits, not what one client can wait for.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <map>
#include <thread>

#include "messages/raft.pb.h"
#include "tools/bench/common.hpp"

namespace bench {

using namespace registry::wire;

namespace {

double round1(double x) {
  return std::round(x * 10.0) / 10.0;
}

double round2(double x) {
  return std::round(x * 100.0) / 100.0;
}

std::string reply_error(const envelope& env) {
  v1::Error err;
  if (unpack(env, err))
    return v1::Error::Code_Name(err.code()) + " " + err.field() + ": " + err.message();
  return "unexpected reply " + env.kind;
}

} // namespace

/// Where instance `i` of a persistent write run points and how it is checked.
struct pwrite_plan {
  std::string service_prefix = "bench-raft-";
  std::uint32_t services = 1000;
  std::uint64_t index_base = 0;
  /// 0: ip 10.x.y.z from the index, port 8080, check none (no probes to unroutable addresses).
  /// > 0: TCP-checked instances at 127.1.(k / 250).(k % 250 + 1):ports[i % n] with k = i / n.
  std::vector<std::uint16_t> tcp_ports;
  std::uint64_t count = 0; ///< instances in total (0 = until stopped)
  std::uint32_t window = 8;
  ms request_timeout{10000};
};

std::string health_ip(std::uint64_t k) {
  return "127.1." + std::to_string(k / 250) + "." + std::to_string(k % 250 + 1);
}

v1::RegisterRequest make_pwrite(const pwrite_plan& p, std::uint64_t i) {
  auto svc = p.service_prefix + std::to_string(i % std::max<std::uint32_t>(1, p.services));
  v1::RegisterRequest req;
  if (p.tcp_ports.empty()) {
    req = make_register(svc, bench_ip(p.index_base + i), 8080);
    req.mutable_check()->set_type(v1::HealthCheck::NONE);
  } else {
    auto n = p.tcp_ports.size();
    req = make_register(svc, health_ip(i / n), p.tcp_ports[i % n]);
    req.mutable_check()->set_type(v1::HealthCheck::TCP);
  }
  req.mutable_instance()->set_ephemeral(false);
  return req;
}

namespace {

/// The shared part of a run: the next instance index and the counters.
struct pwrite_shared {
  pwrite_plan plan;
  std::atomic<std::uint64_t> next{0};
  run_counters counters;
};

struct pwriter_state {
  static inline const char* name = "bench-pwriter";
  std::vector<caf::actor> gateways;
  std::shared_ptr<pwrite_shared> shared;
  std::shared_ptr<sample_box> samples;
  std::size_t gw_next = 0;
  std::uint32_t inflight = 0;
};

using pwriter_t = caf::stateful_actor<pwriter_state>;

void pwrite_pump(pwriter_t* self) {
  auto& st = self->state;
  auto& sh = *st.shared;
  while (st.inflight < sh.plan.window && !sh.counters.stop.load(std::memory_order_relaxed)) {
    auto i = sh.next.fetch_add(1);
    if (sh.plan.count > 0 && i >= sh.plan.count) {
      ++sh.counters.clients_done;
      return;
    }
    auto gw = st.gateways[st.gw_next++ % st.gateways.size()];
    auto t0 = steady::now();
    ++st.inflight;
    ++sh.counters.sent;
    self->request(gw, sh.plan.request_timeout, reg_atom_v, pack(make_pwrite(sh.plan, i)))
      .then(
        [self, t0](envelope& reply) {
          auto& st = self->state;
          auto& c = st.shared->counters;
          --st.inflight;
          ++c.finished;
          if (holds<v1::Ack>(reply)) {
            ++c.acked;
            if (!c.stop.load(std::memory_order_relaxed)) {
              ++c.ok;
              std::lock_guard<std::mutex> guard{st.samples->m};
              st.samples->us.push_back(
                static_cast<float>(std::chrono::duration<double, std::micro>(steady::now() - t0).count()));
            }
          } else {
            ++c.refused;
            c.note_error(reply_error(reply));
          }
          pwrite_pump(self);
        },
        [self](caf::error& err) {
          auto& st = self->state;
          --st.inflight;
          ++st.shared->counters.finished;
          ++st.shared->counters.failed;
          st.shared->counters.note_error(self->system().render(err));
          pwrite_pump(self);
        });
  }
}

caf::behavior pwriter(pwriter_t* self, std::vector<caf::actor> gateways,
                      std::shared_ptr<pwrite_shared> shared, std::shared_ptr<sample_box> samples,
                      std::size_t offset) {
  auto& st = self->state;
  st.gateways = std::move(gateways);
  st.shared = std::move(shared);
  st.samples = std::move(samples);
  st.gw_next = offset;
  self->set_default_handler(caf::drop);
  return {
    [self](start_atom) { pwrite_pump(self); },
  };
}

/// Runs the writers until `count` instances are answered or `duration_s` passed; fills `out`.
void run_pwrites(caf::actor_system& sys, const std::vector<caf::actor>& gateways,
                 const pwrite_plan& plan, std::size_t actors, double duration_s, json& out) {
  auto shared = std::make_shared<pwrite_shared>();
  shared->plan = plan;
  std::vector<std::shared_ptr<sample_box>> boxes;
  std::vector<caf::actor> handles;
  for (std::size_t i = 0; i < actors; ++i) {
    boxes.push_back(std::make_shared<sample_box>());
    handles.push_back(sys.spawn(pwriter, gateways, shared, boxes.back(), i));
  }
  auto t0 = steady::now();
  for (auto& a : handles)
    caf::anon_send(a, start_atom_v);
  auto& c = shared->counters;
  wait_for(
    [&] {
      return plan.count > 0 && c.clients_done.load() >= actors
             && c.finished.load() >= c.sent.load();
    },
    t0 + std::chrono::duration_cast<ms>(std::chrono::duration<double>(duration_s)));
  c.stop = true;
  auto elapsed_ms = ms_since(t0);
  auto ok = c.ok.load();
  out["client"] = "registry-bench: RegisterRequest ephemeral=false to the front doors (reg_atom)";
  out["writers"] = actors;
  out["inflight_total"] = actors * plan.window;
  out["duration_s"] = round2(elapsed_ms / 1000.0);
  out["writes"] = ok;
  out["writes_per_s"] = round1(static_cast<double>(ok) * 1000.0 / elapsed_ms);
  std::vector<double> all;
  for (auto& b : boxes) {
    std::lock_guard<std::mutex> guard{b->m};
    for (auto x : b->us)
      all.push_back(static_cast<double>(x) / 1000.0);
  }
  if (!all.empty()) {
    out["commit_p50_ms"] = round2(percentile(all, 50));
    out["commit_p99_ms"] = round2(percentile(all, 99));
    out["commit_max_ms"] = round2(all.back());
  }
  out["refused"] = c.refused.load();
  out["failed"] = c.failed.load();
  {
    std::lock_guard<std::mutex> guard{c.m};
    if (!c.first_error.empty())
      out["first_error"] = c.first_error;
  }
  // Let answers in flight drain (bounded) so the nodes are quiet for the next run.
  wait_for([&] { return c.finished.load() >= c.sent.load(); }, steady::now() + ms(10000));
  for (auto& a : handles)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

std::optional<v1::RaftStatus> fetch_raft(caf::scoped_actor& self, const caf::actor& gw, ms timeout) {
  std::optional<v1::RaftStatus> result;
  self->request(gw, timeout, status_atom_v, pack(v1::RaftStatusRequest{}))
    .receive(
      [&](envelope& env) {
        v1::RaftStatus st;
        if (unpack(env, st))
          result = std::move(st);
      },
      [&](caf::error&) {});
  return result;
}


struct prober_state {
  static inline const char* name = "bench-failover-prober";
  std::uint64_t next = 1;
};

using prober_t = caf::stateful_actor<prober_state>;

/// Sends a persistent write to every survivor every 10 ms; the first Ack sets `acked_us` (time
/// since `t_kill`).
caf::behavior failover_prober(prober_t* self, std::vector<caf::actor> survivors, pwrite_plan plan,
                              steady::time_point t_kill,
                              std::shared_ptr<std::atomic<std::int64_t>> acked_us) {
  self->set_default_handler(caf::drop);
  self->send(self, start_atom_v);
  return {
    [=](start_atom) {
      if (acked_us->load() >= 0)
        return;
      for (auto& gw : survivors) {
        auto i = self->state.next++;
        self->request(gw, ms(10000), reg_atom_v, pack(make_pwrite(plan, i)))
          .then(
            [acked_us, t_kill](envelope& reply) {
              if (!holds<v1::Ack>(reply))
                return;
              auto us = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t_kill)
                          .count();
              std::int64_t none = -1;
              acked_us->compare_exchange_strong(none, static_cast<std::int64_t>(us));
            },
            [](caf::error&) {});
      }
      self->delayed_send(self, ms(10), start_atom_v);
    },
  };
}
} // namespace

// -- raft-write -------------------------------------------------------------------------------

int cmd_raft_write(const common_opts& o, std::size_t actors, std::uint32_t inflight,
                   std::uint64_t count, std::uint32_t services, const std::string& prefix) {
  start_watchdog(std::chrono::seconds(o.max_s > 0 ? o.max_s : static_cast<std::int64_t>(o.duration_s) + 60),
                 "raft-write");
  json out;
  out["cmd"] = "raft-write";
  out["nodes"] = o.nodes.size();
  system_holder h{o.caf};
  auto& sys = *h.sys;
  auto gateways = connect_all(sys, o.nodes, out);
  pwrite_plan plan;
  plan.service_prefix = prefix;
  plan.services = services;
  plan.index_base = static_cast<std::uint64_t>(::getpid() % 32) * 500000;
  plan.count = count;
  plan.window = inflight;
  run_pwrites(sys, gateways, plan, actors, o.duration_s, out);
  {
    caf::scoped_actor self{sys};
    if (auto st = fetch_raft(self, gateways.front(), ms(3000)))
      out["persistent_instances"] = st->persistent_instances();
  }
  finish(out, out.value("writes", 0) > 0 ? 0 : 1);
}

// -- raft-failover ----------------------------------------------------------------------------

int cmd_raft_failover(const common_opts& o, const std::vector<int>& pids, double timeout_s) {
  start_watchdog(std::chrono::seconds(static_cast<std::int64_t>(timeout_s) + 60), "raft-failover");
  json out;
  out["cmd"] = "raft-failover";
  if (pids.size() != o.nodes.size()) {
    out["error"] = "--pids must name one process per node";
    finish(out, 2);
  }
  system_holder h{o.caf};
  auto& sys = *h.sys;
  auto gateways = connect_all(sys, o.nodes, out);
  caf::scoped_actor self{sys};
  // The leader, as the nodes see it (the Raft id is the listen address, as in --nodes).
  int leader = -1;
  std::string leader_id;
  wait_for(
    [&] {
      for (std::size_t i = 0; i < gateways.size(); ++i) {
        auto st = fetch_raft(self, gateways[i], ms(2000));
        if (st && st->role() == "leader") {
          leader = static_cast<int>(i);
          leader_id = st->id();
          return true;
        }
      }
      return false;
    },
    steady::now() + ms(15000));
  if (leader < 0) {
    out["error"] = "no leader among the nodes";
    finish(out, 1);
  }
  out["leader"] = leader_id;
  out["leader_pid"] = pids[static_cast<std::size_t>(leader)];
  std::vector<caf::actor> survivors;
  for (std::size_t i = 0; i < gateways.size(); ++i)
    if (static_cast<int>(i) != leader)
      survivors.push_back(gateways[i]);
  pwrite_plan plan;
  plan.service_prefix = "bench-failover-";
  plan.services = 10;
  plan.index_base = 9000000 + static_cast<std::uint64_t>(::getpid() % 32) * 100000;
  // One write before the kill: the cluster commits.
  {
    bool ok = false;
    self->request(survivors.front(), ms(5000), reg_atom_v, pack(make_pwrite(plan, 0)))
      .receive([&](envelope& env) { ok = holds<v1::Ack>(env); }, [&](caf::error&) {});
    if (!ok) {
      out["error"] = "the write before the kill failed";
      finish(out, 1);
    }
  }
  // kill -9, then a write every 10 ms to each survivor (each with the default write timeout
  // ahead of it); the first Ack ends the measure. Writes sent before a new leader exists wait at
  // their node and are answered once it commits them.
  auto acked_us = std::make_shared<std::atomic<std::int64_t>>(-1);
  auto t_kill = steady::now();
  ::kill(pids[static_cast<std::size_t>(leader)], SIGKILL);
  auto prober = sys.spawn(failover_prober, survivors, plan, t_kill, acked_us);
  auto deadline = t_kill + std::chrono::duration_cast<ms>(std::chrono::duration<double>(timeout_s));
  // Meanwhile: when does a survivor first report itself leader?
  double elected_ms = -1;
  std::string new_leader;
  wait_for(
    [&] {
      if (elected_ms < 0) {
        for (auto& gw : survivors) {
          auto st = fetch_raft(self, gw, ms(500));
          if (st && st->role() == "leader") {
            elected_ms = ms_since(t_kill);
            new_leader = st->id();
            break;
          }
        }
      }
      return acked_us->load() >= 0 && elected_ms >= 0;
    },
    deadline);
  caf::anon_send_exit(prober, caf::exit_reason::user_shutdown);
  auto us = acked_us->load();
  if (us < 0) {
    out["error"] = "no acknowledged write within " + std::to_string(timeout_s) + " s of the kill";
    finish(out, 1);
  }
  out["failover_ms"] = round1(static_cast<double>(us) / 1000.0);
  if (elected_ms >= 0) {
    out["elected_ms"] = round1(elected_ms);
    out["new_leader"] = new_leader;
  }
  finish(out);
}

// -- raft-health ------------------------------------------------------------------------------

namespace {

/// Listening sockets on `ips` x `ports` of 127.1.0.0/16 (loopback), accepted and closed by one
/// epoll thread that notes, per instance, when each check arrived.
struct check_listeners {
  std::vector<std::uint16_t> ports;
  std::vector<int> fds;
  std::map<int, std::uint64_t> index_of_fd; ///< instance index per listening socket
  int ep = -1;
  std::atomic<bool> stop{false};
  std::atomic<bool> measuring{false};
  std::mutex m;
  std::vector<std::vector<double>> arrivals_ms; ///< per instance, while measuring
  std::atomic<std::uint64_t> accepted{0};
  std::thread thread;

  /// Opens `ips * nports` listeners; false with `why` when the ports cannot be had.
  bool open(std::uint64_t ips, std::size_t nports, std::string& why) {
    ep = ::epoll_create1(EPOLL_CLOEXEC);
    for (std::size_t j = 0; j < nports; ++j) {
      // A port free on the first address is tried on all others; a clash picks another.
      for (int attempt = 0;; ++attempt) {
        if (attempt == 20) {
          why = "no port free on all " + std::to_string(ips) + " addresses";
          return false;
        }
        std::vector<int> got;
        std::uint16_t port = 0;
        bool ok = true;
        for (std::uint64_t k = 0; k < ips && ok; ++k) {
          int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
          sockaddr_in a{};
          a.sin_family = AF_INET;
          a.sin_port = htons(port);
          ::inet_pton(AF_INET, health_ip(k).c_str(), &a.sin_addr);
          if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0
              || ::listen(fd, 1024) != 0) {
            if (fd >= 0)
              ::close(fd);
            ok = false;
            break;
          }
          if (k == 0) {
            socklen_t len = sizeof a;
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
            port = ntohs(a.sin_port);
          }
          got.push_back(fd);
        }
        if (!ok) {
          for (int fd : got)
            ::close(fd);
          continue;
        }
        for (std::uint64_t k = 0; k < ips; ++k)
          index_of_fd[got[k]] = k * nports + j; // instance i = k * n + j (make_pwrite)
        fds.insert(fds.end(), got.begin(), got.end());
        ports.push_back(port);
        break;
      }
    }
    arrivals_ms.resize(fds.size());
    for (int fd : fds) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    return true;
  }

  void run(steady::time_point t0) {
    thread = std::thread([this, t0] {
      std::vector<epoll_event> evs(256);
      while (!stop.load()) {
        int n = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 100);
        for (int e = 0; e < n; ++e) {
          int lfd = evs[static_cast<std::size_t>(e)].data.fd;
          for (;;) {
            int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0)
              break;
            ::close(c);
            ++accepted;
            if (measuring.load()) {
              std::lock_guard<std::mutex> guard{m};
              arrivals_ms[index_of_fd[lfd]].push_back(ms_since(t0));
            }
          }
        }
      }
    });
  }

  ~check_listeners() {
    stop = true;
    if (thread.joinable())
      thread.join();
    for (int fd : fds)
      ::close(fd);
    if (ep >= 0)
      ::close(ep);
  }
};

} // namespace

int cmd_raft_health(const common_opts& o, std::uint64_t instances, std::size_t nports,
                    double warmup_s, std::int64_t interval_ms) {
  start_watchdog(std::chrono::seconds(static_cast<std::int64_t>(o.duration_s + warmup_s) + 120),
                 "raft-health");
  json out;
  out["cmd"] = "raft-health";
  // One descriptor per listener: raise the soft limit to the hard one.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  auto ips = (instances + nports - 1) / nports;
  check_listeners ls;
  std::string why;
  if (!ls.open(ips, nports, why)) {
    out["error"] = "listeners: " + why;
    finish(out, 1);
  }
  auto t0 = steady::now();
  ls.run(t0);
  system_holder h{o.caf};
  auto& sys = *h.sys;
  auto gateways = connect_all(sys, o.nodes, out);
  pwrite_plan plan;
  plan.service_prefix = "bench-checked-";
  plan.services = 100;
  plan.tcp_ports = ls.ports;
  plan.count = ips * nports;
  plan.window = 16;
  json fill;
  run_pwrites(sys, gateways, plan, 4, 120, fill);
  out["instances"] = fill.value("writes", 0);
  out["listeners"] = ls.fds.size();
  out["fill_writes_per_s"] = fill.value("writes_per_s", 0.0);
  if (fill.contains("first_error"))
    out["fill_error"] = fill["first_error"];
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup_s)); // checks reach steady state
  auto a0 = ls.accepted.load();
  auto m0 = ms_since(t0);
  ls.measuring = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(o.duration_s));
  ls.measuring = false;
  auto m1 = ms_since(t0);
  auto checks = ls.accepted.load() - a0;
  out["duration_s"] = round2((m1 - m0) / 1000.0);
  out["checks"] = checks;
  out["checks_per_s"] = round1(static_cast<double>(checks) * 1000.0 / (m1 - m0));
  out["expected_checks_per_s"] = round1(static_cast<double>(ls.fds.size()) * 1000.0
                                        / static_cast<double>(interval_ms));
  // Round time: the gap between two checks of one instance; an instance with fewer than two
  // checks in the window counts as a round of the whole window (it fell behind).
  std::vector<double> gaps;
  std::uint64_t unchecked = 0;
  {
    std::lock_guard<std::mutex> guard{ls.m};
    for (auto& xs : ls.arrivals_ms) {
      if (xs.size() < 2) {
        ++unchecked;
        gaps.push_back(m1 - m0);
        continue;
      }
      for (std::size_t k = 1; k < xs.size(); ++k)
        gaps.push_back(xs[k] - xs[k - 1]);
    }
  }
  out["interval_ms"] = interval_ms;
  out["instances_checked_fewer_than_twice"] = unchecked;
  out["round_p50_ms"] = round1(percentile(gaps, 50));
  out["round_p99_ms"] = round1(percentile(gaps, 99));
  out["round_max_ms"] = round1(gaps.empty() ? 0 : gaps.back());
  finish(out);
}

} // namespace bench
