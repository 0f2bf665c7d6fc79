#pragma once
/// Decoding of HTTP request targets, query strings and form bodies into parameters, and the typed
/// reads of Nacos's Open API parameters with Nacos's error texts. Plain C++: no CAF, no I/O; the
/// fuzz target test/fuzz/http_request_fuzz.cpp drives it with arbitrary bytes.
///
/// Nacos clients send every parameter in the query string, for every method (the npm client sends
/// POST and PUT with an empty body); other clients send a form body. Both are read, the query first:
/// the first value of a name wins, as with a servlet's getParameter.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/interned_string.hpp"

namespace registry::http {

/// Bounds of decoding: a request beyond them is refused with a 400.
struct param_limits {
  std::size_t params_max = 64;            ///< name=value pairs in query and body together
  std::size_t value_bytes_max = 64 * 1024; ///< one decoded value
};

/// A parameter problem: the HTTP status and the text Nacos answers with.
struct param_error {
  int status = 400;
  std::string message;
};

/// The decoded parameters of one request, in arrival order.
class params {
public:
  /// The first value of `name`, or nullptr.
  const std::string* get(std::string_view name) const;
  /// The first value of the first name present, or nullptr (for aliases: clusterName / cluster).
  const std::string* get_any(std::initializer_list<std::string_view> names) const;
  bool has(std::string_view name) const { return get(name) != nullptr; }
  std::size_t size() const { return items_.size(); }
  void add(std::string name, std::string value) {
    items_.emplace_back(std::move(name), std::move(value));
  }
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }

private:
  std::vector<std::pair<std::string, std::string>> items_;
};

/// Percent-decodes `in` (with '+' as a space when `plus_is_space`). False on a malformed escape.
bool url_decode(std::string_view in, std::string& out, bool plus_is_space);

/// Parses `a=1&b=2` into `out`; a name without '=' gets an empty value; empty pieces are skipped.
std::optional<param_error> parse_urlencoded(std::string_view text, params& out,
                                            const param_limits& limits);

/// Splits a request target into its decoded path and its query parameters.
std::optional<param_error> parse_target(std::string_view target, std::string& path, params& out,
                                        const param_limits& limits);

/// True when a Content-Type names a form body (application/x-www-form-urlencoded, any parameters).
bool is_form_content_type(std::string_view content_type);

// -- typed reads with Nacos's texts ----------------------------------------------

/// "Parameter 'NAME' is missing".
param_error missing(std::string_view name);

/// A required non-empty string.
std::optional<param_error> required(const params& p, std::string_view name, std::string& out);
/// The same, into an interned field (a service's name).
std::optional<param_error> required(const params& p, std::string_view name, interned_string& out);

/// A boolean ("true"/"false", any case, as Java's Boolean.parseBoolean but strict): `fallback` when
/// absent or empty.
std::optional<param_error> read_bool(const params& p, std::string_view name, bool fallback,
                                     bool& out);

/// A decimal integer in [min, max]; `fallback` when absent (required when fallback is empty).
std::optional<param_error> read_int(const params& p, std::string_view name,
                                    std::optional<std::int64_t> fallback, std::int64_t min,
                                    std::int64_t max, std::int64_t& out);

/// A finite decimal number; `fallback` when absent or empty.
std::optional<param_error> read_double(const params& p, std::string_view name, double fallback,
                                       double& out);

/// Parses a whole decimal integer (optional sign); false on anything else or overflow.
bool parse_int(std::string_view text, std::int64_t& out);

/// Parses a whole finite decimal number; false otherwise.
bool parse_double(std::string_view text, double& out);

/// Nacos's metadata parameter: a JSON object of strings (numbers and booleans are written as text),
/// or `k1=v1,k2=v2`; empty = none. Entries sorted by key. Error: "metadata format incorrect:RAW".
std::optional<param_error> parse_metadata(std::string_view text,
                                          std::vector<std::pair<std::string, std::string>>& out);

/// A grouped service name: "GROUP@@NAME" is split; a name without "@@" takes `group`.
/// Errors: "Param 'serviceName' is illegal, it should be format as 'groupName@@serviceName'".
std::optional<param_error> split_service_name(const std::string& service_name,
                                              const std::string& group, std::string& out_group,
                                              std::string& out_name);

} // namespace registry::http
