#include "tools/bench/common.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <thread>

namespace bench {

using namespace registry::wire;

system_holder::system_holder(const caf_settings& s) {
  configure_system(cfg, s.hb_ms, s.timeout_ms, s.threads);
  registry::tls_settings tls;
  tls.enabled = s.tls || !s.tls_ca.empty() || !s.tls_cert.empty() || !s.tls_key.empty();
  tls.ca_file = s.tls_ca;
  tls.certificate = s.tls_cert;
  tls.key = s.tls_key;
  if (auto problem = registry::check_tls_files(tls, registry::tls_role::client))
    throw std::runtime_error("--tls-" + problem->field + ": " + problem->problem);
  if (auto problem = registry::configure_tls(cfg, tls_pins.pin(tls)); !problem.empty())
    throw std::runtime_error(problem);
  sys = std::make_unique<caf::actor_system>(cfg);
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> result;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, sep))
    if (!item.empty())
      result.push_back(item);
  return result;
}

caf::actor connect(caf::actor_system& sys, const std::string& host_port, ms timeout,
                   std::string* why) {
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    if (why)
      *why = "not HOST:PORT: " + host_port;
    return {};
  }
  auto host = host_port.substr(0, colon);
  auto port = static_cast<std::uint16_t>(std::stoi(host_port.substr(colon + 1)));
  caf::actor result;
  caf::scoped_actor self{sys};
  self->request(registry::link_manager(sys), timeout, caf::connect_atom::value, host, port)
    .receive(
      [&](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
        result = caf::actor_cast<caf::actor>(ptr);
        if (!result && why)
          *why = "no actor published at " + host_port;
      },
      [&](caf::error& err) {
        if (why)
          *why = host_port + ": " + sys.render(err);
      });
  return result;
}

caf::actor connect_retry(caf::actor_system& sys, const std::string& host_port,
                         steady::time_point deadline, std::string* why) {
  for (;;) {
    auto left = std::chrono::duration_cast<ms>(deadline - steady::now());
    if (left.count() <= 0)
      return {};
    auto result = connect(sys, host_port, std::min(left, ms(2000)), why);
    if (result)
      return result;
    std::this_thread::sleep_for(ms(5));
  }
}

std::vector<caf::actor> connect_all(caf::actor_system& sys, const std::vector<std::string>& nodes,
                                    json& out) {
  std::vector<caf::actor> result;
  auto deadline = steady::now() + ms(15000);
  for (auto& n : nodes) {
    std::string why;
    auto gw = connect_retry(sys, n, deadline, &why);
    if (!gw) {
      out["error"] = "cannot connect to " + n + ": " + why;
      finish(out, 2);
    }
    result.push_back(gw);
  }
  return result;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty())
    return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

namespace {
double round3(double x) {
  return std::isnan(x) ? x : std::round(x * 1000.0) / 1000.0;
}
} // namespace

void add_latency(json& out, const std::string& prefix, const std::string& unit,
                 std::vector<double> v) {
  out[prefix + "_samples"] = v.size();
  if (v.empty())
    return;
  out[prefix + "_p50_" + unit] = round3(percentile(v, 50));
  out[prefix + "_p99_" + unit] = round3(percentile(v, 99));
  out[prefix + "_max_" + unit] = round3(v.back());
}

void print_json(const json& j) {
  std::string text = j.dump();
  std::fprintf(stdout, "%s\n", text.c_str());
  std::fflush(stdout);
}

void finish(const json& j, int code) {
  print_json(j);
  std::fflush(stderr);
  std::_Exit(code);
}

void start_watchdog(std::chrono::seconds limit, const std::string& what) {
  std::thread([limit, what] {
    std::this_thread::sleep_for(limit);
    json j;
    j["error"] = what + ": watchdog ended the run after " + std::to_string(limit.count()) + " s";
    std::fprintf(stderr, "registry-bench: %s\n", j["error"].get<std::string>().c_str());
    finish(j, 3);
  }).detach();
}

// -- child processes -------------------------------------------------------------------------

std::string self_exe() {
  char buf[4096];
  auto n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0)
    return "registry-bench";
  buf[n] = '\0';
  return buf;
}

child_proc spawn_child(const std::vector<std::string>& argv, const std::string& out_file,
                       bool err_to_out) {
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int pipefd[2] = {-1, -1};
  int file_fd = -1;
  if (out_file.empty()) {
    if (::pipe2(pipefd, O_CLOEXEC) != 0)
      return {};
  } else {
    file_fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (file_fd < 0)
      return {};
  }
  auto parent = ::getpid();
  auto pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(127);
    int out = out_file.empty() ? pipefd[1] : file_fd;
    ::dup2(out, 1);
    if (err_to_out)
      ::dup2(out, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  if (pipefd[1] >= 0)
    ::close(pipefd[1]);
  if (file_fd >= 0)
    ::close(file_fd);
  if (pid < 0) {
    if (pipefd[0] >= 0)
      ::close(pipefd[0]);
    return {};
  }
  return {pid, pipefd[0]};
}

bool read_line(int fd, std::string& line, ms timeout) {
  line.clear();
  auto deadline = steady::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<ms>(deadline - steady::now()).count();
    if (left <= 0)
      return false;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    char c;
    auto n = ::read(fd, &c, 1);
    if (n <= 0)
      return false;
    if (c == '\n')
      return true;
    line.push_back(c);
  }
}

int stop_child(pid_t pid, ms grace) {
  if (pid <= 0)
    return -1;
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == pid)
    return status;
  ::kill(pid, SIGTERM);
  auto deadline = steady::now() + grace;
  while (steady::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return status;
    std::this_thread::sleep_for(ms(10));
  }
  ::kill(pid, SIGKILL);
  if (::waitpid(pid, &status, 0) == pid)
    return status;
  return -1;
}

std::uint64_t rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stoull(line.substr(6)) * 1024;
  return 0;
}

// -- wire helpers ----------------------------------------------------------------------------

v1::BatchRegisterRequest make_batch_register(const std::string& service, const std::string& ip,
                                             std::uint32_t first_port, std::uint32_t count) {
  v1::BatchRegisterRequest req;
  for (std::uint32_t i = 0; i < count; ++i) {
    auto single = make_register(service, ip, first_port + i);
    if (i == 0)
      *req.mutable_service() = single.service();
    *req.add_instances() = single.instance();
  }
  return req;
}

v1::RegisterRequest make_register(const std::string& service, const std::string& ip,
                                  std::uint32_t port) {
  v1::RegisterRequest req;
  auto* ref = req.mutable_service();
  ref->set_namespace_id("public");
  ref->set_group("DEFAULT_GROUP");
  ref->set_service(service);
  auto* x = req.mutable_instance();
  x->set_ip(ip);
  x->set_port(port);
  x->set_weight(1.0);
  x->set_healthy(true);
  x->set_enabled(true);
  x->set_ephemeral(true);
  x->set_cluster("DEFAULT");
  return req;
}

v1::QueryRequest make_query(const std::string& service) {
  v1::QueryRequest req;
  auto* ref = req.mutable_service();
  ref->set_namespace_id("public");
  ref->set_group("DEFAULT_GROUP");
  ref->set_service(service);
  return req;
}

std::string bench_ip(std::uint64_t index) {
  return "10." + std::to_string((index >> 16) & 255) + "." + std::to_string((index >> 8) & 255)
         + "." + std::to_string(index & 255);
}

std::optional<v1::Status> fetch_status(caf::scoped_actor& self, const caf::actor& gateway,
                                       ms timeout, std::string* why) {
  std::optional<v1::Status> result;
  self->request(gateway, timeout, status_atom_v, pack(v1::StatusRequest{}))
    .receive(
      [&](envelope& env) {
        v1::Status st;
        if (unpack(env, st))
          result = std::move(st);
        else if (why)
          *why = "unexpected status reply " + env.kind;
      },
      [&](caf::error& err) {
        if (why)
          *why = self->system().render(err);
      });
  return result;
}

bool info_has(const envelope& env, const std::string& ip, std::uint32_t port) {
  v1::ServiceInfo info;
  if (!unpack(env, info))
    return false;
  for (auto& h : info.hosts())
    if (h.port() == port && h.ip() == ip)
      return true;
  return false;
}

std::optional<bool> has_instance(caf::scoped_actor& self, const caf::actor& gateway,
                                 const std::string& service, const std::string& ip,
                                 std::uint32_t port, ms timeout) {
  std::optional<bool> result;
  self->request(gateway, timeout, query_atom_v, pack(make_query(service)))
    .receive([&](envelope& env) {
      if (holds<v1::ServiceInfo>(env))
        result = info_has(env, ip, port);
    },
             [&](caf::error&) {});
  return result;
}

std::vector<std::int64_t> instance_counts(caf::actor_system& sys,
                                          const std::vector<caf::actor>& gateways) {
  caf::scoped_actor self{sys};
  std::vector<std::int64_t> result;
  for (auto& gw : gateways) {
    auto st = fetch_status(self, gw, ms(3000));
    result.push_back(st ? static_cast<std::int64_t>(st->instances()) : -1);
  }
  return result;
}

double settle(caf::actor_system& sys, const std::vector<caf::actor>& gateways,
              const std::vector<std::int64_t>& baseline, ms timeout) {
  auto t0 = steady::now();
  bool ok = wait_for(
    [&] {
      auto now = instance_counts(sys, gateways);
      for (std::size_t i = 0; i < now.size(); ++i)
        if (now[i] < 0 || (i < baseline.size() && baseline[i] >= 0 && now[i] > baseline[i]))
          return false;
      return true;
    },
    t0 + timeout);
  return ok ? std::round(ms_since(t0)) : -1;
}

// -- session load --------------------------------------------------------------------------

void run_counters::note_error(const std::string& what) {
  std::lock_guard<std::mutex> guard{m};
  if (first_error.empty())
    first_error = what;
}

namespace {

std::string error_text(const envelope& env) {
  v1::Error err;
  if (unpack(env, err))
    return v1::Error::Code_Name(err.code()) + " " + err.field() + ": " + err.message();
  return "unexpected reply " + env.kind;
}

struct reg_client_state {
  static inline const char* name = "bench-client";
  caf::actor gateway;
  caf::actor session;
  reg_plan plan;
  std::shared_ptr<run_counters> counters;
  std::shared_ptr<sample_box> samples;
  std::string ip;
  std::uint32_t next = 0;
  std::uint32_t inflight = 0;
  double budget = 0;
  bool started = false;
  bool closing = false;
  bool done = false;
};

using reg_client_t = caf::stateful_actor<reg_client_state>;

void pump(reg_client_t* self);

void send_one(reg_client_t* self) {
  auto& st = self->state;
  auto k = st.next;
  auto services = std::max<std::uint32_t>(1, st.plan.services);
  std::uint32_t count = 1;
  envelope env;
  if (st.plan.batch > 0) {
    count = std::min(st.plan.batch, st.plan.instances - k);
    auto svc = st.plan.service_prefix
               + std::to_string((st.plan.client_index + k / st.plan.batch) % services);
    env = pack(make_batch_register(svc, st.ip, 1 + k, count));
  } else {
    auto svc = st.plan.service_prefix + std::to_string((st.plan.client_index + k) % services);
    env = pack(make_register(svc, st.ip, 1 + k));
  }
  st.next += count;
  auto t0 = steady::now();
  ++st.inflight;
  ++st.counters->sent;
  self->request(st.session, st.plan.request_timeout, reg_atom_v, std::move(env))
    .then(
      [self, t0, count](envelope& reply) {
        auto& st = self->state;
        --st.inflight;
        ++st.counters->finished;
        if (holds<v1::Ack>(reply)) {
          ++st.counters->acked;
          if (!st.counters->stop.load(std::memory_order_relaxed)) {
            ++st.counters->ok;
            st.counters->instances_ok += count;
            if (st.samples) {
              auto us = std::chrono::duration<float, std::micro>(steady::now() - t0).count();
              std::lock_guard<std::mutex> guard{st.samples->m};
              st.samples->us.push_back(us);
            }
          }
        } else {
          ++st.counters->refused;
          st.counters->note_error(error_text(reply));
        }
        pump(self);
      },
      [self](caf::error& err) {
        auto& st = self->state;
        --st.inflight;
        ++st.counters->finished;
        ++st.counters->failed;
        st.counters->note_error("register: " + self->system().render(err));
        pump(self);
      });
}

void pump(reg_client_t* self) {
  auto& st = self->state;
  if (!st.session || !st.started)
    return;
  bool paced = st.plan.rate_per_s > 0;
  while (!st.closing && !st.counters->stop.load(std::memory_order_relaxed)
         && st.inflight < st.plan.inflight && st.next < st.plan.instances
         && (!paced || st.budget >= 1.0)) {
    send_one(self);
    if (paced)
      st.budget -= 1.0;
  }
  if (!st.done && st.next >= st.plan.instances && st.inflight == 0) {
    st.done = true;
    ++st.counters->clients_done;
  }
}

void end(reg_client_t* self) {
  ++self->state.counters->closed;
  self->quit();
}

caf::behavior reg_client(reg_client_t* self, caf::actor gateway, reg_plan plan,
                         std::shared_ptr<run_counters> counters,
                         std::shared_ptr<sample_box> samples) {
  auto& st = self->state;
  st.gateway = gateway;
  st.plan = std::move(plan);
  st.counters = std::move(counters);
  st.samples = std::move(samples);
  st.ip = bench_ip(st.plan.client_index);
  self->set_default_handler(caf::drop);
  self->set_error_handler([](caf::error&) {});
  v1::Hello hello;
  hello.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  hello.set_client_name("registry-bench");
  self->request(gateway, ms(20000), hello_atom_v, pack(hello), caf::actor_cast<caf::actor>(self))
    .then(
      [self](envelope& reply, caf::actor& session) {
        auto& st = self->state;
        if (session && holds<v1::Welcome>(reply)) {
          st.session = std::move(session);
          ++st.counters->sessions_ok;
          pump(self);
        } else {
          ++st.counters->sessions_failed;
          st.counters->note_error("hello: " + error_text(reply));
        }
      },
      [self](caf::error& err) {
        ++self->state.counters->sessions_failed;
        self->state.counters->note_error("hello: " + self->system().render(err));
      });
  return {
    [self](start_atom) {
      self->state.started = true;
      pump(self);
    },
    // Paced mode: one permit per tick from the pacer (start_pacer).
    [self](tick_atom) {
      auto& st = self->state;
      st.budget = std::min(st.budget + 1.0, 1000.0);
      pump(self);
    },
    [self](bye_atom) {
      auto& st = self->state;
      if (st.closing)
        return;
      st.closing = true;
      if (!st.session) {
        end(self);
        return;
      }
      self->request(st.session, ms(15000), bye_atom_v)
        .then([self](envelope&) { end(self); }, [self](caf::error&) { end(self); });
    },
    [](push_atom, const envelope&) { return pack(v1::Ack{}); },
  };
}

} // namespace

caf::actor spawn_reg_client(caf::actor_system& sys, caf::actor gateway, reg_plan plan,
                            std::shared_ptr<run_counters> counters,
                            std::shared_ptr<sample_box> samples) {
  return sys.spawn(reg_client, std::move(gateway), std::move(plan), std::move(counters),
                   std::move(samples));
}

namespace {

struct pacer_state {
  static inline const char* name = "bench-pacer";
  std::vector<caf::actor> clients;
  double rate = 0;
  steady::time_point t0;
  std::uint64_t sent = 0;
  std::size_t next = 0;
  std::shared_ptr<run_counters> counters;
};

caf::behavior pacer(caf::stateful_actor<pacer_state>* self, std::vector<caf::actor> clients,
                    double rate, std::shared_ptr<run_counters> counters) {
  auto& st = self->state;
  st.clients = std::move(clients);
  st.rate = rate;
  st.counters = std::move(counters);
  st.t0 = steady::now();
  self->send(self, tick_atom_v);
  return {
    [self](tick_atom) {
      auto& st = self->state;
      if (st.counters->stop.load() || st.clients.empty()) {
        self->quit();
        return;
      }
      auto due = static_cast<std::uint64_t>(st.rate * ms_since(st.t0) / 1000.0);
      for (; st.sent < due; ++st.sent)
        self->send(st.clients[st.next++ % st.clients.size()], tick_atom_v);
      self->delayed_send(self, ms(2), tick_atom_v);
    },
  };
}

} // namespace

caf::actor start_pacer(caf::actor_system& sys, std::vector<caf::actor> clients, double rate,
                       std::shared_ptr<run_counters> counters) {
  return sys.spawn(pacer, std::move(clients), rate, std::move(counters));
}

bool wait_for(const std::function<bool()>& cond, steady::time_point deadline) {
  for (;;) {
    if (cond())
      return true;
    if (steady::now() >= deadline)
      return false;
    std::this_thread::sleep_for(ms(5));
  }
}

std::vector<caf::actor> open_sessions(caf::actor_system& sys,
                                      const std::vector<caf::actor>& gateways, std::size_t n,
                                      const std::function<reg_plan(std::size_t)>& plan_for,
                                      const std::shared_ptr<run_counters>& counters,
                                      std::vector<std::shared_ptr<sample_box>>* samples,
                                      std::size_t wave, steady::time_point deadline) {
  std::vector<caf::actor> clients;
  clients.reserve(n);
  auto base_ok = counters->sessions_ok.load();
  auto base_failed = counters->sessions_failed.load();
  auto answered = [&] {
    return counters->sessions_ok.load() - base_ok + counters->sessions_failed.load() - base_failed;
  };
  for (std::size_t i = 0; i < n; ++i) {
    std::shared_ptr<sample_box> box;
    if (samples) {
      box = std::make_shared<sample_box>();
      samples->push_back(box);
    }
    clients.push_back(
      spawn_reg_client(sys, gateways[i % gateways.size()], plan_for(i), counters, box));
    // At most `wave` hellos outstanding.
    if (clients.size() >= wave + answered())
      if (!wait_for([&] { return clients.size() < wave + answered(); }, deadline))
        break;
  }
  wait_for([&] { return answered() >= clients.size(); }, deadline);
  return clients;
}

void close_sessions(const std::vector<caf::actor>& clients,
                    const std::shared_ptr<run_counters>& counters, steady::time_point deadline) {
  auto base = counters->closed.load();
  for (auto& c : clients)
    caf::anon_send(c, bye_atom_v);
  wait_for([&] { return counters->closed.load() - base >= clients.size(); }, deadline);
}

} // namespace bench
