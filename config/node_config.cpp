#include "config/node_config.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>
#include <sstream>
#include <filesystem>
#include <sys/stat.h>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace registry {

namespace {

// -- limits of single values -------------------------------------------------

/// Durations above a week are almost certainly typos, and bounding them keeps every conversion to
/// nanoseconds far from overflow.
constexpr std::int64_t duration_ms_max = 7LL * 24 * 3600 * 1000;
constexpr std::int64_t count_max = 1000000;
constexpr std::int64_t limit_max = 1000000000;

// -- the schema: one table drives parsing and range checks --------------------

/// Access to an integer field of the config, whatever its C++ type (int64, int, size_t).
struct int_field {
  const char* section;
  const char* name;
  std::int64_t min;
  std::int64_t max;
  std::int64_t (*get)(const node_config&);
  void (*set)(node_config&, std::int64_t);
};

#define REGISTRY_INT_FIELD(SECTION, NAME, MIN, MAX)                                     \
  int_field {                                                                           \
    #SECTION, #NAME, MIN, MAX,                                                          \
        [](const node_config& c) { return static_cast<std::int64_t>(c.SECTION.NAME); }, \
        [](node_config& c, std::int64_t v) {                                            \
          c.SECTION.NAME = static_cast<decltype(c.SECTION.NAME)>(v);                    \
        }                                                                               \
  }

const std::vector<int_field>& int_fields() {
  static const std::vector<int_field> fields = {
    REGISTRY_INT_FIELD(heartbeat, interval_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(heartbeat, unhealthy_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(heartbeat, delete_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(heartbeat, check_interval_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(session, caf_heartbeat_interval_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(session, caf_connection_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(push, merge_window_ms, 0, duration_ms_max),
    REGISTRY_INT_FIELD(push, timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(push, retry_delay_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(push, drop_after_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(log, file_size_bytes_max, 1024, limit_max),
    REGISTRY_INT_FIELD(log, files_max, 1, 1000),
    REGISTRY_INT_FIELD(log, queue_lines_max, 1, count_max),
    REGISTRY_INT_FIELD(log, flush_interval_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(discovery, cache_millis, 1, duration_ms_max),
    REGISTRY_INT_FIELD(limits, clients_max, 1, limit_max),
    REGISTRY_INT_FIELD(limits, replica_clients_max, 1, limit_max),
    REGISTRY_INT_FIELD(limits, sessions_per_connection_max, 1, limit_max),
    REGISTRY_INT_FIELD(limits, services_max, 1, limit_max),
    REGISTRY_INT_FIELD(limits, instances_per_client_max, 1, limit_max),
    REGISTRY_INT_FIELD(limits, instances_per_service_max, 1, limit_max),
    REGISTRY_INT_FIELD(limits, subscribers_per_service_max, 1, limit_max),
    REGISTRY_INT_FIELD(http, connections_max, 1, 1000000),
    REGISTRY_INT_FIELD(http, header_bytes_max, 1024, 1024 * 1024),
    REGISTRY_INT_FIELD(http, body_bytes_max, 1024, 64 * 1024 * 1024),
    REGISTRY_INT_FIELD(http, request_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(http, idle_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(http, threads, 1, 64),
    REGISTRY_INT_FIELD(http, udp_ack_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(http, udp_retries_max, 0, 10),
    REGISTRY_INT_FIELD(http, udp_subscriber_expiry_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(grpc, connections_max, 1, 1000000),
    REGISTRY_INT_FIELD(grpc, request_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(grpc, idle_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(grpc, detection_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(grpc, setup_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(auth, token_ttl_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(distro, sync_delay_ms, 0, duration_ms_max),
    REGISTRY_INT_FIELD(distro, sync_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(distro, sync_retry_delay_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(distro, verify_interval_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(distro, verify_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(distro, copy_expiry_verify_rounds, 1, count_max),
    REGISTRY_INT_FIELD(distro, snapshot_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(distro, snapshot_retry_delay_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(distro, lone_ready_wait_ms, 0, duration_ms_max),
    REGISTRY_INT_FIELD(distro, reconnect_backoff_min_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(distro, reconnect_backoff_max_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(distro, member_failures_until_down, 1, count_max),
    REGISTRY_INT_FIELD(raft, election_timeout_ms, 10, duration_ms_max),
    REGISTRY_INT_FIELD(raft, heartbeat_interval_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(raft, snapshot_threshold_entries, 2, count_max),
    REGISTRY_INT_FIELD(raft, snapshot_trailing_entries, 0, count_max),
    REGISTRY_INT_FIELD(raft, write_timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(health_check, interval_min_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(health_check, interval_max_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(health_check, timeout_ms, 1, duration_ms_max),
    REGISTRY_INT_FIELD(health_check, in_flight_max, 1, count_max),
  };
  return fields;
}

#undef REGISTRY_INT_FIELD

/// Keys a section accepts besides its integer fields.
const std::map<std::string, std::set<std::string>>& extra_section_keys() {
  static const std::map<std::string, std::set<std::string>> keys = {
    {"log", {"level", "file"}},
    {"heartbeat", {}},
    {"session", {}},
    {"push", {"enabled"}},
    {"discovery", {"protection_enabled", "protect_threshold", "service_thresholds"}},
    {"limits", {}},
    {"distro", {}},
    {"http", {"listen"}},
    {"grpc", {"listen"}},
    {"auth", {"enabled", "secret", "users_file"}},
    {"raft", {}},
    {"health_check", {}},
    {"tls", {"anonymous", "certificate", "key", "key_passphrase_file", "ca_file"}},
  };
  return keys;
}

const std::set<std::string> top_level_scalar_keys = {"listen",
                                                     "members",
                                                     "members_url",
                                                     "members_poll_interval_ms",
                                                     "members_start_wait_ms",
                                                     "cluster_name",
                                                     "cluster_secret",
                                                     "cluster_secret_file",
                                                     "data_dir"};

const char* const log_levels[] = {"trace", "debug", "info", "warn", "error", "off"};

// -- small helpers ---------------------------------------------------------------

std::string quote(const std::string& s) {
  constexpr std::size_t shown_max = 60;
  if (s.size() <= shown_max)
    return "'" + s + "'";
  return "'" + s.substr(0, shown_max) + "...'";
}

std::string fmt_double(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string join_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) {
    if (!out.empty())
      out += ", ";
    out += k;
  }
  return out;
}

/// Thrown while walking the document; turned into the "FILE: KEY: PROBLEM" message.
struct config_error {
  std::string key;
  std::string problem;
  bool has_line = false;
};

std::string at_line(const YAML::Node& node) {
  auto mark = node.Mark();
  if (mark.is_null() || mark.line < 0)
    return "";
  return " (line " + std::to_string(mark.line + 1) + ")";
}

/// A null value has no useful position of its own; for_each_entry then adds the key's line.
[[noreturn]] void fail(const std::string& key, const std::string& problem, const YAML::Node& node) {
  std::string line = node.IsNull() ? std::string{} : at_line(node);
  throw config_error{key, problem + line, !line.empty()};
}

[[noreturn]] void fail(const std::string& key, const std::string& problem) {
  throw config_error{key, problem};
}

/// What a node is, for "got ..." in messages.
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      if (node.Tag() == "!")
        return "the quoted string " + quote(node.Scalar());
      return quote(node.Scalar());
    default:
      return "an undefined value";
  }
}

/// A plain (unquoted, untagged) scalar: the only form numbers and booleans may take.
bool plain_scalar(const YAML::Node& node) {
  return node.IsScalar() && node.Tag() == "?";
}

bool parse_int(const std::string& s, std::int64_t& out) {
  if (s.empty())
    return false;
  std::size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size())
    return false;
  for (std::size_t j = i; j < s.size(); ++j)
    if (s[j] < '0' || s[j] > '9')
      return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno == ERANGE || *end != '\0')
    return false;
  out = v;
  return true;
}

bool parse_double(const std::string& s, double& out) {
  if (s.empty())
    return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
      return false; // rules out inf, nan, hex floats and whitespace
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno == ERANGE || *end != '\0' || !std::isfinite(v))
    return false;
  out = v;
  return true;
}

std::int64_t read_int(const YAML::Node& node, const std::string& key, std::int64_t min,
                      std::int64_t max) {
  std::string range = std::to_string(min) + ".." + std::to_string(max);
  std::int64_t v = 0;
  if (!plain_scalar(node) || !parse_int(node.Scalar(), v))
    fail(key, "expected an integer in " + range + ", got " + describe(node), node);
  if (v < min || v > max)
    fail(key, "expected an integer in " + range + ", got " + std::to_string(v), node);
  return v;
}

bool read_bool(const YAML::Node& node, const std::string& key) {
  if (plain_scalar(node)) {
    const auto& s = node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE")
      return true;
    if (s == "false" || s == "False" || s == "FALSE")
      return false;
  }
  fail(key, "expected true or false, got " + describe(node), node);
}

double read_number(const YAML::Node& node, const std::string& key, const std::string& expected) {
  double v = 0;
  if (!plain_scalar(node) || !parse_double(node.Scalar(), v))
    fail(key, "expected " + expected + ", got " + describe(node), node);
  return v;
}

std::string read_string(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar())
    fail(key, "expected a string, got " + describe(node) + (node.IsNull() ? " (write \"\" for empty)" : ""),
         node);
  return node.Scalar();
}

host_port read_host_port(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar())
    fail(key, "expected HOST:PORT, got " + describe(node), node);
  auto parsed = parse_host_port(node.Scalar());
  if (auto* err = std::get_if<std::string>(&parsed))
    fail(key, *err, node);
  return std::get<host_port>(parsed);
}

/// Iterates a mapping, rejecting non-scalar and duplicate keys; calls f(key, value).
template <class F>
void for_each_entry(const YAML::Node& map, const std::string& path, F&& f) {
  std::set<std::string> seen;
  for (const auto& entry : map) { // yaml-cpp iterators yield temporaries: keep copies
    const YAML::Node k = entry.first;
    const YAML::Node value = entry.second;
    if (!k.IsScalar())
      fail(path.empty() ? "(top level)" : path, "expected string keys, got " + describe(k) + " as a key", k);
    const std::string name = k.Scalar();
    const std::string full = path.empty() ? name : path + "." + name;
    if (!seen.insert(name).second)
      fail(full, "duplicate key", k);
    try {
      f(name, full, value, k);
    } catch (config_error& e) {
      if (!e.has_line) {
        e.problem += at_line(k);
        e.has_line = true;
      }
      throw;
    }
  }
}

void require_map(const YAML::Node& node, const std::string& key) {
  if (!node.IsMap())
    fail(key, "expected a mapping, got " + describe(node), node);
}

// -- service threshold keys ------------------------------------------------------

bool chars_in(const std::string& s, const char* extra) {
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::strchr(extra, c) != nullptr;
    if (!ok || c == '\0')
      return false;
  }
  return true;
}

/// Normalises "GROUP@@SERVICE" / "NS##GROUP@@SERVICE" to "NS##GROUP@@SERVICE"; "" plus an error
/// message when the key is malformed.
std::string normalise_threshold_key(const std::string& key, std::string& error) {
  const std::string sep = defaults::group_separator;
  auto at = key.find(sep);
  if (at == std::string::npos) {
    error = "expected \"GROUP@@SERVICE\" or \"NS##GROUP@@SERVICE\", got " + quote(key) +
            " (no \"@@\")";
    return "";
  }
  std::string head = key.substr(0, at);
  std::string service = key.substr(at + sep.size());
  std::string ns = defaults::namespace_id;
  std::string group = head;
  auto hash = head.find("##");
  if (hash != std::string::npos) {
    ns = head.substr(0, hash);
    group = head.substr(hash + 2);
    if (ns.empty()) {
      error = "empty namespace before \"##\" in " + quote(key);
      return "";
    }
    if (ns.size() > defaults::namespace_chars_max || !chars_in(ns, "_-")) {
      error = "namespace " + quote(ns) + " must be 1.." +
              std::to_string(defaults::namespace_chars_max) + " characters of [A-Za-z0-9_-]";
      return "";
    }
  }
  if (group.empty()) {
    error = "empty group before \"@@\" in " + quote(key);
    return "";
  }
  if (group.size() > defaults::group_chars_max || !chars_in(group, "_-:.")) {
    error = "group " + quote(group) + " must be 1.." + std::to_string(defaults::group_chars_max) +
            " characters of [A-Za-z0-9_-:.]";
    return "";
  }
  if (service.empty()) {
    error = "empty service after \"@@\" in " + quote(key);
    return "";
  }
  bool space = false;
  for (char c : service)
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')
      space = true;
  if (service.size() > defaults::service_chars_max || service.find(sep) != std::string::npos ||
      service.front() == '@' || space) {
    error = "service " + quote(service) + " must be 1.." +
            std::to_string(defaults::service_chars_max) +
            " characters without whitespace or \"@@\", not starting with '@'";
    return "";
  }
  return ns + "##" + group + sep + service;
}

// -- host names --------------------------------------------------------------------

bool valid_ipv4(const std::string& h) {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t j = i;
    while (j < h.size() && h[j] >= '0' && h[j] <= '9')
      ++j;
    std::size_t len = j - i;
    if (len == 0 || len > 3 || (len > 1 && h[i] == '0'))
      return false;
    if (std::stoi(h.substr(i, len)) > 255)
      return false;
    ++parts;
    if (j == h.size())
      break;
    if (h[j] != '.')
      return false;
    i = j + 1;
  }
  return parts == 4;
}

/// "" when `h` is a valid DNS-like name, else the problem.
std::string check_dns_name(const std::string& h) {
  if (h.size() > 253)
    return "host name is longer than 253 characters";
  std::size_t start = 0;
  while (true) {
    auto dot = h.find('.', start);
    std::string label = h.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty())
      return "host " + quote(h) + " has an empty label";
    if (label.size() > 63)
      return "host " + quote(h) + " has a label longer than 63 characters";
    if (label.front() == '-' || label.back() == '-')
      return "host " + quote(h) + " has a label starting or ending with '-'";
    if (!chars_in(label, "-"))
      return "host " + quote(h) + " may only hold letters, digits, dots and hyphens";
    if (dot == std::string::npos)
      break;
    start = dot + 1;
  }
  return "";
}

// -- the cluster secret -------------------------------------------------------------

std::string quote_path(const std::string& path) {
  return "'" + path + "'";
}

/// `path` as written, or relative to the directory of the config file when it is relative.
std::string resolve_path(const std::string& path, const std::string& source_name) {
  std::filesystem::path p{path};
  if (p.is_absolute() || source_name.empty())
    return path;
  auto dir = std::filesystem::path{source_name}.parent_path();
  return dir.empty() ? path : (dir / p).string();
}

/// Reads the secret file named by `value` into cfg.cluster_secret; warns when others may read it.
/// Errors name the path but never the content.
void read_secret_file(const YAML::Node& value, node_config& cfg, const std::string& source_name) {
  const std::string key = "cluster_secret_file";
  const std::string path = resolve_path(value.Scalar(), source_name);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    fail(key, "cannot read " + quote_path(path) + ": " + std::strerror(errno), value);
  if (!S_ISREG(st.st_mode))
    fail(key, "cannot read " + quote_path(path) + ": not a regular file", value);
  if (static_cast<std::uint64_t>(st.st_size) > defaults::cluster_secret_bytes_max + 2)
    fail(key, quote_path(path) + " is larger than " +
                std::to_string(defaults::cluster_secret_bytes_max) + " bytes", value);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    fail(key, "cannot read " + quote_path(path) + ": " + std::strerror(errno), value);
  std::string text;
  char buf[512];
  std::size_t n = 0;
  while (text.size() <= defaults::cluster_secret_bytes_max + 2 &&
         (n = std::fread(buf, 1, sizeof buf, f)) > 0)
    text.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int read_errno = errno;
  std::fclose(f);
  if (failed)
    fail(key, "cannot read " + quote_path(path) + ": " + std::strerror(read_errno), value);
  // One final newline (LF or CRLF) is what editors add; it is not part of the secret.
  if (!text.empty() && text.back() == '\n') {
    text.pop_back();
    if (!text.empty() && text.back() == '\r')
      text.pop_back();
  }
  if (text.empty())
    fail(key, quote_path(path) + " is empty; expected a secret of at least " +
                std::to_string(defaults::cluster_secret_bytes_min) + " bytes", value);
  if (text.size() < defaults::cluster_secret_bytes_min)
    fail(key, "the secret in " + quote_path(path) + " has " + std::to_string(text.size()) +
                " bytes; expected at least " + std::to_string(defaults::cluster_secret_bytes_min),
         value);
  if (text.size() > defaults::cluster_secret_bytes_max)
    fail(key, quote_path(path) + " is larger than " +
                std::to_string(defaults::cluster_secret_bytes_max) + " bytes", value);
  if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    cfg.warnings.push_back(key + ": " + quote_path(path) + " is accessible by others (mode " +
                           mode + "); restrict it with chmod 600");
  }
  cfg.cluster_secret = std::move(text);
  cfg.cluster_secret_source = path;
}

// -- TLS ------------------------------------------------------------------------------

/// The YAML key of a tls_problem's field.
std::string tls_key(const std::string& field) {
  return field == "key_passphrase" ? "tls.key_passphrase_file" : "tls." + field;
}

/// Reads the `tls` section: the mode, the paths (relative to the config file's directory), the
/// passphrase file; then checks every file as CAF will load it (config/tls.hpp).
void parse_tls(const YAML::Node& node, node_config& cfg, const std::string& source_name) {
  if (node.IsNull())
    return; // every key commented out: off
  require_map(node, "tls");
  bool anonymous = false;
  std::map<std::string, YAML::Node> given; // the YAML node of each non-empty path, for lines
  const std::map<std::string, std::string*> paths = {
    {"certificate", &cfg.tls.certificate},
    {"key", &cfg.tls.key},
    {"key_passphrase_file", &cfg.tls_key_passphrase_file},
    {"ca_file", &cfg.tls.ca_file},
  };
  for_each_entry(node, "tls", [&](const std::string& name, const std::string& full,
                                  const YAML::Node& value, const YAML::Node& key_node) {
    if (name == "anonymous") {
      anonymous = read_bool(value, full);
      given[name] = value;
      return;
    }
    auto it = paths.find(name);
    if (it == paths.end()) {
      const auto& known = extra_section_keys().at("tls");
      fail(full, "unknown key (known keys: " +
                   join_keys(std::vector<std::string>(known.begin(), known.end())) + ")",
           key_node);
    }
    auto path = read_string(value, full);
    if (!path.empty()) {
      *it->second = resolve_path(path, source_name);
      given[name] = value;
    }
  });
  auto line_of = [&](const std::string& field) {
    auto it = given.find(field == "key_passphrase" ? "key_passphrase_file" : field);
    return it != given.end() ? it->second : node;
  };
  bool files = given.size() > (given.count("anonymous") ? 1u : 0u);
  if (anonymous && files)
    fail("tls.anonymous", "cannot be used together with certificate, key, key_passphrase_file or "
                          "ca_file: anonymous TLS has no certificates",
         given["anonymous"]);
  cfg.tls.enabled = anonymous || files;
  if (!cfg.tls_key_passphrase_file.empty()) {
    if (cfg.tls.key.empty())
      fail("tls.key_passphrase_file", "given without tls.key", line_of("key_passphrase"));
    auto problem = read_passphrase_file(cfg.tls_key_passphrase_file, cfg.tls.key_passphrase);
    if (!problem.empty())
      fail("tls.key_passphrase_file", problem, line_of("key_passphrase"));
  }
  if (auto problem = check_tls_files(cfg.tls, tls_role::node))
    fail(tls_key(problem->field), problem->problem, line_of(problem->field));
  const std::pair<const char*, std::string> secrets[] = {
    {"tls.key", cfg.tls.key}, {"tls.key_passphrase_file", cfg.tls_key_passphrase_file}};
  for (const auto& [key, path] : secrets) {
    std::string mode;
    if (!path.empty() && readable_by_others(path, mode))
      cfg.warnings.push_back(std::string{key} + ": " + quote_path(path) +
                             " is accessible by others (mode " + mode +
                             "); restrict it with chmod 600");
  }
}

// -- the document ------------------------------------------------------------------

void parse_section(const YAML::Node& node, const std::string& section, node_config& cfg) {
  if (node.IsNull())
    return; // a section whose keys are all commented out: defaults
  require_map(node, section);
  const auto& extra = extra_section_keys().at(section);
  for_each_entry(node, section, [&](const std::string& name, const std::string& full,
                                    const YAML::Node& value, const YAML::Node& key_node) {
    for (const auto& f : int_fields()) {
      if (section == f.section && name == f.name) {
        f.set(cfg, read_int(value, full, f.min, f.max));
        return;
      }
    }
    if (section == "log" && name == "level") {
      cfg.log_level = read_string(value, full);
      bool known = false;
      for (const char* level : log_levels)
        known = known || cfg.log_level == level;
      if (!known)
        fail(full, "expected one of trace, debug, info, warn, error, off, got " +
                       quote(cfg.log_level), value);
    } else if (section == "log" && name == "file") {
      cfg.log_file = read_string(value, full);
    } else if ((section == "http" || section == "grpc") && name == "listen") {
      auto text = read_string(value, full);
      auto& enabled = section == "http" ? cfg.http.enabled : cfg.grpc.enabled;
      auto& listen = section == "http" ? cfg.http.listen : cfg.grpc.listen;
      enabled = text != "off";
      listen = host_port{};
      if (!text.empty() && text != "off") {
        // Port 0 (any free port) is allowed here, unlike in `listen`.
        bool any_port = text.size() > 2 && text.compare(text.size() - 2, 2, ":0") == 0;
        auto parsed = parse_host_port(any_port ? text.substr(0, text.size() - 1) + "1" : text);
        if (auto* problem = std::get_if<std::string>(&parsed))
          fail(full, *problem + " (or \"off\")", value);
        listen = std::get<host_port>(parsed);
        if (any_port)
          listen.port = 0;
      }
    } else if (section == "auth" && name == "enabled") {
      cfg.auth.enabled = read_bool(value, full);
    } else if (section == "auth" && name == "secret") {
      if (!value.IsScalar()) // never echo the value
        fail(full, "expected a string", value);
      cfg.auth.secret = value.Scalar();
    } else if (section == "auth" && name == "users_file") {
      cfg.auth.users_file = read_string(value, full);
      if (!cfg.auth.users_file.empty())
        cfg.auth.users_file = resolve_path(cfg.auth.users_file, cfg.source_file);
    } else if (section == "push" && name == "enabled") {
      cfg.push.enabled = read_bool(value, full);
    } else if (section == "discovery" && name == "protection_enabled") {
      cfg.discovery.protection_enabled = read_bool(value, full);
    } else if (section == "discovery" && name == "protect_threshold") {
      double v = read_number(value, full, "a number in 0..1");
      if (v < 0.0 || v > 1.0)
        fail(full, "expected a number in 0..1, got " + fmt_double(v), value);
      cfg.discovery.protect_threshold = v;
    } else if (section == "discovery" && name == "service_thresholds") {
      if (value.IsNull())
        return; // "service_thresholds:" with nothing under it: none
      require_map(value, full);
      for_each_entry(value, full, [&](const std::string& raw, const std::string& entry_key,
                                      const YAML::Node& v, const YAML::Node& k) {
        std::string error;
        std::string key = normalise_threshold_key(raw, error);
        if (key.empty())
          fail(entry_key, error, k);
        double t = read_number(v, entry_key, "a number in 0..1 or -1 (off)");
        if (t != -1.0 && (t < 0.0 || t > 1.0))
          fail(entry_key, "expected a number in 0..1 or -1 (off), got " + fmt_double(t), v);
        if (!cfg.discovery.service_thresholds.emplace(key, t).second)
          fail(entry_key, "names the same service as an earlier key (" + key + ")", k);
      });
    } else {
      std::vector<std::string> known;
      for (const auto& f : int_fields())
        if (section == f.section)
          known.emplace_back(f.name);
      known.insert(known.end(), extra.begin(), extra.end());
      fail(full, "unknown key (known keys: " + join_keys(known) + ")", key_node);
    }
  });
}

node_config parse_document(const YAML::Node& root, const std::string& source_name) {
  node_config cfg;
  cfg.source_file = source_name;
  if (root.IsNull() || !root.IsDefined())
    fail("(top level)", "the document is empty; expected a mapping with at least listen and members");
  require_map(root, "(top level)");
  bool have_listen = false;
  bool have_members = false;
  bool have_secret_file = false;
  YAML::Node secret_file; // read after the walk, once exclusivity is known
  bool have_tls = false;
  YAML::Node tls_section; // read after the walk: its files are checked last
  for_each_entry(root, "", [&](const std::string& name, const std::string& full,
                               const YAML::Node& value, const YAML::Node& key_node) {
    if (name == "listen") {
      cfg.listen = read_host_port(value, full);
      have_listen = true;
    } else if (name == "members") {
      if (!value.IsSequence())
        fail(full, "expected a sequence of HOST:PORT, got " + describe(value), value);
      if (value.size() == 0)
        fail(full, "expected at least one HOST:PORT, got an empty sequence", value);
      std::size_t i = 0;
      for (const auto& item : value) {
        cfg.members.push_back(read_host_port(item, full + "[" + std::to_string(i) + "]"));
        ++i;
      }
      have_members = true;
    } else if (name == "members_url") {
      cfg.members_url = read_string(value, full);
      if (!cfg.members_url.empty()) {
        auto problem = check_members_url(cfg.members_url);
        if (!problem.empty())
          fail(full, problem, value);
      }
    } else if (name == "members_poll_interval_ms") {
      cfg.members_poll_interval_ms =
        read_int(value, full, defaults::members_poll_interval_ms_min, duration_ms_max);
    } else if (name == "members_start_wait_ms") {
      cfg.members_start_wait_ms = read_int(value, full, 0, duration_ms_max);
    } else if (name == "cluster_name") {
      cfg.cluster_name = read_string(value, full);
    } else if (name == "cluster_secret") {
      if (!value.IsScalar()) // never echo the value: it may be a secret with a typo
        fail(full, "expected a string", value);
      cfg.cluster_secret = value.Scalar();
      if (!cfg.cluster_secret.empty()) {
        cfg.cluster_secret_source = "cluster_secret";
        if (cfg.cluster_secret.size() < defaults::cluster_secret_bytes_min)
          fail(full, "expected at least " + std::to_string(defaults::cluster_secret_bytes_min) +
                       " bytes, got " + std::to_string(cfg.cluster_secret.size()), value);
        if (cfg.cluster_secret.size() > defaults::cluster_secret_bytes_max)
          fail(full, "expected at most " + std::to_string(defaults::cluster_secret_bytes_max) +
                       " bytes, got " + std::to_string(cfg.cluster_secret.size()), value);
      }
    } else if (name == "cluster_secret_file") {
      if (!read_string(value, full).empty()) {
        secret_file = value;
        have_secret_file = true;
      }
    } else if (name == "data_dir") {
      auto dir = read_string(value, full);
      cfg.data_dir = dir.empty() ? dir : resolve_path(dir, source_name);
    } else if (name == "tls") {
      tls_section = value;
      have_tls = true;
    } else if (extra_section_keys().count(name) > 0) {
      parse_section(value, name, cfg);
    } else {
      std::vector<std::string> known(top_level_scalar_keys.begin(), top_level_scalar_keys.end());
      for (const auto& [section, keys] : extra_section_keys())
        known.push_back(section);
      fail(full, "unknown key (known keys: " + join_keys(known) + ")", key_node);
    }
  });
  if (!have_listen)
    fail("listen", "required key is missing (expected HOST:PORT of this node)");
  if (cfg.http.enabled && cfg.http.listen.host.empty())
    cfg.http.listen = host_port{cfg.listen.host, defaults::http_port};
  if (cfg.grpc.enabled && cfg.grpc.listen.host.empty()) {
    // Nacos clients dial the HTTP port + 1000; with HTTP on any free port, gRPC takes any too.
    auto http = cfg.http.enabled ? cfg.http.listen : host_port{cfg.listen.host, defaults::http_port};
    std::uint16_t port = 0;
    if (http.port != 0 && http.port <= 65535 - defaults::grpc_port_offset)
      port = static_cast<std::uint16_t>(http.port + defaults::grpc_port_offset);
    cfg.grpc.listen = host_port{http.host, port};
  }
  if (have_members && !cfg.members_url.empty())
    fail("members_url", "cannot be used together with members: name the members either in the "
                        "file (members) or at an address server (members_url)");
  if (!have_members && cfg.members_url.empty())
    fail("members", "required key is missing (expected the list of every node, this one included, "
                    "or members_url)");
  if (have_secret_file && !cfg.cluster_secret.empty())
    fail("cluster_secret_file", "cannot be used together with cluster_secret: give the secret "
                                "either inline (cluster_secret) or in a file (cluster_secret_file)");
  if (have_secret_file)
    read_secret_file(secret_file, cfg, source_name);
  if (have_tls)
    parse_tls(tls_section, cfg, source_name);
  std::sort(cfg.members.begin(), cfg.members.end());
  cfg.members.erase(std::unique(cfg.members.begin(), cfg.members.end()), cfg.members.end());
  return cfg;
}

std::string source_or_placeholder(const std::string& name) {
  return name.empty() ? std::string{"<config>"} : name;
}

/// Counts documents and remembers where the last one started; ignores their content.
struct document_counter : YAML::EventHandler {
  std::size_t documents = 0;
  YAML::Mark last_start = YAML::Mark::null_mark();
  void OnDocumentStart(const YAML::Mark& mark) override {
    ++documents;
    last_start = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

/// The number of YAML documents in `text`. yaml-cpp's LoadAll never returns on some malformed input:
/// on a stray ',' at the top level it yields empty documents at the same place forever (and
/// allocates for each). So documents are counted here, and a document that starts where the
/// previous one did is a syntax error (thrown as YAML::ParserException at that place).
std::size_t count_documents(const std::string& text) {
  std::istringstream in{text};
  YAML::Parser parser{in};
  document_counter counter;
  std::int64_t previous_pos = -1;
  while (parser.HandleNextDocument(counter)) {
    const auto& at = counter.last_start;
    if (at.pos <= previous_pos) {
      std::string what = static_cast<std::size_t>(at.pos) < text.size()
                           ? "unexpected '" + text.substr(static_cast<std::size_t>(at.pos), 1) + "'"
                           : std::string{"unexpected end of input"};
      throw YAML::ParserException(at, what);
    }
    previous_pos = at.pos;
  }
  return counter.documents;
}

} // namespace

// -- public API ----------------------------------------------------------------------

std::variant<host_port, std::string> parse_host_port(const std::string& text) {
  if (text.empty())
    return std::string{"expected HOST:PORT, got an empty string"};
  for (char c : text)
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f)
      return "expected HOST:PORT without whitespace or control characters, got " + quote(text);
  if (text.front() == '[' || std::count(text.begin(), text.end(), ':') > 1)
    return "expected HOST:PORT with an IPv4 address or a host name (IPv6 is not supported), got " +
           quote(text);
  auto colon = text.find(':');
  if (colon == std::string::npos)
    return "missing port: expected HOST:PORT, got " + quote(text);
  std::string host = text.substr(0, colon);
  std::string port_text = text.substr(colon + 1);
  if (host.empty())
    return "empty host: expected HOST:PORT, got " + quote(text);
  if (port_text.empty())
    return "missing port: expected HOST:PORT, got " + quote(text);
  for (char c : port_text)
    if (c < '0' || c > '9')
      return "port " + quote(port_text) + " is not a number (in " + quote(text) + ")";
  if (port_text.size() > 5)
    return "port " + port_text + " is out of range 1..65535";
  long port = std::stol(port_text);
  if (port < 1 || port > 65535)
    return "port " + std::to_string(port) + " is out of range 1..65535";
  bool numeric = host.find_first_not_of("0123456789.") == std::string::npos;
  if (numeric) {
    if (!valid_ipv4(host))
      return "host " + quote(host) + " is not a valid IPv4 address";
  } else {
    auto problem = check_dns_name(host);
    if (!problem.empty())
      return problem;
    for (auto& c : host)
      if (c >= 'A' && c <= 'Z')
        c = static_cast<char>(c - 'A' + 'a'); // host names are case-insensitive
  }
  return host_port{host, static_cast<std::uint16_t>(port)};
}

double node_config::threshold_for(const std::string& namespace_id,
                                  const std::string& grouped_name) const {
  if (!discovery.protection_enabled)
    return -1.0;
  std::string ns = namespace_id.empty() ? std::string{defaults::namespace_id} : namespace_id;
  std::string grouped = grouped_name;
  if (grouped.find(defaults::group_separator) == std::string::npos)
    grouped = std::string{defaults::group} + defaults::group_separator + grouped;
  auto it = discovery.service_thresholds.find(ns + "##" + grouped);
  return it != discovery.service_thresholds.end() ? it->second : discovery.protect_threshold;
}

std::string validate(const node_config& cfg) {
  const std::string file = source_or_placeholder(cfg.source_file) + ": ";
  auto err = [&](const std::string& key, const std::string& problem) {
    return file + key + ": " + problem;
  };
  // Single values (a config built in code skipped the parser's checks).
  for (const auto& f : int_fields()) {
    auto v = f.get(cfg);
    if (v < f.min || v > f.max)
      return err(std::string{f.section} + "." + f.name,
                 "expected an integer in " + std::to_string(f.min) + ".." + std::to_string(f.max) +
                     ", got " + std::to_string(v));
  }
  // Member sources.
  if (cfg.members_poll_interval_ms < defaults::members_poll_interval_ms_min ||
      cfg.members_poll_interval_ms > duration_ms_max)
    return err("members_poll_interval_ms",
               "expected an integer in " + std::to_string(defaults::members_poll_interval_ms_min) +
                 ".." + std::to_string(duration_ms_max) + ", got " +
                 std::to_string(cfg.members_poll_interval_ms));
  if (cfg.members_start_wait_ms < 0 || cfg.members_start_wait_ms > duration_ms_max)
    return err("members_start_wait_ms", "expected an integer in 0.." +
                                          std::to_string(duration_ms_max) + ", got " +
                                          std::to_string(cfg.members_start_wait_ms));
  if (!cfg.members_url.empty()) {
    auto problem = check_members_url(cfg.members_url);
    if (!problem.empty())
      return err("members_url", problem);
  }
  // listen and members (filled from members_url only once the node fetched them).
  if (cfg.listen.host.empty() || cfg.listen.port == 0)
    return err("listen", "expected HOST:PORT with a host and a port in 1..65535, got " +
                             quote(cfg.listen.to_string()));
  if (cfg.members.empty() && cfg.members_url.empty())
    return err("members", "expected at least one HOST:PORT, got none");
  if (!cfg.members.empty()) {
    auto count_problem = check_member_count(cfg.members.size());
    if (!count_problem.empty())
      return err("members", count_problem);
    for (std::size_t i = 0; i < cfg.members.size(); ++i) {
      const auto& m = cfg.members[i];
      std::string key = "members[" + std::to_string(i) + "]";
      auto problem = check_member_address(m);
      if (!problem.empty())
        return err(key, problem);
      if (i > 0 && !(cfg.members[i - 1] < m))
        return err(key, "members must be sorted and unique, got " + quote(m.to_string()) +
                            " after " + quote(cfg.members[i - 1].to_string()));
    }
    auto listen_problem = check_listen_in_members(cfg.members, cfg.listen);
    if (!listen_problem.empty())
      return err("listen", listen_problem);
  }
  // The secret (never quoted).
  if (!cfg.cluster_secret.empty() &&
      (cfg.cluster_secret.size() < defaults::cluster_secret_bytes_min ||
       cfg.cluster_secret.size() > defaults::cluster_secret_bytes_max))
    return err(cfg.cluster_secret_source == "cluster_secret" || cfg.cluster_secret_source.empty()
                 ? "cluster_secret"
                 : "cluster_secret_file",
               "expected a secret of " + std::to_string(defaults::cluster_secret_bytes_min) + ".." +
                 std::to_string(defaults::cluster_secret_bytes_max) + " bytes, got " +
                 std::to_string(cfg.cluster_secret.size()));
  // TLS (the files were checked at load; a config built in code gets the relations).
  if (auto problem = check_tls_relations(cfg.tls))
    return err(tls_key(problem->field), problem->problem);
  // Names and levels.
  if (cfg.cluster_name.empty() || !chars_in(cfg.cluster_name, "_.-"))
    return err("cluster_name", "expected a non-empty name of [A-Za-z0-9_.-], got " +
                                   quote(cfg.cluster_name));
  bool known_level = false;
  for (const char* level : log_levels)
    known_level = known_level || cfg.log_level == level;
  if (!known_level)
    return err("log.level", "expected one of trace, debug, info, warn, error, off, got " +
                                quote(cfg.log_level));
  // Relations.
  const auto& hb = cfg.heartbeat;
  if (hb.unhealthy_timeout_ms <= hb.interval_ms)
    return err("heartbeat.unhealthy_timeout_ms",
               "expected more than heartbeat.interval_ms (" + std::to_string(hb.interval_ms) +
                   "), got " + std::to_string(hb.unhealthy_timeout_ms));
  if (hb.delete_timeout_ms < hb.unhealthy_timeout_ms)
    return err("heartbeat.delete_timeout_ms",
               "expected at least heartbeat.unhealthy_timeout_ms (" +
                   std::to_string(hb.unhealthy_timeout_ms) + "), got " +
                   std::to_string(hb.delete_timeout_ms));
  const auto& s = cfg.session;
  if (s.caf_connection_timeout_ms <= s.caf_heartbeat_interval_ms)
    return err("session.caf_connection_timeout_ms",
               "expected more than session.caf_heartbeat_interval_ms (" +
                   std::to_string(s.caf_heartbeat_interval_ms) + "), got " +
                   std::to_string(s.caf_connection_timeout_ms));
  const auto& p = cfg.push;
  if (p.drop_after_ms < p.timeout_ms)
    return err("push.drop_after_ms",
               "expected at least push.timeout_ms (" + std::to_string(p.timeout_ms) + "), got " +
                   std::to_string(p.drop_after_ms));
  const auto& a = cfg.auth;
  if (a.enabled && a.secret.empty())
    return err("auth.secret", "required when auth.enabled is true: tokens are signed with it and "
                              "there is no default secret");
  if (!a.secret.empty() && a.secret.size() < defaults::auth_secret_bytes_min)
    return err("auth.secret", "expected at least " + std::to_string(defaults::auth_secret_bytes_min)
                                  + " bytes, got " + std::to_string(a.secret.size()));
  if (a.enabled && a.users_file.empty())
    return err("auth.users_file", "required when auth.enabled is true (USER:HASH lines made by "
                                  "registryd --hash-password)");
  const auto& h = cfg.http;
  if (h.enabled && h.listen == cfg.listen)
    return err("http.listen", "expected another address than listen (" + cfg.listen.to_string() +
                                  "): CAF and HTTP cannot share a port (http.listen defaults to "
                                  "listen's host and port 8848; set it, or move listen: the CAF "
                                  "port of the examples is 7848)");
  if (h.enabled && h.udp_ack_timeout_ms * (h.udp_retries_max + 1) >= p.timeout_ms)
    return err("http.udp_ack_timeout_ms",
               "expected udp_ack_timeout_ms * (udp_retries_max + 1) below push.timeout_ms (" +
                   std::to_string(p.timeout_ms) + "), got " +
                   std::to_string(h.udp_ack_timeout_ms) + " * " +
                   std::to_string(h.udp_retries_max + 1));
  const auto& g = cfg.grpc;
  if (g.enabled && g.listen.port != 0
      && (g.listen == cfg.listen || (h.enabled && g.listen == h.listen)))
    return err("grpc.listen", "expected another address than listen and http.listen, got "
                                  + g.listen.to_string());
  const auto& d = cfg.distro;
  if (d.reconnect_backoff_min_ms > d.reconnect_backoff_max_ms)
    return err("distro.reconnect_backoff_min_ms",
               "expected at most distro.reconnect_backoff_max_ms (" +
                   std::to_string(d.reconnect_backoff_max_ms) + "), got " +
                   std::to_string(d.reconnect_backoff_min_ms));
  const auto& r = cfg.raft;
  if (r.election_timeout_ms < 3 * r.heartbeat_interval_ms)
    return err("raft.election_timeout_ms",
               "expected at least 3 x raft.heartbeat_interval_ms (" +
                   std::to_string(3 * r.heartbeat_interval_ms) + "), got " +
                   std::to_string(r.election_timeout_ms));
  if (r.snapshot_trailing_entries >= r.snapshot_threshold_entries)
    return err("raft.snapshot_trailing_entries",
               "expected less than raft.snapshot_threshold_entries (" +
                   std::to_string(r.snapshot_threshold_entries) + "), got " +
                   std::to_string(r.snapshot_trailing_entries));
  if (r.snapshot_threshold_entries + static_cast<std::int64_t>(defaults::raft_uncommitted_entries_max)
      >= static_cast<std::int64_t>(defaults::raft_log_entries_max))
    return err("raft.snapshot_threshold_entries",
               "expected at most " + std::to_string(defaults::raft_log_entries_max -
                                                     defaults::raft_uncommitted_entries_max - 1) +
                   " (the log holds " + std::to_string(defaults::raft_log_entries_max) +
                   " entries), got " + std::to_string(r.snapshot_threshold_entries));
  if (r.write_timeout_ms <= r.election_timeout_ms)
    return err("raft.write_timeout_ms",
               "expected more than raft.election_timeout_ms (" +
                   std::to_string(r.election_timeout_ms) + "), got " +
                   std::to_string(r.write_timeout_ms));
  const auto& hc = cfg.health_check;
  if (hc.interval_min_ms > hc.interval_max_ms)
    return err("health_check.interval_min_ms",
               "expected at most health_check.interval_max_ms (" +
                   std::to_string(hc.interval_max_ms) + "), got " +
                   std::to_string(hc.interval_min_ms));
  if (hc.timeout_ms >= hc.interval_max_ms)
    return err("health_check.timeout_ms",
               "expected less than health_check.interval_max_ms (" +
                   std::to_string(hc.interval_max_ms) + "), got " + std::to_string(hc.timeout_ms));
  // Thresholds.
  const auto& disc = cfg.discovery;
  if (!std::isfinite(disc.protect_threshold) || disc.protect_threshold < 0.0 ||
      disc.protect_threshold > 1.0)
    return err("discovery.protect_threshold",
               "expected a number in 0..1, got " + fmt_double(disc.protect_threshold));
  for (const auto& [key, t] : disc.service_thresholds) {
    std::string full = "discovery.service_thresholds." + key;
    std::string error;
    std::string normal = normalise_threshold_key(key, error);
    if (normal.empty())
      return err(full, error);
    if (normal != key)
      return err(full, "expected a key normalised to \"NS##GROUP@@SERVICE\", got " + quote(key));
    if (t != -1.0 && !(t >= 0.0 && t <= 1.0))
      return err(full, "expected a number in 0..1 or -1 (off), got " + fmt_double(t));
  }
  return "";
}

std::string check_member_address(const host_port& member) {
  if (member.host.empty() || member.port == 0)
    return "expected HOST:PORT with a host and a port in 1..65535, got " +
           quote(member.to_string());
  if (member.host == "0.0.0.0")
    return "0.0.0.0 is not an address peers can connect to; use the node's address";
  return "";
}

std::string check_member_count(std::size_t count) {
  if (count > defaults::members_max)
    return "expected at most " + std::to_string(defaults::members_max) + " members, got " +
           std::to_string(count);
  return "";
}

std::string check_listen_in_members(const std::vector<host_port>& members,
                                    const host_port& listen) {
  if (std::binary_search(members.begin(), members.end(), listen))
    return "";
  std::string list;
  for (const auto& m : members)
    list += (list.empty() ? "" : ", ") + m.to_string();
  return "expected one of the members [" + list + "], got " + quote(listen.to_string());
}

std::string check_members_url(const std::string& url) {
  const std::string form = "expected http://HOST[:PORT]/PATH";
  if (url.size() > defaults::members_url_chars_max)
    return form + ", got a URL longer than " + std::to_string(defaults::members_url_chars_max) +
           " characters";
  for (char c : url)
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f)
      return form + " without whitespace or control characters, got " + quote(url);
  const std::string scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0)
    return form + " (only plain http is supported), got " + quote(url);
  auto rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  if (authority.find('@') != std::string::npos)
    return form + " without user information, got " + quote(url);
  if (url.find('#') != std::string::npos)
    return form + " without a fragment ('#'), got " + quote(url);
  if (authority.empty())
    return form + ", got no host in " + quote(url);
  auto parsed = parse_host_port(authority.find(':') == std::string::npos ? authority + ":80"
                                                                          : authority);
  if (auto* problem = std::get_if<std::string>(&parsed))
    return form + ": " + *problem;
  return "";
}

std::variant<node_config, std::string> parse_node_config(const std::string& yaml_text,
                                                         const std::string& source_name) {
  const std::string file = source_or_placeholder(source_name);
  try {
    const std::size_t documents = count_documents(yaml_text);
    if (documents > 1)
      return file + ": (top level): expected one YAML document, got " + std::to_string(documents);
    node_config cfg = parse_document(documents == 0 ? YAML::Node{} : YAML::Load(yaml_text),
                                     source_name);
    auto problem = validate(cfg);
    if (!problem.empty())
      return problem;
    return cfg;
  } catch (const config_error& e) {
    return file + ": " + e.key + ": " + e.problem;
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.is_null()
                          ? std::string{"(document)"}
                          : "line " + std::to_string(e.mark.line + 1) + ", column " +
                              std::to_string(e.mark.column + 1);
    return file + ": " + where + ": YAML syntax error: " + e.msg;
  }
}

std::variant<node_config, std::string> load_node_config(const std::string& path) {
  const std::string file = source_or_placeholder(path);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return file + ": (file): cannot read the config file: " + std::strerror(errno);
  if (S_ISDIR(st.st_mode))
    return file + ": (file): cannot read the config file: it is a directory";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    return file + ": (file): cannot read the config file: " + std::strerror(errno);
  std::string text;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
    text.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int read_errno = errno;
  std::fclose(f);
  if (failed)
    return file + ": (file): cannot read the config file: " + std::strerror(read_errno);
  return parse_node_config(text, path);
}

} // namespace registry
