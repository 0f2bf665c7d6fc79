#pragma once
/// JSON text written directly into a string, for the hottest replies (a ServiceInfo of the HTTP and
/// gRPC APIs): building a JSON document first cost most of their time in allocations.

#include <string>
#include <string_view>

namespace registry {

/// Appends `text` as a JSON string; bytes that are not UTF-8 become U+FFFD.
void append_json_string(std::string& out, std::string_view text);

/// Appends a double as nlohmann's writer does (shortest form, ".0" for whole numbers; null when
/// not finite).
void append_json_double(std::string& out, double x);

} // namespace registry
