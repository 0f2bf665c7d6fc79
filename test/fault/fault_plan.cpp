#include "test/fault/fault_plan.hpp"

#include <algorithm>
#include <random>

namespace registry::test::fault {

const char* to_string(fault_event::kind_t kind) {
  switch (kind) {
    case fault_event::kill_node:
      return "kill-node";
    case fault_event::restart_node:
      return "restart-node";
    case fault_event::stop_node:
      return "stop-node";
    case fault_event::cont_node:
      return "cont-node";
    case fault_event::drop_member:
      return "drop-member";
    case fault_event::restore_member:
      return "restore-member";
    case fault_event::partition_cut:
      return "partition-cut";
    case fault_event::partition_stall:
      return "partition-stall";
    case fault_event::heal_partition:
      return "heal-partition";
    case fault_event::kill_client:
      return "kill-client";
  }
  return "?";
}

bool fault_event::is_heal() const {
  return kind == restart_node || kind == cont_node || kind == restore_member
         || kind == heal_partition;
}

std::string fault_event::describe() const {
  std::string result = "+" + std::to_string(at_ms) + " ms " + to_string(kind) + " ";
  result += (kind == kill_client ? "client" : "n") + std::to_string(a);
  if (b >= 0)
    result += " n" + std::to_string(b);
  return result;
}

namespace {

struct active_fault {
  std::int64_t until_ms;
  int a;
  int b;
};

} // namespace

std::vector<fault_event> make_fault_plan(const plan_options& opts) {
  std::mt19937_64 rng{opts.seed};
  auto uniform = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>{lo, std::max(lo, hi)}(rng);
  };
  std::vector<fault_event::kind_t> kinds{fault_event::kill_node, fault_event::stop_node,
                                         fault_event::drop_member};
  if (opts.partitions) {
    kinds.push_back(fault_event::partition_cut);
    kinds.push_back(fault_event::partition_stall);
  }
  std::vector<fault_event> result;
  std::vector<active_fault> active;
  auto busy = [&](int node) {
    for (auto& f : active)
      if (f.a == node || f.b == node)
        return true;
    return false;
  };
  // Client kills at random times of the first half, so their expiry is checked too.
  for (int c = 0; c < opts.doomed_clients; ++c)
    result.push_back({uniform(0, opts.duration_ms / 2), fault_event::kill_client, c, -1});
  for (std::int64_t t = uniform(0, opts.gap_ms_max); t < opts.duration_ms;
       t += uniform(opts.gap_ms_min, opts.gap_ms_max)) {
    active.erase(std::remove_if(active.begin(), active.end(),
                                [t](const active_fault& f) { return f.until_ms <= t; }),
                 active.end());
    if (static_cast<int>(active.size()) >= opts.concurrent_max)
      continue;
    auto kind = kinds[static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(kinds.size()) - 1))];
    bool pair = kind != fault_event::kill_node && kind != fault_event::stop_node;
    std::vector<int> free_nodes;
    for (int n = 0; n < opts.nodes; ++n)
      if (!busy(n))
        free_nodes.push_back(n);
    if (free_nodes.size() < (pair ? 2u : 1u))
      continue;
    std::shuffle(free_nodes.begin(), free_nodes.end(), rng);
    int a = free_nodes[0];
    int b = pair ? free_nodes[1] : -1;
    auto until = std::min(t + uniform(opts.hold_ms_min, opts.hold_ms_max), opts.duration_ms);
    fault_event::kind_t heal = fault_event::restart_node;
    if (kind == fault_event::stop_node)
      heal = fault_event::cont_node;
    else if (kind == fault_event::drop_member)
      heal = fault_event::restore_member;
    else if (kind == fault_event::partition_cut || kind == fault_event::partition_stall)
      heal = fault_event::heal_partition;
    result.push_back({t, kind, a, b});
    result.push_back({until, heal, a, b});
    active.push_back({until, a, b});
  }
  // Heals before faults at the same time, so a node is never in two faults at once.
  std::stable_sort(result.begin(), result.end(), [](const fault_event& x, const fault_event& y) {
    if (x.at_ms != y.at_ms)
      return x.at_ms < y.at_ms;
    return x.is_heal() && !y.is_heal();
  });
  return result;
}

view_diff compare_views(const service_view& expected, const service_view& actual,
                        std::size_t examples_max) {
  view_diff result;
  auto note = [&](const char* what, const std::string& service, const std::string& x) {
    if (result.examples.size() < examples_max)
      result.examples.push_back(std::string{what} + " " + service + " " + x);
  };
  static const std::set<std::string> none;
  auto hosts = [](const service_view& v, const std::string& service) -> const std::set<std::string>& {
    auto i = v.find(service);
    return i == v.end() ? none : i->second;
  };
  std::set<std::string> services;
  for (auto& [s, _] : expected)
    services.insert(s);
  for (auto& [s, _] : actual)
    services.insert(s);
  for (auto& s : services) {
    auto& want = hosts(expected, s);
    auto& have = hosts(actual, s);
    for (auto& x : want)
      if (!have.count(x)) {
        ++result.lost;
        note("lost", s, x);
      }
    for (auto& x : have)
      if (!want.count(x)) {
        ++result.ghosted;
        note("ghost", s, x);
      }
  }
  return result;
}

} // namespace registry::test::fault
