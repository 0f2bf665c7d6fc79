// registryctl: the command-line client of registryd, built on the client library
// (tools/client/registry_client.hpp).
//
//   registryctl [--node HOST:PORT[,HOST:PORT...]] [--json] [--cache-dir DIR] [--timeout-ms N]
//               [--tls | --tls-ca FILE --tls-cert FILE --tls-key FILE]
//               [--user USER --password PASSWORD | --token-file FILE] COMMAND
//
// Exit codes: 0 success; 1 the node refused (its reason and field on stderr); 2 usage errors (bad
// arguments, caught before any node is contacted); 3 no node answered (the addresses tried on stderr).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "config/defaults.hpp"
#include "config/node_config.hpp"
#include "config/tls.hpp"
#include "messages/validate.hpp"
#include "tools/client/registry_client.hpp"
#include "tools/registryctl/cli.hpp"

namespace {

using namespace registry;
using registry::client::naming_client;
using json = nlohmann::ordered_json;
using namespace registry::ctl;

enum exit_code : int { exit_ok = 0, exit_refused = 1, exit_usage = 2, exit_unavailable = 3 };

// -- signals ----------------------------------------------------------------------------------------

/// SIGINT/SIGTERM are blocked in every thread and taken by one sigwait thread, which wakes whoever
/// waits here; a command can also end the wait itself (subscribe --count).
struct stop_signal {
  std::mutex mtx;
  std::condition_variable cv;
  bool stopped = false;

  void trigger() {
    {
      std::lock_guard<std::mutex> guard{mtx};
      stopped = true;
    }
    cv.notify_all();
  }

  /// Waits until stopped; false on timeout.
  bool wait_for(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, d, [this] { return stopped; });
  }

  void wait() {
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait(guard, [this] { return stopped; });
  }
};

stop_signal& stop() {
  static stop_signal instance;
  return instance;
}

/// Blocks SIGINT and SIGTERM before any thread exists (threads inherit the mask) and starts the
/// thread that waits for them.
void install_signal_thread() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int signo = 0;
    sigwait(&set, &signo);
    stop().trigger();
  }).detach();
}

// -- output -----------------------------------------------------------------------------------------

std::mutex& out_mutex() {
  static std::mutex mtx;
  return mtx;
}

/// One line (or block) to stdout, flushed at once: tests wait for lines.
void print(const std::string& text) {
  std::lock_guard<std::mutex> guard{out_mutex()};
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (text.empty() || text.back() != '\n')
    std::fputc('\n', stdout);
  std::fflush(stdout);
}

void print_err(const std::string& text) {
  std::lock_guard<std::mutex> guard{out_mutex()};
  std::fprintf(stderr, "registryctl: %s\n", text.c_str());
  std::fflush(stderr);
}

std::string format_weight(double w) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", w);
  return buf;
}

std::string format_host(const instance& h) {
  std::string meta;
  for (const auto& [k, v] : h.metadata)
    meta += (meta.empty() ? "" : ",") + k + "=" + v;
  return "  " + h.ip + ":" + std::to_string(h.port) + "  cluster=" + h.cluster +
         "  weight=" + format_weight(h.weight) + "  healthy=" + (h.healthy ? "true" : "false") +
         "  enabled=" + (h.enabled ? "true" : "false") +
         "  ephemeral=" + (h.ephemeral ? "true" : "false") + "  metadata={" + meta + "}";
}

std::string format_info(const service_info& x, const std::string& note = {}) {
  std::string text = x.key.grouped_name() + " (namespace " + x.key.namespace_id +
                     (x.clusters.empty() ? "" : ", clusters " + x.clusters) + "): " +
                     std::to_string(x.hosts.size()) + " instance(s)";
  if (x.reach_protection_threshold)
    text += ", protection threshold reached (unhealthy instances shown as healthy)";
  if (!note.empty())
    text += " " + note;
  text += "\n";
  for (const auto& h : x.hosts)
    text += format_host(h) + "\n";
  return text;
}

// -- commands ---------------------------------------------------------------------------------------

/// The flag that sets a field of registry::tls_settings.
std::string tls_flag(const std::string& field) {
  if (field == "ca_file")
    return "--tls-ca";
  if (field == "certificate")
    return "--tls-cert";
  if (field == "key")
    return "--tls-key";
  return "--tls-key-passphrase-file";
}

/// The TLS options from the flags, with every file checked as CAF will load it (usage errors name
/// the flag).
client::tls_options make_tls_options(const global_args& g) {
  tls_settings tls;
  tls.enabled = g.tls || !g.tls_ca.empty() || !g.tls_cert.empty() || !g.tls_key.empty() ||
                !g.tls_key_passphrase_file.empty();
  tls.ca_file = g.tls_ca;
  tls.certificate = g.tls_cert;
  tls.key = g.tls_key;
  if (!g.tls_key_passphrase_file.empty()) {
    if (g.tls_key.empty())
      throw usage_error{"--tls-key-passphrase-file: given without --tls-key"};
    auto problem = read_passphrase_file(g.tls_key_passphrase_file, tls.key_passphrase);
    if (!problem.empty())
      throw usage_error{"--tls-key-passphrase-file: " + problem};
  }
  if (auto problem = check_tls_files(tls, tls_role::client))
    throw usage_error{tls_flag(problem->field) + ": " + problem->problem};
  client::tls_options result;
  result.enabled = tls.enabled;
  result.ca_file = tls.ca_file;
  result.certificate = tls.certificate;
  result.key = tls.key;
  result.key_passphrase = tls.key_passphrase;
  return result;
}

/// The status line about the node's links.
std::string tls_text(const std::string& mode) {
  if (mode == "off")
    return "off (plain TCP links)";
  if (mode == "anonymous")
    return "anonymous (TLS links, encrypted, not authenticated)";
  if (mode == "certificate")
    return "certificate (TLS links, mutual certificate authentication)";
  return mode.empty() ? std::string{"unknown (the node does not say)"} : mode;
}

client::options make_options(const global_args& g, const std::string& namespace_id) {
  client::options o;
  o.servers = parse_nodes(g.nodes);
  o.namespace_id = namespace_id;
  o.client_name = "registryctl";
  if (g.timeout_ms <= 0)
    throw usage_error{"bad --timeout-ms " + std::to_string(g.timeout_ms) + ": must be > 0"};
  o.request_timeout = std::chrono::milliseconds(g.timeout_ms);
  o.connect_timeout =
    std::chrono::milliseconds(std::min<int>(g.timeout_ms, defaults::connect_timeout_ms));
  o.cache_dir = g.cache_dir;
  // The same CAF heartbeats as the nodes, or one side drops the other while idle.
  o.update_interval = std::chrono::milliseconds(g.update_interval_ms);
  o.redo_retry_interval = std::chrono::milliseconds(g.redo_retry_ms);
  o.caf_heartbeat_interval = std::chrono::milliseconds(g.caf_heartbeat_ms);
  o.caf_connection_timeout = std::chrono::milliseconds(g.caf_timeout_ms);
  o.check_locally = !g.no_local_check;
  o.tls = make_tls_options(g);
  if (g.user.empty() != g.password.empty())
    throw usage_error{g.user.empty() ? "--password: given without --user"
                                     : "--user: given without --password"};
  if (!g.token_file.empty() && !g.user.empty())
    throw usage_error{"--token-file: give either --token-file or --user and --password"};
  o.username = g.user;
  o.password = g.password;
  if (!g.token_file.empty()) {
    // Read as a passphrase file is: one line, its newline dropped, never empty.
    if (auto problem = read_passphrase_file(g.token_file, o.access_token); !problem.empty())
      throw usage_error{"--token-file: " + problem};
  }
  return o;
}

std::string describe(const instance_args& a) {
  std::string addresses;
  for (const auto& x : a.addresses.empty() ? std::vector<std::string>{a.address} : a.addresses)
    addresses += (addresses.empty() ? "" : " ") + x;
  return a.service + " " + addresses + " (namespace " + a.namespace_id + ", group " + a.group +
         ", cluster " + a.cluster + ")";
}

/// Maps a library error to the exit code, printing the reason.
int report(const client::error& e) {
  std::string field = e.field().empty() ? "" : " (field '" + e.field() + "')";
  if (e.from_node()) {
    print_err(std::string{"the node refused: "} + e.what() + field);
    return exit_refused;
  }
  if (e.code() == client::error_code::invalid_argument) {
    print_err(std::string{"invalid argument"} + field + ": " + e.what());
    return exit_usage;
  }
  if (e.code() == client::error_code::unavailable) {
    print_err(e.what());
    return exit_unavailable;
  }
  print_err(e.what());
  return exit_refused;
}

/// Runs `fn` with a client; the client is closed (bye) before returning, bounded by a watchdog.
template <class F>
int with_client(const global_args& g, const std::string& namespace_id, F fn,
                std::function<void(const client::session_event&)> on_session = {}) {
  auto opts = make_options(g, namespace_id);
  opts.on_session = std::move(on_session);
  auto c = std::make_unique<naming_client>(opts);
  int code = exit_ok;
  try {
    code = fn(*c);
  } catch (const client::error& e) {
    code = report(e);
  }
  std::fflush(stdout);
  std::fflush(stderr);
  // Closing sends bye and stops CAF; never let a stuck shutdown keep the process (or a test) waiting.
  std::thread([code, ms = g.timeout_ms] {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms + 3000));
    std::fflush(stdout);
    std::_Exit(code);
  }).detach();
  c.reset();
  return code;
}

/// Registers the batch; an error about one instance ("instances[3].port") names its argument.
void register_batch(naming_client& c, const instance_args& a, const std::vector<instance>& xs) {
  try {
    c.register_instances(a.service, a.group, xs);
  } catch (const client::error& e) {
    const std::string prefix = "instances[";
    if (e.field().rfind(prefix, 0) != 0)
      throw;
    auto index = std::strtoul(e.field().c_str() + prefix.size(), nullptr, 10);
    if (index >= a.addresses.size())
      throw;
    throw client::error(e.code(), e.field(),
                        "IP:PORT '" + a.addresses[index] + "': " + e.what(), e.from_node());
  }
}

int cmd_register(const global_args& g, const instance_args& a) {
  auto xs = make_instances(a);
  auto x = xs.front();
  bool batch = xs.size() > 1; // several IP:PORT: one batch through a session (--hold)
  if (a.persistent) {
    x.ephemeral = false;
    return with_client(g, a.namespace_id, [&](naming_client& c) {
      auto check = a.check.empty() ? std::string{"tcp"} : a.check;
      c.register_persistent_instance(a.service, a.group, x, check);
      print("registered " + describe(a) + " as a persistent instance (committed through Raft via "
            + c.connected_node() + "; health check " + check + ")");
      return exit_ok;
    });
  }
  if (!a.hold) {
    return with_client(g, a.namespace_id, [&](naming_client& c) {
      c.register_heartbeat_instance(a.service, a.group, x);
      print("registered " + describe(a) + " on " + c.connected_node() +
            " as a heartbeat client: it becomes unhealthy after " +
            std::to_string(defaults::beat_unhealthy_timeout_ms / 1000) +
            " s and is removed after " + std::to_string(defaults::beat_delete_timeout_ms / 1000) +
            " s without beats; keep it alive with `registryctl beat " + a.service + " " +
            a.address + " --every-ms " + std::to_string(defaults::beat_interval_ms) +
            "` or register with --hold");
      return exit_ok;
    });
  }
  std::string what = batch ? std::to_string(xs.size()) + " instances" : "instance";
  auto on_session = [what](const client::session_event& ev) {
    // "re-registered" only once the new node acknowledged the redo (retried until it does).
    if (ev.kind == client::session_event::opened && !ev.first)
      print_err("session re-opened on " + ev.node + "; re-registering");
    else if (ev.kind == client::session_event::redone)
      print("moved to " + ev.node + ": session re-opened, " + what + " re-registered");
    else if (ev.kind == client::session_event::lost)
      print_err("lost node " + ev.node + ": " + ev.reason + "; moving on");
  };
  return with_client(
    g, a.namespace_id,
    [&](naming_client& c) {
      if (batch)
        register_batch(c, a, xs);
      else
        c.register_instance(a.service, a.group, x);
      print("registered " + describe(a) + (batch ? " as one batch" : "") + " through a session on "
            + c.connected_node() + "; holding until SIGINT/SIGTERM");
      stop().wait();
      if (batch) {
        // One change instead of one deregistration per instance: the session's close removes the
        // whole batch at once.
        print("closing the session, which deregisters " + describe(a));
        return exit_ok;
      }
      try {
        c.deregister_instance(a.service, a.group, x);
        print("deregistered " + describe(a));
      } catch (const client::error& e) {
        // The session ends with bye anyway, which removes the instance.
        print_err(std::string{"deregister: "} + e.what() + " (the session close removes it)");
      }
      return exit_ok;
    },
    on_session);
}

int cmd_beat(const global_args& g, const instance_args& a) {
  auto x = make_instance(a);
  return with_client(g, a.namespace_id, [&](naming_client& c) {
    c.beat(a.service, a.group, x);
    if (a.every_ms <= 0) {
      print("beat sent for " + describe(a) + " to " + c.connected_node());
      return exit_ok;
    }
    print("beating " + describe(a) + " every " + std::to_string(a.every_ms) +
          " ms until SIGINT/SIGTERM");
    while (!stop().wait_for(std::chrono::milliseconds(a.every_ms))) {
      try {
        c.beat(a.service, a.group, x);
      } catch (const client::error& e) {
        print_err(std::string{"beat failed (will retry): "} + e.what());
      }
    }
    return exit_ok;
  });
}

int cmd_deregister(const global_args& g, const instance_args& a) {
  auto x = make_instance(a);
  if (a.persistent) {
    x.ephemeral = false;
    return with_client(g, a.namespace_id, [&](naming_client& c) {
      c.deregister_persistent_instance(a.service, a.group, x);
      print("deregistered persistent instance " + describe(a));
      return exit_ok;
    });
  }
  return with_client(g, a.namespace_id, [&](naming_client& c) {
    c.deregister_heartbeat_instance(a.service, a.group, x);
    print("deregistered " + describe(a));
    return exit_ok;
  });
}

int cmd_instances(const global_args& g, const query_args& q) {
  return with_client(g, q.namespace_id, [&](naming_client& c) {
    auto info = q.healthy_only ? c.query(q.service, q.group, q.clusters, true)
                               : c.get_service(q.service, q.group, q.clusters, false);
    if (g.json)
      print(client::to_json(info));
    else
      print(format_info(info, c.failover_active() ? "[failover]" : ""));
    return exit_ok;
  });
}

int cmd_services(const global_args& g, const query_args& q) {
  return with_client(g, q.namespace_id, [&](naming_client& c) {
    auto list = c.list_services(q.group, q.page, q.size);
    if (g.json) {
      print(json{{"count", list.count}, {"services", list.services}}.dump());
    } else {
      std::string text = std::to_string(list.count) + " service(s) in namespace " +
                         q.namespace_id + ", group " + q.group + " (page " +
                         std::to_string(q.page) + ", size " + std::to_string(q.size) + ")\n";
      for (const auto& s : list.services)
        text += "  " + s + "\n";
      print(text);
    }
    return exit_ok;
  });
}

int cmd_subscribe(const global_args& g, const query_args& q) {
  if (q.count < 0)
    throw usage_error{"bad --count " + std::to_string(q.count) + ": must be >= 0"};
  return with_client(g, q.namespace_id, [&](naming_client& c) {
    // Shared with the listener, which may still be running when this function returns.
    auto lists = std::make_shared<std::atomic<int>>(0);
    auto id = c.subscribe(q.service, q.group, q.clusters, [lists, &q, &g](const client::change_event& ev) {
      int n = ++*lists;
      if (q.count > 0 && n > q.count)
        return;
      if (g.json) {
        print(client::to_json(ev.info));
      } else {
        print(format_info(ev.info, "(+" + std::to_string(ev.added.size()) + " -" +
                                     std::to_string(ev.removed.size()) + " ~" +
                                     std::to_string(ev.modified.size()) + ")"));
      }
      if (q.count > 0 && n == q.count)
        stop().trigger();
    });
    stop().wait();
    try {
      c.unsubscribe(id);
    } catch (const client::error&) {
      // closing anyway
    }
    return exit_ok;
  });
}

/// One member for --json: the node that answers at the address, and why a CONFLICT is left out.
json member_json(const registry::client::member_state& m) {
  json result{{"address", m.address}, {"state", m.state}};
  if (!m.node.empty())
    result["node"] = m.node;
  if (!m.problem.empty())
    result["problem"] = m.problem;
  return result;
}

/// One member as a text line.
std::string member_line(const registry::client::member_state& m) {
  auto line = m.address + "  " + m.state;
  if (!m.node.empty() && m.node != m.address)
    line += "  (node " + m.node + ")";
  if (!m.problem.empty())
    line += "  " + m.problem;
  return line;
}

int cmd_status(const global_args& g) {
  return with_client(g, defaults::namespace_id, [&](naming_client& c) {
    auto st = c.status();
    if (g.json) {
      json members = json::array();
      for (const auto& m : st.members)
        members.push_back(member_json(m));
      json distro = json::array();
      for (const auto& d : st.distro_peers)
        distro.push_back(json{{"peer", d.peer},
                              {"syncsOk", d.syncs_ok},
                              {"syncsFailed", d.syncs_failed},
                              {"verifiesOk", d.verifies_ok},
                              {"verifiesFailed", d.verifies_failed},
                              {"repairs", d.repairs},
                              {"syncsReceived", d.syncs_received},
                              {"verifiesReceived", d.verifies_received}});
      print(json{{"address", st.address},
                 {"clusterName", st.cluster_name},
                 {"version", st.version},
                 {"ready", st.ready},
                 {"security", st.security},
                 {"http", st.http_address},
                 {"grpc", st.grpc_address},
                 {"tls", st.tls},
                 {"members", members},
                 {"clients", st.clients},
                 {"services", st.services},
                 {"instances", st.instances},
                 {"subscribers", st.subscribers},
                 {"distroPeers", distro},
                 {"raftRole", st.raft_role},
                 {"raftLeader", st.raft_leader}}
              .dump());
      return exit_ok;
    }
    std::string text = "node:        " + st.address + "\n" +
                       "http:        " + (st.http_address.empty() ? "off" : st.http_address) + "\n" +
                       "grpc:        " + (st.grpc_address.empty() ? "off" : st.grpc_address) + "\n" +
                       "cluster:     " + st.cluster_name + "\n" +
                       "version:     " + st.version + "\n" +
                       "ready:       " + (st.ready ? "yes" : "no") + "\n" +
                       "security:    " + st.security + "\n" +
                       "tls:         " + tls_text(st.tls) + "\n" +
                       "members:     " + std::to_string(st.members.size()) + "\n";
    for (const auto& m : st.members)
      text += "  " + member_line(m) + "\n";
    text += "clients:     " + std::to_string(st.clients) + "\n" +
            "services:    " + std::to_string(st.services) + "\n" +
            "instances:   " + std::to_string(st.instances) + "\n" +
            "subscribers: " + std::to_string(st.subscribers) + "\n" +
            "raft:        " + (st.raft_role.empty() ? std::string{"unknown"} : st.raft_role) +
            (st.raft_leader.empty() ? std::string{}
                                    : ", leader " + st.raft_leader);
    for (const auto& d : st.distro_peers)
      text += "\ndistro " + d.peer + ": syncs " + std::to_string(d.syncs_ok) + " ok " +
              std::to_string(d.syncs_failed) + " failed, verifies " + std::to_string(d.verifies_ok) +
              " ok " + std::to_string(d.verifies_failed) + " failed, repairs " +
              std::to_string(d.repairs) + ", received " + std::to_string(d.syncs_received) +
              " syncs " + std::to_string(d.verifies_received) + " verifies";
    print(text);
    return exit_ok;
  });
}

/// raft --transfer-to TARGET: the leader hands leadership over; prints the node's detail.
int cmd_raft_transfer(const global_args& g, const std::string& target) {
  return with_client(g, defaults::namespace_id, [&](naming_client& c) {
    auto detail = c.raft_transfer(target == "any" ? std::string{} : target);
    if (g.json)
      print(json{{"transferred", true}, {"detail", detail}}.dump());
    else
      print(detail);
    return exit_ok;
  });
}

int cmd_raft(const global_args& g) {
  return with_client(g, defaults::namespace_id, [&](naming_client& c) {
    auto r = c.raft();
    if (g.json) {
      json members = json::array();
      for (const auto& m : r.members)
        members.push_back(json{{"id", m.id},
                               {"voter", m.voter},
                               {"matchIndex", m.match_index},
                               {"nextIndex", m.next_index},
                               {"state", m.state}});
      print(json{{"enabled", r.enabled},
                 {"id", r.id},
                 {"role", r.role},
                 {"term", r.term},
                 {"leader", r.leader},
                 {"commitIndex", r.commit_index},
                 {"appliedIndex", r.applied_index},
                 {"lastIndex", r.last_index},
                 {"snapshotIndex", r.snapshot_index},
                 {"persistentInstances", r.persistent_instances},
                 {"dataDir", r.data_dir},
                 {"members", members}}
              .dump());
      return exit_ok;
    }
    if (!r.enabled) {
      print("raft: off on " + r.id + " (no data_dir: persistent instances are refused)");
      return exit_ok;
    }
    std::string text = "node:        " + r.id + "\n" + "role:        " + r.role + "\n" +
                       "term:        " + std::to_string(r.term) + "\n" +
                       "leader:      " + (r.leader.empty() ? std::string{"none"} : r.leader) +
                       "\n" + "commit:      " + std::to_string(r.commit_index) + "\n" +
                       "applied:     " + std::to_string(r.applied_index) + "\n" +
                       "last index:  " + std::to_string(r.last_index) + "\n" +
                       "snapshot:    " + std::to_string(r.snapshot_index) + "\n" +
                       "persistent:  " + std::to_string(r.persistent_instances) + " instances\n" +
                       "data_dir:    " + r.data_dir + "\n" +
                       "members:     " + std::to_string(r.members.size());
    for (const auto& m : r.members) {
      text += "\n  " + m.id + "  " + (m.voter ? "voter" : "learner");
      if (!m.state.empty())
        text += "  " + m.state + "  match " + std::to_string(m.match_index) + "  next " +
                std::to_string(m.next_index);
    }
    print(text);
    return exit_ok;
  });
}

int cmd_members(const global_args& g) {
  return with_client(g, defaults::namespace_id, [&](naming_client& c) {
    auto ms = c.members();
    if (g.json) {
      json members = json::array();
      for (const auto& m : ms)
        members.push_back(member_json(m));
      print(json{{"members", members}}.dump());
      return exit_ok;
    }
    std::string text;
    for (const auto& m : ms)
      text += member_line(m) + "\n";
    print(text.empty() ? "no members" : text);
    return exit_ok;
  });
}

int cmd_failover(const global_args& g, const std::string& mode) {
  if (g.cache_dir.empty())
    throw usage_error{"failover needs --cache-dir DIR"};
  std::size_t saved = 0;
  if (mode == "on") {
    // Freeze the last known state: every cached service without a failover file gets one, so
    // reads keep working with every node down. Files already in failover/ (an operator's own)
    // are kept.
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path failover_dir = fs::path{g.cache_dir} / "failover";
    fs::create_directories(failover_dir, ec);
    fs::path cache = fs::path{g.cache_dir} / "naming" / g.failover_namespace;
    if (fs::is_directory(cache, ec)) {
      for (auto& entry : fs::directory_iterator{cache, ec}) {
        if (!entry.is_regular_file())
          continue;
        auto target = failover_dir / entry.path().filename();
        if (!fs::exists(target, ec) && fs::copy_file(entry.path(), target, ec))
          ++saved;
      }
    }
  }
  client::write_failover_switch(g.cache_dir, mode == "on");
  print("failover " + mode + " (" + g.cache_dir +
        "/failover/00-00---000-VIPSRV_FAILOVER_SWITCH-000---00-00)"
        + (mode == "on" ? "; " + std::to_string(saved) + " cached services saved as failover data"
                        : std::string{}));
  return exit_ok;
}

// -- main -------------------------------------------------------------------------------------------

int run(int argc, char** argv) {
  auto parsed = parse_command_line(argc, argv);
  if (auto err = std::get_if<usage_error>(&parsed)) {
    print_err(err->message);
    return exit_usage;
  }
  auto& c = std::get<command>(parsed);
  switch (c.kind) {
    case command_kind::help:
      std::fwrite(c.help_text.data(), 1, c.help_text.size(), stdout);
      std::fflush(stdout);
      return exit_ok;
    case command_kind::reg:
      return cmd_register(c.global, c.instance);
    case command_kind::beat:
      return cmd_beat(c.global, c.instance);
    case command_kind::dereg:
      return cmd_deregister(c.global, c.instance);
    case command_kind::instances:
      return cmd_instances(c.global, c.query);
    case command_kind::services:
      return cmd_services(c.global, c.query);
    case command_kind::subscribe:
      return cmd_subscribe(c.global, c.query);
    case command_kind::status:
      return cmd_status(c.global);
    case command_kind::members:
      return cmd_members(c.global);
    case command_kind::failover:
      return cmd_failover(c.global, c.failover_mode);
    case command_kind::raft:
      if (!c.transfer_to.empty())
        return cmd_raft_transfer(c.global, c.transfer_to);
      return cmd_raft(c.global);
  }
  print_err("no command (see registryctl --help)");
  return exit_usage;
}

} // namespace

int main(int argc, char** argv) {
  install_signal_thread();
  try {
    return run(argc, argv);
  } catch (const usage_error& e) {
    print_err(e.message);
    return exit_usage;
  } catch (const client::error& e) {
    return report(e);
  } catch (const std::exception& e) {
    print_err(std::string{"error: "} + e.what());
    return exit_refused;
  }
}
