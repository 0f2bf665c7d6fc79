#pragma once
/// Conversion between the Distro protocol's plain structs and distro.proto.
///
/// Peer data is checked on the way in. A member that holds the cluster secret is trusted to be
/// honest, not to be bug-free: every client in a SyncBatch or Snapshot must pass the rules its own
/// requests passed (messages/validate.hpp, validate_client, with this node's limits) and carry the
/// revision of its content; client ids in a VerifyBatch or VerifyReply must pass
/// validate_client_id. A client that fails is left out of the result and reported as dropped; the
/// rest of the message is kept.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "actors/distro/distro_protocol.hpp"
#include "config/defaults.hpp"
#include "messages/distro.pb.h"

namespace registry::distro {

/// This node's limits that peer data is checked against.
struct peer_rules {
  std::size_t instances_per_client_max = defaults::instances_per_client_max;
};

/// A client left out of a peer message, and the first rule it broke.
struct dropped_client {
  client_id id; ///< as sent: may be empty or long (log it through bounded())
  field_error error;
};

/// "" when `x` may be applied; else the first broken rule (see the file comment). A deleted client
/// carries only its id.
std::optional<field_error> check(const client_data& x, const peer_rules& rules);

void to_wire(const client_data& x, v1::ClientData& out);
/// The plain conversion of one client, unchecked (the message converters below check).
client_data from_wire(const v1::ClientData& x);

v1::SyncBatch to_wire(const sync_batch& x);
sync_batch from_wire(const v1::SyncBatch& x, const peer_rules& rules,
                     std::vector<dropped_client>& dropped);

/// Encodes SyncBatches for several peers, each client once: the batches of one protocol step that
/// carry the same client (at the same revision, built at the same time) share its encoding. The
/// payload is byte for byte what `to_wire(batch).SerializeAsString()` gives. Live for one step.
class sync_encoder {
public:
  /// The SyncBatch payload of `x`.
  std::string encode(const sync_batch& x);

  /// Clients encoded so far (each distinct client of the step once).
  std::size_t clients_encoded() const {
    return encoded_.size();
  }

private:
  std::map<std::tuple<client_id, std::uint64_t, bool>, std::string> encoded_;
};

/// The bucket fields of a VerifyBatch are consistent (a digest has one digest per bucket and lists
/// nothing; listed buckets exist); else the first broken rule. The whole batch is refused then.
std::optional<field_error> check(const v1::VerifyBatch& x);
/// A VerifyReply's buckets are within verify_buckets_max (the protocol ignores buckets its digest
/// did not have); else the first broken rule.
std::optional<field_error> check(const v1::VerifyReply& x);

v1::VerifyBatch to_wire(const verify_batch& x);
verify_batch from_wire(const v1::VerifyBatch& x, std::vector<dropped_client>& dropped);

v1::VerifyReply to_wire(const verify_reply& x);
verify_reply from_wire(const v1::VerifyReply& x, std::vector<dropped_client>& dropped);

/// A SnapshotRequest's cursor is a valid client id, and a request after a cursor asks for a chunk
/// (clients_max > 0); else the first broken rule. The request is refused then.
std::optional<field_error> check(const v1::SnapshotRequest& x);
/// A Snapshot answers `request` (the chunk asked for, distro_protocol::snapshot_in_flight): a chunk
/// (`more` or `last` set) only to a chunked request; `last` moves past the request's cursor; at most
/// clients_max clients, in strictly increasing id order, each after the cursor and none after
/// `last`. A Snapshot without `more` and `last` (a sender without chunks) is whole, and answers
/// only a request from the start. Else the first broken rule, and the chunk (so the load) fails.
std::optional<field_error> check(const v1::Snapshot& x, const snapshot_request& request);

v1::SnapshotRequest to_wire(const snapshot_request& x);
snapshot_request from_wire(const v1::SnapshotRequest& x);

v1::Snapshot to_wire(const snapshot& x);
/// The Snapshot payload of `x`, byte for byte `to_wire(x).SerializeAsString()`, without building
/// the message: what a node sends for each chunk.
std::string encode(const snapshot& x);
snapshot from_wire(const v1::Snapshot& x, const peer_rules& rules,
                   std::vector<dropped_client>& dropped);

/// Counts clients dropped from peer data and decides which drops are logged: per peer the first at
/// once, then at most one per `interval_ms`. Remembers at most members_max peers (it forgets all
/// when a new one would exceed that: the next drop of each is logged at once).
class drop_counter {
public:
  /// A log line is due: the drops from the peer since its last line, this one included.
  struct line {
    std::uint64_t drops_since = 0;
    std::uint64_t peer_total = 0;
  };

  explicit drop_counter(time_ms interval_ms = defaults::peer_drop_log_interval_ms)
    : interval_ms_(interval_ms) {}

  /// Counts one drop from `peer` at `now_ms`; returns the line to log, if one is due.
  std::optional<line> count(const std::string& peer, time_ms now_ms);

  /// Every drop counted so far.
  std::uint64_t total() const {
    return total_;
  }

private:
  struct per_peer {
    std::uint64_t total = 0;
    std::uint64_t unlogged = 0;
    std::optional<time_ms> logged_ms;
  };
  time_ms interval_ms_;
  std::uint64_t total_ = 0;
  std::map<std::string, per_peer> peers_;
};

} // namespace registry::distro
