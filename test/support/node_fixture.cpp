#include "test/support/node_fixture.hpp"

#include <signal.h>

#include <algorithm>
#include <stdexcept>

namespace registry::test {

namespace {

/// Every test node and every registryctl run share these CAF heartbeat settings: a frozen process is
/// dropped after 1 s. Both sides must agree, or the side with the timeout drops idle healthy peers.
const char* session_yaml = "session:\n  caf_heartbeat_interval_ms: 200\n"
                           "  caf_connection_timeout_ms: 1000\n";
/// Test nodes serve HTTP on any free port (status names it), unless the test sets http itself.
const char* http_any_yaml = "http:\n  listen: 127.0.0.1:0\n";

/// The session settings, and the HTTP default unless `extra_yaml` has an http section.
std::string common_yaml(const std::string& extra_yaml) {
  bool has_http = extra_yaml.rfind("http:", 0) == 0 || extra_yaml.find("\nhttp:") != std::string::npos;
  return std::string{session_yaml} + (has_http ? "" : http_any_yaml);
}

const std::vector<std::string> session_flags{"--caf-heartbeat-ms", "200", "--caf-timeout-ms",
                                             "1000"};

} // namespace

test_node::test_node(const std::string& extra_yaml)
  : port_(free_port()), dir_(make_temp_dir()), config_path_(dir_ + "/node.yaml"),
    session_flags_(session_flags) {
  write_file(config_path_, "listen: " + address() + "\nmembers: [" + address()
                             + "]\nlog:\n  level: debug\n  flush_interval_ms: 20\n  file: " + dir_ + "/node.log\n"
                             + common_yaml(extra_yaml) + extra_yaml);
}

test_node::test_node(int port, const std::vector<int>& member_ports,
                     const std::string& extra_yaml)
  : port_(port), dir_(make_temp_dir()), config_path_(dir_ + "/node.yaml"),
    session_flags_(session_flags) {
  std::string members;
  for (auto p : member_ports)
    members += (members.empty() ? "" : ", ") + std::string{"127.0.0.1:"} + std::to_string(p);
  write_file(config_path_, "listen: " + address() + "\nmembers: [" + members
                             + "]\ncluster_name: test\nlog:\n  level: debug\n  flush_interval_ms: 20\n  file: " + dir_
                             + "/node.log\n" + common_yaml(extra_yaml) + extra_yaml);
}

std::unique_ptr<test_node> test_node::with_members(int port,
                                                  const std::vector<std::string>& members,
                                                  const std::string& extra_yaml) {
  std::string list;
  for (auto& m : members)
    list += (list.empty() ? "" : ", ") + m;
  return std::unique_ptr<test_node>(new test_node(port, list, extra_yaml, true));
}

test_node::test_node(int port, const std::string& list, const std::string& extra_yaml, bool)
  : port_(port), dir_(make_temp_dir()), config_path_(dir_ + "/node.yaml"),
    session_flags_(session_flags) {
  write_file(config_path_, "listen: " + address() + "\nmembers: [" + list
                             + "]\ncluster_name: test\nlog:\n  level: debug\n  file: " + dir_
                             + "/node.log\n" + common_yaml(extra_yaml) + extra_yaml);
}

std::string session_config() {
  return common_yaml("");
}

std::string test_node::http_address() const {
  auto st = ctl_json({"status"});
  if (st.is_object() && st["http"].is_string())
    return st["http"].get<std::string>();
  return "";
}

std::string test_node::metrics() const {
  auto r = run({"/usr/bin/curl", "-s", "--max-time", "5", "http://" + http_address() + "/metrics"},
               std::chrono::seconds(10));
  return r.code == 0 ? r.out : "";
}

void test_node::set_caf_timing(int heartbeat_interval_ms, int connection_timeout_ms) {
  auto hb = std::to_string(heartbeat_interval_ms);
  auto timeout = std::to_string(connection_timeout_ms);
  auto text = read_file(config_path_);
  auto at = text.find(session_yaml);
  if (at == std::string::npos)
    throw std::runtime_error("set_caf_timing: no session section in " + config_path_);
  text.replace(at, std::string{session_yaml}.size(),
               "session:\n  caf_heartbeat_interval_ms: " + hb + "\n  caf_connection_timeout_ms: "
                 + timeout + "\n");
  write_file(config_path_, text);
  session_flags_ = {"--caf-heartbeat-ms", hb, "--caf-timeout-ms", timeout};
}

std::vector<std::string> host_set(const nlohmann::json& hosts) {
  std::vector<std::string> result;
  if (hosts.is_array())
    for (auto& h : hosts)
      result.push_back(h["ip"].get<std::string>() + ":" + std::to_string(h["port"].get<int>()));
  std::sort(result.begin(), result.end());
  return result;
}

void test_node::launch() {
  std::vector<std::string> argv{registryd_path(), "--config", config_path_};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  proc_ = std::make_unique<child_process>(std::move(argv), dir_, "registryd");
}

void test_node::set_members(const std::vector<int>& member_ports) {
  std::string members;
  for (auto p : member_ports)
    members += (members.empty() ? "" : ", ") + std::string{"127.0.0.1:"} + std::to_string(p);
  auto text = read_file(config_path_);
  auto at = text.find("\nmembers: [");
  auto end = at == std::string::npos ? at : text.find("]\n", at);
  if (end == std::string::npos)
    throw std::runtime_error("set_members: no members line in " + config_path_);
  text.replace(at, end + 2 - at, "\nmembers: [" + members + "]\n");
  write_file(config_path_, text);
}

bool test_node::wait_ready(std::chrono::milliseconds timeout) {
  return wait_until(
    [&] {
      auto st = ctl_json({"status"});
      return st.is_object() && st["ready"] == true;
    },
    timeout);
}

std::string test_node::member_state(const std::string& member) const {
  auto j = ctl_json({"members"});
  if (!j.is_object())
    return "";
  for (auto& m : j["members"])
    if (m["address"] == member)
      return m["state"];
  return "";
}

test_node::~test_node() {
  if (proc_ && proc_->running())
    stop();
  proc_.reset();
  remove_tree(dir_);
}

bool test_node::start() {
  launch();
  return wait_until(
    [&] {
      if (!proc_->running())
        return true;
      return ctl({"status"}, std::chrono::seconds(3)).code == 0;
    },
    std::chrono::seconds(15))
    && proc_->running();
}

int test_node::stop() {
  if (!proc_)
    return -1;
  proc_->signal(SIGTERM);
  return proc_->wait(std::chrono::seconds(15));
}

std::string test_node::log() const {
  return read_file(dir_ + "/node.log");
}

run_result test_node::ctl(std::vector<std::string> args, std::chrono::milliseconds timeout) const {
  std::vector<std::string> argv{registryctl_path(), "--node", address()};
  argv.insert(argv.end(), session_flags_.begin(), session_flags_.end());
  argv.insert(argv.end(), ctl_flags_.begin(), ctl_flags_.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return run(std::move(argv), timeout);
}

nlohmann::json test_node::ctl_json(std::vector<std::string> args) const {
  args.insert(args.begin(), "--json");
  auto r = ctl(std::move(args));
  if (r.code != 0)
    return nullptr;
  return nlohmann::json::parse(r.out, nullptr, false);
}

nlohmann::json test_node::hosts(const std::string& service, std::vector<std::string> extra) const {
  std::vector<std::string> args{"instances", service};
  args.insert(args.end(), extra.begin(), extra.end());
  auto j = ctl_json(std::move(args));
  if (j.is_discarded() || !j.is_object())
    return nullptr;
  return j["hosts"];
}

child_process test_node::start_ctl(std::vector<std::string> args, const std::string& name) const {
  return start_ctl_on(address(), std::move(args), name);
}

run_result test_node::ctl_on(const std::string& node_list, std::vector<std::string> args) const {
  std::vector<std::string> argv{registryctl_path(), "--node", node_list};
  argv.insert(argv.end(), session_flags_.begin(), session_flags_.end());
  argv.insert(argv.end(), ctl_flags_.begin(), ctl_flags_.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return run(std::move(argv), std::chrono::seconds(10));
}

child_process test_node::start_ctl_on(const std::string& node_list, std::vector<std::string> args,
                                      const std::string& name) const {
  std::vector<std::string> argv{registryctl_path(), "--node", node_list};
  argv.insert(argv.end(), session_flags_.begin(), session_flags_.end());
  argv.insert(argv.end(), ctl_flags_.begin(), ctl_flags_.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return child_process{std::move(argv), dir_, name};
}

} // namespace registry::test
