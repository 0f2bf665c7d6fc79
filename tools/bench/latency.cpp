// registry-bench: latency subcommands (replication, push, crash).

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <fstream>
#include <random>
#include <thread>

#include "tools/bench/common.hpp"

namespace bench {

using namespace registry::wire;

namespace {

caf::actor must_connect(caf::actor_system& sys, const std::string& node, json& out) {
  std::string why;
  auto gw = connect_retry(sys, node, steady::now() + ms(15000), &why);
  if (!gw) {
    out["error"] = "cannot connect to " + node + ": " + why;
    finish(out, 2);
  }
  return gw;
}

v1::Hello make_hello(const std::string& name) {
  v1::Hello hello;
  hello.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  hello.set_client_name(name);
  return hello;
}

/// Results a probe actor hands to main.
struct probe_result {
  std::mutex m;
  std::vector<double> lat_ms[2];
  std::vector<std::pair<double, double>> trace;
  std::uint32_t probes = 0;
  std::uint32_t lost = 0;
  std::uint32_t errors = 0;
  std::string first_error;
  std::atomic<bool> ready{false};
  std::atomic<bool> done{false};
  void note(const std::string& what) {
    std::lock_guard<std::mutex> guard{m};
    ++errors;
    if (first_error.empty())
      first_error = what;
  }
};

std::string describe(const envelope& env) {
  v1::Error err;
  if (unpack(env, err))
    return err.message();
  return env.kind;
}

// -- replication probe: register at A, poll queries at C --------------------------------------

struct repl_state {
  static inline const char* name = "bench-repl-probe";
  caf::actor gw_read;
  caf::actor session;
  std::uint32_t probes_max = 100;
  steady::time_point end_time;
  std::uint32_t i = 0;
  std::uint64_t gen = 0;
  std::string tag;
  std::string ip;
  std::string service;
  steady::time_point t0;
  std::vector<double> lat;
  std::vector<std::pair<double, double>> trace; ///< (probe start since first probe, latency) in ms
  steady::time_point first;
  std::uint32_t lost = 0;
  std::shared_ptr<probe_result> out;
  std::minstd_rand rng{12345};
};

using repl_t = caf::stateful_actor<repl_state>;

void repl_next(repl_t* self);

void repl_done(repl_t* self) {
  auto& st = self->state;
  {
    std::lock_guard<std::mutex> guard{st.out->m};
    st.out->lat_ms[0] = st.lat;
    st.out->trace = st.trace;
    st.out->probes = st.i;
    st.out->lost = st.lost;
  }
  st.out->done = true;
  if (st.session)
    self->request(st.session, ms(5000), bye_atom_v)
      .then([self](envelope&) { self->quit(); }, [self](caf::error&) { self->quit(); });
  else
    self->quit();
}

void repl_after(repl_t* self) {
  auto& st = self->state;
  ++st.gen;
  // A gap with jitter, so that probes sample every phase of the node's sync batching.
  auto gap = ms(5 + st.rng() % 16);
  self->delayed_send(self, gap, retry_atom_v, st.gen);
}

/// A probe not visible after this long counts as lost; it enters the samples at this value
/// (censored), so that the percentiles do not hide it.
constexpr double repl_give_up_ms = 5000;

void repl_lost(repl_t* self) {
  auto& st = self->state;
  ++st.lost;
  st.lat.push_back(repl_give_up_ms);
  st.trace.emplace_back(std::chrono::duration<double, std::milli>(st.t0 - st.first).count(),
                        repl_give_up_ms);
  repl_after(self);
}

void repl_poll(repl_t* self) {
  auto& st = self->state;
  auto gen = st.gen;
  self->request(st.gw_read, ms(2000), query_atom_v, pack(make_query(st.service)))
    .then(
      [self, gen](envelope& reply) {
        auto& st = self->state;
        if (gen != st.gen)
          return;
        if (info_has(reply, st.ip, st.i)) {
          st.lat.push_back(ms_since(st.t0));
          st.trace.emplace_back(
            std::chrono::duration<double, std::milli>(st.t0 - st.first).count(), st.lat.back());
          repl_after(self);
        } else if (ms_since(st.t0) > repl_give_up_ms) {
          repl_lost(self);
        } else {
          self->delayed_send(self, ms(1), tick_atom_v, gen);
        }
      },
      [self, gen](caf::error& err) {
        auto& st = self->state;
        if (gen != st.gen)
          return;
        st.out->note("query: " + self->system().render(err));
        if (ms_since(st.t0) > repl_give_up_ms) {
          repl_lost(self);
        } else {
          self->delayed_send(self, ms(1), tick_atom_v, gen);
        }
      });
}

void repl_next(repl_t* self) {
  auto& st = self->state;
  if (st.i >= st.probes_max || steady::now() >= st.end_time) {
    repl_done(self);
    return;
  }
  ++st.i;
  ++st.gen;
  st.service = st.tag + std::to_string(st.i);
  st.t0 = steady::now();
  self->request(st.session, ms(5000), reg_atom_v, pack(make_register(st.service, st.ip, st.i)))
    .then(
      [self](envelope& reply) {
        if (!holds<v1::Ack>(reply))
          self->state.out->note("register: " + describe(reply));
      },
      [self](caf::error& err) { self->state.out->note("register: " + self->system().render(err)); });
  repl_poll(self);
}

caf::behavior repl_probe(repl_t* self, caf::actor gw_write, caf::actor gw_read,
                         std::uint32_t probes, std::shared_ptr<probe_result> out) {
  auto& st = self->state;
  st.gw_read = std::move(gw_read);
  st.probes_max = probes;
  st.out = std::move(out);
  st.tag = "bench-repl-" + std::to_string(::getpid()) + "-";
  st.ip = "10.251." + std::to_string((::getpid() >> 8) & 255) + "." + std::to_string(::getpid() & 255);
  self->set_default_handler(caf::drop);
  self->set_error_handler([](caf::error&) {});
  self->request(gw_write, ms(10000), hello_atom_v, pack(make_hello("bench-repl")),
                caf::actor_cast<caf::actor>(self))
    .then(
      [self](envelope& reply, caf::actor& session) {
        if (!session) {
          self->state.out->note("hello: " + describe(reply));
          self->state.out->done = true;
          self->quit();
          return;
        }
        self->state.session = std::move(session);
        self->state.out->ready = true;
      },
      [self](caf::error& err) {
        self->state.out->note("hello: " + self->system().render(err));
        self->state.out->done = true;
        self->quit();
      });
  return {
    [self](start_atom, double duration_s) {
      self->state.first = steady::now();
      self->state.end_time = steady::now()
                             + std::chrono::duration_cast<ms>(std::chrono::duration<double>(duration_s));
      repl_next(self);
    },
    [self](tick_atom, std::uint64_t gen) {
      if (gen == self->state.gen)
        repl_poll(self);
    },
    [self](retry_atom, std::uint64_t gen) {
      if (gen == self->state.gen)
        repl_next(self);
    },
    [](push_atom, const envelope&) { return pack(v1::Ack{}); },
  };
}

double round3(double x) {
  return std::round(x * 1000.0) / 1000.0;
}

/// Starts paced background registrations on `gateway`: `rate` per second for about `seconds`.
std::vector<caf::actor> start_background(caf::actor_system& sys, const caf::actor& gateway,
                                         double rate, double seconds, std::uint32_t per_client,
                                         const std::shared_ptr<run_counters>& counters,
                                         json& out) {
  if (rate <= 0)
    return {};
  per_client = std::clamp<std::uint32_t>(per_client, 1, 1000);
  auto clients = static_cast<std::size_t>(std::ceil(rate * seconds / per_client));
  clients = std::max<std::size_t>(clients, 10);
  auto base = static_cast<std::uint64_t>(::getpid() % 256) * 50000 + 20000;
  auto all = open_sessions(
    sys, {gateway}, clients,
    [&](std::size_t i) {
      reg_plan p;
      p.client_index = base + i;
      p.instances = per_client;
      p.inflight = 4;
      p.services = 100;
      p.service_prefix = "bench-bg-";
      p.rate_per_s = rate / static_cast<double>(clients);
      return p;
    },
    counters, nullptr, 256, steady::now() + ms(30000));
  out["background_clients"] = counters->sessions_ok.load();
  for (auto& c : all)
    caf::anon_send(c, start_atom_v);
  start_pacer(sys, all, rate, counters);
  return all;
}

} // namespace

int cmd_replication(const common_opts& o, const std::string& write, const std::string& read,
                    double background_rate, std::uint32_t background_per_client,
                    std::uint32_t probes, const std::string& trace_file) {
  start_watchdog(std::chrono::seconds(o.max_s > 0 ? o.max_s : static_cast<std::int64_t>(o.duration_s) + 120),
                 "replication");
  json out;
  out["cmd"] = "replication";
  out["write"] = write;
  out["read"] = read;
  system_holder h{o.caf};
  auto& sys = *h.sys;
  auto gw_a = must_connect(sys, write, out);
  auto gw_c = must_connect(sys, read, out);
  auto baseline = instance_counts(sys, {gw_a, gw_c});
  auto bg = std::make_shared<run_counters>();
  auto bg_clients = start_background(sys, gw_a, background_rate, o.duration_s + 8,
                                   background_per_client, bg, out);
  out["background_per_client"] = background_per_client;
  auto result = std::make_shared<probe_result>();
  auto probe = sys.spawn(repl_probe, gw_a, gw_c, probes, result);
  wait_for([&] { return result->ready.load() || result->done.load(); }, steady::now() + ms(15000));
  // Let the background load settle before probing.
  if (!bg_clients.empty())
    std::this_thread::sleep_for(ms(1000));
  auto bg_before = bg->ok.load();
  auto t0 = steady::now();
  caf::anon_send(probe, start_atom_v, o.duration_s);
  wait_for([&] { return result->done.load(); },
           steady::now() + std::chrono::duration_cast<ms>(std::chrono::duration<double>(o.duration_s + 15)));
  auto elapsed_ms = ms_since(t0);
  auto bg_ok = bg->ok.load() - bg_before;
  bg->stop = true;
  out["background_rate_target"] = background_rate;
  out["background_per_s"] = std::round(static_cast<double>(bg_ok) * 1000.0 / elapsed_ms);
  if (bg->refused.load() + bg->failed.load() > 0) {
    out["background_errors"] = bg->refused.load() + bg->failed.load();
    std::lock_guard<std::mutex> guard{bg->m};
    out["background_first_error"] = bg->first_error;
  }
  {
    std::lock_guard<std::mutex> guard{result->m};
    out["probes"] = result->probes;
    out["lost"] = result->lost;
    out["errors"] = result->errors;
    if (!result->first_error.empty())
      out["first_error"] = result->first_error;
    add_latency(out, "replication", "ms", result->lat_ms[0]);
    if (!trace_file.empty()) {
      std::ofstream f(trace_file);
      f << "# probe_start_ms latency_ms\n";
      for (auto& [t, l] : result->trace)
        f << t << " " << l << "\n";
    }
  }
  close_sessions(bg_clients, bg, steady::now() + ms(30000));
  out["settle_ms"] = settle(sys, {gw_a, gw_c}, baseline, ms(15000));
  finish(out);
}

// -- push -------------------------------------------------------------------------------------

namespace {

/// A subscriber session: forwards every push to the prober and acknowledges it.
struct sub_state {
  static inline const char* name = "bench-subscriber";
  caf::actor session;
  caf::actor prober;
  std::int32_t index = 0;
};

using sub_t = caf::stateful_actor<sub_state>;

caf::behavior subscriber(sub_t* self, caf::actor gateway, caf::actor prober, std::int32_t index,
                         std::string service, std::shared_ptr<std::atomic<int>> ready,
                         std::shared_ptr<probe_result> out) {
  self->state.prober = std::move(prober);
  self->state.index = index;
  self->set_default_handler(caf::drop);
  self->set_error_handler([](caf::error&) {});
  self->request(gateway, ms(10000), hello_atom_v, pack(make_hello("bench-subscriber")),
                caf::actor_cast<caf::actor>(self))
    .then(
      [=](envelope& reply, caf::actor& session) {
        if (!session) {
          out->note("hello: " + describe(reply));
          return;
        }
        self->state.session = session;
        v1::SubscribeRequest req;
        req.mutable_service()->set_namespace_id("public");
        req.mutable_service()->set_group("DEFAULT_GROUP");
        req.mutable_service()->set_service(service);
        self->request(session, ms(10000), sub_atom_v, pack(req))
          .then(
            [=](envelope& r) {
              if (holds<v1::ServiceInfo>(r))
                ++*ready;
              else
                out->note("subscribe: " + describe(r));
            },
            [=](caf::error& err) { out->note("subscribe: " + self->system().render(err)); });
      },
      [=](caf::error& err) { out->note("hello: " + self->system().render(err)); });
  return {
    [self](push_atom, const envelope& env) {
      self->send(self->state.prober, push_atom_v, self->state.index, env);
      return pack(v1::Ack{});
    },
    [self](bye_atom) {
      if (!self->state.session) {
        self->quit();
        return;
      }
      self->request(self->state.session, ms(5000), bye_atom_v)
        .then([self](envelope&) { self->quit(); }, [self](caf::error&) { self->quit(); });
    },
  };
}

struct push_state {
  static inline const char* name = "bench-push-probe";
  caf::actor session;
  std::uint32_t probes_max = 100;
  steady::time_point end_time;
  std::uint32_t i = 0;
  std::uint64_t gen = 0;
  std::string service;
  std::string ip;
  steady::time_point t0;
  bool pending[2] = {false, false};
  std::vector<double> lat[2];
  std::uint32_t lost = 0;
  std::shared_ptr<probe_result> out;
  std::minstd_rand rng{4711};
};

using push_t = caf::stateful_actor<push_state>;

void push_next(push_t* self) {
  auto& st = self->state;
  if (st.i >= st.probes_max || steady::now() >= st.end_time) {
    {
      std::lock_guard<std::mutex> guard{st.out->m};
      st.out->lat_ms[0] = st.lat[0];
      st.out->lat_ms[1] = st.lat[1];
      st.out->probes = st.i;
      st.out->lost = st.lost;
    }
    st.out->done = true;
    self->request(st.session, ms(5000), bye_atom_v)
      .then([self](envelope&) { self->quit(); }, [self](caf::error&) { self->quit(); });
    return;
  }
  ++st.i;
  auto gen = ++st.gen;
  st.pending[0] = st.pending[1] = true;
  st.t0 = steady::now();
  self->request(st.session, ms(5000), reg_atom_v, pack(make_register(st.service, st.ip, st.i)))
    .then(
      [self](envelope& reply) {
        if (!holds<v1::Ack>(reply))
          self->state.out->note("register: " + describe(reply));
      },
      [self](caf::error& err) { self->state.out->note("register: " + self->system().render(err)); });
  self->delayed_send(self, ms(3000), tick_atom_v, gen);
}

void push_after(push_t* self) {
  auto& st = self->state;
  auto gen = ++st.gen;
  // Longer than the node's push merge window (20 ms by default): each probe finds an idle service.
  self->delayed_send(self, ms(30 + st.rng() % 31), retry_atom_v, gen);
}

caf::behavior push_probe(push_t* self, caf::actor gw_write, std::string service,
                         std::uint32_t probes, std::shared_ptr<probe_result> out) {
  auto& st = self->state;
  st.service = std::move(service);
  st.probes_max = probes;
  st.out = std::move(out);
  st.ip = "10.252." + std::to_string((::getpid() >> 8) & 255) + "." + std::to_string(::getpid() & 255);
  self->set_default_handler(caf::drop);
  self->set_error_handler([](caf::error&) {});
  self->request(gw_write, ms(10000), hello_atom_v, pack(make_hello("bench-push-writer")),
                caf::actor_cast<caf::actor>(self))
    .then(
      [self](envelope& reply, caf::actor& session) {
        if (!session) {
          self->state.out->note("hello: " + describe(reply));
          return;
        }
        self->state.session = std::move(session);
        self->state.out->ready = true;
      },
      [self](caf::error& err) { self->state.out->note("hello: " + self->system().render(err)); });
  return {
    [self](start_atom, double duration_s) {
      self->state.end_time = steady::now()
                             + std::chrono::duration_cast<ms>(std::chrono::duration<double>(duration_s));
      push_next(self);
    },
    [self](push_atom, std::int32_t index, const envelope& env) {
      auto& st = self->state;
      if (index < 0 || index > 1 || !st.pending[index])
        return;
      if (!info_has(env, st.ip, st.i))
        return;
      st.pending[index] = false;
      st.lat[index].push_back(ms_since(st.t0));
      if (!st.pending[0] && !st.pending[1])
        push_after(self);
    },
    [self](tick_atom, std::uint64_t gen) {
      auto& st = self->state;
      if (gen != st.gen)
        return;
      // Not notified within 3 s: lost, counted at 3000 ms (censored) for each waiting subscriber.
      ++st.lost;
      for (int i = 0; i < 2; ++i)
        if (st.pending[i]) {
          st.pending[i] = false;
          st.lat[i].push_back(3000.0);
        }
      push_after(self);
    },
    [self](retry_atom, std::uint64_t gen) {
      if (gen == self->state.gen)
        push_next(self);
    },
    [](push_atom, const envelope&) { return pack(v1::Ack{}); },
  };
}

} // namespace

int cmd_push(const common_opts& o, const std::string& write, const std::string& same,
             const std::string& other, std::uint32_t probes) {
  start_watchdog(std::chrono::seconds(o.max_s > 0 ? o.max_s : static_cast<std::int64_t>(o.duration_s) + 90),
                 "push");
  json out;
  out["cmd"] = "push";
  out["write"] = write;
  out["same"] = same;
  out["other"] = other;
  system_holder h{o.caf};
  auto& sys = *h.sys;
  auto gw_w = must_connect(sys, write, out);
  auto gw_s = must_connect(sys, same, out);
  auto gw_o = must_connect(sys, other, out);
  auto service = "bench-push-" + std::to_string(::getpid());
  auto result = std::make_shared<probe_result>();
  auto prober = sys.spawn(push_probe, gw_w, service, probes, result);
  auto ready = std::make_shared<std::atomic<int>>(0);
  auto sub_same = sys.spawn(subscriber, gw_s, prober, 0, service, ready, result);
  auto sub_other = sys.spawn(subscriber, gw_o, prober, 1, service, ready, result);
  if (!wait_for([&] { return ready->load() == 2 && result->ready.load(); },
                steady::now() + ms(15000))) {
    out["error"] = "subscribers or writer not ready";
    std::lock_guard<std::mutex> guard{result->m};
    out["first_error"] = result->first_error;
    finish(out, 1);
  }
  caf::anon_send(prober, start_atom_v, o.duration_s);
  wait_for([&] { return result->done.load(); },
           steady::now() + std::chrono::duration_cast<ms>(std::chrono::duration<double>(o.duration_s + 10)));
  {
    std::lock_guard<std::mutex> guard{result->m};
    out["probes"] = result->probes;
    out["lost"] = result->lost;
    out["errors"] = result->errors;
    if (!result->first_error.empty())
      out["first_error"] = result->first_error;
    add_latency(out, "push_same_node", "ms", result->lat_ms[0]);
    add_latency(out, "push_other_node", "ms", result->lat_ms[1]);
  }
  caf::anon_send(sub_same, bye_atom_v);
  caf::anon_send(sub_other, bye_atom_v);
  std::this_thread::sleep_for(ms(100));
  finish(out);
}

// -- crash ------------------------------------------------------------------------------------

int cmd_crash_child(const common_opts& o, const std::string& service, const std::string& ip,
                    std::uint32_t port, double hold_s) {
  start_watchdog(std::chrono::seconds(static_cast<std::int64_t>(hold_s) + 30), "crash-child");
  json out;
  out["cmd"] = "crash-child";
  system_holder h{o.caf};
  auto& sys = *h.sys;
  auto gw = must_connect(sys, o.nodes.front(), out);
  // The client actor the node monitors; it answers pushes like the client library does.
  auto client = sys.spawn([](caf::event_based_actor*) -> caf::behavior {
    return {[](push_atom, const envelope&) { return pack(v1::Ack{}); }};
  });
  caf::scoped_actor self{sys};
  caf::actor session;
  self->request(gw, ms(10000), hello_atom_v, pack(make_hello("bench-crash-child")), client)
    .receive([&](envelope&, caf::actor& s) { session = s; },
             [&](caf::error& err) { out["error"] = "hello: " + sys.render(err); });
  if (!session)
    finish(out, 1);
  bool ok = false;
  self->request(session, ms(10000), reg_atom_v, pack(make_register(service, ip, port)))
    .receive([&](envelope& reply) { ok = holds<v1::Ack>(reply); },
             [&](caf::error& err) { out["error"] = "register: " + sys.render(err); });
  if (!ok)
    finish(out, 1);
  std::fprintf(stdout, "READY\n");
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::duration<double>(hold_s));
  finish(json{{"cmd", "crash-child"}, {"held", true}});
}

int cmd_crash(const common_opts& o, const std::string& session_node, std::uint32_t rounds) {
  start_watchdog(std::chrono::seconds(o.max_s > 0 ? o.max_s : 40 + 30 * static_cast<std::int64_t>(rounds)),
                 "crash");
  json out;
  out["cmd"] = "crash";
  out["session_node"] = session_node;
  system_holder h{o.caf};
  auto& sys = *h.sys;
  std::vector<caf::actor> gws;
  for (auto& n : o.nodes)
    gws.push_back(must_connect(sys, n, out));
  caf::scoped_actor self{sys};
  std::vector<double> removal;     // gone at every node
  std::vector<double> removal_own; // gone at the session's node
  std::uint32_t failures = 0;
  std::string first_error;
  auto fail = [&](const std::string& why) {
    ++failures;
    if (first_error.empty())
      first_error = why;
  };
  auto ip = "10.253." + std::to_string((::getpid() >> 8) & 255) + "." + std::to_string(::getpid() & 255);
  for (std::uint32_t r = 1; r <= rounds; ++r) {
    auto service = "bench-crash-" + std::to_string(::getpid()) + "-" + std::to_string(r);
    auto child = spawn_child({self_exe(), "crash-child", "--nodes", session_node, "--hb-ms",
                              std::to_string(o.caf.hb_ms), "--timeout-ms",
                              std::to_string(o.caf.timeout_ms), "--threads", "1", "--service",
                              service, "--ip", ip, "--port", std::to_string(r), "--hold-s", "60"});
    if (child.pid <= 0) {
      fail("cannot start the session client");
      continue;
    }
    std::string line;
    if (!read_line(child.out_fd, line, ms(15000)) || line != "READY") {
      fail("session client not ready: " + line);
      stop_child(child.pid, ms(100));
      ::close(child.out_fd);
      continue;
    }
    // Visible everywhere first (replication done), then kill -9.
    bool visible = wait_for(
      [&] {
        for (auto& gw : gws) {
          auto has = has_instance(self, gw, service, ip, r, ms(2000));
          if (!has || !*has)
            return false;
        }
        return true;
      },
      steady::now() + ms(10000));
    if (!visible) {
      fail("instance never visible at every node");
      stop_child(child.pid, ms(100));
      ::close(child.out_fd);
      continue;
    }
    std::this_thread::sleep_for(ms(50));
    auto t0 = steady::now();
    ::kill(child.pid, SIGKILL);
    std::vector<double> gone(gws.size(), -1);
    std::size_t left = gws.size();
    auto deadline = t0 + ms(15000);
    while (left > 0 && steady::now() < deadline) {
      for (std::size_t i = 0; i < gws.size(); ++i) {
        if (gone[i] >= 0)
          continue;
        auto has = has_instance(self, gws[i], service, ip, r, ms(2000));
        if (has && !*has) {
          gone[i] = ms_since(t0);
          --left;
        }
      }
      if (left > 0)
        std::this_thread::sleep_for(ms(1));
    }
    int status = 0;
    ::waitpid(child.pid, &status, 0);
    ::close(child.out_fd);
    if (left > 0) {
      fail("instance still present after 15 s");
      continue;
    }
    removal.push_back(*std::max_element(gone.begin(), gone.end()));
    for (std::size_t i = 0; i < o.nodes.size(); ++i)
      if (o.nodes[i] == session_node)
        removal_own.push_back(gone[i]);
  }
  out["rounds"] = rounds;
  out["failures"] = failures;
  if (!first_error.empty())
    out["first_error"] = first_error;
  if (!removal.empty()) {
    auto copy = removal;
    out["crash_removal_ms"] = round3(percentile(copy, 50));
    out["crash_removal_max_ms"] = round3(copy.back());
  }
  if (!removal_own.empty()) {
    auto copy = removal_own;
    out["crash_removal_session_node_ms"] = round3(percentile(copy, 50));
  }
  finish(out, failures == rounds ? 1 : 0);
}

} // namespace bench
