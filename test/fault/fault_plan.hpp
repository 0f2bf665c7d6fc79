#pragma once
/// The plain parts of the fault tier, without processes or CAF: the seeded fault schedule and the
/// comparison of what the nodes return with what the clients hold. Unit-tested in fault_test.cpp.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace registry::test::fault {

/// One step of a fault schedule. Every fault but kill_client is undone by its paired heal step.
struct fault_event {
  enum kind_t {
    kill_node,       ///< kill -9 node `a`
    restart_node,    ///< heal: start node `a` again (same config and port)
    stop_node,       ///< SIGSTOP node `a`
    cont_node,       ///< heal: SIGCONT node `a`
    drop_member,     ///< rewrite node `a`'s member list without `b`, then SIGHUP
    restore_member,  ///< heal: rewrite node `a`'s member list with `b` again, then SIGHUP
    partition_cut,   ///< cut the proxies a->b and b->a (connections closed, new ones refused)
    partition_stall, ///< stall the proxies a->b and b->a (no byte forwarded)
    heal_partition,  ///< heal: open the proxies a->b and b->a
    kill_client,     ///< kill -9 the doomed load process `a` (its instances must disappear)
  };
  std::int64_t at_ms = 0; ///< since the start of the fault phase
  kind_t kind = kill_node;
  int a = 0;
  int b = -1;

  bool is_heal() const;
  /// One line for the log, e.g. "+1200 ms partition-cut n0 n2".
  std::string describe() const;
};

const char* to_string(fault_event::kind_t kind);

struct plan_options {
  std::uint64_t seed = 1;
  int nodes = 3;
  std::int64_t duration_ms = 8000;  ///< no fault starts after this; every heal is at or before it
  std::int64_t gap_ms_min = 200;    ///< between the start of one fault and the next
  std::int64_t gap_ms_max = 900;
  std::int64_t hold_ms_min = 400;   ///< how long a fault lasts before its heal
  std::int64_t hold_ms_max = 2000;
  int concurrent_max = 2;           ///< faults active at once (never two on the same node)
  bool partitions = false;          ///< needs the proxy layout
  int doomed_clients = 1;           ///< load processes killed -9 during the run (one event each)
};

/// The schedule for `opts.seed`: the same options always give the same events, sorted by time.
/// Every fault has its heal, no node is in two active faults, and a node never has its member list
/// rewritten while another fault is active on it.
std::vector<fault_event> make_fault_plan(const plan_options& opts);

/// Instances per service as "ip:port", sorted.
using service_view = std::map<std::string, std::set<std::string>>;

/// What one node returned compared with what is expected.
struct view_diff {
  std::size_t lost = 0;     ///< expected but missing
  std::size_t ghosted = 0;  ///< present but not expected (a dead client's or a deregistered one)
  std::vector<std::string> examples; ///< a few "lost SERVICE IP:PORT" / "ghost SERVICE IP:PORT"
  bool same() const { return lost == 0 && ghosted == 0; }
};

/// Compares `actual` with `expected`; keeps at most `examples_max` example lines.
view_diff compare_views(const service_view& expected, const service_view& actual,
                        std::size_t examples_max = 5);

} // namespace registry::test::fault
