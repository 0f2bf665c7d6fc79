/// The on-disk Raft state (actors/raft/raft_log_store.hpp) in a temporary directory: round trips,
/// torn tails, damage, group commit, compaction, interrupted installs, and a core restarted from
/// it.

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "actors/raft/raft_core.hpp"
#include "actors/raft/raft_log_store.hpp"

using namespace registry;
using namespace registry::raft;

namespace fs = std::filesystem;

namespace {

using request = raft_core::persist_request;

/// A fresh directory under the system's temporary directory, removed afterwards.
struct temp_dir {
  fs::path path;

  temp_dir() {
    auto base = fs::temp_directory_path() / "raft-log-store-XXXXXX";
    std::string tmpl = base.string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }

  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }

  std::string str() const {
    return path.string();
  }
};

entry make_entry(index_t i, term_t t, std::string data = "") {
  return entry{i, t, entry_kind::command, data.empty() ? "cmd-" + std::to_string(i) : data};
}

request entries_request(index_t from, index_t to, term_t t) {
  request r;
  for (index_t i = from; i <= to; ++i)
    r.entries.push_back(make_entry(i, t));
  return r;
}

raft_log_store::open_result open_ok(const temp_dir& d, log_store_options opts = {}) {
  auto r = raft_log_store::open(d.str(), opts);
  REQUIRE_MESSAGE(r.error.empty(), r.error);
  REQUIRE(r.store != nullptr);
  return r;
}

void write_ok(raft_log_store& s, const request& r) {
  auto err = s.write(r);
  REQUIRE_MESSAGE(err.empty(), err);
}

void sync_ok(raft_log_store& s) {
  auto err = s.sync();
  REQUIRE_MESSAGE(err.empty(), err);
}

std::vector<fs::path> files(const temp_dir& d, const std::string& prefix) {
  std::vector<fs::path> result;
  for (const auto& e : fs::directory_iterator{d.path})
    if (e.path().filename().string().rfind(prefix, 0) == 0)
      result.push_back(e.path());
  std::sort(result.begin(), result.end());
  return result;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& p, const std::string& x) {
  std::ofstream out{p, std::ios::binary | std::ios::trunc};
  out << x;
}

snapshot make_snapshot(index_t i, term_t t, std::string data) {
  configuration c;
  c.voters = {"a", "b", "c"};
  return snapshot{snapshot_meta{i, t, c}, std::make_shared<const std::string>(std::move(data))};
}

} // namespace

TEST_CASE("raft log store: an empty directory opens empty") {
  temp_dir d;
  auto r = open_ok(d);
  CHECK(r.warnings.empty());
  CHECK(r.state.hard == hard_state{});
  CHECK_FALSE(r.state.snap);
  CHECK(r.state.entries.empty());
  CHECK(r.store->last_index() == 0);
}

TEST_CASE("raft log store: term, vote, entries and truncations survive a reopen") {
  temp_dir d;
  {
    auto r = open_ok(d);
    request w = entries_request(1, 5, 2);
    w.hard = hard_state{2, "b"};
    write_ok(*r.store, w);
    sync_ok(*r.store);
    // A new leader replaces 4.. with its own entries.
    request t = entries_request(4, 6, 3);
    t.hard = hard_state{3, ""};
    write_ok(*r.store, t);
    sync_ok(*r.store);
  }
  auto r = open_ok(d);
  CHECK(r.warnings.empty());
  CHECK(r.state.hard == hard_state{3, ""});
  REQUIRE(r.state.entries.size() == 6);
  CHECK(r.state.entries[2] == make_entry(3, 2));
  CHECK(r.state.entries[3] == make_entry(4, 3));
  CHECK(r.state.entries[5] == make_entry(6, 3));
  CHECK(r.state.prev_term == 0);
  CHECK(r.store->last_index() == 6);
  CHECK(check(r.state).empty());
}

TEST_CASE("raft log store: every entry kind and any bytes round-trip") {
  temp_dir d;
  std::string binary;
  for (int i = 0; i < 256; ++i)
    binary.push_back(static_cast<char>(i));
  configuration c;
  c.voters = {"x", "y"};
  {
    auto r = open_ok(d);
    request w;
    w.hard = hard_state{1, ""};
    w.entries = {entry{1, 1, entry_kind::config, encode_configuration(c)},
                 entry{2, 1, entry_kind::noop, ""}, entry{3, 1, entry_kind::command, binary}};
    write_ok(*r.store, w);
    sync_ok(*r.store);
  }
  auto r = open_ok(d);
  REQUIRE(r.state.entries.size() == 3);
  CHECK(r.state.entries[0].kind == entry_kind::config);
  CHECK(decode_configuration(r.state.entries[0].data, 16) == c);
  CHECK(r.state.entries[1].kind == entry_kind::noop);
  CHECK(r.state.entries[2].data == binary);
}

TEST_CASE("raft log store: a torn record at the end of the last segment is dropped and reported") {
  temp_dir d;
  {
    auto r = open_ok(d);
    request w = entries_request(1, 3, 1);
    w.hard = hard_state{1, ""};
    write_ok(*r.store, w);
    sync_ok(*r.store);
  }
  auto seg = files(d, "log-").back();
  auto bytes = read_bytes(seg);
  SUBCASE("cut short") {
    write_bytes(seg, bytes.substr(0, bytes.size() - 3));
  }
  SUBCASE("zeros after the last record") {
    write_bytes(seg, bytes + std::string(64, '\0'));
  }
  SUBCASE("the last record's checksum") {
    bytes.back() ^= 0x5a;
    write_bytes(seg, bytes);
  }
  auto r = open_ok(d);
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].find(seg.string()) == 0);
  CHECK(r.warnings[0].find("torn record") != std::string::npos);
  auto expected = r.state.entries.size();
  CHECK((expected == 2 || expected == 3));
  // The file was cut back: appending continues cleanly and a reopen is quiet.
  write_ok(*r.store, entries_request(expected + 1, expected + 2, 1));
  sync_ok(*r.store);
  r.store.reset();
  auto again = open_ok(d);
  CHECK(again.warnings.empty());
  CHECK(again.state.entries.size() == expected + 2);
}

TEST_CASE("raft log store: damage before the end refuses to open, naming file, offset and remedy") {
  temp_dir d;
  log_store_options opts;
  opts.segment_bytes_max = 200; // several segments
  {
    auto r = open_ok(d, opts);
    request w = entries_request(1, 20, 1);
    w.hard = hard_state{1, ""};
    write_ok(*r.store, w);
    sync_ok(*r.store);
  }
  auto segs = files(d, "log-");
  REQUIRE(segs.size() >= 3);
  fs::path victim;
  SUBCASE("a record in the middle of the last segment") {
    victim = segs.back();
  }
  SUBCASE("the last record of an earlier segment") {
    victim = segs.front();
  }
  auto bytes = read_bytes(victim);
  // Flip a payload byte of the first record (offset 12 + 8 + 5).
  bytes[12 + 8 + 5] ^= 0x01;
  if (victim == segs.front()) {
    // Corrupt the last record of the file instead: still not the end of the log.
    bytes = read_bytes(victim);
    bytes[bytes.size() - 1] ^= 0x01;
  }
  write_bytes(victim, bytes);
  auto r = raft_log_store::open(d.str(), opts);
  CHECK(r.store == nullptr);
  INFO(r.error);
  CHECK(r.error.find(victim.string() + ": offset ") == 0);
  CHECK(r.error.find("bad checksum") != std::string::npos);
  CHECK(r.error.find("remove this node from the Raft group") != std::string::npos);
  CHECK(r.error.find("move " + d.str() + " aside") != std::string::npos);
}

TEST_CASE("raft log store: a broken chain of terms or a gap is damage") {
  temp_dir d;
  {
    auto r = open_ok(d);
    request w = entries_request(1, 3, 1);
    w.hard = hard_state{2, ""};
    write_ok(*r.store, w);
    sync_ok(*r.store);
  }
  // A write that does not fit is refused at write time already.
  {
    auto r = open_ok(d);
    CHECK(r.store->write(entries_request(9, 9, 2)).find("does not fit the log 0..3")
          != std::string::npos);
    // ...and the store stays refused: what is on disk is unknown.
    CHECK_FALSE(r.store->write(entries_request(4, 4, 2)).empty());
  }
  // A segment with records of another log appended: the chain breaks.
  temp_dir other;
  {
    auto r = open_ok(other);
    request w = entries_request(1, 5, 4);
    w.hard = hard_state{4, ""};
    write_ok(*r.store, w);
    sync_ok(*r.store);
  }
  auto mine = files(d, "log-").back();
  auto theirs = read_bytes(files(other, "log-").back());
  write_bytes(mine, read_bytes(mine) + theirs.substr(12 + 39)); // from their second record
  auto r = raft_log_store::open(d.str());
  CHECK(r.store == nullptr);
  CHECK(r.error.find("entry 2 continues term 4 but the log holds term 1 before it")
        != std::string::npos);
}

TEST_CASE("raft log store: group commit makes many writes durable with one sync") {
  temp_dir d;
  auto r = open_ok(d);
  request first = entries_request(1, 1, 1);
  first.hard = hard_state{1, ""};
  write_ok(*r.store, first);
  sync_ok(*r.store);
  auto before = r.store->sync_count();
  for (index_t i = 2; i <= 100; i += 10)
    write_ok(*r.store, entries_request(i, i + 9, 1));
  CHECK(r.store->sync_count() == before);
  sync_ok(*r.store);
  CHECK(r.store->sync_count() == before + 1);
  sync_ok(*r.store); // nothing new: no sync
  CHECK(r.store->sync_count() == before + 1);
  r.store.reset();
  CHECK(open_ok(d).state.entries.size() == 101);
}

TEST_CASE("raft log store: compaction deletes covered segments, so the log stays bounded") {
  temp_dir d;
  log_store_options opts;
  opts.segment_bytes_max = 300;
  auto r = open_ok(d, opts);
  request h;
  h.hard = hard_state{1, ""};
  write_ok(*r.store, h);
  std::size_t segments_max = 0;
  for (index_t i = 1; i <= 400; i += 10) {
    write_ok(*r.store, entries_request(i, i + 9, 1));
    sync_ok(*r.store);
    if ((i + 9) % 50 == 0) {
      request s;
      s.snap = make_snapshot(i + 9, 1, "state at " + std::to_string(i + 9));
      s.compact_to = i + 9 - 5; // five trailing entries
      write_ok(*r.store, s);
    }
    segments_max = std::max(segments_max, r.store->segment_count());
  }
  // A snapshot every 50 entries of about 40 bytes, segments of 300 bytes (7 records).
  CHECK(segments_max <= 10);
  CHECK(r.store->snapshot_count() == 2);
  CHECK(files(d, "snapshot-").size() == 2);
  r.store.reset();
  auto again = open_ok(d, opts);
  REQUIRE(again.state.snap);
  CHECK(again.state.snap->meta.index == 400);
  CHECK(*again.state.snap->data == "state at 400");
  REQUIRE_FALSE(again.state.entries.empty());
  CHECK(again.state.entries.front().index <= 396);
  CHECK(again.state.entries.back().index == 400);
  CHECK(check(again.state).empty());
}

TEST_CASE("raft log store: an installed snapshot replaces the log; an interrupted one is repaired") {
  temp_dir d;
  {
    auto r = open_ok(d);
    request w = entries_request(1, 10, 1);
    w.hard = hard_state{1, ""};
    write_ok(*r.store, w);
    sync_ok(*r.store);
    request install;
    install.hard = hard_state{3, ""};
    install.snap = make_snapshot(20, 3, "S20");
    install.snapshot_resets_log = true;
    write_ok(*r.store, install);
    CHECK(r.store->segment_count() == 0);
    write_ok(*r.store, entries_request(21, 22, 3));
    sync_ok(*r.store);
  }
  {
    auto r = open_ok(d);
    CHECK(r.warnings.empty());
    REQUIRE(r.state.snap);
    CHECK(r.state.snap->meta.index == 20);
    REQUIRE(r.state.entries.size() == 2);
    CHECK(r.state.entries.front().index == 21);
    CHECK(r.state.prev_term == 3);
  }
  // A crash between writing the snapshot and deleting the old segments: the snapshot of another
  // directory appears beside a log that does not lead to it.
  temp_dir crashed;
  {
    auto r = open_ok(crashed);
    request w = entries_request(1, 30, 2);
    w.hard = hard_state{3, ""};
    write_ok(*r.store, w);
    sync_ok(*r.store);
  }
  auto snap_file = files(d, "snapshot-").back();
  fs::copy_file(snap_file, crashed.path / snap_file.filename());
  auto r = open_ok(crashed);
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].find("dropped 30 log entries that do not continue snapshot 20")
        != std::string::npos);
  CHECK(r.state.entries.empty());
  CHECK(files(crashed, "log-").empty());
  write_ok(*r.store, entries_request(21, 21, 3));
  sync_ok(*r.store);
  r.store.reset();
  auto again = open_ok(crashed);
  CHECK(again.warnings.empty());
  REQUIRE(again.state.entries.size() == 1);
  CHECK(again.state.entries[0].index == 21);
}

TEST_CASE("raft log store: the vote file is rewritten when full and keeps the newest record") {
  temp_dir d;
  log_store_options opts;
  opts.vote_records_max = 4;
  {
    auto r = open_ok(d, opts);
    for (term_t t = 1; t <= 10; ++t) {
      request w;
      w.hard = hard_state{t, "n" + std::to_string(t)};
      write_ok(*r.store, w);
      CHECK(r.store->vote_records() < 4);
    }
  }
  auto r = open_ok(d, opts);
  CHECK(r.state.hard == hard_state{10, "n10"});
  r.store.reset();
  // A torn last vote record: the one before it counts.
  auto p = d.path / "vote";
  auto bytes = read_bytes(p);
  {
    auto s = open_ok(d, opts);
    request w;
    w.hard = hard_state{11, "n11"};
    write_ok(*s.store, w);
  }
  auto longer = read_bytes(p);
  write_bytes(p, longer.substr(0, longer.size() - 2));
  auto t = open_ok(d, opts);
  CHECK(t.state.hard == hard_state{10, "n10"});
  CHECK(t.warnings.size() == 1);
  CHECK(bytes.size() < longer.size());
}

TEST_CASE("raft log store: one process per directory; leftovers and bad snapshots are handled") {
  temp_dir d;
  auto first = open_ok(d);
  auto second = raft_log_store::open(d.str());
  CHECK(second.store == nullptr);
  CHECK(second.error.find("in use by another process") != std::string::npos);
  request s;
  s.hard = hard_state{1, ""};
  s.snap = make_snapshot(5, 1, "S5");
  write_ok(*first.store, s);
  first.store.reset();
  write_bytes(d.path / "snapshot-00000000000000000009-00000000000000000001.snap.tmp", "partial");
  auto r = open_ok(d);
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].find(".snap.tmp: deleted") != std::string::npos);
  CHECK(r.state.snap->meta.index == 5);
  r.store.reset();
  auto snap_file = files(d, "snapshot-").back();
  auto bytes = read_bytes(snap_file);
  bytes[bytes.size() - 1] ^= 0x01;
  write_bytes(snap_file, bytes);
  auto bad = raft_log_store::open(d.str());
  CHECK(bad.store == nullptr);
  CHECK(bad.error.find(snap_file.string()) == 0);
  CHECK(bad.error.find("bad checksum") != std::string::npos);
}

TEST_CASE("raft log store: a one-node core runs on it, snapshots, and restarts where it was") {
  temp_dir d;
  raft_config cfg;
  cfg.snapshot_threshold_entries = 20;
  cfg.snapshot_trailing_entries = 5;
  cfg.log_entries_max = 100;
  cfg.uncommitted_entries_max = 30;
  log_store_options opts;
  opts.segment_bytes_max = 400;
  std::vector<std::string> applied;
  time_ms now = 0;
  index_t last = 0;
  term_t term = 0;
  {
    auto r = open_ok(d, opts);
    // First start: the founding state is written durably before the core starts.
    request boot;
    auto b = bootstrap_state({"a"});
    boot.hard = b.hard;
    boot.entries = b.entries;
    write_ok(*r.store, boot);
    sync_ok(*r.store);
    raft_core core{"a", cfg, b, 7};
    // Drives the core with the store as its disk: every write is synced and acknowledged.
    // Writes go to the store in the order they are issued, before any later input.
    std::function<void(raft_core::effects)> run = [&](raft_core::effects fx) {
      if (fx.persist) {
        write_ok(*r.store, *fx.persist);
        sync_ok(*r.store);
      }
      for (const auto& e : fx.committed)
        if (e.kind == entry_kind::command)
          applied.push_back(e.data);
      if (fx.persist)
        run(core.persisted(fx.persist->id, now));
      if (fx.snapshot_wanted) {
        auto state = std::make_shared<const std::string>(std::to_string(applied.size()));
        run(core.snapshot_taken(core.applied_index(), state, now));
      }
    };
    run(core.start(now));
    now += 3 * cfg.election_timeout_ms;
    run(core.tick(now));
    REQUIRE(core.role() == role::leader);
    for (int i = 0; i < 50; ++i) {
      auto p = core.propose("c" + std::to_string(i), now);
      REQUIRE(p.accepted);
      run(std::move(p.fx));
    }
    CHECK(applied.size() == 50);
    CHECK(core.latest_snapshot().meta.index > 0);
    last = core.last_index();
    term = core.term();
  }
  auto r = open_ok(d, opts);
  CHECK(r.warnings.empty());
  raft_core again{"a", cfg, r.state, 8};
  CHECK(again.last_index() == last);
  CHECK(again.term() == term);
  CHECK(again.vote() == "a");
  REQUIRE(r.state.snap);
  CHECK(again.commit_index() == r.state.snap->meta.index);
  // The state machine saw every command up to the snapshot: all but the configuration and the no-op.
  CHECK(*r.state.snap->data == std::to_string(r.state.snap->meta.index - 2));
  CHECK(r.store->segment_count() <= 4);
}
