// registry-bench: the CAF reference (caf-pingpong), node status and join timing, and the report.

#include <unistd.h>

#include <sys/types.h>
#include <csignal>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <regex>
#include <thread>

#include "tools/bench/common.hpp"

namespace bench {

using namespace registry::wire;

namespace {

/// A reply of the same shape and size as a query reply of the query benchmark (10 hosts), so the
/// reference moves the same bytes as the queries do.
envelope sample_reply(std::uint32_t hosts) {
  v1::ServiceInfo info;
  info.set_name("DEFAULT_GROUP@@bench-query-0");
  info.set_group_name("DEFAULT_GROUP");
  info.set_cache_millis(10000);
  info.set_last_ref_time(1700000000000);
  info.set_namespace_id("public");
  for (std::uint32_t i = 0; i < hosts; ++i) {
    auto* h = info.add_hosts();
    h->set_ip("10.0.0." + std::to_string(i));
    h->set_port(1 + i);
    h->set_instance_id("10.0.0." + std::to_string(i) + "#" + std::to_string(1 + i)
                       + "#DEFAULT#DEFAULT_GROUP@@bench-query-0");
    h->set_weight(1.0);
    h->set_healthy(true);
    h->set_enabled(true);
    h->set_ephemeral(true);
    h->set_cluster("DEFAULT");
    h->set_service_name("DEFAULT_GROUP@@bench-query-0");
  }
  return pack(info);
}

} // namespace

int cmd_pingpong_server(const common_opts& o, double hold_s, std::uint32_t reply_hosts) {
  start_watchdog(std::chrono::seconds(static_cast<std::int64_t>(hold_s) + 10), "caf-pingpong-server");
  system_holder h{o.caf};
  auto& sys = *h.sys;
  auto reply = sample_reply(reply_hosts);
  auto server = sys.spawn([reply](caf::event_based_actor* self) -> caf::behavior {
    self->set_default_handler(caf::drop);
    return {[reply](query_atom, const envelope&) { return reply; }};
  });
  auto port = sys.middleman().publish(server, 0, "127.0.0.1", true);
  if (!port) {
    std::fprintf(stdout, "ERROR %s\n", sys.render(port.error()).c_str());
    std::fflush(stdout);
    std::_Exit(1);
  }
  std::fprintf(stdout, "PORT %u\n", static_cast<unsigned>(*port));
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::duration<double>(hold_s));
  std::_Exit(0);
}

int cmd_pingpong(const common_opts& o, std::size_t actors, std::uint32_t inflight,
                 std::uint32_t reply_hosts) {
  start_watchdog(std::chrono::seconds(o.max_s > 0 ? o.max_s : static_cast<std::int64_t>(o.duration_s) + 60),
                 "caf-pingpong");
  json out;
  out["cmd"] = "caf-pingpong";
  // The server is a second process with the node's CAF settings (2 scheduler threads).
  auto child = spawn_child({self_exe(), "caf-pingpong-server", "--hb-ms", std::to_string(o.caf.hb_ms),
                            "--timeout-ms", std::to_string(o.caf.timeout_ms), "--threads", "2",
                            "--hold-s", std::to_string(static_cast<int>(o.duration_s) + 30),
                            "--reply-hosts", std::to_string(reply_hosts)});
  std::string line;
  if (child.pid <= 0 || !read_line(child.out_fd, line, ms(10000)) || line.rfind("PORT ", 0) != 0) {
    out["error"] = "pingpong server did not start: " + line;
    stop_child(child.pid, ms(100));
    finish(out, 1);
  }
  system_holder h{o.caf};
  auto& sys = *h.sys;
  std::string why;
  auto server = connect(sys, "127.0.0.1:" + line.substr(5), ms(5000), &why);
  if (!server) {
    out["error"] = "cannot connect to the pingpong server: " + why;
    stop_child(child.pid, ms(100));
    finish(out, 1);
  }
  auto requests = std::make_shared<std::vector<envelope>>();
  requests->push_back(pack(make_query("bench-query-0")));
  out["reply_bytes"] = sample_reply(reply_hosts).payload.size();
  run_request_load(sys, server, requests, v1::ServiceInfo::descriptor()->full_name(), actors,
                   inflight, o.duration_s, "pingpong", out);
  stop_child(child.pid, ms(2000));
  finish(out);
}

// -- status and join ---------------------------------------------------------------------------

namespace {

json status_json(const v1::Status& s) {
  json j;
  j["address"] = s.address();
  j["ready"] = s.ready();
  j["clients"] = s.clients();
  j["services"] = s.services();
  j["instances"] = s.instances();
  j["subscribers"] = s.subscribers();
  json members = json::array();
  for (auto& m : s.members())
    members.push_back(m.address() + "=" + m.state());
  j["members"] = members;
  return j;
}

} // namespace

int cmd_status(const common_opts& o, bool wait_ready, std::size_t wait_members,
               std::uint64_t wait_instances, double timeout_s) {
  start_watchdog(std::chrono::seconds(static_cast<std::int64_t>(timeout_s) + 10), "status");
  json out;
  out["cmd"] = "status";
  auto t0 = steady::now();
  auto deadline = t0 + std::chrono::duration_cast<ms>(std::chrono::duration<double>(timeout_s));
  system_holder h{o.caf};
  auto& sys = *h.sys;
  std::string why;
  auto gw = connect_retry(sys, o.nodes.front(), deadline, &why);
  if (!gw) {
    out["error"] = "cannot connect to " + o.nodes.front() + ": " + why;
    finish(out, 1);
  }
  caf::scoped_actor self{sys};
  std::optional<v1::Status> last;
  bool ok = wait_for(
    [&] {
      last = fetch_status(self, gw, ms(2000), &why);
      if (!last)
        return false;
      if (wait_ready && !last->ready())
        return false;
      if (static_cast<std::size_t>(last->members_size()) < wait_members)
        return false;
      return last->instances() >= wait_instances;
    },
    deadline);
  if (last)
    out["status"] = status_json(*last);
  out["ok"] = ok;
  out["elapsed_ms"] = std::round(ms_since(t0));
  if (!ok)
    out["error"] = last ? "condition not reached in time" : "no status: " + why;
  finish(out, ok ? 0 : 1);
}

int cmd_join(const common_opts& o, const std::string& registryd, const std::string& config,
             const std::string& log, std::uint64_t expect_instances, double timeout_s,
             double applied_timeout_s) {
  start_watchdog(std::chrono::seconds(static_cast<std::int64_t>(timeout_s) + 30), "join");
  json out;
  out["cmd"] = "join";
  out["expect_instances"] = expect_instances;
  system_holder h{o.caf};
  auto& sys = *h.sys;
  auto t0 = steady::now();
  auto deadline = t0 + std::chrono::duration_cast<ms>(std::chrono::duration<double>(timeout_s));
  auto child = spawn_child({registryd, "--config", config, "--log-level", "info"}, log, true);
  if (child.pid <= 0) {
    out["error"] = "cannot start " + registryd;
    finish(out, 1);
  }
  std::string why;
  auto gw = connect_retry(sys, o.nodes.front(), deadline, &why);
  out["listening_ms"] = std::round(ms_since(t0));
  bool ready = false;
  bool applied = false;
  if (gw) {
    caf::scoped_actor self{sys};
    std::optional<v1::Status> last;
    ready = wait_for(
      [&] {
        last = fetch_status(self, gw, ms(2000), &why);
        return last && last->ready();
      },
      deadline);
    if (ready)
      out["ready_ms"] = std::round(ms_since(t0) * 10) / 10;
    auto applied_deadline = std::min(
      deadline, steady::now() + std::chrono::duration_cast<ms>(std::chrono::duration<double>(applied_timeout_s)));
    applied = ready && wait_for(
                         [&] {
                           last = fetch_status(self, gw, ms(2000), &why);
                           return last && last->instances() >= expect_instances;
                         },
                         applied_deadline);
    if (applied)
      out["applied_ms"] = std::round(ms_since(t0) * 10) / 10;
    if (last)
      out["status"] = status_json(*last);
  } else {
    out["error"] = "cannot connect: " + why;
  }
  // The node's own account: "loaded a snapshot of N clients from X in M ms".
  {
    std::ifstream in(log);
    std::string text;
    std::regex re("loaded a snapshot of ([0-9]+) clients from (\\S+) in ([0-9]+) ms");
    std::smatch m;
    while (std::getline(in, text))
      if (std::regex_search(text, m, re)) {
        out["logged_clients"] = std::stoull(m[1]);
        out["logged_source"] = m[2].str();
        out["logged_ms"] = std::stoull(m[3]);
      }
  }
  // A throwaway node: kill it at once (its graceful shutdown is not what is measured).
  ::kill(child.pid, SIGKILL);
  stop_child(child.pid, ms(5000));
  if (!ready && !out.contains("error"))
    out["error"] = "the joining node did not become ready in time";
  finish(out, ready ? 0 : 1);
}

// -- report ------------------------------------------------------------------------------------

namespace {

struct figure {
  std::string key;    ///< JSON key (unit in the name); {S}/{L} = size labels
  std::string set;    ///< result set of the script
  std::string field;  ///< field of the subcommand's JSON
  std::string target; ///< "" = no target
  bool at_least = true;
  double limit = 0;
  bool sized = false; ///< meaningful only at the standard sizes
};

std::string fmt(double v) {
  char buf[64];
  if (std::isnan(v))
    return "n/a";
  if (std::fabs(v) >= 1000)
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  else if (std::fabs(v) >= 10)
    std::snprintf(buf, sizeof(buf), "%.1f", v);
  else
    std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

} // namespace

int cmd_report(const std::string& results, const std::string& json_out, const std::string& mode) {
  std::ifstream in(results);
  if (!in) {
    std::cerr << "registry-bench report: cannot read " << results << "\n";
    return 2;
  }
  // set -> list of run objects; "meta" lines carry labels and the date.
  std::map<std::string, std::vector<json>> sets;
  json meta = json::object();
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      continue;
    if (j.contains("meta")) {
      for (auto& [k, v] : j["meta"].items())
        meta[k] = v;
      continue;
    }
    if (j.contains("set") && j.contains("data") && j["data"].is_object())
      sets[j["set"].get<std::string>()].push_back(j["data"]);
  }
  auto small = meta.value("small_label", std::string{"100k"});
  auto large = meta.value("large_label", std::string{"1m"});
  auto verify_small = meta.value("verify_small_label", std::string{"10k"});
  auto verify_large = meta.value("verify_large_label", std::string{"1m"});
  auto clients_label = meta.value("clients_label", std::string{"100k"});
  std::vector<figure> figures = {
    {"registrations_per_s_1node", "register_1node", "registrations_per_s", ">= 50000", true, 50000},
    {"registrations_per_s_3node", "register_3node", "registrations_per_s", ">= 20000", true, 20000},
    {"batch_registrations_instances_per_s_1node", "batch_1node", "instances_per_s", ">= 200000",
     true, 200000},
    {"queries_per_s_1node", "query_1node", "queries_per_s", ">= 80000", true, 80000},
    {"query_p50_us", "query_1node", "query_p50_us", ""},
    {"query_p99_us", "query_1node", "query_p99_us", ""},
    {"caf_pingpong_per_s", "pingpong", "pingpong_per_s", ""},
    {"caf_pingpong_p50_us", "pingpong", "pingpong_p50_us", ""},
    {"caf_pingpong_p99_us", "pingpong", "pingpong_p99_us", ""},
    {"replication_p50_ms", "replication_bg", "replication_p50_ms", ""},
    {"replication_p99_ms", "replication_bg", "replication_p99_ms", "<= 50", false, 50},
    {"replication_background_per_s", "replication_bg", "background_per_s", ""},
    {"replication_default_p50_ms", "replication_default", "replication_p50_ms", ""},
    {"replication_default_p99_ms", "replication_default", "replication_p99_ms", ""},
    {"push_same_node_p50_ms", "push", "push_same_node_p50_ms", ""},
    {"push_same_node_p99_ms", "push", "push_same_node_p99_ms", "<= 50", false, 50},
    {"push_other_node_p50_ms", "push", "push_other_node_p50_ms", ""},
    {"push_other_node_p99_ms", "push", "push_other_node_p99_ms", "<= 150", false, 150},
    {"crash_removal_ms", "crash", "crash_removal_ms", "<= 2000", false, 2000},
    {"rss_bytes_per_instance_{S}", "memory_small", "rss_bytes_per_instance", ""},
    {"rss_bytes_per_instance_{L}", "memory_large", "rss_bytes_per_instance", "<= 400", false, 400, true},
    {"snapshot_load_{S}_ms", "snapshot_small", "ready_ms", ""},
    {"snapshot_load_{L}_ms", "snapshot_large", "ready_ms", "<= 3000", false, 3000, true},
    {"snapshot_applied_{L}_ms", "snapshot_large", "applied_ms", ""},
    {"rss_bytes_per_client_{C}", "memory_clients", "rss_bytes_per_client", "<= 1024", false, 1024,
     true},
    // Distro verify per peer per round (digests; target: no growth with the clients).
    {"verify_bytes_per_round_{VS}", "verify_small", "idle_verify_bytes", ""},
    {"verify_bytes_per_round_{VL}", "verify_large", "idle_verify_bytes", "<= 20000", false, 20000,
     true},
    {"verify_bytes_1000_changes_{VL}", "verify_large", "churn_verify_bytes", ""},
    {"verify_full_list_bytes_{VL}", "verify_large", "full_list_bytes", ""},
    {"verify_receiver_ms_{VL}", "verify_large", "idle_receiver_ms", ""},
  };
  json result = json::object();
  struct row {
    std::string key, median, spread, runs, target, met;
  };
  std::vector<row> rows;
  std::map<std::string, double> medians;
  for (auto& f : figures) {
    auto key = replace_all(replace_all(f.key, "{S}", small), "{L}", large);
    key = replace_all(replace_all(key, "{VS}", verify_small), "{VL}", verify_large);
    key = replace_all(key, "{C}", clients_label);
    std::vector<double> values;
    for (auto& run : sets[f.set])
      if (run.contains(f.field) && run[f.field].is_number())
        values.push_back(run[f.field].get<double>());
    if (values.empty() && mode == "verify")
      continue; // --verify-only: just its own rows
    row r{key, "n/a", "", "0", f.target.empty() ? "-" : f.target, "-"};
    if (!values.empty()) {
      auto med = median_of(values);
      auto [lo, hi] = std::minmax_element(values.begin(), values.end());
      medians[key] = med;
      result[key] = std::round(med * 1000) / 1000;
      result[key + "_min"] = std::round(*lo * 1000) / 1000;
      result[key + "_max"] = std::round(*hi * 1000) / 1000;
      r.median = fmt(med);
      r.spread = fmt(*lo) + ".." + fmt(*hi);
      r.runs = std::to_string(values.size());
      if (!f.target.empty()) {
        bool met = f.at_least ? med >= f.limit : med <= f.limit;
        r.met = met ? "yes" : "NO";
        if (f.sized && mode == "quick")
          r.met = "n/a (quick size)";
      }
    } else if (!f.target.empty()) {
      r.met = "no data";
    }
    rows.push_back(r);
  }
  // Registrations and queries as a share of CAF's own request/response rate in the same run: the
  // machine's noise moves all three together, so the shares compare across runs.
  auto share_of_caf = [&](const std::string& figure, const std::string& key, double target) {
    if (!medians.count(figure) || !medians.count("caf_pingpong_per_s")
        || medians["caf_pingpong_per_s"] <= 0)
      return;
    auto pct = 100.0 * medians[figure] / medians["caf_pingpong_per_s"];
    result[key] = std::round(pct * 10) / 10;
    rows.push_back({key, fmt(pct), "(of medians)", "-", ">= " + fmt(target),
                    pct >= target ? "yes" : "NO"});
  };
  share_of_caf("registrations_per_s_1node", "registrations_of_caf_pingpong_pct", 60);
  share_of_caf("queries_per_s_1node", "queries_of_caf_pingpong_pct", 95);
  // Print the table.
  std::size_t w0 = 6, w1 = 6, w2 = 18, w3 = 4, w4 = 6;
  for (auto& r : rows) {
    w0 = std::max(w0, r.key.size());
    w1 = std::max(w1, r.median.size());
    w2 = std::max(w2, r.spread.size());
    w4 = std::max(w4, r.target.size());
  }
  auto pad = [](const std::string& s, std::size_t w) {
    return s + std::string(w > s.size() ? w - s.size() : 0, ' ');
  };
  std::cout << "registry-bench " << mode << " suite";
  if (meta.contains("date"))
    std::cout << ", " << meta["date"].get<std::string>();
  if (meta.contains("runs"))
    std::cout << ", " << meta["runs"] << " runs per figure (median, spread = min..max)";
  if (meta.contains("cores"))
    std::cout << ", " << meta["cores"] << " cores";
  if (meta.contains("loadavg_start"))
    std::cout << ", load average " << meta["loadavg_start"].get<std::string>() << " at start";
  if (meta.contains("loadavg_end"))
    std::cout << ", " << meta["loadavg_end"].get<std::string>() << " at end";
  if (meta.contains("wall_s"))
    std::cout << ", " << meta["wall_s"] << " s";
  std::cout << "\n";
  std::cout << pad("figure", w0) << " | " << pad("median", w1) << " | "
            << pad("spread (min..max)", w2) << " | " << pad("runs", w3) << " | "
            << pad("target", w4) << " | met?\n";
  std::cout << std::string(w0, '-') << "-|-" << std::string(w1, '-') << "-|-"
            << std::string(w2, '-') << "-|-" << std::string(w3, '-') << "-|-"
            << std::string(w4, '-') << "-|-----\n";
  for (auto& r : rows)
    std::cout << pad(r.key, w0) << " | " << pad(r.median, w1) << " | " << pad(r.spread, w2)
              << " | " << pad(r.runs, w3) << " | " << pad(r.target, w4) << " | " << r.met << "\n";
  // Fills cut short by their time budget: the memory and snapshot figures hold at the size reached.
  for (auto* set : {"memory_small", "memory_large"})
    for (auto& run : sets[set])
      if (run.contains("complete") && run["complete"] == false)
        std::cout << "note: " << set << ": the fill reached " << run.value("instances", 0)
                  << " instances within its time budget"
                  << (run.contains("target_instances")
                        ? " (of " + std::to_string(run["target_instances"].get<std::uint64_t>()) + ")"
                        : std::string{})
                  << "; the node registered at " << run.value("registrations_per_s", run.value("fill_registrations_per_s", 0.0))
                  << "/s. Memory and snapshot figures of this size hold at that count.\n";
  // Errors seen in any run, so a bad figure can be explained.
  for (auto& [set, runs] : sets)
    for (auto& run : runs)
      for (auto* k : {"error", "first_error", "background_first_error"})
        if (run.contains(k))
          std::cout << "note: " << set << ": " << k << ": " << run[k].get<std::string>() << "\n";
  if (!json_out.empty()) {
    result["meta"] = meta;
    std::ofstream out(json_out);
    out << result.dump(2) << "\n";
    if (!out) {
      std::cerr << "registry-bench report: cannot write " << json_out << "\n";
      return 2;
    }
  }
  return 0;
}

} // namespace bench
