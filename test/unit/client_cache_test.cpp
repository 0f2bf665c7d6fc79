// Unit tests of the client library's plain parts (no actor system): the update task's timeline, the
// cache with its diff events and ordering, the failover switch, the disk files and the event thread.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tools/client/event_dispatcher.hpp"
#include "tools/client/failover.hpp"
#include "tools/client/registry_client.hpp"
#include "tools/client/service_cache.hpp"
#include "tools/client/update_schedule.hpp"

namespace fs = std::filesystem;
using namespace registry;
using namespace registry::client;

namespace {

instance host(const std::string& ip, std::uint32_t port, const std::string& cluster = "DEFAULT") {
  instance x;
  x.ip = ip;
  x.port = port;
  x.cluster = cluster;
  x.instance_id = ip + "#" + std::to_string(port) + "#" + cluster + "#DEFAULT_GROUP@@orders";
  return x;
}

service_info state(time_ms ref, std::vector<instance> hosts, const std::string& clusters = "") {
  service_info x;
  x.key = service_key{"public", "DEFAULT_GROUP", "orders"};
  x.clusters = clusters;
  x.cache_millis = 10000;
  x.last_ref_time_ms = ref;
  x.hosts = std::move(hosts);
  return x;
}

/// A fresh directory under the system's temp dir, removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("client_cache_test." + std::to_string(::getpid()) + "." + std::to_string(++counter));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream out{p, std::ios::trunc};
  out << text;
}

std::string read_text(const fs::path& p) {
  std::ifstream in{p};
  return std::string{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

} // namespace

// -- update timeline ------------------------------------------------------------------------------

TEST_SUITE("client update schedule") {
  TEST_CASE("backs off interval, 2x, 4x, ... capped at 60 s under a failing server") {
    update_schedule s{10'000, 60'000};
    time_ms now = 1'000;
    auto due = s.start(now);
    CHECK(due == 11'000); // the first run one interval after the subscription
    // The server fails every run: each wait doubles until the cap.
    std::vector<std::int64_t> waits;
    for (int i = 0; i < 6; ++i) {
      now = due; // the timer fires
      due = s.failed(now);
      waits.push_back(due - now);
    }
    CHECK(waits == std::vector<std::int64_t>{20'000, 40'000, 60'000, 60'000, 60'000, 60'000});
    CHECK(s.failures() == 6);
    // One success resets to the interval.
    now = due;
    due = s.succeeded(now);
    CHECK(due - now == 10'000);
    CHECK(s.failures() == 0);
    // And backoff starts from the beginning again.
    now = due;
    due = s.failed(now);
    CHECK(due - now == 20'000);
  }

  TEST_CASE("a small interval doubles many times before the cap") {
    update_schedule s{1'000, 60'000};
    s.start(0);
    std::vector<std::int64_t> delays;
    for (int i = 0; i < 8; ++i) {
      s.failed(0);
      delays.push_back(s.delay_ms());
    }
    CHECK(delays ==
          std::vector<std::int64_t>{2'000, 4'000, 8'000, 16'000, 32'000, 60'000, 60'000, 60'000});
  }

  TEST_CASE("many failures never overflow the shift") {
    update_schedule s{10'000, 60'000};
    s.start(0);
    for (int i = 0; i < 1000; ++i)
      s.failed(0);
    CHECK(s.delay_ms() == 60'000);
  }

  TEST_CASE("a fake clock drives the task through an outage and back") {
    // The server is down from t=0 to t=100 s; the task runs at these times and no others.
    update_schedule s{5'000, 60'000};
    std::vector<time_ms> runs;
    time_ms due = s.start(0);
    while (due < 200'000) {
      time_ms now = due;
      runs.push_back(now);
      due = now < 100'000 ? s.failed(now) : s.succeeded(now);
    }
    // 5 s, then +10, +20, +40, +60 (cap) ... until past 100 s, then every 5 s.
    REQUIRE(runs.size() >= 6);
    CHECK(runs[0] == 5'000);
    CHECK(runs[1] == 15'000);
    CHECK(runs[2] == 35'000);
    CHECK(runs[3] == 75'000);
    CHECK(runs[4] == 135'000); // 75 + 60 (capped): the first success
    CHECK(runs[5] == 140'000);
    CHECK(runs[6] == 145'000);
  }

  TEST_CASE("stop makes armed timers stale; restart starts over") {
    update_schedule s{10'000, 60'000};
    s.start(0);
    auto gen = s.generation();
    CHECK(s.is_current(gen));
    s.failed(10'000);
    s.stop();
    CHECK_FALSE(s.active());
    CHECK_FALSE(s.is_current(gen));
    auto due = s.start(50'000);
    CHECK(due == 60'000);
    CHECK(s.failures() == 0);
    CHECK_FALSE(s.is_current(gen));
    CHECK(s.is_current(s.generation()));
  }
}

// -- diff and cache -------------------------------------------------------------------------------

TEST_SUITE("client cache") {
  TEST_CASE("diff_hosts finds added, removed and modified by identity ip/port/cluster") {
    auto a = host("10.0.0.1", 80);
    auto b = host("10.0.0.2", 80);
    auto c = host("10.0.0.3", 80);
    auto b2 = b;
    b2.weight = 5;
    auto a_other_cluster = host("10.0.0.1", 80, "east");
    auto ev = diff_hosts(state(1, {a, b}), state(2, {b2, c, a_other_cluster}));
    REQUIRE(ev.added.size() == 2);
    CHECK(ev.added[0] == c);
    CHECK(ev.added[1] == a_other_cluster);
    REQUIRE(ev.removed.size() == 1);
    CHECK(ev.removed[0] == a);
    REQUIRE(ev.modified.size() == 1);
    CHECK(ev.modified[0] == b2); // the new values
    CHECK(ev.info.last_ref_time_ms == 2);
  }

  TEST_CASE("diff_hosts sees metadata, health and enabled changes but not order") {
    auto a = host("10.0.0.1", 80);
    auto b = host("10.0.0.2", 80);
    CHECK(diff_hosts(state(1, {a, b}), state(2, {b, a})).modified.empty());
    CHECK(diff_hosts(state(1, {a, b}), state(2, {b, a})).added.empty());
    auto a_meta = a;
    a_meta.metadata = {{"zone", "z1"}};
    CHECK(diff_hosts(state(1, {a}), state(2, {a_meta})).modified.size() == 1);
    auto a_sick = a;
    a_sick.healthy = false;
    CHECK(diff_hosts(state(1, {a}), state(2, {a_sick})).modified.size() == 1);
    auto a_off = a;
    a_off.enabled = false;
    CHECK(diff_hosts(state(1, {a}), state(2, {a_off})).modified.size() == 1);
  }

  TEST_CASE("select_healthy keeps healthy == flag, enabled and weight > 0") {
    auto ok = host("10.0.0.1", 1);
    auto sick = host("10.0.0.2", 2);
    sick.healthy = false;
    auto off = host("10.0.0.3", 3);
    off.enabled = false;
    auto zero = host("10.0.0.4", 4);
    zero.weight = 0;
    std::vector<instance> all{ok, sick, off, zero};
    auto healthy = select_healthy(all, true);
    REQUIRE(healthy.size() == 1);
    CHECK(healthy[0] == ok);
    auto unhealthy = select_healthy(all, false);
    REQUIRE(unhealthy.size() == 1);
    CHECK(unhealthy[0] == sick);
  }

  TEST_CASE("apply: events on real changes only, older updates ignored") {
    service_cache cache;
    auto a = host("10.0.0.1", 80);
    auto b = host("10.0.0.2", 80);
    // First state: everything added.
    auto u = cache.apply(state(100, {a}));
    CHECK(u.accepted);
    CHECK(u.stored_changed);
    REQUIRE(u.event);
    CHECK(u.event->added.size() == 1);
    // The same hosts again, newer: accepted, no event, nothing to write.
    u = cache.apply(state(200, {a}));
    CHECK(u.accepted);
    CHECK_FALSE(u.stored_changed);
    CHECK_FALSE(u.event);
    CHECK(cache.stored("DEFAULT_GROUP@@orders")->last_ref_time_ms == 200);
    // A newer state with a host more.
    u = cache.apply(state(300, {a, b}));
    REQUIRE(u.event);
    CHECK(u.event->added.size() == 1);
    CHECK(u.event->added[0] == b);
    CHECK(u.event->removed.empty());
    // A late, older state (without b) is ignored: no event, the cache keeps b.
    u = cache.apply(state(250, {a}));
    CHECK_FALSE(u.accepted);
    CHECK_FALSE(u.event);
    CHECK(cache.view("DEFAULT_GROUP@@orders")->hosts.size() == 2);
    // Forced (first state of a new session), an older one is taken.
    u = cache.apply(state(250, {a}), true);
    CHECK(u.accepted);
    REQUIRE(u.event);
    CHECK(u.event->removed.size() == 1);
    CHECK(u.event->removed[0] == b);
    // A modification.
    auto a2 = a;
    a2.metadata = {{"v", "2"}};
    u = cache.apply(state(400, {a2}));
    REQUIRE(u.event);
    CHECK(u.event->modified.size() == 1);
    CHECK(u.event->modified[0].metadata == metadata_map{{"v", "2"}});
  }

  TEST_CASE("an equal last_ref_time is applied (only older is stale)") {
    service_cache cache;
    cache.apply(state(100, {host("10.0.0.1", 80)}));
    auto u = cache.apply(state(100, {host("10.0.0.2", 80)}));
    CHECK(u.accepted);
    REQUIRE(u.event);
    CHECK(u.event->added.size() == 1);
    CHECK(u.event->removed.size() == 1);
  }

  TEST_CASE("keys include the clusters") {
    service_cache cache;
    cache.apply(state(1, {host("10.0.0.1", 80)}));
    cache.apply(state(1, {host("10.0.0.2", 80, "east")}, "east,west"));
    CHECK(cache.size() == 2);
    CHECK(cache.view("DEFAULT_GROUP@@orders")->hosts[0].ip == "10.0.0.1");
    CHECK(cache.view("DEFAULT_GROUP@@orders@@east,west")->hosts[0].ip == "10.0.0.2");
    CHECK(cache_key("G@@s", "") == "G@@s");
    CHECK(cache_key("G@@s", "a,b") == "G@@s@@a,b");
    CHECK(join_clusters({"a", "b"}) == "a,b");
    CHECK(join_clusters({}) == "");
  }

  TEST_CASE("the failover overlay hides the stored state and toggling fires diffs") {
    service_cache cache;
    auto a = host("10.0.0.1", 80);
    auto f = host("10.9.9.9", 80);
    cache.apply(state(100, {a}));
    std::map<std::string, service_info> data{{"DEFAULT_GROUP@@orders", state(50, {f})}};
    auto events = cache.set_failover(true, data);
    REQUIRE(events.size() == 1);
    CHECK(events[0].first == "DEFAULT_GROUP@@orders");
    CHECK(events[0].second.added.size() == 1);
    CHECK(events[0].second.removed.size() == 1);
    CHECK(cache.failover_covers("DEFAULT_GROUP@@orders"));
    CHECK(cache.view("DEFAULT_GROUP@@orders")->hosts[0].ip == "10.9.9.9");
    // Node updates while failover is on: stored, no event (readers see the failover data).
    auto u = cache.apply(state(200, {a, host("10.0.0.2", 80)}));
    CHECK(u.accepted);
    CHECK(u.stored_changed);
    CHECK_FALSE(u.event);
    // Reloading the same data changes nothing.
    CHECK(cache.set_failover(true, data).empty());
    // Off: back to the stored state, as a diff.
    events = cache.set_failover(false, {});
    REQUIRE(events.size() == 1);
    CHECK(events[0].second.added.size() == 2);
    CHECK(events[0].second.removed.size() == 1);
    CHECK(cache.view("DEFAULT_GROUP@@orders")->hosts.size() == 2);
  }

  TEST_CASE("empty failover data does not hide the stored state") {
    service_cache cache;
    cache.apply(state(100, {host("10.0.0.1", 80)}));
    auto events = cache.set_failover(true, {{"DEFAULT_GROUP@@orders", state(1, {})}});
    CHECK(events.empty());
    CHECK_FALSE(cache.failover_covers("DEFAULT_GROUP@@orders"));
    CHECK(cache.view("DEFAULT_GROUP@@orders")->hosts.size() == 1);
  }
}

// -- failover switch ------------------------------------------------------------------------------

TEST_SUITE("client failover switch") {
  TEST_CASE("missing, 0 and 1; re-read only when the mtime changes") {
    temp_dir dir;
    failover_switch sw{dir.path.string()};
    auto file = fs::path{sw.path()};
    CHECK(file == dir.path / "failover" / "00-00---000-VIPSRV_FAILOVER_SWITCH-000---00-00");
    // Missing: off.
    CHECK_FALSE(sw.check());
    CHECK_FALSE(sw.on());
    // "0": off.
    write_text(file, "0");
    auto t0 = fs::file_time_type::clock::now() - std::chrono::hours(1);
    fs::last_write_time(file, t0);
    CHECK_FALSE(sw.check());
    CHECK_FALSE(sw.on());
    CHECK(sw.reads() == 1);
    // "1" with a new mtime: on.
    write_text(file, "1\n");
    fs::last_write_time(file, t0 + std::chrono::seconds(10));
    CHECK(sw.check());
    CHECK(sw.on());
    CHECK(sw.reads() == 2);
    // Unchanged mtime: not read again, even though the content changed behind its back.
    write_text(file, "0");
    fs::last_write_time(file, t0 + std::chrono::seconds(10));
    CHECK_FALSE(sw.check());
    CHECK(sw.on());
    CHECK(sw.reads() == 2);
    // The mtime moves: read, off.
    fs::last_write_time(file, t0 + std::chrono::seconds(20));
    CHECK(sw.check());
    CHECK_FALSE(sw.on());
    // Back on, then the file disappears: off.
    write_text(file, "1");
    fs::last_write_time(file, t0 + std::chrono::seconds(30));
    CHECK(sw.check());
    fs::remove(file);
    CHECK(sw.check());
    CHECK_FALSE(sw.on());
  }

  TEST_CASE("anything but 1 is off; no cache dir means always off") {
    temp_dir dir;
    failover_switch sw{dir.path.string()};
    write_text(sw.path(), "yes");
    CHECK_FALSE(sw.check());
    CHECK_FALSE(sw.on());
    failover_switch none{""};
    CHECK_FALSE(none.check());
    CHECK_FALSE(none.on());
  }

  TEST_CASE("write_failover_switch writes 1 and 0") {
    temp_dir dir;
    write_failover_switch(dir.path.string(), true);
    auto file = dir.path / "failover" / failover_switch_file_name;
    CHECK(read_text(file) == "1");
    failover_switch sw{dir.path.string()};
    sw.check();
    CHECK(sw.on());
    write_failover_switch(dir.path.string(), false);
    CHECK(read_text(file) == "0");
    CHECK_THROWS_AS(write_failover_switch("", true), registry::client::error);
  }
}

// -- JSON and files -------------------------------------------------------------------------------

TEST_SUITE("client disk cache") {
  TEST_CASE("the JSON has Nacos's ServiceInfo shape, keys in order") {
    auto x = state(1700000000123, {host("10.0.0.1", 8080)});
    x.hosts[0].weight = 2.5;
    x.hosts[0].metadata = {{"version", "1.2"}, {"zone", "a"}};
    x.reach_protection_threshold = true;
    auto j = to_nacos_json(x);
    std::vector<std::string> keys;
    for (auto& [k, v] : j.items())
      keys.push_back(k);
    CHECK(keys == std::vector<std::string>{"name", "groupName", "clusters", "cacheMillis",
                                           "lastRefTime", "reachProtectionThreshold", "hosts"});
    CHECK(j["name"] == "DEFAULT_GROUP@@orders");
    CHECK(j["groupName"] == "DEFAULT_GROUP");
    CHECK(j["clusters"] == "");
    CHECK(j["cacheMillis"] == 10000);
    CHECK(j["lastRefTime"] == 1700000000123);
    CHECK(j["reachProtectionThreshold"] == true);
    REQUIRE(j["hosts"].size() == 1);
    auto& h = j["hosts"][0];
    std::vector<std::string> host_keys;
    for (auto& [k, v] : h.items())
      host_keys.push_back(k);
    CHECK(host_keys == std::vector<std::string>{"instanceId", "ip", "port", "weight", "healthy",
                                                "enabled", "ephemeral", "clusterName",
                                                "serviceName", "metadata"});
    CHECK(h["port"].is_number_integer());
    CHECK(h["port"] == 8080);
    CHECK(h["weight"] == 2.5);
    CHECK(h["clusterName"] == "DEFAULT");
    CHECK(h["serviceName"] == "DEFAULT_GROUP@@orders");
    CHECK(h["metadata"].is_object());
    CHECK(h["metadata"]["zone"] == "a");
    // The public string form is the same document.
    CHECK(nlohmann::json::parse(to_json(x)) == nlohmann::json::parse(j.dump()));
  }

  TEST_CASE("JSON round trip") {
    auto x = state(42, {host("10.0.0.1", 8080, "east")}, "east");
    x.hosts[0].metadata = {{"k", "v"}};
    x.hosts[0].healthy = false;
    service_info back;
    REQUIRE_FALSE(from_nacos_json(nlohmann::json::parse(to_json(x)), "public", back));
    CHECK(back.key == x.key);
    CHECK(back.clusters == "east");
    CHECK(back.last_ref_time_ms == 42);
    REQUIRE(back.hosts.size() == 1);
    CHECK(back.hosts[0] == x.hosts[0]);
    // Malformed documents are reported, not guessed.
    service_info junk;
    CHECK(from_nacos_json(nlohmann::json::parse(R"({"hosts":[]})"), "public", junk));
    CHECK(from_nacos_json(nlohmann::json::parse(R"({"name":"G@@s","hosts":{}})"), "public", junk));
    CHECK(from_nacos_json(nlohmann::json::parse(R"({"name":"G@@s","hosts":[{"ip":"1.1.1.1","port":"x"}]})"),
                          "public", junk));
  }

  TEST_CASE("file names are the URL-encoded key (java.net.URLEncoder)") {
    CHECK(url_encode("DEFAULT_GROUP@@orders") == "DEFAULT_GROUP%40%40orders");
    CHECK(url_encode("DEFAULT_GROUP@@orders@@east,west") ==
          "DEFAULT_GROUP%40%40orders%40%40east%2Cwest");
    CHECK(url_encode("a b:c.d-e*f_g") == "a+b%3Ac.d-e*f_g");
    CHECK(url_decode("DEFAULT_GROUP%40%40orders%40%40east%2Cwest") ==
          "DEFAULT_GROUP@@orders@@east,west");
    CHECK(url_decode("a+b%3a") == "a b:");
    CHECK(url_decode("50%") == "50%");
    CHECK(naming_cache_dir("/c", "public") == "/c/naming/public");
    CHECK(failover_dir("/c") == "/c/failover");
  }

  TEST_CASE("service files are written atomically and read back; the switch is skipped") {
    temp_dir dir;
    auto naming = naming_cache_dir(dir.path.string(), "public");
    auto x = state(7, {host("10.0.0.1", 8080)}, "east,west");
    REQUIRE_FALSE(write_service_file(naming, x));
    auto file = fs::path{naming} / "DEFAULT_GROUP%40%40orders%40%40east%2Cwest";
    REQUIRE(fs::exists(file));
    // No temporary file left behind.
    std::size_t entries = 0;
    for (auto& e : fs::directory_iterator{naming}) {
      (void) e;
      ++entries;
    }
    CHECK(entries == 1);
    auto j = nlohmann::json::parse(read_text(file));
    CHECK(j["name"] == "DEFAULT_GROUP@@orders");
    CHECK(j["clusters"] == "east,west");
    // Overwrite: the file holds the new state.
    x.last_ref_time_ms = 8;
    REQUIRE_FALSE(write_service_file(naming, x));
    CHECK(nlohmann::json::parse(read_text(file))["lastRefTime"] == 8);
    // A failover directory with a service file, the switch and junk.
    auto fo = fs::path{failover_dir(dir.path.string())};
    fs::create_directories(fo);
    fs::copy_file(file, fo / file.filename());
    write_text(fo / failover_switch_file_name, "1");
    write_text(fo / "junk", "not json");
    std::vector<std::string> problems;
    auto data = read_service_files(fo.string(), "public", &problems);
    REQUIRE(data.size() == 1);
    CHECK(data.begin()->first == "DEFAULT_GROUP@@orders@@east,west");
    CHECK(data.begin()->second.hosts.size() == 1);
    CHECK(problems.size() == 1); // junk, reported
    CHECK(read_service_files((dir.path / "nope").string(), "public").empty());
  }
}

// -- event thread ---------------------------------------------------------------------------------

TEST_SUITE("client event dispatcher") {
  TEST_CASE("a listener gets its initial state first, then changes, in order, on another thread") {
    event_dispatcher d;
    std::mutex mtx;
    std::condition_variable cv;
    std::vector<std::string> seen;
    std::thread::id listener_thread;
    d.add_listener(1, "K", [&](const change_event& ev) {
      std::lock_guard<std::mutex> guard{mtx};
      listener_thread = std::this_thread::get_id();
      seen.push_back(std::to_string(ev.added.size()) + "/" + std::to_string(ev.removed.size()) +
                     "@" + std::to_string(ev.info.last_ref_time_ms));
      cv.notify_all();
    });
    change_event early;
    early.info = state(1, {});
    early.added = {host("10.0.0.9", 1)};
    d.post_change("K", early); // before the initial state: not for this listener
    d.post_initial(1, state(2, {host("10.0.0.1", 1), host("10.0.0.2", 2)}));
    change_event later;
    later.info = state(3, {});
    later.removed = {host("10.0.0.1", 1)};
    d.post_change("K", later);
    d.post_change("OTHER", early); // another key
    {
      std::unique_lock<std::mutex> guard{mtx};
      REQUIRE(cv.wait_for(guard, std::chrono::seconds(5), [&] { return seen.size() >= 2; }));
    }
    // Give a wrong delivery a chance to show up.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::lock_guard<std::mutex> guard{mtx};
    CHECK(seen == std::vector<std::string>{"2/0@2", "0/1@3"});
    CHECK(listener_thread != std::this_thread::get_id());
  }

  TEST_CASE("a removed listener is not called again") {
    event_dispatcher d;
    std::atomic<int> calls{0};
    d.add_listener(7, "K", [&](const change_event&) { ++calls; });
    d.post_initial(7, state(1, {}));
    CHECK(d.remove_listener(7) == "K");
    CHECK(d.remove_listener(7) == "");
    change_event ev;
    d.post_change("K", ev);
    std::atomic<bool> done{false};
    d.post([&] { done = true; });
    for (int i = 0; i < 500 && !done; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(done);
    CHECK(calls <= 1); // at most the initial call, if it ran before the removal
  }
}
