// fault_load: the load process of the fault tier (test/fault/). One CAF system holds many session
// clients and heartbeat clients against a cluster, speaking the client protocol
// (messages/PROTOCOL.md) directly, so thousands of clients fit in one process.
//
// * A session client holds a session with one node and keeps a set of instance slots registered.
//   When its session is lost (node killed, frozen, or refusing) it moves to the next node, opens a
//   new session and registers its wanted instances again (redo). With --churn-ms it deregisters one
//   instance and registers another about every churn period while the faults run.
// * A heartbeat client beats one instance to a node every --beat-ms and moves to the next node when
//   a beat fails; a beat re-creates an instance the cluster dropped.
//
// Instance addresses name their process: session instances are 10.P.x.y:port, heartbeat instances
// 11.P.x.y:1, with P = --index. The process prints "ready" once every client holds its instances.
// SIGUSR1 stops the churn (SIGUSR2 resumes it); once every client holds exactly what it wants, the process writes the
// wanted instances ("SERVICE IP:PORT" per line) to --state and prints "settled N". SIGTERM ends it
// with a clean close of every session; SIGKILL makes its clients dead clients.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "config/defaults.hpp"
#include "messages/registry.pb.h"
#include "messages/type_ids.hpp"

namespace {

using namespace registry::wire;
namespace v1 = registry::v1;
namespace limits = registry::defaults::fault;
using ms = std::chrono::milliseconds;

struct load_options {
  std::vector<std::string> nodes;
  int index = 0;
  std::size_t sessions = 4;
  std::size_t instances = 3;   ///< wanted at the start, per session
  std::size_t slots = 5;       ///< slots a session may flip between (>= instances)
  std::size_t beats = 2;
  std::int64_t beat_ms = 200;
  std::size_t services = 8;
  std::int64_t churn_ms = 0;
  std::uint64_t seed = 1;
  std::string state_file;
  std::int64_t hb_ms = 200;
  std::int64_t timeout_ms = 1000;
  int threads = 2;
  std::int64_t wave = 200;     ///< sessions opening at once at the start
};

/// What every client publishes for main(): whether it holds what it wants, and what it wants.
struct shared_box {
  std::atomic<bool> quiesce{false};
  std::mutex m;
  std::vector<char> settled;                  ///< per client
  std::vector<std::vector<std::string>> held; ///< per client: "SERVICE IP:PORT"
  std::atomic<std::size_t> settled_count{0};
  std::atomic<std::size_t> opened{0};         ///< session clients that opened a session once
  std::atomic<std::size_t> initial_done{0};   ///< session clients that held their first instances

  /// Requests in flight over the whole process are bounded: a client that finds no permit queues
  /// itself and gets a retry_atom when one is released.
  std::mutex permits_m;
  std::size_t permits_used = 0;
  std::deque<caf::actor> waiting;

  bool acquire(const caf::actor& who, bool& queued) {
    std::lock_guard<std::mutex> guard{permits_m};
    if (permits_used < limits::load_inflight_per_process_max) {
      ++permits_used;
      return true;
    }
    if (!queued) {
      queued = true;
      waiting.push_back(who);
    }
    return false;
  }

  void release() {
    caf::actor next;
    {
      std::lock_guard<std::mutex> guard{permits_m};
      --permits_used;
      if (!waiting.empty()) {
        next = std::move(waiting.front());
        waiting.pop_front();
      }
    }
    if (next)
      caf::anon_send(next, retry_atom_v);
  }

  void publish(std::size_t client, bool ok, std::vector<std::string> wanted) {
    std::lock_guard<std::mutex> guard{m};
    held[client] = std::move(wanted);
    if (settled[client] != static_cast<char>(ok)) {
      settled[client] = ok;
      if (ok)
        ++settled_count;
      else
        --settled_count;
    }
  }
};

std::string service_name(std::size_t k) {
  return "fault-svc-" + std::to_string(k);
}

std::string ip_of(int first, int index, std::size_t client) {
  return std::to_string(first) + "." + std::to_string(index) + "." + std::to_string((client >> 8) & 255)
         + "." + std::to_string(client & 255);
}

v1::Instance make_instance(const std::string& ip, std::uint32_t port) {
  v1::Instance x;
  x.set_ip(ip);
  x.set_port(port);
  x.set_weight(1.0);
  x.set_healthy(true);
  x.set_enabled(true);
  x.set_ephemeral(true);
  x.set_cluster("DEFAULT");
  return x;
}

void set_service(v1::ServiceRef* ref, const std::string& service) {
  ref->set_namespace_id("public");
  ref->set_group("DEFAULT_GROUP");
  ref->set_service(service);
}

bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos)
    return false;
  host = text.substr(0, colon);
  port = static_cast<std::uint16_t>(std::stoi(text.substr(colon + 1)));
  return true;
}

// -- session client --------------------------------------------------------------------------

/// One instance slot: what the client wants and what its current session holds.
struct slot {
  bool want = false;
  std::int8_t have = 0; ///< 0 absent, 1 present, 2 unknown (a request failed: resend)
  bool busy = false;
};

struct session_state {
  static inline const char* name = "fault-session";
  std::shared_ptr<const load_options> opts;
  std::shared_ptr<shared_box> box;
  std::size_t client = 0;
  std::string ip;
  std::size_t node_idx = 0;
  std::uint64_t gen = 0;
  caf::actor gateway;
  caf::actor session;
  std::vector<slot> slots;
  std::size_t inflight = 0;
  bool retry_armed = false;
  bool queued = false;     ///< waiting for a permit (see shared_box::acquire)
  bool connecting = false; ///< a connect + hello is in flight
  bool opened_once = false;
  bool initial_done = false;
  std::minstd_rand rng;
};

using session_actor = caf::stateful_actor<session_state>;

std::string slot_service(const session_state& st, std::size_t k) {
  return service_name((st.client * 7 + k) % st.opts->services);
}

void publish(session_actor* self) {
  auto& st = self->state;
  bool holds_all = st.session && st.inflight == 0;
  std::vector<std::string> wanted;
  for (std::size_t k = 0; k < st.slots.size(); ++k) {
    auto& s = st.slots[k];
    if (s.busy || s.have != static_cast<std::int8_t>(s.want))
      holds_all = false;
    if (s.want)
      wanted.push_back(slot_service(st, k) + " " + st.ip + ":" + std::to_string(1 + k));
  }
  if (holds_all && !st.initial_done) {
    st.initial_done = true;
    ++st.box->initial_done;
  }
  st.box->publish(st.client, holds_all && st.box->quiesce.load(), std::move(wanted));
}

void reconcile(session_actor* self);

void arm_retry(session_actor* self) {
  auto& st = self->state;
  if (st.retry_armed)
    return;
  st.retry_armed = true;
  self->delayed_send(self, ms(limits::load_retry_delay_ms), retry_atom_v);
}

/// The session is lost or could not be opened: forget what it held and move to the next node.
void lose(session_actor* self, std::uint64_t gen) {
  auto& st = self->state;
  if (gen != st.gen)
    return;
  ++st.gen;
  if (st.session)
    self->demonitor(st.session);
  if (st.gateway)
    self->demonitor(st.gateway);
  st.session = nullptr;
  st.gateway = nullptr;
  st.inflight = 0;
  for (auto& s : st.slots) {
    s.have = 0;
    s.busy = false;
  }
  st.connecting = false;
  ++st.node_idx;
  publish(self);
  arm_retry(self);
}

void open_session(session_actor* self) {
  auto& st = self->state;
  if (st.connecting || !st.box->acquire(caf::actor_cast<caf::actor>(self), st.queued))
    return;
  st.connecting = true;
  auto gen = ++st.gen;
  std::string host;
  std::uint16_t port = 0;
  split_host_port(st.opts->nodes[st.node_idx % st.opts->nodes.size()], host, port);
  auto mm = self->system().middleman().actor_handle();
  self->request(mm, ms(limits::load_connect_timeout_ms), caf::connect_atom_v, host, port)
    .then(
      [self, gen](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
        auto& st = self->state;
        if (gen != st.gen) {
          st.box->release();
          return;
        }
        auto gw = caf::actor_cast<caf::actor>(ptr);
        if (!gw) {
          st.box->release();
          lose(self, gen);
          return;
        }
        v1::Hello hello;
        hello.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
        hello.set_client_name("fault-load");
        self->request(gw, ms(limits::load_request_timeout_ms), hello_atom_v, pack(hello),
                      caf::actor_cast<caf::actor>(self))
          .then(
            [self, gen, gw](envelope& reply, caf::actor& session) {
              auto& st = self->state;
              st.box->release();
              if (gen != st.gen)
                return;
              st.connecting = false;
              if (!session || !holds<v1::Welcome>(reply)) {
                lose(self, gen);
                return;
              }
              st.gateway = gw;
              st.session = session;
              self->monitor(st.gateway);
              self->monitor(st.session);
              if (!st.opened_once) {
                st.opened_once = true;
                ++st.box->opened;
              }
              reconcile(self);
            },
            [self, gen](caf::error&) {
              self->state.box->release();
              lose(self, gen);
            });
      },
      [self, gen](caf::error&) {
        self->state.box->release();
        lose(self, gen);
      });
}

void send_slot(session_actor* self, std::size_t k) {
  auto& st = self->state;
  auto& s = st.slots[k];
  s.busy = true;
  ++st.inflight;
  bool op = s.want;
  auto gen = st.gen;
  auto x = make_instance(st.ip, static_cast<std::uint32_t>(1 + k));
  auto on_reply = [self, gen, k, op](envelope& reply) {
    auto& st = self->state;
    st.box->release();
    if (gen != st.gen)
      return;
    auto& s = st.slots[k];
    s.busy = false;
    --st.inflight;
    v1::Error err;
    if (holds<v1::Ack>(reply)) {
      s.have = op;
    } else if (!op && unpack(reply, err) && err.code() == v1::Error::NOT_FOUND) {
      s.have = 0;
    } else {
      s.have = 2;
      arm_retry(self);
    }
    reconcile(self);
  };
  auto on_error = [self, gen, k](caf::error&) {
    auto& st = self->state;
    st.box->release();
    if (gen != st.gen)
      return;
    st.slots[k].busy = false;
    st.slots[k].have = 2;
    --st.inflight;
    arm_retry(self);
    publish(self);
  };
  if (op) {
    v1::RegisterRequest req;
    set_service(req.mutable_service(), slot_service(st, k));
    *req.mutable_instance() = x;
    self->request(st.session, ms(limits::load_request_timeout_ms), reg_atom_v, pack(req))
      .then(on_reply, on_error);
  } else {
    v1::DeregisterRequest req;
    set_service(req.mutable_service(), slot_service(st, k));
    req.set_ip(x.ip());
    req.set_port(x.port());
    req.set_cluster(x.cluster());
    self->request(st.session, ms(limits::load_request_timeout_ms), dereg_atom_v, pack(req))
      .then(on_reply, on_error);
  }
}

void reconcile(session_actor* self) {
  auto& st = self->state;
  if (st.session)
    for (std::size_t k = 0; k < st.slots.size()
                            && st.inflight < limits::load_inflight_per_session_max;
         ++k) {
      auto& s = st.slots[k];
      if (s.busy || s.have == static_cast<std::int8_t>(s.want))
        continue;
      if (!st.box->acquire(caf::actor_cast<caf::actor>(self), st.queued))
        break;
      send_slot(self, k);
    }
  publish(self);
}

caf::behavior session_client(session_actor* self, std::shared_ptr<const load_options> opts,
                             std::shared_ptr<shared_box> box, std::size_t client) {
  auto& st = self->state;
  st.opts = opts;
  st.box = box;
  st.client = client;
  st.ip = ip_of(10, opts->index, client);
  st.node_idx = client;
  st.rng.seed(static_cast<unsigned>(opts->seed * 1000003 + client));
  st.slots.resize(opts->slots);
  for (std::size_t k = 0; k < opts->instances; ++k)
    st.slots[k].want = true;
  self->set_default_handler(caf::drop);
  self->set_error_handler([](caf::error&) {});
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if ((st.session && dm.source == st.session.address())
        || (st.gateway && dm.source == st.gateway.address()))
      lose(self, st.gen);
  });
  open_session(self);
  if (opts->churn_ms > 0)
    self->delayed_send(self, ms(1 + st.rng() % (2 * opts->churn_ms)), tick_atom_v);
  return {
    // A retry after a delay (arm_retry) or a permit that became free (shared_box::release).
    [self](retry_atom) {
      auto& st = self->state;
      st.retry_armed = false;
      st.queued = false;
      if (!st.session)
        open_session(self);
      else
        reconcile(self);
    },
    [self](tick_atom) {
      auto& st = self->state;
      if (st.box->quiesce.load()) {
        publish(self);
        return;
      }
      // Swap a wanted slot for an unwanted one, so the instance count stays the same.
      auto n = st.slots.size();
      auto from = st.rng() % n;
      auto to = st.rng() % n;
      for (std::size_t i = 0; i < n && !st.slots[from].want; ++i)
        from = (from + 1) % n;
      for (std::size_t i = 0; i < n && st.slots[to].want; ++i)
        to = (to + 1) % n;
      st.slots[from].want = false;
      st.slots[to].want = true;
      reconcile(self);
      self->delayed_send(self, ms(1 + st.rng() % (2 * st.opts->churn_ms)), tick_atom_v);
    },
    [self](flush_atom) { publish(self); },
    [](push_atom, const envelope&) { return pack(v1::Ack{}); },
  };
}

// -- heartbeat client ------------------------------------------------------------------------

struct beat_state {
  static inline const char* name = "fault-beat";
  std::shared_ptr<const load_options> opts;
  std::shared_ptr<shared_box> box;
  std::size_t client = 0; ///< index in the shared box (after the session clients)
  std::size_t node_idx = 0;
  caf::actor gateway;
  std::string line; ///< "SERVICE IP:1"
  v1::BeatRequest beat;
  bool acked = false;
  bool connecting = false;
  bool beating = false; ///< a beat is in flight: the next one waits (no pile-up on a slow node)
};

using beat_actor = caf::stateful_actor<beat_state>;

void beat_publish(beat_actor* self) {
  auto& st = self->state;
  st.box->publish(st.client, st.box->quiesce.load() && st.acked, {st.line});
}

/// Why a beat failed, on stderr (at most this many lines per process: a failing run keeps the
/// output and the reasons say where beats went wrong).
void report_beat_failure(beat_actor* self, const std::string& why) {
  static std::atomic<int> lines{0};
  if (lines.fetch_add(1) >= 500)
    return;
  auto& st = self->state;
  std::fprintf(stderr, "fault_load %d: beat of %s at node %zu failed: %s\n", st.opts->index,
               st.line.c_str(), st.node_idx % st.opts->nodes.size(), why.c_str());
}

void beat_once(beat_actor* self) {
  auto& st = self->state;
  auto fail = [self] {
    auto& st = self->state;
    st.gateway = nullptr;
    st.acked = false;
    ++st.node_idx;
    beat_publish(self);
  };
  if (!st.gateway) {
    if (st.connecting)
      return;
    st.connecting = true;
    std::string host;
    std::uint16_t port = 0;
    split_host_port(st.opts->nodes[st.node_idx % st.opts->nodes.size()], host, port);
    auto mm = self->system().middleman().actor_handle();
    self->request(mm, ms(limits::load_connect_timeout_ms), caf::connect_atom_v, host, port)
      .then(
        [self, fail](const caf::node_id&, caf::strong_actor_ptr& ptr,
                     const std::set<std::string>&) {
          self->state.connecting = false;
          self->state.gateway = caf::actor_cast<caf::actor>(ptr);
          if (!self->state.gateway)
            fail();
        },
        [self, fail](caf::error&) {
          self->state.connecting = false;
          fail();
        });
    return;
  }
  if (st.beating)
    return;
  st.beating = true;
  auto gw = st.gateway;
  self->request(gw, ms(limits::load_request_timeout_ms), beat_atom_v, pack(st.beat))
    .then(
      [self, gw, fail](envelope& reply) {
        self->state.beating = false;
        if (self->state.gateway != gw)
          return;
        if (holds<v1::Ack>(reply)) {
          self->state.acked = true;
          beat_publish(self);
        } else {
          v1::Error err;
          report_beat_failure(self, unpack(reply, err)
                                      ? v1::Error::Code_Name(err.code()) + " " + err.message()
                                      : std::string{"an unexpected reply"});
          fail();
        }
      },
      [self, gw, fail](caf::error& err) {
        self->state.beating = false;
        if (self->state.gateway == gw) {
          report_beat_failure(self, self->system().render(err));
          fail();
        }
      });
}

caf::behavior beat_client(beat_actor* self, std::shared_ptr<const load_options> opts,
                          std::shared_ptr<shared_box> box, std::size_t client, std::size_t beat) {
  auto& st = self->state;
  st.opts = opts;
  st.box = box;
  st.client = client;
  st.node_idx = beat;
  auto ip = ip_of(11, opts->index, beat);
  auto service = service_name(beat % opts->services);
  st.line = service + " " + ip + ":1";
  set_service(st.beat.mutable_service(), service);
  *st.beat.mutable_instance() = make_instance(ip, 1);
  self->set_default_handler(caf::drop);
  self->set_error_handler([](caf::error&) {});
  self->send(self, tick_atom_v);
  return {
    [self](tick_atom) {
      beat_once(self);
      self->delayed_send(self, ms(self->state.opts->beat_ms), tick_atom_v);
    },
    [self](flush_atom) { beat_publish(self); },
  };
}

bool write_state(const std::string& path, shared_box& box, std::size_t& count) {
  std::ostringstream out;
  count = 0;
  {
    std::lock_guard<std::mutex> guard{box.m};
    for (auto& lines : box.held)
      for (auto& line : lines) {
        out << line << '\n';
        ++count;
      }
  }
  auto tmp = path + ".tmp";
  {
    std::ofstream f{tmp, std::ios::trunc};
    f << out.str();
    if (!f)
      return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

} // namespace

int main(int argc, char** argv) {
  auto opts = std::make_shared<load_options>();
  std::string nodes;
  CLI::App app{"fault_load: session and heartbeat clients for the fault tier"};
  app.add_option("--nodes", nodes, "HOST:PORT[,HOST:PORT...]")->required();
  app.add_option("--index", opts->index, "process index P (addresses 10.P.x.y and 11.P.x.y)")
    ->check(CLI::Range(0, 255));
  app.add_option("--sessions", opts->sessions, "session clients");
  app.add_option("--instances", opts->instances, "instances each session client wants at first");
  app.add_option("--slots", opts->slots, "instance slots a session client flips between");
  app.add_option("--beats", opts->beats, "heartbeat clients");
  app.add_option("--beat-ms", opts->beat_ms, "beat period")->check(CLI::PositiveNumber);
  app.add_option("--services", opts->services, "services the instances spread over")
    ->check(CLI::PositiveNumber);
  app.add_option("--churn-ms", opts->churn_ms, "mean period of a session client's flips (0 = none)");
  app.add_option("--seed", opts->seed, "seed of the churn");
  app.add_option("--state", opts->state_file, "where SIGUSR1 writes the wanted instances")->required();
  app.add_option("--hb-ms", opts->hb_ms, "CAF heartbeat interval (= nodes' session settings)");
  app.add_option("--timeout-ms", opts->timeout_ms, "CAF connection timeout (= nodes' session settings)");
  app.add_option("--threads", opts->threads, "CAF scheduler threads");
  app.add_option("--wave", opts->wave, "sessions opening at once at the start");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::stringstream list{nodes};
  for (std::string item; std::getline(list, item, ',');)
    if (!item.empty())
      opts->nodes.push_back(item);
  auto fail_usage = [](const std::string& field, const std::string& why) {
    std::cerr << "fault_load: " << field << ": " << why << "\n";
    return 2;
  };
  if (opts->nodes.empty())
    return fail_usage("--nodes", "no HOST:PORT given");
  if (opts->slots < opts->instances)
    return fail_usage("--slots", "must be >= --instances");
  if (opts->slots > limits::load_instances_per_session_max)
    return fail_usage("--slots", "at most " + std::to_string(limits::load_instances_per_session_max));
  if (opts->sessions > 65536 || opts->beats > 65536)
    return fail_usage("--sessions", "at most 65536 session and 65536 heartbeat clients");

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGUSR2);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  caf::actor_system_config cfg;
  configure_system(cfg, opts->hb_ms, opts->timeout_ms, opts->threads);
  caf::actor_system sys{cfg};
  auto box = std::make_shared<shared_box>();
  auto total = opts->sessions + opts->beats;
  box->settled.assign(total, 0);
  box->held.resize(total);
  std::vector<caf::actor> clients;
  std::shared_ptr<const load_options> copts = opts;
  auto wait_for = [](const std::function<bool()>& cond, std::int64_t limit_ms) {
    auto deadline = std::chrono::steady_clock::now() + ms(limit_ms);
    while (!cond()) {
      if (std::chrono::steady_clock::now() >= deadline)
        return false;
      std::this_thread::sleep_for(ms(5));
    }
    return true;
  };
  for (std::size_t i = 0; i < opts->sessions; ++i) {
    clients.push_back(sys.spawn(session_client, copts, box, i));
    // Bounded start: at most `wave` sessions opening at once.
    if (clients.size() >= box->opened.load() + static_cast<std::size_t>(opts->wave))
      wait_for([&] { return clients.size() < box->opened.load() + static_cast<std::size_t>(opts->wave); },
               limits::load_connect_timeout_ms + limits::load_request_timeout_ms);
  }
  for (std::size_t b = 0; b < opts->beats; ++b)
    clients.push_back(sys.spawn(beat_client, copts, box, opts->sessions + b, b));

  // "ready": every session client held all its first instances once.
  bool said_ready = false;
  auto next_progress = std::chrono::steady_clock::now();
  for (;;) {
    if (std::chrono::steady_clock::now() >= next_progress) {
      // Progress on stderr, for a harness message when the start takes too long.
      std::size_t used = 0, waiting = 0;
      {
        std::lock_guard<std::mutex> guard{box->permits_m};
        used = box->permits_used;
        waiting = box->waiting.size();
      }
      std::fprintf(stderr, "fault_load %d: %zu of %zu sessions opened, %zu hold their first "
                   "instances; %zu requests in flight, %zu clients waiting\n", opts->index,
                   box->opened.load(), opts->sessions, box->initial_done.load(), used, waiting);
      std::fflush(stderr);
      next_progress += std::chrono::seconds(5);
    }
    if (!said_ready && box->initial_done.load() == opts->sessions) {
      std::printf("ready\n");
      std::fflush(stdout);
      said_ready = true;
    }
    timespec wait{0, 100 * 1000 * 1000};
    int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig == SIGTERM || sig == SIGINT)
      break;
    if (sig == SIGUSR2) {
      // Resume the churn: the session clients' tick chains ended while quiescent.
      box->quiesce = false;
      if (opts->churn_ms > 0)
        for (std::size_t i = 0; i < opts->sessions; ++i)
          caf::anon_send(clients[i], tick_atom_v);
      continue;
    }
    if (sig != SIGUSR1)
      continue;
    box->quiesce = true;
    auto pending = [&](std::size_t& sessions_pending, std::size_t& beats_pending) {
      sessions_pending = beats_pending = 0;
      std::lock_guard<std::mutex> guard{box->m};
      for (std::size_t i = 0; i < total; ++i)
        if (!box->settled[i])
          ++(i < opts->sessions ? sessions_pending : beats_pending);
    };
    // Clients re-publish on their next event; flush makes idle ones publish now. Every 5 s the
    // stderr says who is still missing (a slow settle is the load's redo, or beats that fail).
    auto settle_t0 = std::chrono::steady_clock::now();
    auto next_settle_report = settle_t0 + std::chrono::seconds(5);
    auto settled = [&] {
      for (auto& c : clients)
        caf::anon_send(c, flush_atom_v);
      auto done = wait_for([&] { return box->settled_count.load() == total; }, 500);
      if (!done && std::chrono::steady_clock::now() >= next_settle_report) {
        next_settle_report += std::chrono::seconds(5);
        std::size_t sessions_pending = 0, beats_pending = 0, used = 0, waiting = 0;
        pending(sessions_pending, beats_pending);
        {
          std::lock_guard<std::mutex> guard{box->permits_m};
          used = box->permits_used;
          waiting = box->waiting.size();
        }
        std::fprintf(stderr, "fault_load %d: settling for %lld ms: %zu session clients and %zu "
                     "heartbeat clients do not hold what they want; %zu requests in flight, %zu "
                     "clients waiting\n", opts->index,
                     static_cast<long long>(std::chrono::duration_cast<ms>(
                       std::chrono::steady_clock::now() - settle_t0).count()),
                     sessions_pending, beats_pending, used, waiting);
        std::fflush(stderr);
      }
      return done;
    };
    bool ok = wait_for(settled, limits::recovery_timeout_ms);
    std::size_t count = 0;
    if (!write_state(opts->state_file, *box, count)) {
      std::fprintf(stderr, "fault_load: --state: cannot write %s\n", opts->state_file.c_str());
      std::fflush(stderr);
      std::_Exit(1);
    }
    std::size_t sessions_pending = 0, beats_pending = 0;
    pending(sessions_pending, beats_pending);
    if (ok)
      std::printf("settled %zu\n", count);
    else
      std::printf("unsettled %zu: %zu session clients and %zu heartbeat clients do not hold what "
                  "they want\n", count, sessions_pending, beats_pending);
    std::fflush(stdout);
  }
  // A clean close would take one round trip per session; the harness only needs the process gone.
  std::fflush(stdout);
  std::_Exit(0);
}
