#include "actors/http/http_params.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

namespace registry::http {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

std::string shown(std::string_view s) {
  constexpr std::size_t shown_max = 100;
  if (s.size() <= shown_max)
    return std::string{s};
  return std::string{s.substr(0, shown_max)} + "...";
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  return a.size() == b.size()
         && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
              return std::tolower(static_cast<unsigned char>(x))
                     == std::tolower(static_cast<unsigned char>(y));
            });
}

} // namespace

const std::string* params::get(std::string_view name) const {
  for (auto& [k, v] : items_)
    if (k == name)
      return &v;
  return nullptr;
}

const std::string* params::get_any(std::initializer_list<std::string_view> names) const {
  for (auto name : names)
    if (auto* v = get(name))
      return v;
  return nullptr;
}

bool url_decode(std::string_view in, std::string& out, bool plus_is_space) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size())
        return false;
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0)
        return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return true;
}

std::optional<param_error> parse_urlencoded(std::string_view text, params& out,
                                            const param_limits& limits) {
  std::size_t start = 0;
  while (start <= text.size()) {
    auto amp = text.find('&', start);
    auto piece = text.substr(start, amp == std::string_view::npos ? std::string_view::npos
                                                                  : amp - start);
    if (!piece.empty()) {
      if (out.size() >= limits.params_max)
        return param_error{400, "too many parameters: at most "
                                  + std::to_string(limits.params_max) + " are accepted"};
      auto eq = piece.find('=');
      std::string name;
      std::string value;
      if (!url_decode(piece.substr(0, eq), name, true))
        return param_error{400, "malformed percent-encoding in a parameter name"};
      if (eq != std::string_view::npos && !url_decode(piece.substr(eq + 1), value, true))
        return param_error{400, "malformed percent-encoding in parameter '" + shown(name) + "'"};
      if (value.size() > limits.value_bytes_max)
        return param_error{400, "Param '" + shown(name) + "' is illegal, the param length should not exceed "
                                  + std::to_string(limits.value_bytes_max) + "."};
      out.add(std::move(name), std::move(value));
    }
    if (amp == std::string_view::npos)
      break;
    start = amp + 1;
  }
  return std::nullopt;
}

std::optional<param_error> parse_target(std::string_view target, std::string& path, params& out,
                                        const param_limits& limits) {
  auto question = target.find('?');
  auto raw_path = target.substr(0, question);
  auto hash = raw_path.find('#');
  raw_path = raw_path.substr(0, hash);
  if (!url_decode(raw_path, path, false))
    return param_error{400, "malformed percent-encoding in the path"};
  // Tolerate a doubled or trailing slash, as servlet containers do.
  std::string normal;
  normal.reserve(path.size());
  for (char c : path)
    if (!(c == '/' && !normal.empty() && normal.back() == '/'))
      normal.push_back(c);
  if (normal.size() > 1 && normal.back() == '/')
    normal.pop_back();
  path = std::move(normal);
  if (question == std::string_view::npos)
    return std::nullopt;
  auto query = target.substr(question + 1);
  query = query.substr(0, query.find('#'));
  return parse_urlencoded(query, out, limits);
}

bool is_form_content_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  auto type = content_type.substr(0, semi);
  while (!type.empty() && type.back() == ' ')
    type.remove_suffix(1);
  while (!type.empty() && type.front() == ' ')
    type.remove_prefix(1);
  return equals_ignore_case(type, "application/x-www-form-urlencoded");
}

param_error missing(std::string_view name) {
  return param_error{400, "Parameter '" + std::string{name} + "' is missing"};
}

std::optional<param_error> required(const params& p, std::string_view name,
                                    interned_string& out) {
  std::string text;
  if (auto e = required(p, name, text))
    return e;
  out = text;
  return std::nullopt;
}

std::optional<param_error> required(const params& p, std::string_view name, std::string& out) {
  auto* v = p.get(name);
  if (v == nullptr || v->empty())
    return missing(name);
  out = *v;
  return std::nullopt;
}

std::optional<param_error> read_bool(const params& p, std::string_view name, bool fallback,
                                     bool& out) {
  auto* v = p.get(name);
  if (v == nullptr || v->empty()) {
    out = fallback;
    return std::nullopt;
  }
  if (equals_ignore_case(*v, "true")) {
    out = true;
    return std::nullopt;
  }
  if (equals_ignore_case(*v, "false")) {
    out = false;
    return std::nullopt;
  }
  return param_error{400, "Param '" + std::string{name}
                            + "' is illegal, expected true or false, got '" + shown(*v) + "'."};
}

bool parse_int(std::string_view text, std::int64_t& out) {
  if (text.empty() || text.size() > 20)
    return false;
  std::size_t i = 0;
  bool negative = false;
  if (text[0] == '-' || text[0] == '+') {
    negative = text[0] == '-';
    i = 1;
    if (text.size() == 1)
      return false;
  }
  std::uint64_t value = 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c < '0' || c > '9')
      return false;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
    if (value > static_cast<std::uint64_t>(INT64_MAX))
      return false;
  }
  out = negative ? -static_cast<std::int64_t>(value) : static_cast<std::int64_t>(value);
  return true;
}

bool parse_double(std::string_view text, double& out) {
  if (text.empty() || text.size() > 64)
    return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
      return false;
  std::string copy{text};
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || errno == ERANGE || !std::isfinite(v))
    return false;
  out = v;
  return true;
}

std::optional<param_error> read_int(const params& p, std::string_view name,
                                    std::optional<std::int64_t> fallback, std::int64_t min,
                                    std::int64_t max, std::int64_t& out) {
  auto* v = p.get(name);
  if (v == nullptr || v->empty()) {
    if (!fallback)
      return missing(name);
    out = *fallback;
    return std::nullopt;
  }
  std::int64_t x = 0;
  if (!parse_int(*v, x))
    return param_error{400, "Param '" + std::string{name}
                              + "' is illegal, expected an integer, got '" + shown(*v) + "'."};
  if (x < min || x > max)
    return param_error{400, "Param '" + std::string{name}
                              + "' is illegal, the value should be between "
                              + std::to_string(min) + " and " + std::to_string(max) + "."};
  out = x;
  return std::nullopt;
}

std::optional<param_error> read_double(const params& p, std::string_view name, double fallback,
                                       double& out) {
  auto* v = p.get(name);
  if (v == nullptr || v->empty()) {
    out = fallback;
    return std::nullopt;
  }
  if (!parse_double(*v, out))
    return param_error{400, "Param '" + std::string{name}
                              + "' is illegal, expected a number, got '" + shown(*v) + "'."};
  return std::nullopt;
}

std::optional<param_error> parse_metadata(std::string_view text,
                                          std::vector<std::pair<std::string, std::string>>& out) {
  out.clear();
  auto incorrect = [&] {
    out.clear();
    return param_error{400, "metadata format incorrect:" + shown(text)};
  };
  std::string_view trimmed = text;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front())))
    trimmed.remove_prefix(1);
  if (trimmed.empty())
    return std::nullopt;
  if (trimmed.front() == '{') {
    auto doc = nlohmann::json::parse(trimmed.begin(), trimmed.end(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
      return incorrect();
    for (auto& [k, v] : doc.items()) {
      if (v.is_string())
        out.emplace_back(k, v.get<std::string>());
      else if (v.is_number() || v.is_boolean())
        out.emplace_back(k, v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      else if (v.is_null())
        out.emplace_back(k, "");
      else
        return incorrect();
    }
  } else {
    std::size_t start = 0;
    while (start <= text.size()) {
      auto comma = text.find(',', start);
      auto piece = text.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                                     : comma - start);
      if (!piece.empty()) {
        auto eq = piece.find('=');
        if (eq == std::string_view::npos || eq == 0)
          return incorrect();
        out.emplace_back(std::string{piece.substr(0, eq)}, std::string{piece.substr(eq + 1)});
      }
      if (comma == std::string_view::npos)
        break;
      start = comma + 1;
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  // A repeated key keeps its last value, as a map would.
  std::vector<std::pair<std::string, std::string>> unique;
  for (auto& kv : out) {
    if (!unique.empty() && unique.back().first == kv.first)
      unique.back().second = std::move(kv.second);
    else
      unique.push_back(std::move(kv));
  }
  out = std::move(unique);
  return std::nullopt;
}

std::optional<param_error> split_service_name(const std::string& service_name,
                                              const std::string& group, std::string& out_group,
                                              std::string& out_name) {
  auto at = service_name.find("@@");
  if (at == std::string::npos) {
    out_group = group;
    out_name = service_name;
    return std::nullopt;
  }
  if (service_name.find("@@", at + 2) != std::string::npos || at + 2 == service_name.size())
    return param_error{400, "Param 'serviceName' is illegal, it should be format as "
                            "'groupName@@serviceName'"};
  if (at == 0)
    return param_error{400, "Param 'serviceName' is illegal, groupName can't be empty"};
  out_group = service_name.substr(0, at);
  out_name = service_name.substr(at + 2);
  return std::nullopt;
}

} // namespace registry::http
