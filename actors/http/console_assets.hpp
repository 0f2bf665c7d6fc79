#pragma once
/// The web console's files (actors/http/console/: HTML, CSS, JS), compiled into the binary by
/// actors/http/console/embed_assets.py at build time: nothing is read or fetched at run time.

#include <string>
#include <string_view>

namespace registry::http {

struct console_asset {
  const char* path;         ///< the URL path it is served at
  const char* content_type; ///< with charset
  std::string_view body;
};

/// The asset served at `path`, or nullptr.
const console_asset* find_console_asset(const std::string& path);

} // namespace registry::http
