#pragma once
/// The fault tier's harness: a cluster of real registryd processes on loopback (optionally with a
/// pausable proxy on every ordered node pair), load processes (test/fault/fault_load.cpp and
/// registryctl clients), a seeded fault schedule carried out on them, and the checker that runs once
/// the faults stop. Every wait polls a condition with a deadline.

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "test/fault/fault_plan.hpp"

namespace registry::test::fault {

/// Everything one run needs; CI and the long mode differ only in these values.
struct scenario {
  std::uint64_t seed = 1;
  int nodes = 3;
  /// Nodes list each other by the address of a per-pair proxy; enables partition faults.
  bool proxies = false;
  /// Rounds on one cluster (faults, then the check); round r uses seed + r.
  int rounds = 1;
  /// Long mode: rounds continue until this many ms have passed (0 = exactly `rounds`).
  std::int64_t run_ms_min = 0;
  plan_options plan; ///< seed, nodes and partitions are set per round from the fields above

  // -- load ---------------------------------------------------------------------------------
  int load_processes = 2;          ///< live fault_load processes
  std::size_t sessions = 6;        ///< session clients per load process
  std::size_t instances = 3;       ///< instances each session client wants at first
  std::size_t slots = 5;           ///< slots it flips between while churning
  std::size_t beats = 4;           ///< heartbeat clients per load process
  std::size_t services = 8;
  std::int64_t churn_ms = 400;     ///< mean flip period per session client (0 = no churn)
  std::int64_t beat_ms = 200;
  int load_threads = 2;
  /// registryctl processes: `register --hold` and `beat --every-ms` (one of each is doomed too).
  int ctl_clients = 1;

  // -- nodes --------------------------------------------------------------------------------
  /// Appended to every node's YAML (short timings).
  std::string node_yaml;
  std::string log_level = "debug";
  std::int64_t convergence_timeout_ms = 10000;
  /// After a missed convergence deadline, poll this much longer to tell slow from stuck (0 = no).
  std::int64_t late_wait_ms = 0;
  /// Go on with the next round after a failed one (the run still fails; long mode).
  bool keep_going = false;
  /// Until the lists agree, print what each node lacks or holds too much, at most once a second
  /// (long mode: says what a slow convergence waited for).
  bool trace_convergence = false;
};

/// The CI scenario for one seed (3 nodes, small load, short timings).
scenario ci_scenario(std::uint64_t seed, bool partitions);
/// The long scenario: `minutes` of rounds with 10k clients and 100k instances.
scenario long_scenario(std::uint64_t seed, bool partitions, int minutes);

struct round_report {
  std::uint64_t seed = 0;
  std::size_t faults = 0;
  std::int64_t convergence_ms = -1; ///< from the last heal until every node returned the expected lists
  std::int64_t ready_ms = -1;       ///< from the last heal until every node was ready
  std::int64_t settled_ms = -1;     ///< from the last heal until every load process had settled
  std::size_t expected = 0;         ///< instances the live clients hold
  std::size_t lost = 0;             ///< summed over the nodes, at the deadline
  std::size_t ghosted = 0;
  std::vector<std::uint64_t> rss; ///< per node, bytes, once the round's check ended
};

struct run_report {
  bool ok = false;
  std::string failure;          ///< what failed first ("" when ok)
  std::vector<round_report> rounds;
  std::vector<std::uint64_t> rss_start; ///< per node, bytes (after the load registered)
  std::vector<std::uint64_t> rss_end;
  std::string kept_logs;        ///< directory holding the node logs of a failed run
};

/// Runs the scenario, printing the seed, every fault as it is injected, and the figures to `out`.
run_report run_scenario(const scenario& sc, std::ostream& out);

} // namespace registry::test::fault
