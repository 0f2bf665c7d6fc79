#pragma once
/// Server-side health checks of persistent instances: the decisions, without I/O (no CAF, no
/// sockets, no clock). The raft actor owns one, hands it the instances this node is responsible
/// for, runs the checks it asks for (actors/raft/health_probe.hpp) and writes the flips it returns
/// through Raft.
///
/// Nacos 2.x semantics (reference/raft.md §3.5):
/// * each instance is checked again after its normalised response time, which follows the
///   measured time: `next = factor x old + (1 - factor) x rt`, clamped to [interval_min_ms,
///   interval_max_ms] (TCP: 1000..5000 ms, factor 0.75);
/// * a success counts toward "healthy" only while the instance is unhealthy, a failure toward
///   "unhealthy" only while it is healthy; the other counter resets on every result; the status
///   flips when a counter reaches flip_count (3). A refused connection flips a healthy instance
///   at once (rt = max); a timeout counts as a failure with rt = 2 x normalised;
/// * at most in_flight_max checks run at once; a due check waits for a free slot (overflow
///   policy: checks are delayed, never dropped); instances checked with `none` are skipped.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "actors/raft/persistent_store.hpp"
#include "config/defaults.hpp"
#include "messages/model.hpp"

namespace registry {

struct health_checker_config {
  time_ms interval_min_ms = defaults::health_check_interval_min_ms;
  time_ms interval_max_ms = defaults::health_check_interval_max_ms;
  time_ms timeout_ms = defaults::health_check_timeout_ms;
  std::size_t in_flight_max = defaults::health_checks_in_flight_max;
  int flip_count = defaults::health_check_flip_count;
  double factor = 0.75;
};

class health_checker {
public:
  // -- member types -------------------------------------------------------------------

  /// An instance to check.
  struct target {
    service_key key;
    std::string ip;
    std::uint32_t port = 0;
    std::string cluster;
    raft::health_check_spec check;
    bool healthy = true; ///< as committed
  };

  enum class outcome { ok, fail, fail_now };

  /// A check to run now.
  struct check {
    std::uint64_t id = 0;
    target what;
  };

  /// A decided change of health, to write through Raft.
  struct flip {
    target what;
    bool healthy = true;
  };

  // -- constructors -------------------------------------------------------------------

  explicit health_checker(health_checker_config cfg);

  // -- inputs -------------------------------------------------------------------------

  /// Replaces the instances to check. Ones that stay keep their counters and schedule; new ones
  /// are first checked after interval_min_ms. Their `healthy` is updated from `xs`.
  void set_targets(const std::vector<target>& xs, time_ms now_ms);

  /// The checks to start now, at most in_flight_max minus those running.
  std::vector<check> due(time_ms now_ms);

  /// The result of check `id` after `rt_ms`; a flip when the instance's health must change.
  /// Results of checks whose target is gone are ignored.
  std::optional<flip> on_result(std::uint64_t id, outcome x, time_ms rt_ms, time_ms now_ms);

  /// Forgets every check in flight (their results will be ignored); they are due again.
  void cancel_running(time_ms now_ms);

  // -- properties ---------------------------------------------------------------------

  /// When the next check is due (nothing when there are no targets).
  std::optional<time_ms> next_due() const;
  std::size_t target_count() const {
    return targets_.size();
  }
  std::size_t in_flight() const {
    return running_.size();
  }
  /// The interval of a target (for tests), or 0.
  time_ms interval_of(const std::string& ip, std::uint32_t port) const;

private:
  struct entry {
    target what;
    time_ms normalized_ms = 0;
    time_ms next_ms = 0;
    int ok_count = 0;
    int fail_count = 0;
    std::uint64_t running = 0; ///< id of the check in flight (0: none)
  };

  static std::string key_of(const target& x);
  void adapt(entry& e, time_ms rt_ms);

  health_checker_config cfg_;
  std::map<std::string, entry> targets_;
  std::map<std::uint64_t, std::string> running_;
  std::uint64_t next_id_ = 1;
};

} // namespace registry
