// Tests of config/node_config: the example files, strict parsing, error messages, relations and
// per-service protection thresholds.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include "config/node_config.hpp"

#ifndef REGISTRY_SOURCE_ROOT
#define REGISTRY_SOURCE_ROOT "."
#endif

namespace {

using registry::host_port;
using registry::node_config;

namespace fs = std::filesystem;

const std::string source_root = REGISTRY_SOURCE_ROOT;
const std::string minimal = "listen: 127.0.0.1:8848\nmembers: [127.0.0.1:8848]\n";

std::string source_path(const std::string& relative) {
  return source_root + "/" + relative;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Loads a file that must be valid; fails the test with the loader's message otherwise.
node_config load_ok(const std::string& path) {
  auto result = registry::load_node_config(path);
  if (auto* err = std::get_if<std::string>(&result))
    FAIL("unexpected error: " << *err);
  return std::get<node_config>(result);
}

node_config parse_ok(const std::string& text) {
  auto result = registry::parse_node_config(text, "node.yaml");
  if (auto* err = std::get_if<std::string>(&result))
    FAIL("unexpected error: " << *err);
  return std::get<node_config>(result);
}

/// The error for `text`, which must be rejected.
std::string parse_error(const std::string& text) {
  auto result = registry::parse_node_config(text, "node.yaml");
  if (std::holds_alternative<node_config>(result))
    FAIL("accepted a config that must be rejected:\n" << text);
  return std::get<std::string>(result);
}

/// Checks the "FILE: KEY: PROBLEM" form and that the problem mentions every fragment.
void check_error(const std::string& message, const std::string& file, const std::string& key,
                 const std::vector<std::string>& fragments) {
  INFO("message: " << message);
  const std::string prefix = file + ": " + key + ": ";
  CHECK(message.rfind(prefix, 0) == 0);
  CHECK(message.size() > prefix.size());
  for (const auto& f : fragments)
    CHECK(message.find(f) != std::string::npos);
}

void check_parse_error(const std::string& text, const std::string& key,
                       const std::vector<std::string>& fragments) {
  check_error(parse_error(text), "node.yaml", key, fragments);
}

/// A file in the temp directory, removed at the end of the scope.
struct temp_file {
  fs::path path;
  explicit temp_file(const std::string& text) {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("node_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) +
            ".yaml");
    std::ofstream(path) << text;
  }
  ~temp_file() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};

/// A temporary directory with files of chosen content and mode, removed at the end of the scope.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("node_config_test_dir_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& content, mode_t mode = 0600) {
    auto p = path / name;
    std::ofstream(p, std::ios::binary) << content;
    ::chmod(p.c_str(), mode);
    return p.string();
  }
};

const std::string secret = "0123456789abcdef-long-enough";

/// The dotted key paths of a YAML document's mappings (sequences, scalars and empty mappings are
/// leaves).
void collect_paths(const YAML::Node& node, const std::string& prefix, std::set<std::string>& out) {
  for (const auto& entry : node) {
    std::string path = prefix + entry.first.Scalar();
    out.insert(path);
    if (entry.second.IsMap())
      collect_paths(entry.second, path + ".", out);
  }
}

/// Key paths documented in node_config.hpp's doc comment (the lines between "YAML (" and the first
/// line that is not a "///" comment), derived from indentation.
std::set<std::string> documented_paths() {
  std::ifstream in(source_path("config/node_config.hpp"));
  std::string line;
  bool inside = false;
  std::vector<std::pair<std::size_t, std::string>> stack; // (indent, key)
  std::set<std::string> paths;
  while (std::getline(in, line)) {
    if (!inside) {
      inside = line.rfind("/// YAML (", 0) == 0;
      continue;
    }
    if (line.rfind("///", 0) != 0)
      break;
    std::string body = line.substr(3);
    auto hash = body.find('#');
    if (hash != std::string::npos)
      body = body.substr(0, hash);
    auto colon = body.find(':');
    auto start = body.find_first_not_of(' ');
    if (colon == std::string::npos || start == std::string::npos || start >= colon)
      continue;
    std::string key = body.substr(start, colon - start);
    while (!stack.empty() && stack.back().first >= start)
      stack.pop_back();
    std::string path;
    for (const auto& [indent, k] : stack)
      path += k + ".";
    path += key;
    paths.insert(path);
    stack.emplace_back(start, key);
  }
  return paths;
}

} // namespace

// -- the example files -------------------------------------------------------------

TEST_CASE("node_config: standalone.yaml loads, is standalone and holds the defaults") {
  auto cfg = load_ok(source_path("config/standalone.yaml"));
  CHECK(cfg.listen == host_port{"127.0.0.1", 8848});
  REQUIRE(cfg.members.size() == 1);
  CHECK(cfg.standalone());
  CHECK(cfg.source_file == source_path("config/standalone.yaml"));
  CHECK(registry::validate(cfg).empty());

  // The file documents the defaults: loading it must change nothing but listen and members.
  node_config defaults;
  CHECK(cfg.cluster_name == defaults.cluster_name);
  CHECK(cfg.log_level == defaults.log_level);
  CHECK(cfg.log_file == defaults.log_file);
  CHECK(cfg.heartbeat.interval_ms == defaults.heartbeat.interval_ms);
  CHECK(cfg.heartbeat.unhealthy_timeout_ms == defaults.heartbeat.unhealthy_timeout_ms);
  CHECK(cfg.heartbeat.delete_timeout_ms == defaults.heartbeat.delete_timeout_ms);
  CHECK(cfg.heartbeat.check_interval_ms == defaults.heartbeat.check_interval_ms);
  CHECK(cfg.session.caf_heartbeat_interval_ms == defaults.session.caf_heartbeat_interval_ms);
  CHECK(cfg.session.caf_connection_timeout_ms == defaults.session.caf_connection_timeout_ms);
  CHECK(cfg.push.merge_window_ms == defaults.push.merge_window_ms);
  CHECK(cfg.push.timeout_ms == defaults.push.timeout_ms);
  CHECK(cfg.push.retry_delay_ms == defaults.push.retry_delay_ms);
  CHECK(cfg.push.drop_after_ms == defaults.push.drop_after_ms);
  CHECK(cfg.log.file_size_bytes_max == defaults.log.file_size_bytes_max);
  CHECK(cfg.log.files_max == defaults.log.files_max);
  CHECK(cfg.log.queue_lines_max == defaults.log.queue_lines_max);
  CHECK(cfg.log.flush_interval_ms == defaults.log.flush_interval_ms);
  CHECK(cfg.discovery.cache_millis == defaults.discovery.cache_millis);
  CHECK(cfg.discovery.protection_enabled == defaults.discovery.protection_enabled);
  CHECK(cfg.discovery.protect_threshold == defaults.discovery.protect_threshold);
  CHECK(cfg.discovery.service_thresholds == defaults.discovery.service_thresholds);
  CHECK(cfg.limits.clients_max == defaults.limits.clients_max);
  CHECK(cfg.limits.services_max == defaults.limits.services_max);
  CHECK(cfg.limits.instances_per_client_max == defaults.limits.instances_per_client_max);
  CHECK(cfg.limits.instances_per_service_max == defaults.limits.instances_per_service_max);
  CHECK(cfg.limits.subscribers_per_service_max == defaults.limits.subscribers_per_service_max);
  CHECK(cfg.distro.sync_delay_ms == defaults.distro.sync_delay_ms);
  CHECK(cfg.distro.sync_timeout_ms == defaults.distro.sync_timeout_ms);
  CHECK(cfg.distro.sync_retry_delay_ms == defaults.distro.sync_retry_delay_ms);
  CHECK(cfg.distro.verify_interval_ms == defaults.distro.verify_interval_ms);
  CHECK(cfg.distro.verify_timeout_ms == defaults.distro.verify_timeout_ms);
  CHECK(cfg.distro.copy_expiry_verify_rounds == defaults.distro.copy_expiry_verify_rounds);
  CHECK(cfg.distro.snapshot_timeout_ms == defaults.distro.snapshot_timeout_ms);
  CHECK(cfg.distro.snapshot_retry_delay_ms == defaults.distro.snapshot_retry_delay_ms);
  CHECK(cfg.distro.lone_ready_wait_ms == defaults.distro.lone_ready_wait_ms);
  CHECK(cfg.distro.reconnect_backoff_min_ms == defaults.distro.reconnect_backoff_min_ms);
  CHECK(cfg.distro.reconnect_backoff_max_ms == defaults.distro.reconnect_backoff_max_ms);
  CHECK(cfg.distro.member_failures_until_down == defaults.distro.member_failures_until_down);
  CHECK(cfg.members_url == defaults.members_url);
  CHECK(cfg.members_poll_interval_ms == defaults.members_poll_interval_ms);
  CHECK(cfg.members_start_wait_ms == defaults.members_start_wait_ms);
  CHECK(cfg.cluster_secret == defaults.cluster_secret);
  CHECK(cfg.cluster_secret_source == defaults.cluster_secret_source);
  CHECK(!cfg.tls.enabled);
  CHECK(std::string{cfg.tls.mode()} == "off");
  CHECK(cfg.warnings.empty());
}

TEST_CASE("node_config: standalone.yaml has exactly the keys documented in node_config.hpp") {
  auto documented = documented_paths();
  REQUIRE(documented.count("listen") == 1);
  REQUIRE(documented.count("distro.member_failures_until_down") == 1);
  // The header shows an example entry under service_thresholds; the file has none (the default).
  for (auto it = documented.begin(); it != documented.end();)
    it = it->rfind("discovery.service_thresholds.", 0) == 0 ? documented.erase(it) : std::next(it);

  std::set<std::string> present;
  collect_paths(YAML::Load(read_text(source_path("config/standalone.yaml"))), "", present);
  CHECK(present == documented);
}

TEST_CASE("node_config: the cluster-3 files load and agree on the members") {
  std::vector<node_config> nodes;
  for (const char* name : {"node1.yaml", "node2.yaml", "node3.yaml"})
    nodes.push_back(load_ok(source_path(std::string{"config/cluster-3/"} + name)));
  std::set<host_port> listens;
  for (const auto& cfg : nodes) {
    CHECK(cfg.members.size() == 3);
    CHECK(cfg.members == nodes.front().members);
    CHECK(cfg.cluster_name == nodes.front().cluster_name);
    CHECK(!cfg.standalone());
    CHECK(std::find(cfg.members.begin(), cfg.members.end(), cfg.listen) != cfg.members.end());
    listens.insert(cfg.listen);
  }
  CHECK(listens.size() == 3); // each node its own address
  CHECK(nodes.front().cluster_name != node_config{}.cluster_name);
  // One shared secret from the file next to them; a fresh clone (mode 0644) gets only a warning.
  for (const auto& cfg : nodes) {
    CHECK(cfg.cluster_secret.size() >= registry::defaults::cluster_secret_bytes_min);
    CHECK(cfg.cluster_secret == nodes.front().cluster_secret);
    CHECK(cfg.cluster_secret.find('\n') == std::string::npos);
    CHECK(cfg.cluster_secret_source == source_path("config/cluster-3/cluster.secret"));
    CHECK(cfg.warnings.size() <= 1);
  }
}

TEST_CASE("node_config: the cluster-3 secret file loads with the mode a fresh clone gives it") {
  temp_dir dir;
  auto content = read_text(source_path("config/cluster-3/cluster.secret"));
  dir.write("cluster.secret", content, 0644);
  auto yaml = dir.write("node.yaml", read_text(source_path("config/cluster-3/node1.yaml")));
  auto cfg = load_ok(yaml);
  CHECK(cfg.cluster_secret + "\n" == content);
  REQUIRE(cfg.warnings.size() == 1);
  CHECK(cfg.warnings[0].find("cluster_secret_file") != std::string::npos);
  CHECK(cfg.warnings[0].find("0644") != std::string::npos);
  CHECK(cfg.warnings[0].find(content.substr(0, 8)) == std::string::npos); // never the secret
}

// -- values ------------------------------------------------------------------------

TEST_CASE("node_config: members are sorted and de-duplicated; host names lower-cased") {
  auto cfg = parse_ok("listen: 127.0.0.1:8850\n"
                      "members: [127.0.0.1:8852, 127.0.0.1:8850, 127.0.0.1:8848, 127.0.0.1:8850,\n"
                      "          Node-A.example:9000]\n");
  std::vector<host_port> expected = {
    {"127.0.0.1", 8848}, {"127.0.0.1", 8850}, {"127.0.0.1", 8852}, {"node-a.example", 9000}};
  CHECK(cfg.members == expected);
  CHECK(!cfg.standalone());
}

TEST_CASE("node_config: optional keys override the defaults") {
  auto cfg = parse_ok(minimal + "cluster_name: prod.eu-1_a\n"
                                "log: {level: debug, file: /tmp/registry.log, files_max: 2}\n"
                                "heartbeat: {interval_ms: 1000, unhealthy_timeout_ms: 3000,"
                                " delete_timeout_ms: 3000}\n"
                                "push: {merge_window_ms: 0, drop_after_ms: 5000}\n"
                                "discovery: {protection_enabled: false, protect_threshold: 0.25}\n"
                                "limits: {clients_max: 7}\n"
                                "distro: {reconnect_backoff_min_ms: 300, reconnect_backoff_max_ms: 300}\n");
  CHECK(cfg.cluster_name == "prod.eu-1_a");
  CHECK(cfg.log_level == "debug");
  CHECK(cfg.log_file == "/tmp/registry.log");
  CHECK(cfg.log.files_max == 2);
  CHECK(cfg.heartbeat.interval_ms == 1000);
  CHECK(cfg.heartbeat.unhealthy_timeout_ms == 3000);
  CHECK(cfg.heartbeat.delete_timeout_ms == 3000); // equal to unhealthy is allowed
  CHECK(cfg.heartbeat.check_interval_ms == node_config{}.heartbeat.check_interval_ms);
  CHECK(cfg.push.merge_window_ms == 0);
  CHECK(cfg.push.drop_after_ms == 5000);
  CHECK(!cfg.discovery.protection_enabled);
  CHECK(cfg.discovery.protect_threshold == doctest::Approx(0.25));
  CHECK(cfg.limits.clients_max == 7);
  CHECK(cfg.distro.reconnect_backoff_min_ms == cfg.distro.reconnect_backoff_max_ms);
}

TEST_CASE("node_config: parse_host_port accepts IPv4, localhost and DNS names") {
  auto ok = [](const std::string& text) {
    auto r = registry::parse_host_port(text);
    INFO(text << " -> " << (std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : ""));
    REQUIRE(std::holds_alternative<host_port>(r));
    return std::get<host_port>(r);
  };
  CHECK(ok("127.0.0.1:8848") == host_port{"127.0.0.1", 8848});
  CHECK(ok("localhost:1") == host_port{"localhost", 1});
  CHECK(ok("node-1.registry.internal:65535") == host_port{"node-1.registry.internal", 65535});
  CHECK(ok("LOCALHOST:80").host == "localhost");
  CHECK(ok("10.0.0.255:80").to_string() == "10.0.0.255:80");
}

TEST_CASE("node_config: parse_host_port rejects bad addresses with a reason") {
  auto error = [](const std::string& text) {
    auto r = registry::parse_host_port(text);
    INFO(text);
    REQUIRE(std::holds_alternative<std::string>(r));
    return std::get<std::string>(r);
  };
  CHECK(error("127.0.0.1").find("missing port") != std::string::npos);
  CHECK(error("127.0.0.1:").find("missing port") != std::string::npos);
  CHECK(error(":8848").find("empty host") != std::string::npos);
  CHECK(error("127.0.0.1:0").find("out of range 1..65535") != std::string::npos);
  CHECK(error("127.0.0.1:70000").find("port 70000 is out of range 1..65535") != std::string::npos);
  CHECK(error("127.0.0.1:99999999999999999999").find("out of range") != std::string::npos);
  CHECK(error("127.0.0.1:http").find("not a number") != std::string::npos);
  CHECK(error("127.0.0.1:-1").find("not a number") != std::string::npos);
  CHECK(error("256.0.0.1:80").find("IPv4") != std::string::npos);
  CHECK(error("1.2.3:80").find("IPv4") != std::string::npos);
  CHECK(error("under_score:80").find("letters, digits, dots and hyphens") != std::string::npos);
  CHECK(error("-lead.example:80").find("'-'") != std::string::npos);
  CHECK(error("a..b:80").find("empty label") != std::string::npos);
  CHECK(error("[::1]:80").find("IPv6") != std::string::npos);
  CHECK(error("a:1:2").find("HOST:PORT") != std::string::npos);
  CHECK(error(" a:80").find("whitespace") != std::string::npos);
  CHECK(error("").find("empty") != std::string::npos);
}

// -- errors: FILE: KEY: PROBLEM ------------------------------------------------------

TEST_CASE("node_config: unknown keys are errors at every level") {
  check_parse_error(minimal + "lisen: 127.0.0.1:8848\n", "lisen", {"unknown key", "listen"});
  check_parse_error(minimal + "heartbeat:\n  intervl_ms: 5000\n", "heartbeat.intervl_ms",
                    {"unknown key", "interval_ms", "line 4"});
  check_parse_error(minimal + "log: {level: info, colour: true}\n", "log.colour", {"unknown key"});
  check_parse_error(minimal + "distro: {sync_delay: 10}\n", "distro.sync_delay",
                    {"unknown key", "sync_delay_ms"});
  check_parse_error(minimal + "limits: {max_clients: 10}\n", "limits.max_clients", {"unknown key"});
}

TEST_CASE("node_config: a section with every key commented out keeps the defaults") {
  auto cfg = parse_ok(minimal + "heartbeat:\n  # interval_ms: 1\ndiscovery:\n  service_thresholds:\n");
  CHECK(cfg.heartbeat.interval_ms == node_config{}.heartbeat.interval_ms);
  CHECK(cfg.discovery.service_thresholds.empty());
  // A value left empty is not a default, though: it names the line of its key.
  check_parse_error(minimal + "log:\n  file:\n", "log.file", {"expected a string", "null", "line 4"});
}

TEST_CASE("node_config: duplicate keys are errors") {
  check_parse_error(minimal + "push: {timeout_ms: 1, timeout_ms: 2}\n", "push.timeout_ms",
                    {"duplicate"});
}

TEST_CASE("node_config: wrong types are errors naming expected and found") {
  check_parse_error(minimal + "heartbeat: {interval_ms: abc}\n", "heartbeat.interval_ms",
                    {"expected an integer", "'abc'"});
  check_parse_error(minimal + "heartbeat: {interval_ms: \"5000\"}\n", "heartbeat.interval_ms",
                    {"expected an integer", "quoted string"});
  check_parse_error(minimal + "heartbeat: {interval_ms: 1.5}\n", "heartbeat.interval_ms",
                    {"expected an integer", "'1.5'"});
  check_parse_error(minimal + "heartbeat: {interval_ms: [1]}\n", "heartbeat.interval_ms",
                    {"expected an integer", "sequence"});
  check_parse_error(minimal + "heartbeat: {interval_ms: }\n", "heartbeat.interval_ms",
                    {"expected an integer", "null"});
  check_parse_error(minimal + "discovery: {protection_enabled: yes}\n",
                    "discovery.protection_enabled", {"expected true or false", "'yes'"});
  check_parse_error(minimal + "discovery: {protect_threshold: high}\n",
                    "discovery.protect_threshold", {"expected a number", "'high'"});
  check_parse_error(minimal + "log: info\n", "log", {"expected a mapping", "'info'"});
  check_parse_error(minimal + "log: {file: [a]}\n", "log.file", {"expected a string", "sequence"});
  check_parse_error("listen: 127.0.0.1:8848\nmembers: 127.0.0.1:8848\n", "members",
                    {"expected a sequence"});
  check_parse_error("listen: 127.0.0.1:8848\nmembers: []\n", "members", {"at least one"});
  check_parse_error("- listen\n", "(top level)", {"expected a mapping", "sequence"});
}

TEST_CASE("node_config: negative, zero and huge values are errors where they make no sense") {
  check_parse_error(minimal + "heartbeat: {check_interval_ms: -5}\n",
                    "heartbeat.check_interval_ms", {"expected an integer in 1..", "got -5"});
  check_parse_error(minimal + "session: {caf_heartbeat_interval_ms: 0}\n",
                    "session.caf_heartbeat_interval_ms", {"1..", "got 0"});
  check_parse_error(minimal + "limits: {services_max: 0}\n", "limits.services_max", {"got 0"});
  check_parse_error(minimal + "push: {merge_window_ms: -1}\n", "push.merge_window_ms",
                    {"0..", "got -1"});
  check_parse_error(minimal + "distro: {sync_timeout_ms: 99999999999999999999999}\n",
                    "distro.sync_timeout_ms", {"expected an integer"});
  check_parse_error(minimal + "discovery: {protect_threshold: 1.5}\n",
                    "discovery.protect_threshold", {"0..1", "1.5"});
  check_parse_error(minimal + "discovery: {protect_threshold: -1}\n",
                    "discovery.protect_threshold", {"0..1", "-1"});
}

TEST_CASE("node_config: bad addresses are errors naming the entry") {
  check_parse_error("listen: 127.0.0.1:8848\nmembers: [127.0.0.1:8848, 127.0.0.1:70000]\n",
                    "members[1]", {"port 70000 is out of range 1..65535", "line 2"});
  check_parse_error("listen: 127.0.0.1:8848\nmembers: [127.0.0.1:8848, 10.0.0.1:0]\n",
                    "members[1]", {"out of range"});
  check_parse_error("listen: 127.0.0.1\nmembers: [127.0.0.1:8848]\n", "listen", {"missing port"});
  check_parse_error("listen: :8848\nmembers: [127.0.0.1:8848]\n", "listen", {"empty host"});
  check_parse_error("listen: 127.0.0.1:8848\nmembers: [127.0.0.1:8848, 'x y:z']\n", "members[1]",
                    {"HOST:PORT"});
  check_parse_error("listen: 127.0.0.1:8848\nmembers: [127.0.0.1:8848, {a: b}]\n", "members[1]",
                    {"expected HOST:PORT", "mapping"});
  check_parse_error("listen: 0.0.0.0:8848\nmembers: [0.0.0.0:8848]\n", "members[0]", {"0.0.0.0"});
}

TEST_CASE("node_config: listen and members are required; listen must be a member") {
  check_parse_error("members: [127.0.0.1:8848]\n", "listen", {"missing"});
  check_parse_error("listen: 127.0.0.1:8848\n", "members", {"missing"});
  check_parse_error("", "(top level)", {"empty"});
  check_parse_error("listen: 127.0.0.1:8849\nmembers: [127.0.0.1:8848, 127.0.0.1:8850]\n", "listen",
                    {"expected one of the members", "127.0.0.1:8848", "'127.0.0.1:8849'"});
}

TEST_CASE("node_config: too many members is an error") {
  std::string text = "listen: 10.0.0.1:10000\nmembers:\n";
  for (std::size_t i = 0; i <= registry::defaults::members_max; ++i)
    text += "  - 10.0.0.1:" + std::to_string(10000 + i) + "\n";
  check_parse_error(text, "members",
                    {"at most " + std::to_string(registry::defaults::members_max),
                     std::to_string(registry::defaults::members_max + 1)});
}

TEST_CASE("node_config: relations between values are checked") {
  check_parse_error(minimal + "heartbeat: {interval_ms: 15000}\n", "heartbeat.unhealthy_timeout_ms",
                    {"heartbeat.interval_ms", "15000"});
  check_parse_error(minimal + "heartbeat: {delete_timeout_ms: 14999}\n",
                    "heartbeat.delete_timeout_ms", {"heartbeat.unhealthy_timeout_ms", "14999"});
  check_parse_error(minimal + "session: {caf_heartbeat_interval_ms: 5000}\n",
                    "session.caf_connection_timeout_ms", {"session.caf_heartbeat_interval_ms"});
  check_parse_error(minimal + "distro: {reconnect_backoff_min_ms: 6000}\n",
                    "distro.reconnect_backoff_min_ms", {"distro.reconnect_backoff_max_ms", "6000"});
  check_parse_error(minimal + "log: {level: verbose}\n", "log.level", {"trace", "'verbose'"});
  check_parse_error(minimal + "cluster_name: my cluster\n", "cluster_name",
                    {"[A-Za-z0-9_.-]", "'my cluster'"});
  check_parse_error(minimal + "cluster_name: ''\n", "cluster_name", {"non-empty"});
}

TEST_CASE("node_config: validate() checks configs built in code and names the source") {
  node_config cfg;
  cfg.source_file = "built.yaml";
  cfg.listen = {"127.0.0.1", 8848};
  cfg.members = {cfg.listen};
  CHECK(registry::validate(cfg).empty());

  auto broken = cfg;
  broken.heartbeat.unhealthy_timeout_ms = broken.heartbeat.interval_ms;
  check_error(registry::validate(broken), "built.yaml", "heartbeat.unhealthy_timeout_ms",
              {"heartbeat.interval_ms"});

  broken = cfg;
  broken.members = {{"127.0.0.1", 8850}, {"127.0.0.1", 8848}};
  check_error(registry::validate(broken), "built.yaml", "members[1]", {"sorted"});

  broken = cfg;
  broken.limits.subscribers_per_service_max = 0;
  check_error(registry::validate(broken), "built.yaml", "limits.subscribers_per_service_max",
              {"got 0"});

  broken = cfg;
  broken.discovery.service_thresholds["DEFAULT_GROUP@@orders"] = 0.5; // not normalised
  check_error(registry::validate(broken), "built.yaml",
              "discovery.service_thresholds.DEFAULT_GROUP@@orders", {"NS##GROUP@@SERVICE"});

  broken = cfg;
  broken.discovery.service_thresholds["public##DEFAULT_GROUP@@orders"] = 2.0;
  check_error(registry::validate(broken), "built.yaml",
              "discovery.service_thresholds.public##DEFAULT_GROUP@@orders", {"0..1 or -1", "2"});
}

TEST_CASE("node_config: service threshold keys are normalised and checked") {
  auto cfg = parse_ok(minimal + "discovery:\n"
                                "  service_thresholds:\n"
                                "    DEFAULT_GROUP@@orders: 0.5\n"
                                "    dev##billing@@invoices: 1\n"
                                "    DEFAULT_GROUP@@legacy: -1\n");
  std::map<std::string, double> expected = {{"public##DEFAULT_GROUP@@orders", 0.5},
                                            {"dev##billing@@invoices", 1.0},
                                            {"public##DEFAULT_GROUP@@legacy", -1.0}};
  CHECK(cfg.discovery.service_thresholds == expected);

  check_parse_error(minimal + "discovery:\n  service_thresholds:\n    orders: 0.5\n",
                    "discovery.service_thresholds.orders", {"GROUP@@SERVICE", "@@", "line 5"});
  check_parse_error(minimal + "discovery: {service_thresholds: {'@@orders': 0.5}}\n",
                    "discovery.service_thresholds.@@orders", {"empty group"});
  check_parse_error(minimal + "discovery: {service_thresholds: {'G@@': 0.5}}\n",
                    "discovery.service_thresholds.G@@", {"empty service"});
  check_parse_error(minimal + "discovery: {service_thresholds: {'##G@@s': 0.5}}\n",
                    "discovery.service_thresholds.##G@@s", {"empty namespace"});
  check_parse_error(minimal + "discovery: {service_thresholds: {G@@s: 1.5}}\n",
                    "discovery.service_thresholds.G@@s", {"0..1 or -1", "1.5"});
  check_parse_error(minimal + "discovery: {service_thresholds: {G@@s: -0.5}}\n",
                    "discovery.service_thresholds.G@@s", {"0..1 or -1", "-0.5"});
  check_parse_error(minimal + "discovery: {service_thresholds: {G@@s: half}}\n",
                    "discovery.service_thresholds.G@@s", {"expected a number", "'half'"});
  check_parse_error(minimal +
                      "discovery: {service_thresholds: {G@@s: 0.1, public##G@@s: 0.2}}\n",
                    "discovery.service_thresholds.public##G@@s", {"same service"});
}

TEST_CASE("node_config: files: missing, unreadable and syntax errors") {
  SUBCASE("missing file") {
    std::string path = (fs::temp_directory_path() / "node_config_test_does_not_exist.yaml").string();
    auto r = registry::load_node_config(path);
    REQUIRE(std::holds_alternative<std::string>(r));
    check_error(std::get<std::string>(r), path, "(file)", {"cannot read", "No such file"});
  }
  SUBCASE("a directory") {
    std::string path = fs::temp_directory_path().string();
    auto r = registry::load_node_config(path);
    REQUIRE(std::holds_alternative<std::string>(r));
    check_error(std::get<std::string>(r), path, "(file)", {"directory"});
  }
  SUBCASE("YAML syntax error reports the line") {
    temp_file f("listen: 127.0.0.1:8848\nmembers: [127.0.0.1:8848\nlog:\n  level: info\n");
    auto r = registry::load_node_config(f.path.string());
    REQUIRE(std::holds_alternative<std::string>(r));
    const auto& msg = std::get<std::string>(r);
    INFO(msg);
    CHECK(msg.rfind(f.path.string() + ": line ", 0) == 0);
    CHECK(msg.find("YAML syntax error") != std::string::npos);
  }
  SUBCASE("syntax error line number is the offending line") {
    auto msg = parse_error(minimal + "log:\n  level: info\n   file: x\n");
    INFO(msg);
    CHECK(msg.rfind("node.yaml: line 5, column ", 0) == 0);
    CHECK(msg.find("YAML syntax error") != std::string::npos);
  }
  SUBCASE("errors in a loaded file name that file") {
    temp_file f(minimal + "heartbeat: {interval_ms: soon}\n");
    auto r = registry::load_node_config(f.path.string());
    REQUIRE(std::holds_alternative<std::string>(r));
    check_error(std::get<std::string>(r), f.path.string(), "heartbeat.interval_ms",
                {"expected an integer", "'soon'"});
  }
  SUBCASE("several documents") {
    check_parse_error(minimal + "---\n" + minimal, "(top level)", {"one YAML document", "2"});
  }
  SUBCASE("a stray comma at the top level is a syntax error, not an endless load") {
    // yaml-cpp's LoadAll yields empty documents forever on this input (found by fuzzing).
    for (const std::string& text : std::vector<std::string>{", unheal", ",", minimal + ",\n"}) {
      auto msg = parse_error(text);
      INFO(msg);
      CHECK(msg.find("YAML syntax error") != std::string::npos);
    }
  }
}

// -- thresholds ----------------------------------------------------------------------

TEST_CASE("node_config: threshold_for uses per-service values, the default, or -1 when off") {
  const std::string thresholds = "  protect_threshold: 0.3\n"
                                 "  service_thresholds:\n"
                                 "    DEFAULT_GROUP@@orders: 0.8\n"
                                 "    dev##DEFAULT_GROUP@@orders: 0.6\n"
                                 "    DEFAULT_GROUP@@legacy: -1\n";
  auto on = parse_ok(minimal + "discovery:\n  protection_enabled: true\n" + thresholds);
  CHECK(on.threshold_for("public", "DEFAULT_GROUP@@orders") == doctest::Approx(0.8));
  CHECK(on.threshold_for("", "DEFAULT_GROUP@@orders") == doctest::Approx(0.8)); // "" = public
  CHECK(on.threshold_for("public", "orders") == doctest::Approx(0.8)); // default group
  CHECK(on.threshold_for("dev", "DEFAULT_GROUP@@orders") == doctest::Approx(0.6));
  CHECK(on.threshold_for("test", "DEFAULT_GROUP@@orders") == doctest::Approx(0.3));
  CHECK(on.threshold_for("public", "OTHER@@orders") == doctest::Approx(0.3));
  CHECK(on.threshold_for("public", "DEFAULT_GROUP@@legacy") == -1.0);

  auto off = parse_ok(minimal + "discovery:\n  protection_enabled: false\n" + thresholds);
  for (const auto& [ns, name] : std::vector<std::pair<std::string, std::string>>{
         {"public", "DEFAULT_GROUP@@orders"}, {"dev", "DEFAULT_GROUP@@orders"},
         {"public", "OTHER@@x"}}) {
    CHECK(off.threshold_for(ns, name) == -1.0);
  }
}

// -- member sources ----------------------------------------------------------------------

TEST_CASE("node_config: members_url names an address server instead of members") {
  auto cfg = parse_ok("listen: 127.0.0.1:8848\n"
                      "members_url: http://127.0.0.1:8080/nacos/serverlist\n"
                      "members_poll_interval_ms: 250\nmembers_start_wait_ms: 0\n");
  CHECK(cfg.members_url == "http://127.0.0.1:8080/nacos/serverlist");
  CHECK(cfg.members.empty()); // filled by the node from the server
  CHECK(cfg.members_poll_interval_ms == 250);
  CHECK(cfg.members_start_wait_ms == 0);
  CHECK(!cfg.standalone());
  CHECK(registry::validate(cfg).empty());
  // Without a port or a path, with a DNS name and a query.
  parse_ok("listen: 127.0.0.1:8848\nmembers_url: http://addr.example\n");
  parse_ok("listen: 127.0.0.1:8848\nmembers_url: http://addr.example:8080/list?env=prod\n");
  // "" means not set: members then required.
  parse_ok(minimal + "members_url: ''\n");
}

TEST_CASE("node_config: members and members_url are mutually exclusive; one is required") {
  check_parse_error(minimal + "members_url: http://127.0.0.1:8080/list\n", "members_url",
                    {"members", "together"});
  check_parse_error("listen: 127.0.0.1:8848\n", "members", {"missing", "members_url"});
  check_parse_error("listen: 127.0.0.1:8848\nmembers_url: ''\n", "members",
                    {"missing", "members_url"});
}

TEST_CASE("node_config: a bad members_url is an error naming it") {
  const std::string head = "listen: 127.0.0.1:8848\nmembers_url: ";
  check_parse_error(head + "https://127.0.0.1/list\n", "members_url", {"http://", "plain http"});
  check_parse_error(head + "127.0.0.1:8080/list\n", "members_url", {"http://HOST"});
  check_parse_error(head + "http:///list\n", "members_url", {"no host"});
  check_parse_error(head + "http://user:pw@127.0.0.1/list\n", "members_url", {"user"});
  check_parse_error(head + "http://127.0.0.1:99999/list\n", "members_url", {"out of range"});
  check_parse_error(head + "http://bad_host/list\n", "members_url", {"letters, digits"});
  check_parse_error(head + "'http://127.0.0.1/a list'\n", "members_url", {"whitespace"});
  check_parse_error(head + "http://127.0.0.1/list#top\n", "members_url", {"fragment"});
  check_parse_error(head + "[http://127.0.0.1/list]\n", "members_url", {"expected a string"});
  check_parse_error(head + "http://127.0.0.1/" + std::string(3000, 'a') + "\n", "members_url",
                    {"longer than"});
}

TEST_CASE("node_config: members_poll_interval_ms and members_start_wait_ms are bounded") {
  check_parse_error(minimal + "members_poll_interval_ms: 99\n", "members_poll_interval_ms",
                    {"100..", "99"});
  check_parse_error(minimal + "members_poll_interval_ms: soon\n", "members_poll_interval_ms",
                    {"expected an integer"});
  check_parse_error(minimal + "members_start_wait_ms: -1\n", "members_start_wait_ms", {"0.."});

  node_config cfg;
  cfg.source_file = "built.yaml";
  cfg.listen = {"127.0.0.1", 8848};
  cfg.members = {cfg.listen};
  cfg.members_poll_interval_ms = 0;
  check_error(registry::validate(cfg), "built.yaml", "members_poll_interval_ms", {"got 0"});
  cfg.members_poll_interval_ms = 1000;
  cfg.members_start_wait_ms = -5;
  check_error(registry::validate(cfg), "built.yaml", "members_start_wait_ms", {"got -5"});
  cfg.members_start_wait_ms = 0;
  cfg.members_url = "ftp://x/y";
  check_error(registry::validate(cfg), "built.yaml", "members_url", {"http://"});
  cfg.members_url = "http://127.0.0.1/list";
  cfg.members.clear(); // before the first fetch
  CHECK(registry::validate(cfg).empty());
  cfg.members = {{"127.0.0.1", 8850}}; // a fetched list must still hold listen
  check_error(registry::validate(cfg), "built.yaml", "listen", {"expected one of the members"});
}

// -- the cluster secret -------------------------------------------------------------------

TEST_CASE("node_config: cluster_secret is taken inline; short ones are refused without echo") {
  auto cfg = parse_ok(minimal + "cluster_secret: " + secret + "\n");
  CHECK(cfg.cluster_secret == secret);
  CHECK(cfg.cluster_secret_source == "cluster_secret");
  CHECK(cfg.warnings.empty());
  CHECK(parse_ok(minimal + "cluster_secret: ''\n").cluster_secret.empty());
  CHECK(parse_ok(minimal).cluster_secret.empty());

  auto err = parse_error(minimal + "cluster_secret: tooShortSecret\n");
  check_error(err, "node.yaml", "cluster_secret", {"at least 16 bytes", "got 14"});
  CHECK(err.find("tooShortSecret") == std::string::npos);
  err = parse_error(minimal + "cluster_secret: [a, b]\n");
  check_error(err, "node.yaml", "cluster_secret", {"expected a string"});
  err = parse_error(minimal + "cluster_secret: " + std::string(5000, 'x') + "\n");
  check_error(err, "node.yaml", "cluster_secret", {"at most 4096", "5000"});
}

TEST_CASE("node_config: cluster_secret_file is read, trimmed of a final newline and checked") {
  temp_dir dir;
  SUBCASE("a good file, absolute or relative to the config file") {
    auto path = dir.write("secret", secret + "\n");
    auto cfg = parse_ok(minimal + "cluster_secret_file: " + path + "\n");
    CHECK(cfg.cluster_secret == secret);
    CHECK(cfg.cluster_secret_source == path);
    CHECK(cfg.warnings.empty());
    auto yaml = dir.write("node.yaml", minimal + "cluster_secret_file: secret\n");
    CHECK(load_ok(yaml).cluster_secret == secret);
  }
  SUBCASE("only one final newline goes; CRLF too; none is fine") {
    CHECK(parse_ok(minimal + "cluster_secret_file: " + dir.write("a", secret + "\r\n") + "\n")
            .cluster_secret == secret);
    CHECK(parse_ok(minimal + "cluster_secret_file: " + dir.write("b", secret) + "\n")
            .cluster_secret == secret);
    CHECK(parse_ok(minimal + "cluster_secret_file: " + dir.write("c", secret + "\n\n") + "\n")
            .cluster_secret == secret + "\n");
  }
  SUBCASE("a file others can read is a warning, not an error") {
    auto path = dir.write("open", secret, 0644);
    auto cfg = parse_ok(minimal + "cluster_secret_file: " + path + "\n");
    CHECK(cfg.cluster_secret == secret);
    REQUIRE(cfg.warnings.size() == 1);
    CHECK(cfg.warnings[0].find(path) != std::string::npos);
    CHECK(cfg.warnings[0].find("0644") != std::string::npos);
    CHECK(cfg.warnings[0].find("chmod 600") != std::string::npos);
    CHECK(cfg.warnings[0].find(secret) == std::string::npos);
    // Readable by the group only: no warning.
    CHECK(parse_ok(minimal + "cluster_secret_file: " + dir.write("grp", secret, 0640) + "\n")
            .warnings.empty());
  }
}

TEST_CASE("node_config: bad secret files are refused naming the path, never the content") {
  temp_dir dir;
  auto refused = [&](const std::string& path, const std::vector<std::string>& fragments) {
    auto err = parse_error(minimal + "cluster_secret_file: " + path + "\n");
    check_error(err, "node.yaml", "cluster_secret_file", fragments);
    CHECK(err.find(path) != std::string::npos);
    return err;
  };
  refused((dir.path / "missing").string(), {"cannot read", "No such file"});
  refused(dir.path.string(), {"not a regular file"});
  refused(dir.write("empty", ""), {"is empty"});
  refused(dir.write("newline", "\n"), {"is empty"});
  auto err = refused(dir.write("short", "shortSecret\n"), {"11 bytes", "at least 16"});
  CHECK(err.find("shortSecret") == std::string::npos);
  refused(dir.write("huge", std::string(5000, 's')), {"larger than 4096 bytes"});
  if (::geteuid() != 0) { // root reads any file
    refused(dir.write("locked", secret, 0000), {"cannot read", "Permission denied"});
  }
  check_parse_error(minimal + "cluster_secret: " + secret + "\ncluster_secret_file: " +
                      dir.write("both", secret) + "\n",
                    "cluster_secret_file", {"cluster_secret", "together"});
  check_parse_error(minimal + "cluster_secret_file: {a: b}\n", "cluster_secret_file",
                    {"expected a string"});
}

TEST_CASE("node_config: validate() checks the length of a secret built in code") {
  node_config cfg;
  cfg.source_file = "built.yaml";
  cfg.listen = {"127.0.0.1", 8848};
  cfg.members = {cfg.listen};
  cfg.cluster_secret = "short";
  auto err = registry::validate(cfg);
  check_error(err, "built.yaml", "cluster_secret", {"16..4096 bytes", "got 5"});
  CHECK(err.find("short'") == std::string::npos);
  cfg.cluster_secret_source = "/etc/registry/secret";
  check_error(registry::validate(cfg), "built.yaml", "cluster_secret_file", {"got 5"});
  cfg.cluster_secret = secret;
  CHECK(registry::validate(cfg).empty());
}

TEST_CASE("node_config: push.drop_after_ms and the log section are checked") {
  check_parse_error(minimal + "push: {timeout_ms: 3000, drop_after_ms: 1000}\n", "push.drop_after_ms",
                    {"push.timeout_ms"});
  check_parse_error(minimal + "log: {files_max: 0}\n", "log.files_max", {"1.."});
  check_parse_error(minimal + "log: {file_size_bytes_max: 10}\n", "log.file_size_bytes_max",
                    {"1024.."});
  auto cfg = parse_ok(minimal + "log: {file_size_bytes_max: 4096, files_max: 3, queue_lines_max: 10,"
                                " flush_interval_ms: 50}\n");
  CHECK(cfg.log.file_size_bytes_max == 4096);
  CHECK(cfg.log.files_max == 3);
  CHECK(cfg.log.queue_lines_max == 10);
  CHECK(cfg.log.flush_interval_ms == 50);
}
