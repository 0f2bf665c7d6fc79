#include "actors/raft/raft_log_store.hpp"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

namespace registry::raft {

namespace {

namespace fs = std::filesystem;

constexpr char segment_magic[] = "RGRAFTLG";
constexpr char snapshot_magic[] = "RGRAFTSN";
constexpr std::size_t magic_size = 8;
constexpr std::uint32_t format_version = 1;
constexpr std::size_t file_header_size = magic_size + 4;
constexpr std::size_t record_header_size = 8;
constexpr std::uint8_t entry_record = 1;
/// type, index, term, prev_term, kind
constexpr std::size_t entry_fixed_size = 1 + 8 + 8 + 8 + 1;

// -- encoding -------------------------------------------------------------------------

void put_u32(std::string& out, std::uint32_t x) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, std::uint64_t x) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
}

std::uint32_t get_u32(std::string_view in, std::size_t pos) {
  std::uint32_t x = 0;
  for (int i = 0; i < 4; ++i)
    x |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[pos + i])) << (8 * i);
  return x;
}

std::uint64_t get_u64(std::string_view in, std::size_t pos) {
  std::uint64_t x = 0;
  for (int i = 0; i < 8; ++i)
    x |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[pos + i])) << (8 * i);
  return x;
}

std::uint32_t checksum(std::string_view x) {
  auto crc = ::crc32(0L, Z_NULL, 0);
  return static_cast<std::uint32_t>(
    ::crc32(crc, reinterpret_cast<const Bytef*>(x.data()), static_cast<uInt>(x.size())));
}

/// [length][crc][payload]
void put_record(std::string& out, std::string_view payload) {
  put_u32(out, static_cast<std::uint32_t>(payload.size()));
  put_u32(out, checksum(payload));
  out.append(payload.data(), payload.size());
}

std::string file_header(const char* magic) {
  std::string result{magic, magic_size};
  put_u32(result, format_version);
  return result;
}

std::string entry_payload(const entry& e, term_t prev_term) {
  std::string result;
  result.reserve(entry_fixed_size + e.data.size());
  result.push_back(static_cast<char>(entry_record));
  put_u64(result, e.index);
  put_u64(result, e.term);
  put_u64(result, prev_term);
  result.push_back(static_cast<char>(e.kind));
  result += e.data;
  return result;
}

std::string vote_payload(const hard_state& x) {
  std::string result;
  put_u64(result, x.term);
  put_u32(result, static_cast<std::uint32_t>(x.vote.size()));
  result += x.vote;
  return result;
}

std::string name_u64(const char* prefix, std::uint64_t x, const char* suffix) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020" PRIu64, x);
  return std::string{prefix} + buf + suffix;
}

std::string segment_name(std::uint64_t seq) {
  return name_u64("log-", seq, ".seg");
}

std::string snapshot_name(index_t index, term_t term) {
  return name_u64("snapshot-", index, "") + name_u64("-", term, ".snap");
}

bool parse_u64(std::string_view x, std::uint64_t& out) {
  if (x.empty() || x.size() > 20)
    return false;
  out = 0;
  for (char c : x) {
    if (c < '0' || c > '9')
      return false;
    out = out * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

// -- files ----------------------------------------------------------------------------

std::string os_error(const char* op, const std::string& path) {
  return std::string{op} + " " + path + ": " + std::strerror(errno);
}

std::string write_all(int fd, std::string_view x, const std::string& path) {
  while (!x.empty()) {
    auto n = ::write(fd, x.data(), x.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return os_error("write", path);
    }
    x.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

std::string read_file(const std::string& path, std::string& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return os_error("open", path);
  out.clear();
  char buf[65536];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      auto err = os_error("read", path);
      ::close(fd);
      return err;
    }
    if (n == 0)
      break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return {};
}

std::string sync_fd(int fd, const std::string& path) {
  if (::fdatasync(fd) != 0)
    return os_error("fdatasync", path);
  return {};
}

/// Cuts `path` back to `size` bytes, durably.
std::string truncate_file(const std::string& path, std::uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return os_error("open", path);
  std::string err;
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0)
    err = os_error("truncate", path);
  else if (::fdatasync(fd) != 0)
    err = os_error("fdatasync", path);
  ::close(fd);
  return err;
}

/// The open() error for damage: where, what, and how to recover the node.
std::string damaged(const std::string& path, std::uint64_t offset, const std::string& what,
                    const std::string& dir) {
  return path + ": offset " + std::to_string(offset) + ": " + what
         + ". The Raft state of this node is damaged and it cannot start from it: on the leader, "
           "remove this node from the Raft group, move "
         + dir
         + " aside, then start the node with an empty directory and add it back as a learner. "
           "Never start it with an empty directory while it is still a member: it could vote "
           "twice in one term.";
}

/// One pass over the records of a file (after its header). `visit(payload, offset)` returns ""
/// or what is wrong with a well-framed record. A frame that does not check out at the very end
/// of a file that may have a torn tail sets `torn_at`; anywhere else it is damage.
struct record_scan {
  std::uint64_t torn_at = 0; ///< 0: no torn tail
  std::string torn_why;
  std::string damage;  ///< "" or what is wrong
  std::uint64_t damage_at = 0;
};

template <class Visit>
record_scan scan_records(std::string_view data, std::size_t start, bool tail_may_tear,
                         std::size_t record_bytes_max, Visit&& visit) {
  record_scan result;
  std::size_t pos = start;
  auto torn = [&](const char* why) {
    result.torn_at = pos;
    result.torn_why = why;
  };
  auto bad = [&](std::string why) {
    result.damage = std::move(why);
    result.damage_at = pos;
  };
  while (pos < data.size()) {
    auto remaining = data.size() - pos;
    if (remaining < record_header_size) {
      if (tail_may_tear)
        torn("a partial record header");
      else
        bad("a partial record header at the end of the file");
      return result;
    }
    auto len = get_u32(data, pos);
    auto crc = get_u32(data, pos + 4);
    if (len == 0) {
      bool zeros = std::all_of(data.begin() + static_cast<long>(pos), data.end(),
                               [](char c) { return c == 0; });
      if (zeros && tail_may_tear)
        torn("zeros");
      else
        bad("a record of length 0");
      return result;
    }
    if (record_header_size + static_cast<std::uint64_t>(len) > remaining) {
      if (tail_may_tear)
        torn("a record cut short");
      else
        bad("a record of " + std::to_string(len) + " bytes runs past the end of the file");
      return result;
    }
    if (len > record_bytes_max) {
      bad("a record of " + std::to_string(len) + " bytes, above record_bytes_max");
      return result;
    }
    auto payload = data.substr(pos + record_header_size, len);
    if (checksum(payload) != crc) {
      if (tail_may_tear && pos + record_header_size + len == data.size())
        torn("the last record with a bad checksum");
      else
        bad("a record with a bad checksum");
      return result;
    }
    if (auto why = visit(payload, pos); !why.empty()) {
      bad(why);
      return result;
    }
    pos += record_header_size + len;
  }
  return result;
}

} // namespace

// -- loading --------------------------------------------------------------------------

/// Reads a directory into a store and the state it holds.
struct log_store_loader {
  raft_log_store& store;
  raft_log_store::open_result& result;
  std::vector<std::pair<std::uint64_t, std::string>> segment_files;
  std::vector<std::pair<std::pair<index_t, term_t>, std::string>> snapshot_files;
  std::vector<entry> entries;

  std::string path(const std::string& name) const {
    return store.dir_ + "/" + name;
  }

  std::string warn_removed(const std::string& name, const char* why) {
    if (::unlinkat(store.dir_fd_, name.c_str(), 0) != 0)
      return os_error("unlink", path(name));
    result.warnings.push_back(path(name) + ": deleted (" + why + ")");
    store.dir_dirty_ = true;
    return {};
  }

  std::string list() {
    std::error_code ec;
    for (fs::directory_iterator i{store.dir_, ec}, end; !ec && i != end; i.increment(ec)) {
      auto name = i->path().filename().string();
      std::uint64_t a = 0;
      std::uint64_t b = 0;
      auto ends_with = [&](std::string_view suffix) {
        return name.size() >= suffix.size()
               && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
      };
      if (ends_with(".tmp")) {
        if (auto err = warn_removed(name, "left by a crash while it was written"); !err.empty())
          return err;
      } else if (name.rfind("log-", 0) == 0 && ends_with(".seg")
                 && parse_u64(std::string_view{name}.substr(4, name.size() - 8), a)) {
        segment_files.emplace_back(a, name);
      } else if (name.rfind("snapshot-", 0) == 0 && ends_with(".snap") && name.size() == 55
                 && parse_u64(std::string_view{name}.substr(9, 20), a)
                 && parse_u64(std::string_view{name}.substr(30, 20), b)) {
        snapshot_files.push_back({{a, b}, name});
      }
    }
    if (ec)
      return "list " + store.dir_ + ": " + ec.message();
    std::sort(segment_files.begin(), segment_files.end());
    std::sort(snapshot_files.begin(), snapshot_files.end());
    if (!segment_files.empty())
      store.next_seq_ = segment_files.back().first + 1;
    return {};
  }

  std::string load_vote() {
    auto p = path("vote");
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      if (errno != ENOENT)
        return os_error("stat", p);
      return {};
    }
    std::string data;
    if (auto err = read_file(p, data); !err.empty())
      return err;
    std::size_t records = 0;
    auto scan = scan_records(data, 0, true, store.opts_.record_bytes_max,
                             [&](std::string_view x, std::uint64_t) -> std::string {
                               if (x.size() < 12 || x.size() != 12 + get_u32(x, 8))
                                 return "a malformed term/vote record";
                               result.state.hard.term = get_u64(x, 0);
                               result.state.hard.vote = std::string{x.substr(12)};
                               ++records;
                               return {};
                             });
    if (!scan.damage.empty())
      return damaged(p, scan.damage_at, scan.damage, store.dir_);
    if (!scan.torn_why.empty()) {
      if (auto err = truncate_file(p, scan.torn_at); !err.empty())
        return err;
      result.warnings.push_back(p + ": dropped a torn record at offset "
                                + std::to_string(scan.torn_at) + " (" + scan.torn_why
                                + "): the node stopped while writing it");
    }
    store.vote_records_ = records;
    return {};
  }

  std::string load_snapshot() {
    if (snapshot_files.empty())
      return {};
    // Plain names, not a structured binding: the record callback below captures `key`.
    const auto& key = snapshot_files.back().first;
    const auto& name = snapshot_files.back().second;
    auto p = path(name);
    std::string data;
    if (auto err = read_file(p, data); !err.empty())
      return err;
    if (data.size() < file_header_size || data.compare(0, magic_size, snapshot_magic) != 0)
      return damaged(p, 0, "not a snapshot file of this format", store.dir_);
    if (get_u32(data, magic_size) != format_version)
      return damaged(p, magic_size,
                     "snapshot format version " + std::to_string(get_u32(data, magic_size))
                       + ", this build reads " + std::to_string(format_version),
                     store.dir_);
    std::optional<snapshot> snap;
    auto scan = scan_records(
      data, file_header_size, false, store.opts_.record_bytes_max,
      [&](std::string_view x, std::uint64_t) -> std::string {
        if (snap)
          return "a second record in a snapshot file";
        if (x.size() < 20 || x.size() < 20 + static_cast<std::size_t>(get_u32(x, 16)))
          return "a malformed snapshot record";
        auto cfg_len = get_u32(x, 16);
        auto cfg = decode_configuration(std::string{x.substr(20, cfg_len)},
                                        store.opts_.members_max);
        if (!cfg)
          return "a malformed configuration";
        snapshot s;
        s.meta.index = get_u64(x, 0);
        s.meta.term = get_u64(x, 8);
        s.meta.config = *cfg;
        s.data = std::make_shared<const std::string>(x.substr(20 + cfg_len));
        if (s.meta.index != key.first || s.meta.term != key.second)
          return "index and term differ from the file name";
        snap = std::move(s);
        return {};
      });
    if (!scan.damage.empty())
      return damaged(p, scan.damage_at, scan.damage, store.dir_);
    if (!snap)
      return damaged(p, file_header_size, "no snapshot record", store.dir_);
    result.state.snap = std::move(snap);
    for (const auto& f : snapshot_files)
      store.snapshots_.push_back(f.second);
    return {};
  }

  /// Replays one record of an entry onto `entries` (a record at or below the last index
  /// truncates there first).
  std::string replay(std::string_view x) {
    if (x.size() < entry_fixed_size || static_cast<std::uint8_t>(x[0]) != entry_record)
      return "a malformed entry record";
    entry e;
    e.index = get_u64(x, 1);
    e.term = get_u64(x, 9);
    auto prev_term = get_u64(x, 17);
    auto kind = static_cast<std::uint8_t>(x[25]);
    if (kind < 1 || kind > 3)
      return "an entry of unknown kind " + std::to_string(kind);
    e.kind = static_cast<entry_kind>(kind);
    e.data = std::string{x.substr(entry_fixed_size)};
    if (e.index == 0 || e.term == 0 || e.term < prev_term)
      return "an entry with index " + std::to_string(e.index) + " and term "
             + std::to_string(e.term) + " after term " + std::to_string(prev_term);
    if (entries.empty()) {
      result.state.prev_term = prev_term;
      entries.push_back(std::move(e));
      return {};
    }
    auto first = entries.front().index;
    auto last = entries.back().index;
    if (e.index > last + 1)
      return "entry " + std::to_string(e.index) + " follows entry " + std::to_string(last)
             + " (a gap)";
    if (e.index < first)
      return "entry " + std::to_string(e.index) + " truncates below the first entry "
             + std::to_string(first);
    auto before = e.index == first ? result.state.prev_term : entries[e.index - 1 - first].term;
    if (before != prev_term)
      return "entry " + std::to_string(e.index) + " continues term " + std::to_string(prev_term)
             + " but the log holds term " + std::to_string(before) + " before it";
    entries.resize(e.index - first);
    entries.push_back(std::move(e));
    return {};
  }

  std::string load_segments() {
    for (std::size_t k = 0; k < segment_files.size(); ++k) {
      const auto& [seq, name] = segment_files[k];
      bool last_file = k + 1 == segment_files.size();
      auto p = path(name);
      std::string data;
      if (auto err = read_file(p, data); !err.empty())
        return err;
      if (data.size() < file_header_size && last_file) {
        if (auto err = warn_removed(name, "a segment cut short before its header was written");
            !err.empty())
          return err;
        continue;
      }
      if (data.size() < file_header_size || data.compare(0, magic_size, segment_magic) != 0)
        return damaged(p, 0, "not a log segment of this format", store.dir_);
      if (get_u32(data, magic_size) != format_version)
        return damaged(p, magic_size, "segment format version "
                                        + std::to_string(get_u32(data, magic_size)),
                       store.dir_);
      raft_log_store::segment seg;
      seg.seq = seq;
      seg.path = p;
      auto scan = scan_records(data, file_header_size, last_file, store.opts_.record_bytes_max,
                               [&](std::string_view x, std::uint64_t) {
                                 auto why = replay(x);
                                 if (why.empty())
                                   seg.max_index = std::max(seg.max_index, entries.back().index);
                                 return why;
                               });
      if (!scan.damage.empty())
        return damaged(p, scan.damage_at, scan.damage, store.dir_);
      seg.bytes = data.size();
      if (!scan.torn_why.empty()) {
        if (auto err = truncate_file(p, scan.torn_at); !err.empty())
          return err;
        result.warnings.push_back(p + ": dropped a torn record at offset "
                                  + std::to_string(scan.torn_at) + " ("
                                  + scan.torn_why + "): the node stopped while writing it");
        seg.bytes = scan.torn_at;
      }
      store.segments_.push_back(seg);
    }
    return {};
  }

  /// Makes the store's view of the log equal the state the core will start from.
  std::string settle() {
    auto& st = result.state;
    st.entries = std::move(entries);
    if (auto dropped = trim_to_snapshot(st); dropped > 0) {
      // The log belongs to an older history than the snapshot (an install stopped before the
      // old segments were deleted): delete them now, so that new records follow the snapshot.
      result.warnings.push_back(store.dir_ + ": dropped " + std::to_string(dropped)
                                + " log entries that do not continue snapshot "
                                + std::to_string(st.snap->meta.index)
                                + " (a snapshot install was interrupted)");
      if (auto err = store.delete_segments(true, 0); !err.empty())
        return err;
    }
    if (auto problem = check(st); !problem.empty())
      return damaged(store.dir_, 0, problem, store.dir_);
    if (st.entries.empty()) {
      store.base_ = st.snap ? st.snap->meta.index : 0;
      store.base_term_ = st.snap ? st.snap->meta.term : 0;
    } else {
      store.base_ = st.entries.front().index - 1;
      store.base_term_ = st.prev_term;
    }
    store.last_ = store.base_;
    for (const auto& e : st.entries) {
      if (store.term_starts_.empty() || store.term_starts_.rbegin()->second != e.term)
        store.term_starts_[e.index] = e.term;
      store.last_ = e.index;
    }
    return {};
  }
};

raft_log_store::open_result raft_log_store::open(const std::string& dir, log_store_options opts) {
  open_result result;
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
    result.error = os_error("mkdir", dir);
    return result;
  }
  std::unique_ptr<raft_log_store> store{new raft_log_store(dir, opts)};
  store->dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (store->dir_fd_ < 0) {
    result.error = os_error("open", dir);
    return result;
  }
  auto lock_path = dir + "/LOCK";
  store->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (store->lock_fd_ < 0) {
    result.error = os_error("open", lock_path);
    return result;
  }
  if (::flock(store->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    result.error = errno == EWOULDBLOCK
                     ? dir + ": in use by another process (it holds " + lock_path + ")"
                     : os_error("lock", lock_path);
    return result;
  }
  log_store_loader loader{*store, result, {}, {}, {}};
  std::string err = loader.list();
  if (err.empty())
    err = loader.load_vote();
  if (err.empty())
    err = loader.load_snapshot();
  if (err.empty())
    err = loader.load_segments();
  if (err.empty())
    err = loader.settle();
  if (err.empty() && !store->segments_.empty()) {
    const auto& seg = store->segments_.back();
    store->seg_fd_ = ::open(seg.path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (store->seg_fd_ < 0)
      err = os_error("open", seg.path);
  }
  if (err.empty() && store->dir_dirty_)
    err = store->sync();
  if (!err.empty()) {
    result.error = err;
    result.state = persisted_state{};
    return result;
  }
  result.store = std::move(store);
  return result;
}

raft_log_store::raft_log_store(std::string dir, log_store_options opts)
  : dir_(std::move(dir)), opts_(opts) {
  // nop
}

raft_log_store::~raft_log_store() {
  for (int fd : {seg_fd_, vote_fd_, dir_fd_, lock_fd_})
    if (fd >= 0)
      ::close(fd);
}

// -- writing ----------------------------------------------------------------------------

std::string raft_log_store::write(const raft_core::persist_request& x) {
  if (!broken_.empty())
    return broken_;
  if (x.hard)
    if (auto err = save_hard_state(*x.hard); !err.empty())
      return fail(err);
  if (x.snap) {
    if (auto err = save_snapshot(*x.snap); !err.empty())
      return fail(err);
    std::string err;
    if (x.snapshot_resets_log) {
      err = delete_segments(true, 0);
      base_ = x.snap->meta.index;
      base_term_ = x.snap->meta.term;
      term_starts_.clear();
      last_ = base_;
    } else if (x.compact_to > 0) {
      err = delete_segments(false, x.compact_to);
    }
    if (!err.empty())
      return fail(err);
  }
  if (!x.entries.empty())
    if (auto err = append(x.entries); !err.empty())
      return fail(err);
  return {};
}

std::string raft_log_store::sync() {
  if (!broken_.empty())
    return broken_;
  if (seg_dirty_ && seg_fd_ >= 0) {
    if (auto err = sync_fd(seg_fd_, segments_.back().path); !err.empty())
      return fail(err);
    ++syncs_;
    seg_dirty_ = false;
  }
  if (dir_dirty_) {
    if (::fsync(dir_fd_) != 0)
      return fail(os_error("fsync", dir_));
    ++syncs_;
    dir_dirty_ = false;
  }
  return {};
}

index_t raft_log_store::last_index() const {
  return last_;
}

std::string raft_log_store::fail(std::string what) {
  broken_ = std::move(what);
  return broken_;
}

std::string raft_log_store::save_hard_state(const hard_state& x) {
  auto p = dir_ + "/vote";
  std::string record;
  put_record(record, vote_payload(x));
  if (vote_records_ + 1 >= opts_.vote_records_max) {
    // Rewrite as one record: a new file, synced, renamed over the old one.
    auto tmp = p + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
      return os_error("open", tmp);
    auto err = write_all(fd, record, tmp);
    if (err.empty())
      err = sync_fd(fd, tmp);
    ::close(fd);
    if (err.empty() && ::rename(tmp.c_str(), p.c_str()) != 0)
      err = os_error("rename", tmp);
    if (err.empty() && ::fsync(dir_fd_) != 0)
      err = os_error("fsync", dir_);
    if (!err.empty())
      return err;
    syncs_ += 2;
    if (vote_fd_ >= 0)
      ::close(vote_fd_);
    vote_fd_ = -1;
    vote_records_ = 1;
    return {};
  }
  if (vote_fd_ < 0) {
    struct stat st {};
    bool fresh = ::stat(p.c_str(), &st) != 0;
    vote_fd_ = ::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (vote_fd_ < 0)
      return os_error("open", p);
    if (fresh && ::fsync(dir_fd_) != 0)
      return os_error("fsync", dir_);
  }
  if (auto err = write_all(vote_fd_, record, p); !err.empty())
    return err;
  // Durable at once: entries of this term, written after it, must never outlive it.
  if (auto err = sync_fd(vote_fd_, p); !err.empty())
    return err;
  ++syncs_;
  ++vote_records_;
  return {};
}

std::string raft_log_store::save_snapshot(const snapshot& x) {
  // Entries written before must not be lost while a later snapshot survives.
  if (auto err = sync(); !err.empty())
    return err;
  auto name = snapshot_name(x.meta.index, x.meta.term);
  auto p = dir_ + "/" + name;
  auto tmp = p + ".tmp";
  std::string payload;
  auto cfg = encode_configuration(x.meta.config);
  put_u64(payload, x.meta.index);
  put_u64(payload, x.meta.term);
  put_u32(payload, static_cast<std::uint32_t>(cfg.size()));
  payload += cfg;
  if (x.data)
    payload += *x.data;
  auto bytes = file_header(snapshot_magic);
  put_record(bytes, payload);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0)
    return os_error("open", tmp);
  auto err = write_all(fd, bytes, tmp);
  if (err.empty())
    err = sync_fd(fd, tmp);
  ::close(fd);
  if (err.empty() && ::rename(tmp.c_str(), p.c_str()) != 0)
    err = os_error("rename", tmp);
  if (err.empty() && ::fsync(dir_fd_) != 0)
    err = os_error("fsync", dir_);
  if (!err.empty())
    return err;
  syncs_ += 2;
  snapshots_.erase(std::remove(snapshots_.begin(), snapshots_.end(), name), snapshots_.end());
  snapshots_.push_back(name);
  // Keep the newest two.
  while (snapshots_.size() > 2) {
    auto old = dir_ + "/" + snapshots_.front();
    if (::unlink(old.c_str()) != 0 && errno != ENOENT)
      return os_error("unlink", old);
    snapshots_.erase(snapshots_.begin());
    dir_dirty_ = true;
  }
  return {};
}

std::string raft_log_store::append(const std::vector<entry>& xs) {
  std::string batch;
  auto flush = [&]() -> std::string {
    if (batch.empty())
      return {};
    auto err = write_all(seg_fd_, batch, segments_.back().path);
    segments_.back().bytes += batch.size();
    batch.clear();
    seg_dirty_ = true;
    return err;
  };
  for (const auto& e : xs) {
    if (e.index <= base_ || e.index > last_ + 1)
      return "write of entry " + std::to_string(e.index) + " to " + dir_
             + " does not fit the log " + std::to_string(base_) + ".." + std::to_string(last_);
    auto prev = term_at(e.index - 1);
    if (!prev || e.term < *prev)
      return "write of entry " + std::to_string(e.index) + " of term " + std::to_string(e.term)
             + " to " + dir_ + " after term " + (prev ? std::to_string(*prev) : "?");
    if (seg_fd_ < 0 || segments_.back().bytes + batch.size() >= opts_.segment_bytes_max) {
      if (auto err = flush(); !err.empty())
        return err;
      if (auto err = open_new_segment(); !err.empty())
        return err;
    }
    put_record(batch, entry_payload(e, *prev));
    truncate_terms(e.index);
    if (term_starts_.empty() || term_starts_.rbegin()->second != e.term)
      term_starts_[e.index] = e.term;
    last_ = e.index;
    auto& seg = segments_.back();
    seg.max_index = std::max(seg.max_index, e.index);
  }
  return flush();
}

std::string raft_log_store::open_new_segment() {
  if (seg_fd_ >= 0) {
    // The closed segment must be durable before entries in the next one are acknowledged.
    if (seg_dirty_) {
      if (auto err = sync_fd(seg_fd_, segments_.back().path); !err.empty())
        return err;
      ++syncs_;
      seg_dirty_ = false;
    }
    ::close(seg_fd_);
    seg_fd_ = -1;
  }
  segment seg;
  seg.seq = next_seq_++;
  seg.path = dir_ + "/" + segment_name(seg.seq);
  seg_fd_ = ::open(seg.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
  if (seg_fd_ < 0)
    return os_error("create", seg.path);
  auto header = file_header(segment_magic);
  if (auto err = write_all(seg_fd_, header, seg.path); !err.empty())
    return err;
  seg.bytes = header.size();
  segments_.push_back(seg);
  seg_dirty_ = true;
  dir_dirty_ = true;
  return {};
}

std::string raft_log_store::delete_segments(bool all, index_t upto) {
  // Oldest first, so that what remains is always a contiguous tail of the log.
  std::size_t n = 0;
  while (n < segments_.size()) {
    const auto& seg = segments_[n];
    bool open_one = n + 1 == segments_.size() && seg_fd_ >= 0;
    if (!all && (open_one || seg.max_index > upto))
      break;
    if (open_one) {
      ::close(seg_fd_);
      seg_fd_ = -1;
      seg_dirty_ = false;
    }
    if (::unlink(seg.path.c_str()) != 0 && errno != ENOENT)
      return os_error("unlink", seg.path);
    ++n;
  }
  if (n == 0)
    return {};
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<long>(n));
  if (::fsync(dir_fd_) != 0)
    return os_error("fsync", dir_);
  ++syncs_;
  return {};
}

std::optional<term_t> raft_log_store::term_at(index_t i) const {
  if (i == base_)
    return base_term_;
  if (i < base_ || i > last_ || term_starts_.empty())
    return std::nullopt;
  auto it = term_starts_.upper_bound(i);
  --it;
  return it->second;
}

void raft_log_store::truncate_terms(index_t from) {
  term_starts_.erase(term_starts_.lower_bound(from), term_starts_.end());
  last_ = from - 1;
}

} // namespace registry::raft
