#pragma once
/// The node's log: one line per meaningful event, "subject verb object", with a level.
/// Backed by spdlog; CAF's own logging is compiled out in Debian's build.
///
/// With a file, lines go through spdlog's asynchronous logger: the calling (actor) thread only
/// queues the line; one writer thread formats and writes it. The queue is bounded
/// (`queue_lines_max`); when it is full the OLDEST queued line is dropped (spdlog's
/// overrun_oldest), so actors never block on the disk; the count of dropped lines is logged at shutdown. The
/// file rotates at `file_size_bytes_max`, keeping `files_max` older files (FILE.1 is the newest).
/// Lines reach the file at once from warn up, the rest every `flush_interval_ms`.
/// Without a file, lines go to stderr synchronously.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "config/defaults.hpp"

namespace registry {

struct log_options {
  std::string level = "info"; ///< trace|debug|info|warn|error|off
  std::string file;           ///< empty: stderr
  std::int64_t file_size_bytes_max = defaults::log_file_size_bytes_max;
  int files_max = defaults::log_files_max;
  std::int64_t queue_lines_max = defaults::log_queue_lines_max;
  std::int64_t flush_interval_ms = defaults::log_flush_interval_ms;
};

/// Sets up the process-wide logger. Returns an error message ("" on success).
std::string init_logging(const log_options& opts);

/// Same with the default rotation and queue settings.
std::string init_logging(const std::string& level, const std::string& file);

/// Writes every queued line and closes the file; later lines go to stderr. Call before the
/// process exits (also on emergency paths before std::_Exit). Safe to call more than once.
void shutdown_logging();

/// The process-wide logger (stderr at info until init_logging runs).
spdlog::logger& log();

/// `text` cut to `max` bytes for a log line, with a marker naming how many bytes were cut
/// ("abc...[+123 bytes]"). Used for every name from outside: service names, ips, client names,
/// metadata. Never cuts inside a UTF-8 sequence.
std::string bounded(std::string_view text, std::size_t max = defaults::log_name_chars_max);

} // namespace registry
