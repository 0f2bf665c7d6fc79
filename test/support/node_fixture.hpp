#pragma once
/// A registryd process on a free loopback port with a generated config, and registryctl runs
/// against it.

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/support/process.hpp"

namespace registry::test {

/// The `session:` YAML every test node gets (shared CAF heartbeat settings), and `http:` on any
/// free port.
std::string session_config();

/// Sorted "ip:port" of every host of a ServiceInfo hosts array (for comparing nodes).
std::vector<std::string> host_set(const nlohmann::json& hosts);

class test_node {
public:
  /// Writes a config listening on a free port; `extra_yaml` is appended (top-level keys).
  explicit test_node(const std::string& extra_yaml = "");
  /// A cluster member on `port` listing every port of `member_ports` (this one included).
  test_node(int port, const std::vector<int>& member_ports, const std::string& extra_yaml);
  /// A cluster member on `port` whose member list is written as given (any spelling, e.g.
  /// "localhost:P"); it must name this node's own listen address 127.0.0.1:port.
  static std::unique_ptr<test_node> with_members(int port, const std::vector<std::string>& members,
                                                 const std::string& extra_yaml);
  ~test_node();

  /// Starts registryd and waits until `status` answers. Returns false on failure.
  bool start();
  /// Starts registryd without waiting.
  void launch();
  /// Waits until `status` reports ready.
  bool wait_ready(std::chrono::milliseconds timeout);
  /// The state of `member` as this node sees it ("" when unknown or no answer).
  std::string member_state(const std::string& member) const;
  int port() const { return port_; }
  /// SIGTERM, then waits for the exit; returns the exit code.
  int stop();
  child_process& process() { return *proc_; }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /// HOST:PORT of the node's HTTP API as its status reports it ("" when it does not answer).
  std::string http_address() const;
  /// The node's GET /metrics text ("" when it does not answer).
  std::string metrics() const;
  const std::string& dir() const { return dir_; }
  const std::string& config_path() const { return config_path_; }
  std::string log() const;

  /// Flags every registryctl run against this node gets (e.g. --tls-ca FILE ...).
  void set_ctl_flags(std::vector<std::string> flags) { ctl_flags_ = std::move(flags); }
  /// Other CAF heartbeat settings than session_config()'s, for the node (its config file is
  /// rewritten) and the registryctl runs against it. Call before launch().
  void set_caf_timing(int heartbeat_interval_ms, int connection_timeout_ms);

  /// Extra registryd arguments for the next launch() (e.g. --raft-join).
  void set_extra_args(std::vector<std::string> args) { extra_args_ = std::move(args); }
  /// Rewrites the `members:` line of the config file with these ports (send SIGHUP to reload).
  void set_members(const std::vector<int>& member_ports);

  /// Runs registryctl --node <this node> args...
  run_result ctl(std::vector<std::string> args,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  /// Runs registryctl --json ... and parses stdout (null on failure).
  nlohmann::json ctl_json(std::vector<std::string> args) const;
  /// The hosts of `service` as --json instances reports them.
  nlohmann::json hosts(const std::string& service, std::vector<std::string> extra = {}) const;
  /// Starts registryctl with these args in the background (output in dir()).
  child_process start_ctl(std::vector<std::string> args, const std::string& name) const;
  /// Same, against the nodes `node_list` ("A,B,C") instead of this node alone.
  child_process start_ctl_on(const std::string& node_list, std::vector<std::string> args,
                             const std::string& name) const;
  /// Runs registryctl against `node_list`.
  run_result ctl_on(const std::string& node_list, std::vector<std::string> args) const;

private:
  test_node(int port, const std::string& members, const std::string& extra_yaml, bool);
  int port_;
  std::string dir_;
  std::string config_path_;
  std::unique_ptr<child_process> proc_;
  std::vector<std::string> ctl_flags_;
  std::vector<std::string> session_flags_;
  std::vector<std::string> extra_args_;
};

/// Short cluster timings: copies expire after 3 x 500 ms, heartbeat instances turn unhealthy after
/// 600 ms and are removed after 1.2 s.
inline const std::string cluster_timings = "heartbeat:\n  interval_ms: 200\n  unhealthy_timeout_ms: 600\n"
                              "  delete_timeout_ms: 1200\n  check_interval_ms: 50\n"
                              "distro:\n  verify_interval_ms: 500\n  lone_ready_wait_ms: 1000\n"
                              "  snapshot_retry_delay_ms: 200\n  reconnect_backoff_min_ms: 100\n"
                              "  reconnect_backoff_max_ms: 500\n";

struct test_cluster {
  std::vector<int> ports;
  std::vector<std::unique_ptr<test_node>> nodes;

  explicit test_cluster(std::size_t n = 3, const std::string& extra_yaml = "") {
    for (std::size_t i = 0; i < n; ++i)
      ports.push_back(free_port());
    for (auto p : ports)
      nodes.push_back(std::make_unique<test_node>(p, ports, cluster_timings + extra_yaml));
  }

  /// "A,B,C": every node, in order, for a client that moves between them.
  std::string node_list() const {
    std::string result;
    for (auto& n : nodes)
      result += (result.empty() ? "" : ",") + n->address();
    return result;
  }

  test_node& operator[](std::size_t i) { return *nodes[i]; }

  bool start() {
    for (auto& n : nodes)
      n->launch();
    for (auto& n : nodes)
      if (!n->wait_ready(std::chrono::seconds(20))) {
        report_start_failure("node " + n->address() + " not ready within 20 s");
        return false;
      }
    // Every node sees every other one UP.
    auto all_up = wait_until(
      [&] {
        for (auto& a : nodes)
          for (auto& b : nodes)
            if (a != b && a->member_state(b->address()) != "UP")
              return false;
        return true;
      },
      std::chrono::seconds(20));
    if (!all_up)
      report_start_failure("not every node sees every other one UP within 20 s");
    return all_up;
  }

  /// A cluster that did not start: what each node sees, and the end of each node's log (a start
  /// failure is rare and otherwise leaves nothing to diagnose it by).
  void report_start_failure(const std::string& what) const {
    std::cerr << "test_cluster: " << what << "\n";
    for (auto& a : nodes) {
      std::cerr << "  " << a->address() << " sees:";
      for (auto& b : nodes)
        if (a != b)
          std::cerr << " " << b->address() << "=" << a->member_state(b->address());
      auto text = a->log();
      auto from = text.size() > 3000 ? text.size() - 3000 : 0;
      std::cerr << "\n  log tail:\n" << text.substr(from) << "\n";
    }
  }

  /// True when every listed node returns `expected` hosts for `service`.
  bool all_see(const std::vector<std::size_t>& which, const std::string& service,
               const std::vector<std::string>& expected, std::chrono::milliseconds timeout) {
    return wait_until(
      [&] {
        for (auto i : which)
          if (host_set(nodes[i]->hosts(service)) != expected)
            return false;
        return true;
      },
      timeout);
  }
};


} // namespace registry::test
