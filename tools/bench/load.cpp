// registry-bench: throughput subcommands (register, fill, query).

#include <unistd.h>

#include <cmath>
#include <thread>

#include "tools/bench/common.hpp"

namespace bench {

using namespace registry::wire;

namespace {

/// A per-process offset for client indexes, so that two bench processes on one node (e.g. a fill
/// and a register run) never use the same instance addresses.
std::uint64_t index_base() {
  return static_cast<std::uint64_t>(::getpid() % 256) * 50000;
}

std::vector<double> merge(const std::vector<std::shared_ptr<sample_box>>& boxes, double scale) {
  std::vector<double> all;
  for (auto& b : boxes) {
    std::lock_guard<std::mutex> guard{b->m};
    for (auto x : b->us)
      all.push_back(static_cast<double>(x) * scale);
  }
  return all;
}

void add_counters(json& out, run_counters& c) {
  out["refused"] = c.refused.load();
  out["failed"] = c.failed.load();
  std::lock_guard<std::mutex> guard{c.m};
  if (!c.first_error.empty())
    out["first_error"] = c.first_error;
}

double round1(double x) {
  return std::round(x * 10.0) / 10.0;
}

} // namespace

// -- register ---------------------------------------------------------------------------------

int cmd_register(const common_opts& o, std::size_t clients, std::uint32_t per_client,
                 std::uint32_t inflight, std::uint32_t services, std::uint32_t batch) {
  start_watchdog(std::chrono::seconds(o.max_s > 0 ? o.max_s : static_cast<std::int64_t>(o.duration_s) + 150),
                 "register");
  json out;
  out["cmd"] = "register";
  out["nodes"] = o.nodes.size();
  system_holder h{o.caf};
  auto& sys = *h.sys;
  auto gateways = connect_all(sys, o.nodes, out);
  auto baseline = instance_counts(sys, gateways);
  auto counters = std::make_shared<run_counters>();
  std::vector<std::shared_ptr<sample_box>> boxes;
  auto base = index_base();
  auto t_open = steady::now();
  auto all = open_sessions(
    sys, gateways, clients,
    [&](std::size_t i) {
      reg_plan p;
      p.client_index = base + i;
      p.instances = per_client;
      p.inflight = inflight;
      p.services = services;
      p.service_prefix = batch > 0 ? "bench-batch-" : "bench-reg-";
      p.batch = batch;
      return p;
    },
    counters, &boxes, 512, steady::now() + ms(90000));
  out["clients"] = clients;
  out["sessions"] = counters->sessions_ok.load();
  out["sessions_per_s"] = round1(static_cast<double>(counters->sessions_ok.load()) * 1000.0
                                 / std::max(1.0, ms_since(t_open)));
  if (counters->sessions_ok.load() == 0) {
    add_counters(out, *counters);
    out["error"] = "no session opened";
    finish(out, 1);
  }
  auto t0 = steady::now();
  for (auto& c : all)
    caf::anon_send(c, start_atom_v);
  auto sessions = counters->sessions_ok.load();
  wait_for([&] { return counters->clients_done.load() >= sessions; },
           t0 + std::chrono::duration_cast<ms>(std::chrono::duration<double>(o.duration_s)));
  counters->stop = true;
  auto elapsed_ms = ms_since(t0);
  auto ok = counters->ok.load();
  out["duration_s"] = round1(elapsed_ms / 100.0) / 10.0;
  out["inflight_total"] = sessions * inflight;
  out["registrations"] = ok;
  out["registrations_per_s"] = round1(static_cast<double>(ok) * 1000.0 / elapsed_ms);
  if (batch > 0) { // a registration is one batch here
    auto instances = counters->instances_ok.load();
    out["batch"] = batch;
    out["instances"] = instances;
    out["instances_per_s"] = round1(static_cast<double>(instances) * 1000.0 / elapsed_ms);
  }
  add_latency(out, "register", "ms", merge(boxes, 0.001));
  auto t_close = steady::now();
  close_sessions(all, counters, steady::now() + ms(60000));
  out["close_ms"] = round1(ms_since(t_close));
  out["settle_ms"] = settle(sys, gateways, baseline, ms(15000));
  add_counters(out, *counters);
  finish(out);
}

// -- fill -------------------------------------------------------------------------------------

int cmd_fill(const common_opts& o, std::size_t clients, std::uint64_t instances,
             std::uint32_t inflight, std::uint32_t services, double hold_s, pid_t rss_pid) {
  start_watchdog(std::chrono::seconds(static_cast<std::int64_t>(o.duration_s + hold_s) + 180), "fill");
  json out;
  out["cmd"] = "fill";
  system_holder h{o.caf};
  auto& sys = *h.sys;
  auto gateways = connect_all(sys, o.nodes, out);
  auto counters = std::make_shared<run_counters>();
  auto base = index_base();
  auto per_client = static_cast<std::uint32_t>((instances + clients - 1) / clients);
  std::uint64_t rss_before = 0;
  if (rss_pid > 0) {
    rss_before = rss_bytes(rss_pid);
    out["rss_before_bytes"] = rss_before;
  }
  auto t0 = steady::now();
  auto deadline = t0 + std::chrono::duration_cast<ms>(std::chrono::duration<double>(o.duration_s));
  auto all = open_sessions(
    sys, gateways, clients,
    [&](std::size_t i) {
      reg_plan p;
      p.client_index = base + i;
      auto first = static_cast<std::uint64_t>(i) * per_client;
      p.instances = first >= instances
                      ? 0
                      : static_cast<std::uint32_t>(std::min<std::uint64_t>(per_client,
                                                                           instances - first));
      p.inflight = inflight;
      p.services = services;
      p.service_prefix = "bench-fill-";
      p.request_timeout = ms(30000);
      return p;
    },
    counters, nullptr, 1024, deadline);
  out["clients"] = clients;
  out["sessions"] = counters->sessions_ok.load();
  out["open_ms"] = round1(ms_since(t0));
  auto t_reg = steady::now();
  for (auto& c : all)
    caf::anon_send(c, start_atom_v);
  auto sessions = counters->sessions_ok.load();
  bool complete = wait_for([&] { return counters->clients_done.load() >= sessions; }, deadline);
  // Out of time: stop sending and let what is in flight finish, so the node is idle when measured.
  counters->stop = true;
  wait_for([&] { return counters->finished.load() >= counters->sent.load(); },
           steady::now() + ms(60000));
  auto ok = counters->acked.load();
  out["complete"] = complete;
  out["instances"] = ok;
  out["fill_ms"] = round1(ms_since(t0));
  out["registrations_per_s"] = round1(static_cast<double>(ok) * 1000.0
                                      / std::max(1.0, ms_since(t_reg)));
  add_counters(out, *counters);
  if (rss_pid > 0 && ok > 0) {
    // Wait until the node counts every instance, let it settle, then read its RSS.
    caf::scoped_actor self{sys};
    wait_for(
      [&] {
        auto st = fetch_status(self, gateways.front(), ms(5000));
        return st && st->instances() >= ok;
      },
      steady::now() + ms(30000));
    std::this_thread::sleep_for(ms(1000));
    auto rss_after = rss_bytes(rss_pid);
    // Per instance the node holds: requests that timed out here may still have been carried out.
    auto st = fetch_status(self, gateways.front(), ms(5000));
    auto held = st ? std::max<std::uint64_t>(st->instances(), 1) : ok;
    out["node_instances"] = held;
    out["rss_after_bytes"] = rss_after;
    out["rss_bytes_per_instance"] =
      round1((static_cast<double>(rss_after) - static_cast<double>(rss_before))
             / static_cast<double>(held));
  }
  print_json(out);
  // Hold the sessions until killed (or the hold time ends).
  auto hold_until = steady::now() + std::chrono::duration_cast<ms>(std::chrono::duration<double>(hold_s));
  while (steady::now() < hold_until)
    std::this_thread::sleep_for(ms(100));
  finish(json{{"cmd", "fill"}, {"held", true}});
}

// -- query ------------------------------------------------------------------------------------

namespace {

struct query_state {
  static inline const char* name = "bench-query";
  caf::actor gateway;
  std::shared_ptr<const std::vector<envelope>> requests;
  std::size_t next = 0;
  std::uint32_t inflight = 0;
  std::uint32_t window = 1;
  std::shared_ptr<run_counters> counters;
  std::shared_ptr<sample_box> samples;
  std::string expect_kind;
};

using query_t = caf::stateful_actor<query_state>;

void query_pump(query_t* self) {
  auto& st = self->state;
  while (st.inflight < st.window && !st.counters->stop.load(std::memory_order_relaxed)) {
    auto& env = (*st.requests)[st.next++ % st.requests->size()];
    auto t0 = steady::now();
    ++st.inflight;
    self->request(st.gateway, ms(10000), query_atom_v, env)
      .then(
        [self, t0](envelope& reply) {
          auto& st = self->state;
          --st.inflight;
          if (reply.kind == st.expect_kind) {
            if (!st.counters->stop.load(std::memory_order_relaxed)) {
              ++st.counters->ok;
              auto us = std::chrono::duration<float, std::micro>(steady::now() - t0).count();
              std::lock_guard<std::mutex> guard{st.samples->m};
              st.samples->us.push_back(us);
            }
          } else {
            ++st.counters->refused;
            st.counters->note_error("query: unexpected reply " + reply.kind);
          }
          query_pump(self);
        },
        [self](caf::error& err) {
          auto& st = self->state;
          --st.inflight;
          ++st.counters->failed;
          st.counters->note_error("query: " + self->system().render(err));
          query_pump(self);
        });
  }
  if (st.inflight == 0 && st.counters->stop.load())
    self->quit();
}

caf::behavior query_actor(query_t* self, caf::actor gateway,
                          std::shared_ptr<const std::vector<envelope>> requests,
                          std::uint32_t window, std::shared_ptr<run_counters> counters,
                          std::shared_ptr<sample_box> samples, std::string expect_kind) {
  auto& st = self->state;
  st.gateway = std::move(gateway);
  st.requests = std::move(requests);
  st.window = window;
  st.counters = std::move(counters);
  st.samples = std::move(samples);
  st.expect_kind = std::move(expect_kind);
  self->set_default_handler(caf::drop);
  self->set_error_handler([](caf::error&) {});
  return {
    [self](start_atom) { query_pump(self); },
  };
}

} // namespace

/// Runs `actors` actors with `window` requests in flight each against `gateway` for the duration;
/// fills rate and latency fields into `out` with the given prefix.
void run_request_load(caf::actor_system& sys, const caf::actor& gateway,
                      std::shared_ptr<const std::vector<envelope>> requests,
                      const std::string& expect_kind, std::size_t actors, std::uint32_t window,
                      double duration_s, const std::string& prefix, json& out) {
  auto counters = std::make_shared<run_counters>();
  std::vector<std::shared_ptr<sample_box>> boxes;
  std::vector<caf::actor> handles;
  for (std::size_t i = 0; i < actors; ++i) {
    boxes.push_back(std::make_shared<sample_box>());
    handles.push_back(sys.spawn(query_actor, gateway, requests, window, counters, boxes.back(),
                                expect_kind));
  }
  auto t0 = steady::now();
  for (auto& a : handles)
    caf::anon_send(a, start_atom_v);
  std::this_thread::sleep_for(std::chrono::duration<double>(duration_s));
  counters->stop = true;
  auto elapsed_ms = ms_since(t0);
  auto ok = counters->ok.load();
  out["duration_s"] = round1(elapsed_ms / 100.0) / 10.0;
  out["inflight_total"] = actors * window;
  out[prefix + "_requests"] = ok;
  out[prefix + "_per_s"] = round1(static_cast<double>(ok) * 1000.0 / elapsed_ms);
  auto samples = merge(boxes, 1.0);
  std::vector<double> copy = samples;
  out[prefix + "_samples"] = samples.size();
  if (!samples.empty()) {
    out[prefix + "_p50_us"] = round1(percentile(copy, 50));
    out[prefix + "_p99_us"] = round1(percentile(copy, 99));
    out[prefix + "_max_us"] = round1(copy.back());
  }
  add_counters(out, *counters);
  // Let in-flight requests drain (bounded) before the caller ends the process.
  std::this_thread::sleep_for(ms(200));
}

int cmd_query(const common_opts& o, std::size_t actors, std::uint32_t inflight,
              std::uint32_t services, std::uint32_t instances_per_service) {
  start_watchdog(std::chrono::seconds(o.max_s > 0 ? o.max_s : static_cast<std::int64_t>(o.duration_s) + 90),
                 "query");
  json out;
  out["cmd"] = "query";
  system_holder h{o.caf};
  auto& sys = *h.sys;
  auto gateways = connect_all(sys, {o.nodes.front()}, out);
  // Setup: one session registers services x instances_per_service instances.
  auto counters = std::make_shared<run_counters>();
  auto tag = "bench-query-" + std::to_string(::getpid()) + "-";
  auto setup = open_sessions(
    sys, gateways, 1,
    [&](std::size_t) {
      reg_plan p;
      p.client_index = index_base() + 40000;
      p.instances = services * instances_per_service;
      p.inflight = 16;
      p.services = services;
      p.service_prefix = tag;
      return p;
    },
    counters, nullptr, 1, steady::now() + ms(15000));
  caf::anon_send(setup.front(), start_atom_v);
  if (!wait_for([&] { return counters->clients_done.load() >= 1; }, steady::now() + ms(30000))
      || counters->ok.load() != services * instances_per_service) {
    add_counters(out, *counters);
    out["error"] = "query setup failed: registered " + std::to_string(counters->ok.load());
    finish(out, 1);
  }
  auto requests = std::make_shared<std::vector<envelope>>();
  for (std::uint32_t s = 0; s < services; ++s)
    requests->push_back(pack(make_query(tag + std::to_string(s))));
  // Check one answer: every service holds its instances.
  {
    caf::scoped_actor self{sys};
    self->request(gateways.front(), ms(5000), query_atom_v, requests->front())
      .receive(
        [&](envelope& env) {
          v1::ServiceInfo info;
          if (unpack(env, info))
            out["hosts_per_reply"] = info.hosts_size();
          out["reply_bytes"] = env.payload.size();
        },
        [&](caf::error& err) { out["error"] = "check query: " + sys.render(err); });
  }
  out["services"] = services;
  run_request_load(sys, gateways.front(), requests, v1::ServiceInfo::descriptor()->full_name(),
                   actors, inflight, o.duration_s, "queries", out);
  close_sessions(setup, counters, steady::now() + ms(10000));
  // Rename the latency fields to the figure names.
  if (out.contains("queries_p50_us")) {
    out["query_p50_us"] = out["queries_p50_us"];
    out["query_p99_us"] = out["queries_p99_us"];
  }
  finish(out);
}

} // namespace bench
