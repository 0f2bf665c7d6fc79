#include "tools/client/service_cache.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>
#include <type_traits>

#include <unistd.h>

#include "tools/client/failover.hpp"

namespace fs = std::filesystem;

namespace registry::client {

// -- keys and file names ------------------------------------------------------------------------

std::string join_clusters(const std::vector<std::string>& clusters) {
  std::string result;
  for (const auto& c : clusters) {
    if (!result.empty())
      result += ',';
    result += c;
  }
  return result;
}

std::string cache_key(const std::string& grouped_name, const std::string& clusters) {
  return clusters.empty() ? grouped_name : grouped_name + "@@" + clusters;
}

std::string cache_key(const service_info& x) {
  return cache_key(x.key.grouped_name(), x.clusters);
}

std::string url_encode(const std::string& text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string result;
  result.reserve(text.size() * 3);
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
        c == '-' || c == '*' || c == '_') {
      result += static_cast<char>(c);
    } else if (c == ' ') {
      result += '+';
    } else {
      result += '%';
      result += hex[c >> 4];
      result += hex[c & 0x0F];
    }
  }
  return result;
}

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

} // namespace

std::string url_decode(const std::string& text) {
  std::string result;
  result.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      result += ' ';
    } else if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
               hex_value(text[i + 2]) >= 0) {
      result += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      result += c;
    }
  }
  return result;
}

std::string naming_cache_dir(const std::string& cache_dir, const std::string& namespace_id) {
  return (fs::path{cache_dir} / "naming" / namespace_id).string();
}

std::string failover_dir(const std::string& cache_dir) {
  return (fs::path{cache_dir} / "failover").string();
}

// -- JSON -------------------------------------------------------------------------------------

nlohmann::ordered_json to_nacos_json(const service_info& x) {
  auto grouped = x.key.grouped_name();
  nlohmann::ordered_json hosts = nlohmann::ordered_json::array();
  for (const auto& h : x.hosts) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : h.metadata)
      meta[k] = v;
    hosts.push_back({{"instanceId", h.instance_id},
                     {"ip", h.ip},
                     {"port", h.port},
                     {"weight", h.weight},
                     {"healthy", h.healthy},
                     {"enabled", h.enabled},
                     {"ephemeral", h.ephemeral},
                     {"clusterName", h.cluster},
                     {"serviceName", grouped},
                     {"metadata", std::move(meta)}});
  }
  return {{"name", grouped},
          {"groupName", x.key.group},
          {"clusters", x.clusters},
          {"cacheMillis", x.cache_millis},
          {"lastRefTime", x.last_ref_time_ms},
          {"reachProtectionThreshold", x.reach_protection_threshold},
          {"hosts", std::move(hosts)}};
}

std::string to_json(const service_info& x, int indent) {
  return to_nacos_json(x).dump(indent);
}

namespace {

template <class T>
bool read_field(const nlohmann::json& j, const char* name, T& out, std::string& why) {
  auto i = j.find(name);
  if (i == j.end() || i->is_null())
    return true; // optional: keep the default
  try {
    if constexpr (std::is_same_v<T, interned_string>)
      out = i->get<std::string>();
    else
      out = i->get<T>();
    return true;
  } catch (const nlohmann::json::exception&) {
    why = std::string{"field '"} + name + "' has the wrong type";
    return false;
  }
}

} // namespace

std::optional<std::string> from_nacos_json(const nlohmann::json& j, const std::string& namespace_id,
                                           service_info& out) {
  if (!j.is_object())
    return std::string{"not a JSON object"};
  std::string why;
  std::string name;
  std::string group;
  service_info result;
  if (!read_field(j, "name", name, why) || !read_field(j, "groupName", group, why) ||
      !read_field(j, "clusters", result.clusters, why) ||
      !read_field(j, "cacheMillis", result.cache_millis, why) ||
      !read_field(j, "lastRefTime", result.last_ref_time_ms, why) ||
      !read_field(j, "reachProtectionThreshold", result.reach_protection_threshold, why))
    return why;
  if (name.empty())
    return std::string{"field 'name' is missing"};
  // name is GROUP@@SERVICE; old files may hold the bare service name and the group apart.
  if (auto sep = name.find("@@"); sep != std::string::npos) {
    result.key.group = name.substr(0, sep);
    result.key.name = name.substr(sep + 2);
  } else {
    result.key.group = group.empty() ? "DEFAULT_GROUP" : group;
    result.key.name = name;
  }
  result.key.namespace_id = namespace_id;
  if (auto i = j.find("hosts"); i != j.end() && !i->is_null()) {
    if (!i->is_array())
      return std::string{"field 'hosts' is not an array"};
    for (const auto& h : *i) {
      if (!h.is_object())
        return std::string{"a host is not a JSON object"};
      instance x;
      if (!read_field(h, "instanceId", x.instance_id, why) || !read_field(h, "ip", x.ip, why) ||
          !read_field(h, "port", x.port, why) || !read_field(h, "weight", x.weight, why) ||
          !read_field(h, "healthy", x.healthy, why) || !read_field(h, "enabled", x.enabled, why) ||
          !read_field(h, "ephemeral", x.ephemeral, why) ||
          !read_field(h, "clusterName", x.cluster, why))
        return why;
      if (auto m = h.find("metadata"); m != h.end() && m->is_object()) {
        for (const auto& [k, v] : m->items())
          x.metadata.emplace_back(k, v.is_string() ? v.get<std::string>() : v.dump());
        std::sort(x.metadata.begin(), x.metadata.end());
      }
      if (x.ip.empty())
        return std::string{"a host has no 'ip'"};
      result.hosts.push_back(std::move(x));
    }
  }
  out = std::move(result);
  return std::nullopt;
}

// -- files ------------------------------------------------------------------------------------

std::optional<std::string> write_file_atomically(const std::string& path, const std::string& content) {
  fs::path target{path};
  std::error_code ec;
  if (target.has_parent_path()) {
    fs::create_directories(target.parent_path(), ec);
    if (ec)
      return "cannot create " + target.parent_path().string() + ": " + ec.message();
  }
  // A hidden temporary name in the same directory, so that rename() is atomic and readers of the
  // directory never take it for a service file.
  auto tmp = target.parent_path() /
             ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()));
  {
    std::ofstream out{tmp, std::ios::binary | std::ios::trunc};
    if (!out)
      return "cannot write " + tmp.string();
    out << content;
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      return "cannot write " + tmp.string();
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    return "cannot rename " + tmp.string() + " to " + target.string() + ": " + ec.message();
  }
  return std::nullopt;
}

std::optional<std::string> write_service_file(const std::string& dir, const service_info& x) {
  auto path = fs::path{dir} / url_encode(cache_key(x));
  return write_file_atomically(path.string(), to_nacos_json(x).dump());
}

std::map<std::string, service_info> read_service_files(const std::string& dir,
                                                       const std::string& namespace_id,
                                                       std::vector<std::string>* problems) {
  std::map<std::string, service_info> result;
  std::error_code ec;
  fs::directory_iterator it{dir, ec};
  if (ec)
    return result; // no directory: no data
  for (const auto& entry : it) {
    auto name = entry.path().filename().string();
    // Skip the switch, hidden/temporary files and Nacos's special files.
    if (name == failover_switch_file_name || name.empty() || name[0] == '.')
      continue;
    if (auto decoded = url_decode(name); ends_with(decoded, "@@meta") ||
                                         ends_with(decoded, "@@special-url"))
      continue;
    std::error_code fec;
    if (!entry.is_regular_file(fec))
      continue;
    std::ifstream in{entry.path(), std::ios::binary};
    std::stringstream buf;
    buf << in.rdbuf();
    auto j = nlohmann::json::parse(buf.str(), nullptr, false);
    service_info x;
    auto problem = j.is_discarded() ? std::optional<std::string>{"not valid JSON"}
                                    : from_nacos_json(j, namespace_id, x);
    if (problem) {
      if (problems)
        problems->push_back(entry.path().string() + ": " + *problem);
      continue;
    }
    auto key = cache_key(x);
    result[key] = std::move(x);
  }
  return result;
}

// -- diff and selection -------------------------------------------------------------------------

namespace {

using identity = std::tuple<const std::string&, std::uint32_t, const std::string&>;

identity identity_of(const instance& x) {
  return identity{x.ip, x.port, x.cluster};
}

} // namespace

change_event diff_hosts(const service_info& before, const service_info& after) {
  change_event result;
  result.info = after;
  std::map<identity, const instance*> old_hosts;
  for (const auto& h : before.hosts)
    old_hosts.emplace(identity_of(h), &h);
  std::set<identity> seen;
  for (const auto& h : after.hosts) {
    auto id = identity_of(h);
    if (!seen.insert(id).second)
      continue; // a duplicate identity in one list counts once
    auto i = old_hosts.find(id);
    if (i == old_hosts.end())
      result.added.push_back(h);
    else if (*i->second != h)
      result.modified.push_back(h);
  }
  for (const auto& h : before.hosts) {
    auto id = identity_of(h);
    if (seen.count(id) == 0) {
      seen.insert(id);
      result.removed.push_back(h);
    }
  }
  return result;
}

std::vector<instance> select_healthy(const std::vector<instance>& hosts, bool healthy) {
  std::vector<instance> result;
  for (const auto& h : hosts)
    if (h.healthy == healthy && h.enabled && h.weight > 0)
      result.push_back(h);
  return result;
}

change_event initial_event(const service_info& x) {
  change_event result;
  result.info = x;
  result.added = x.hosts;
  return result;
}

// -- the cache --------------------------------------------------------------------------------

namespace {

bool has_changes(const change_event& e) {
  return !e.added.empty() || !e.removed.empty() || !e.modified.empty();
}

} // namespace

bool service_cache::failover_covers(const std::string& key) const {
  if (!failover_on_)
    return false;
  auto i = failover_.find(key);
  return i != failover_.end() && !i->second.hosts.empty();
}

std::optional<service_info> service_cache::view(const std::string& key) const {
  if (failover_covers(key))
    return failover_.at(key);
  if (auto i = stored_.find(key); i != stored_.end())
    return i->second;
  return std::nullopt;
}

const service_info* service_cache::stored(const std::string& key) const {
  auto i = stored_.find(key);
  return i == stored_.end() ? nullptr : &i->second;
}

void service_cache::erase(const std::string& key) {
  stored_.erase(key);
}

service_cache::update service_cache::apply(const service_info& info, bool force) {
  update result;
  auto key = cache_key(info);
  auto i = stored_.find(key);
  if (i == stored_.end()) {
    result.accepted = true;
    result.stored_changed = true;
    stored_.emplace(key, info);
    if (!failover_covers(key)) {
      auto ev = diff_hosts(service_info{}, info);
      if (has_changes(ev))
        result.event = std::move(ev);
    }
    return result;
  }
  auto& old = i->second;
  if (!force && info.last_ref_time_ms < old.last_ref_time_ms)
    return result; // older than what we hold: a late reply or push
  result.accepted = true;
  auto ev = diff_hosts(old, info);
  result.stored_changed =
    has_changes(ev) || old.reach_protection_threshold != info.reach_protection_threshold;
  old = info;
  if (has_changes(ev) && !failover_covers(key))
    result.event = std::move(ev);
  return result;
}

std::vector<std::pair<std::string, change_event>>
service_cache::set_failover(bool on, std::map<std::string, service_info> data) {
  // Views before, for every key either side may cover.
  std::set<std::string> keys;
  for (const auto& kv : failover_)
    keys.insert(kv.first);
  for (const auto& kv : data)
    keys.insert(kv.first);
  std::map<std::string, service_info> before;
  for (const auto& k : keys)
    before[k] = view(k).value_or(service_info{});
  failover_on_ = on;
  failover_ = on ? std::move(data) : std::map<std::string, service_info>{};
  std::vector<std::pair<std::string, change_event>> result;
  for (const auto& k : keys) {
    auto after = view(k);
    if (!after)
      continue; // nothing to show (failover off, nothing stored): no listener can be interested
    auto ev = diff_hosts(before[k], *after);
    if (has_changes(ev))
      result.emplace_back(k, std::move(ev));
  }
  return result;
}

} // namespace registry::client
