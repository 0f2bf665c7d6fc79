#pragma once
/// The failover switch of the client library (plain C++, no CAF), after Nacos's FailoverReactor.
///
/// The switch is the file `<cache_dir>/failover/00-00---000-VIPSRV_FAILOVER_SWITCH-000---00-00`:
/// "1" (surrounding whitespace ignored) means on; "0", anything else or no file means off. The owner
/// calls check() every failover_check_interval; the file is read again only when its modification time
/// (or its existence) changed. While the switch is on, reads are served from the service files in
/// `<cache_dir>/failover/` (same names and JSON as the disk cache).

#include <filesystem>
#include <string>

namespace registry::client {

inline constexpr const char* failover_switch_file_name =
  "00-00---000-VIPSRV_FAILOVER_SWITCH-000---00-00";

class failover_switch {
public:
  /// `cache_dir` empty: the switch is always off.
  explicit failover_switch(std::string cache_dir);

  /// Looks at the switch file; re-reads it when its mtime or existence changed. Returns true when the
  /// state (on/off) flipped.
  bool check();

  bool on() const { return on_; }

  /// How many times the file content was read (for tests: an unchanged mtime must not re-read).
  std::size_t reads() const { return reads_; }

  /// The switch file's path ("" without cache_dir).
  const std::string& path() const { return path_; }

private:
  std::string path_;
  bool on_ = false;
  bool seen_ = false; ///< the file existed at the last check
  std::filesystem::file_time_type mtime_{};
  std::size_t reads_ = 0;
};

/// Writes "1" or "0" to the switch file (atomically), creating the directory.
/// Throws std::runtime_error naming the path on failure.
void write_failover_switch_file(const std::string& cache_dir, bool on);

} // namespace registry::client
