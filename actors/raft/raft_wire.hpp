#pragma once
/// Conversion between the Raft core's plain messages (actors/raft/raft_types.hpp) and raft.proto,
/// with the validation a received message passes before the core sees it.

#include <optional>
#include <string>

#include "actors/raft/raft_types.hpp"
#include "config/defaults.hpp"
#include "messages/raft.pb.h"

namespace registry::raft {

/// Limits a received message must keep (defaults: the project's).
struct wire_limits {
  std::size_t members_max = defaults::raft_members_max;
  std::size_t entries_max = defaults::raft_log_entries_max;
  std::size_t bytes_max = defaults::raft_record_bytes_max; ///< entry data plus snapshot data
  std::size_t id_chars_max = defaults::address_chars_max;
};

v1::RaftMessage to_wire(const message& x);

/// The message `x` carries, or nothing with `error` naming the first broken rule (e.g.
/// "append_request: entry 2 has index 9, expected 6"). Checked: ids present and bounded, a term,
/// a body, entries contiguous after prev_index with known kinds and terms not above the message's,
/// bounded counts and bytes, snapshot metadata with a valid configuration and data.
std::optional<message> from_wire(const v1::RaftMessage& x, std::string& error,
                                 const wire_limits& limits = {});

} // namespace registry::raft
