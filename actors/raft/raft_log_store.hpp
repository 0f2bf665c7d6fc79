#pragma once
/// The durable state of one Raft node in a directory (no CAF): the term and vote, the log in
/// segment files, and snapshots. A later disk actor owns one store, carries out the core's
/// `persist_request`s in order with write(), and acknowledges a group of them after one sync().
///
/// ## Files in the directory
/// * `LOCK`: held with flock() while open, so two processes never share a directory.
/// * `vote`: records of (term, vote); the last valid one counts. A write is made durable at once
///   (term changes are rare, and a term must be durable before the entries of that term written
///   after it). Rewritten as one record (through `vote.tmp` and a rename) once it holds
///   vote_records_max records.
/// * `log-<seq>.seg`: segments, replayed in `seq` order. A segment starts with a 12-byte header
///   ("RGRAFTLG" and a version) followed by records. Each record of an entry holds index, term,
///   the term of the entry before it and the entry's kind and data. A record whose index is at
///   or below the last one replayed truncates the log there (so a follower's log is only ever
///   appended to). The current segment is closed and a new one begun once it holds
///   segment_bytes_max bytes.
/// * `snapshot-<index>-<term>.snap`: header, metadata (index, term, configuration) and the state
///   machine's bytes, under one CRC. Written to `.tmp`, synced and renamed. The newest and the one
///   before it are kept.
///
/// ## Records
/// [u32 payload length][u32 CRC-32 (zlib) of the payload][payload], integers little-endian.
///
/// ## Crashes and damage
/// * A torn record at the end of the last segment (shorter than its length says, or the last
///   record with a wrong CRC, or zeros to the end) comes from a crash during a write: it is
///   dropped at open (the file is cut back) and reported in `warnings`. The same holds for the
///   vote file and for a `.tmp` file (deleted).
/// * Anything else that does not check out (a bad record before the end, a gap, a broken chain
///   of terms, a bad header, a corrupt snapshot) makes open() fail with the file, the offset,
///   what is wrong and what to do.
///
/// ## Ordering (what write() guarantees)
/// The hard state is durable before the snapshot and the entries of the same request are
/// written; the snapshot is durable (and covered segments deleted) before the entries are
/// written; entries are durable after the next sync(). So a crash leaves a prefix of what was
/// asked, in order.
///
/// ## Compaction
/// A snapshot that the core took locally (`compact_to` > 0) deletes every closed segment whose
/// records all lie at or below `compact_to`; an installed snapshot (`snapshot_resets_log`)
/// deletes every segment before new entries are written, so old records never mix with the new
/// log. The log on disk is thus bounded by the snapshot threshold plus one segment.
///
/// ## Errors
/// Every function returns "" on success, else the operating error with the file (e.g. "write
/// /var/lib/registry/raft/log-00000000000000000003.seg: No space left on device"). After an
/// error the store refuses further writes with the same error: what reached the disk is unknown,
/// and the node must stop (a restart replays what is there).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/raft/raft_core.hpp"
#include "config/defaults.hpp"

namespace registry::raft {

struct log_store_options {
  std::size_t segment_bytes_max = defaults::raft_segment_bytes_max;
  std::size_t vote_records_max = defaults::raft_vote_records_max;
  std::size_t record_bytes_max = defaults::raft_record_bytes_max;
  std::size_t members_max = defaults::raft_members_max;
};

class raft_log_store {
public:
  // -- member types -------------------------------------------------------------------

  /// What open() found.
  struct open_result {
    /// The store, ready to write; null when `error` is set.
    std::unique_ptr<raft_log_store> store;
    /// What the disk holds (the core starts from it).
    persisted_state state;
    /// Repairs made (torn records dropped, temporary files deleted), one line each.
    std::vector<std::string> warnings;
    /// "" when opened, else the problem and what to do.
    std::string error;
  };

  // -- constructors -------------------------------------------------------------------

  /// Opens (creating it if missing; its parent must exist) and reads the directory `dir`.
  static open_result open(const std::string& dir, log_store_options opts = {});

  raft_log_store(const raft_log_store&) = delete;
  raft_log_store& operator=(const raft_log_store&) = delete;
  ~raft_log_store();

  // -- writing ------------------------------------------------------------------------

  /// Carries out one write of the core (see the ordering above); its entries are durable after
  /// the next sync().
  std::string write(const raft_core::persist_request& x);

  /// Makes every entry written so far durable (one fdatasync per touched file, one directory sync
  /// when files were created).
  std::string sync();

  // -- properties ---------------------------------------------------------------------

  const std::string& dir() const {
    return dir_;
  }
  /// Last index of the log on disk (the snapshot index when no entry follows it).
  index_t last_index() const;
  /// Segment files present.
  std::size_t segment_count() const {
    return segments_.size();
  }
  /// Snapshot files present.
  std::size_t snapshot_count() const {
    return snapshots_.size();
  }
  /// Records in the vote file.
  std::size_t vote_records() const {
    return vote_records_;
  }
  /// fdatasync calls so far (tests check group commit).
  std::uint64_t sync_count() const {
    return syncs_;
  }

private:
  // -- member types -------------------------------------------------------------------

  struct segment {
    std::uint64_t seq = 0;
    std::string path;
    index_t max_index = 0; ///< highest index of its records (0: none)
    std::uint64_t bytes = 0;
  };

  // -- helpers ------------------------------------------------------------------------

  explicit raft_log_store(std::string dir, log_store_options opts);
  std::string fail(std::string what);
  std::string save_hard_state(const hard_state& x);
  std::string save_snapshot(const snapshot& x);
  std::string append(const std::vector<entry>& xs);
  std::string open_new_segment();
  std::string delete_segments(bool all, index_t upto);
  std::optional<term_t> term_at(index_t i) const;
  void truncate_terms(index_t from);

  // -- member variables ---------------------------------------------------------------

  std::string dir_;
  log_store_options opts_;
  int lock_fd_ = -1;
  int dir_fd_ = -1;
  int vote_fd_ = -1;
  std::size_t vote_records_ = 0;
  /// Segments in replay order; the last one is open for appending (seg_fd_).
  std::vector<segment> segments_;
  int seg_fd_ = -1;
  bool seg_dirty_ = false;
  /// Sequence number of the next segment (above every one ever seen here).
  std::uint64_t next_seq_ = 1;
  bool dir_dirty_ = false;
  /// Snapshot files, oldest first.
  std::vector<std::string> snapshots_;
  /// The log on disk as runs of terms: index before the first entry, its term, the first index
  /// of each term, and the last index.
  index_t base_ = 0;
  term_t base_term_ = 0;
  std::map<index_t, term_t> term_starts_;
  index_t last_ = 0;
  std::uint64_t syncs_ = 0;
  std::string broken_;

  friend struct log_store_loader;
};

} // namespace registry::raft
