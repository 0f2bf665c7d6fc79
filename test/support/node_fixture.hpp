#pragma once
/// A registryd process on a free loopback port with a generated config, and registryctl runs
/// against it.

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/support/process.hpp"

namespace registry::test {

/// The `session:` YAML every test node gets (shared CAF heartbeat settings).
std::string session_config();

/// Sorted "ip:port" of every host of a ServiceInfo hosts array (for comparing nodes).
std::vector<std::string> host_set(const nlohmann::json& hosts);

class test_node {
public:
  /// Writes a config listening on a free port; `extra_yaml` is appended (top-level keys).
  explicit test_node(const std::string& extra_yaml = "");
  /// A cluster member on `port` listing every port of `member_ports` (this one included).
  test_node(int port, const std::vector<int>& member_ports, const std::string& extra_yaml);
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
  const std::string& dir() const { return dir_; }
  const std::string& config_path() const { return config_path_; }
  std::string log() const;

  /// Runs registryctl --node <this node> args...
  run_result ctl(std::vector<std::string> args,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  /// Runs registryctl --json ... and parses stdout (null on failure).
  nlohmann::json ctl_json(std::vector<std::string> args) const;
  /// The hosts of `service` as --json instances reports them.
  nlohmann::json hosts(const std::string& service, std::vector<std::string> extra = {}) const;
  /// Starts registryctl with these args in the background (output in dir()).
  child_process start_ctl(std::vector<std::string> args, const std::string& name) const;

private:
  int port_;
  std::string dir_;
  std::string config_path_;
  std::unique_ptr<child_process> proc_;
};

} // namespace registry::test
