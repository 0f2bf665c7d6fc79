#pragma once
/// Where a node's member list comes from, and when it changes.
///
/// Three sources, as in Nacos:
/// * **file**: `members` in the YAML; the node re-reads the file on SIGHUP or when it changes;
/// * **url**: `members_url` names an address server answering one HOST:PORT per line (Nacos's
///   /nacos/serverlist); the node polls it every `members_poll_interval_ms`;
/// * **standalone**: `members` holds only the node's own `listen` address.
///
/// A plain class: no I/O, no clock, no CAF. The node's main loop reads the file or does the HTTP
/// GET, hands the result and the current time to the class, and carries out the returned effects
/// (send a changed list to the supervisor, write the log lines). Rules of a new list are those of
/// `members` (config/node_config.hpp): addresses peers can connect to, at most
/// defaults::members_max, duplicates dropped, the node's own `listen` address among them. A list
/// that breaks a rule, like a failed fetch, leaves the last good list in place.
///
/// Failures are reported once per change of state: the first failure, a failure with another
/// reason, and the first success after failures; a poll that fails like the one before reports
/// nothing.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/node_config.hpp"

namespace registry {

/// What one HTTP GET of the address server gave.
struct fetch_outcome {
  /// False when no complete response arrived (connect error, timeout, response too large).
  bool transferred = false;
  /// The HTTP status when transferred.
  long status = 0;
  /// The response body when transferred.
  std::string body;
  /// Why nothing was transferred, e.g. "Couldn't connect to server".
  std::string error;
};

/// Parses an address server's answer: one HOST:PORT per line, blank lines and surrounding spaces
/// ignored. Returns the sorted, unique list, or "members_url: LINE N: PROBLEM" for a bad line and
/// "members_url: PROBLEM" for a bad list (empty, too long, without `listen`).
std::variant<std::vector<host_port>, std::string> parse_member_lines(const std::string& body,
                                                                     const host_port& listen);

/// Turns a fetch into the list it carries or the reason it carries none ("members_url: ...").
std::variant<std::vector<host_port>, std::string> evaluate_fetch(const fetch_outcome& outcome,
                                                                 const host_port& listen);

enum class member_source_kind { standalone, file, url };

/// "standalone", "file" or "url".
const char* to_string(member_source_kind kind);

class member_source {
public:
  // -- member types ------------------------------------------------------------

  /// What the caller must do after an input, in this order: log `errors` and `infos`, give up
  /// when `fatal` is set, send `members` to the supervisor when set.
  struct effects {
    /// The new member list, when it changed.
    std::optional<std::vector<host_port>> members;
    /// Error lines to log (each state change once).
    std::vector<std::string> errors;
    /// Informational lines to log.
    std::vector<std::string> infos;
    /// Set only while starting: the list could not be fetched within members_start_wait_ms; the
    /// node cannot start. "members_url: REASON (...)".
    std::string fatal;
  };

  // -- constructors --------------------------------------------------------------

  /// Starts from the loaded config. With `members_url` and no members yet the source is
  /// *starting*: the first fetch is due at once, failures are retried every
  /// min(defaults::members_start_retry_ms, poll interval) until members_start_wait_ms passed.
  member_source(const node_config& cfg, std::int64_t now_ms);

  // -- inputs --------------------------------------------------------------------

  /// The config file was re-read (SIGHUP or a changed file): `fresh` is the loaded config or the
  /// loader's error. The file may switch between `members` and `members_url`, or name another
  /// URL; `listen` may not change. A config naming members_url makes the next fetch due at once.
  effects on_config(std::int64_t now_ms, const std::variant<node_config, std::string>& fresh);

  /// A GET of url() finished.
  effects on_fetch(std::int64_t now_ms, const fetch_outcome& outcome);

  // -- properties ------------------------------------------------------------------

  member_source_kind kind() const;
  /// True until the first list from members_url arrived.
  bool starting() const { return starting_; }
  /// The current (last good) list, sorted; empty only while starting.
  const std::vector<host_port>& members() const { return members_; }
  /// The address server ("" unless kind() is url).
  const std::string& url() const { return url_; }
  /// Milliseconds until the next fetch is due (0: now); -1 when the source is not a URL.
  std::int64_t fetch_due_in_ms(std::int64_t now_ms) const;

private:
  host_port listen_;
  std::vector<host_port> members_;
  std::string url_;
  std::int64_t poll_interval_ms_;
  std::int64_t start_wait_ms_ = 0;
  std::int64_t start_deadline_ms_ = 0;
  std::int64_t next_fetch_ms_ = 0;
  bool starting_ = false;
  /// The reason of the last failed fetch; "" after a good one.
  std::string failure_;
};

} // namespace registry
