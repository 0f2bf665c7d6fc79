#include "messages/validate.hpp"

#include <algorithm>
#include <cstdint>
#include <tuple>

#include "config/defaults.hpp"

namespace registry {

namespace {

// -- UTF-8 helpers -------------------------------------------------------------

/// Decodes the code point at `i` and advances `i`. Returns false on malformed UTF-8 (bad lead or
/// continuation byte, truncated sequence, overlong form, surrogate, beyond U+10FFFF).
bool decode_utf8(const std::string& s, std::size_t& i, char32_t& cp) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char lead = byte(i);
  std::size_t len = 0;
  char32_t min = 0;
  if (lead < 0x80) {
    cp = lead;
    ++i;
    return true;
  } else if ((lead & 0xE0) == 0xC0) {
    len = 2;
    cp = lead & 0x1F;
    min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    len = 3;
    cp = lead & 0x0F;
    min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    len = 4;
    cp = lead & 0x07;
    min = 0x10000;
  } else {
    return false;
  }
  if (i + len > s.size())
    return false;
  for (std::size_t k = 1; k < len; ++k) {
    unsigned char c = byte(i + k);
    if ((c & 0xC0) != 0x80)
      return false;
    cp = (cp << 6) | (c & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return false;
  i += len;
  return true;
}

/// True when `s` is well-formed UTF-8.
bool is_utf8(const std::string& s) {
  std::size_t i = 0;
  char32_t cp;
  while (i < s.size())
    if (!decode_utf8(s, i, cp))
      return false;
  return true;
}

/// Length in characters (code points); bytes of malformed sequences count one each.
std::size_t char_count(const std::string& s) {
  std::size_t n = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    char32_t cp;
    if (!decode_utf8(s, i, cp))
      ++i;
    ++n;
  }
  return n;
}

/// Unicode White_Space (a superset of Java's \s).
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680
         || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F
         || c == 0x205F || c == 0x3000;
}

/// The CJK range Nacos refuses: U+4E00..U+9FA5.
bool is_cjk(char32_t c) {
  return c >= 0x4E00 && c <= 0x9FA5;
}

/// True when `s` is valid UTF-8 without whitespace or CJK characters.
bool free_of_space_and_cjk(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    char32_t cp;
    if (!decode_utf8(s, i, cp) || is_space(cp) || is_cjk(cp))
      return false;
  }
  return true;
}

bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

template <class Pred>
bool all_chars(const std::string& s, Pred pred) {
  return std::all_of(s.begin(), s.end(), pred);
}

// -- messages (Nacos's wording) ------------------------------------------------

field_error empty_error(const std::string& field) {
  return {field, "Param '" + field + "' is illegal, the param can't be empty."};
}

field_error length_error(const std::string& field, std::size_t max) {
  return {field, "Param '" + field + "' is illegal, the param length should not exceed "
                   + std::to_string(max) + "."};
}

field_error chars_error(const std::string& field) {
  return {field,
          "Param '" + field + "' is illegal, illegal characters should not appear in the param."};
}

/// Empty, too long, or failing `ok`.
template <class Pred>
std::optional<field_error> check_name(const std::string& field, const std::string& value,
                                      std::size_t max, Pred ok) {
  if (value.empty())
    return empty_error(field);
  if (char_count(value) > max)
    return length_error(field, max);
  if (!ok(value))
    return chars_error(field);
  return std::nullopt;
}

std::optional<field_error> validate_metadata(const metadata_map& md) {
  static const std::string field = "metadata";
  if (md.size() > defaults::metadata_entries_max)
    return field_error{field, "Param 'Metadata' is illegal, the number of entries should not exceed "
                                + std::to_string(defaults::metadata_entries_max) + "."};
  std::size_t chars = 0;
  for (const auto& [k, v] : md) {
    if (k.empty())
      return field_error{field, "Param 'Metadata' is illegal, a key can't be empty."};
    // The wire carries them as protobuf strings, which must be UTF-8.
    if (!is_utf8(k) || !is_utf8(v))
      return field_error{field, "Param 'Metadata' is illegal, keys and values must be UTF-8 text."};
    chars += char_count(k) + char_count(v);
  }
  if (chars > defaults::metadata_chars_max)
    return field_error{field, "Param 'Metadata' is illegal, the param length should not exceed "
                                + std::to_string(defaults::metadata_chars_max) + "."};
  // The vector stands for a map: a key may appear once.
  std::vector<const interned_string*> keys;
  keys.reserve(md.size());
  for (const auto& kv : md)
    keys.push_back(&kv.first);
  std::sort(keys.begin(), keys.end(),
            [](const interned_string* a, const interned_string* b) { return *a < *b; });
  for (std::size_t i = 1; i < keys.size(); ++i)
    if (*keys[i] == *keys[i - 1])
      return field_error{field, "Param 'Metadata' is illegal, the key '" + *keys[i]
                                  + "' appears more than once."};
  return std::nullopt;
}

} // namespace

std::optional<field_error> validate_service_key(const service_key& key) {
  if (auto e = check_name("namespaceId", key.namespace_id, defaults::namespace_chars_max,
                          [](const std::string& s) {
                            return all_chars(s, [](char c) { return is_alnum(c) || c == '_' || c == '-'; });
                          }))
    return e;
  if (auto e = check_name("groupName", key.group, defaults::group_chars_max,
                          [](const std::string& s) {
                            return all_chars(s, [](char c) {
                              return is_alnum(c) || c == '-' || c == '_' || c == ':' || c == '.';
                            });
                          }))
    return e;
  const std::string field = "serviceName";
  if (key.name.empty())
    return empty_error(field);
  if (char_count(key.name) > defaults::service_chars_max)
    return length_error(field, defaults::service_chars_max);
  if (key.name.str().front() == '@')
    return field_error{field, "Param 'serviceName' is illegal, it can't start with '@'."};
  if (key.name.str().find(defaults::group_separator) != std::string::npos)
    return field_error{field, "Param 'serviceName' is illegal, it can't contain '@@'."};
  if (!free_of_space_and_cjk(key.name))
    return chars_error(field);
  return std::nullopt;
}

std::optional<field_error> validate_cluster(const std::string& cluster) {
  return check_name("clusterName", cluster, defaults::cluster_chars_max, [](const std::string& s) {
    return all_chars(s, [](char c) { return is_alnum(c) || c == '-' || c == '_'; });
  });
}

std::optional<field_error> validate_instance(const instance& x, bool persistent_allowed) {
  if (auto e = check_name("ip", x.ip, defaults::ip_chars_max, free_of_space_and_cjk))
    return e;
  if (x.port < 1 || x.port > 65535)
    return field_error{"port", "Param 'port' is illegal, the value should be between 1 and 65535."};
  if (!(x.weight >= 0.0 && x.weight <= defaults::weight_max)) // also refuses NaN and infinities
    return field_error{"weight", "The weights range from 0.0 to 10000.0"};
  if (!x.ephemeral && !persistent_allowed)
    return field_error{"ephemeral", "a persistent instance (ephemeral=false) is registered "
                                    "without a session or beats, through Raft (registryctl "
                                    "register --persistent)"};
  if (auto e = validate_cluster(x.cluster))
    return e;
  if (auto e = validate_metadata(x.metadata))
    return e;
  if (char_count(x.instance_id) > defaults::instance_id_chars_max)
    return length_error("instanceId", defaults::instance_id_chars_max);
  return std::nullopt;
}

std::optional<field_error> validate_instance_batch(const std::vector<instance>& xs) {
  static const std::string field = "instances";
  if (xs.empty())
    return field_error{field, "a batch register needs at least one instance (to remove a "
                              "service's instances, deregister them)"};
  if (xs.size() > defaults::batch_register_instances_max)
    return field_error{field, "a batch register carries at most "
                                + std::to_string(defaults::batch_register_instances_max)
                                + " instances, this one " + std::to_string(xs.size())};
  auto position = [](std::size_t i) { return field + "[" + std::to_string(i) + "]"; };
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (auto e = validate_instance(xs[i]))
      return field_error{position(i) + "." + e->field, position(i) + ": " + e->message};
  // Sorted positions find duplicates in n log n; the later position is the one named.
  std::vector<std::size_t> order(xs.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  auto identity = [&](std::size_t i) { return std::tie(xs[i].ip, xs[i].port, xs[i].cluster); };
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return identity(a) < identity(b) || (identity(a) == identity(b) && a < b);
  });
  for (std::size_t k = 1; k < order.size(); ++k)
    if (xs[order[k]].same_identity(xs[order[k - 1]]))
      return field_error{position(order[k]),
                         position(order[k]) + ": the same instance (ip " + xs[order[k]].ip
                           + ", port " + std::to_string(xs[order[k]].port) + ", cluster "
                           + xs[order[k]].cluster + ") as " + position(order[k - 1])
                           + "; a batch names each instance once"};
  return std::nullopt;
}

std::optional<field_error> validate_client_id(const client_id& id) {
  static const std::string field = "clientId";
  if (id.empty())
    return empty_error(field);
  if (id.size() > defaults::client_id_chars_max)
    return length_error(field, defaults::client_id_chars_max);
  return std::nullopt;
}

std::optional<field_error> validate_client(const client_id& id, const client_services& services,
                                           std::size_t instances_max) {
  if (auto e = validate_client_id(id))
    return e;
  bool heartbeat = is_heartbeat_client(id);
  std::size_t count = 0;
  std::vector<const instance*> xs;
  for (const auto& [key, instances] : services) {
    if (auto e = validate_service_key(key))
      return e;
    count += instances.size();
    if (count > instances_max)
      return field_error{"instances", "client " + id + " holds " + std::to_string(count)
                                        + " instances or more, the limit is "
                                        + std::to_string(instances_max)};
    xs.clear();
    for (const auto& x : instances) {
      if (auto e = validate_instance(x))
        return e;
      if (heartbeat && heartbeat_client_id(x.ip, x.port) != id)
        return field_error{"ip", "a heartbeat client holds only its own ip:port"};
      xs.push_back(&x);
    }
    auto less = [](const instance* a, const instance* b) {
      return std::tie(a->ip, a->port, a->cluster) < std::tie(b->ip, b->port, b->cluster);
    };
    std::sort(xs.begin(), xs.end(), less);
    for (std::size_t k = 1; k < xs.size(); ++k)
      if (xs[k]->same_identity(*xs[k - 1]))
        return field_error{"instances", "service " + key.to_string() + " holds instance "
                                          + xs[k]->address() + " in cluster " + xs[k]->cluster
                                          + " twice"};
  }
  return std::nullopt;
}

std::optional<field_error> validate_page(std::uint32_t page, std::uint32_t size) {
  if (page < 1)
    return field_error{"page", "Param 'page' is illegal, the value should be at least 1."};
  if (size < 1 || size > defaults::page_size_max)
    return field_error{"size", "Param 'size' is illegal, the value should be between 1 and "
                                 + std::to_string(defaults::page_size_max) + "."};
  return std::nullopt;
}

void apply_defaults(service_key& key) {
  if (key.namespace_id.empty())
    key.namespace_id = defaults::namespace_id;
  if (key.group.empty())
    key.group = defaults::group;
}

void apply_defaults(instance& x) {
  if (x.cluster.empty())
    x.cluster = defaults::cluster;
}

std::optional<field_error> parse_metadata_entry(const std::string& text,
                                                std::pair<std::string, std::string>& out) {
  // Split at the first '=': the value may itself hold '=' (URLs, base64) and may be empty.
  auto pos = text.find('=');
  if (pos == std::string::npos || pos == 0)
    return field_error{"metadata", "metadata format incorrect:" + text};
  out.first = text.substr(0, pos);
  out.second = text.substr(pos + 1);
  return std::nullopt;
}

} // namespace registry
