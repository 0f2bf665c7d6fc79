#pragma once
/// The node's log: one line per meaningful event, "subject verb object", with a level.
/// Backed by spdlog; CAF's own logging is compiled out in Debian's build.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace registry {

/// Sets up the process-wide logger. `level` is trace|debug|info|warn|error|off; `file` empty means
/// stderr. Returns an error message ("" on success).
std::string init_logging(const std::string& level, const std::string& file);

/// The process-wide logger (stderr at info until init_logging runs).
spdlog::logger& log();

} // namespace registry
