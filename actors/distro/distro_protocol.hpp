#pragma once
/// The Distro protocol of one node as a pure state machine (no CAF, no protobuf, no I/O, no clock).
///
/// The distro actor drives one `distro_protocol` like etcd's RawNode: it passes every input (a local
/// client change, a membership view, a received message, the result of a request, a timer) together with
/// the current time, and carries out the returned `effects`. The same state and inputs always give the
/// same effects, so the protocol is tested and simulated without an actor system
/// (test/unit/distro_protocol_test.cpp, test/unit/distro_sim_test.cpp).
///
/// ## What a node holds
/// One *record* per client it knows: the client's whole state (services, revision), whether this node
/// is *responsible* for it (`local`) and, for a copy, who sent it and when it was last renewed. A
/// *tombstone* is a local deletion kept until every peer acknowledged it.
///
/// ## Responsibility
/// A session client belongs to the node in its id. Any other client (heartbeat "ip:port#true") belongs to
/// the rendezvous winner (member_tracker.hpp) over the *routing list*: this node once it is ready, plus
/// every alive (UP or SUSPICIOUS) peer that proved it is ready by sending a VerifyBatch or a Snapshot
/// since it last came up. A starting node is therefore handed no heartbeat client before it has loaded
/// the data, and it takes none before it is ready itself (if the list would be empty it holds only self).
/// Whenever the list changes every record is re-mapped: `take_over` / `hand_over` ops tell the client
/// actors, so beat expiry moves with responsibility. Invariant: a record is local exactly when this node
/// is responsible for it in the current routing list.
///
/// ## Revisions
/// The revision on the wire is the client's *content revision*: content_revision(services), a sum
/// of one FNV-1a 64 term per service over a canonical encoding (order of instances does not
/// matter; interned names enter as the FNV-1a 64 of their text, kept with the text). Equal
/// revisions mean equal content, whoever computed them, so verify also catches divergence after a
/// responsibility move or a re-created client (a per-client counter can reach the same number with
/// other content: Nacos #10056, #10693).
///
/// ## Sync (owner -> every other member)
/// * A local change marks the client pending for every peer; pending is a *set of client ids* per peer,
///   and a batch reads each client's newest record when it is built, so only the newest state is ever
///   pending (one entry per client per peer; a delete is a tombstone record, sent as deleted=true).
/// * A peer that is idle (no batch in flight, none sent in the last sync_delay_ms) gets the batch at
///   once; changes during the window or while a batch is in flight are merged into the next batch at
///   (last send + sync_delay_ms). A batch holds at most sync_batch_clients_max clients, taken round-robin
///   from the pending set. At most one batch is in flight per peer.
/// * A failed batch (a failed result, no result within sync_timeout_ms, or the peer going DOWN) puts its
///   clients back in the pending set; the next batch waits sync_retry_delay_ms and holds half as many
///   clients (a loaded peer is not sent the same large batch again); each answered batch doubles the
///   size again, up to sync_batch_clients_max. Nothing is sent to a
///   DOWN peer; its pending set of live clients waits (bounded) until it is up again or leaves the
///   member list (then it is dropped: Nacos retries forever into a full queue, #7151).
/// * Deletes for a DOWN peer are dropped, not kept: a peer going DOWN loses its pending tombstones and
///   no new ones are queued for it. Its copy of a deleted client is renewed by nobody (no verify lists
///   it), so it expires by copy expiry, also when the peer comes back much later (its own sweep ran
///   meanwhile or runs at once); a restarted peer loads a snapshot, which holds no deleted client.
/// * Receiving: a copy is created or replaced as a whole, or removed for deleted=true. Never applied:
///   data for a client this node is responsible for and has changed itself (its own state wins;
///   counted as a conflict, repaired by its own verify), and data for a session client *of this node*
///   that it does not hold: that session belonged to a previous run of this node, so a delete is
///   broadcast instead. One exception: a heartbeat client whose data carries a beat later than any
///   this node knows of it (or later than its deletion here) was beaten elsewhere, by a node whose
///   routing differs from ours for a while; that data wins, and fresher beat clocks of unchanged
///   content are handed to the client actor (a `replace` op with the same revision), so the
///   responsible node never expires a client that is being beaten.
/// * Handover: a node that loses responsibility for a client queues it for the new owner, and a client
///   that became local by a re-mapping (or arrived for a client this node is responsible for) is
///   *adopted*: until this node changes it itself, data from peers still replaces or deletes it. So the
///   old owner's last write (a deregistration, say) reaches the new owner even if the new owner's copy
///   was behind; it is neither lost nor resurrected.
///
/// ## Beat clocks (heartbeat clients)
/// A heartbeat client's record carries the beat clocks its client actor reported (times on this
/// node's clock). They travel as *ages* measured when a batch or snapshot is built, and the receiver
/// turns them back into times on its own clock at arrival: the transit time is not counted, which is
/// the only allowance (a batch has sync_timeout_ms to be answered). A node taking the client over
/// hands the clocks to its client actor (`take_over` and local `replace` ops), which continues them,
/// so a dead instance expires at its original deadline however often responsibility moves. Beat
/// clocks are not part of the revision; a report that changes only them is synced like a change.
///
/// Reports lag: they travel in SyncBatches, which an overloaded owner sends late or in halves, while
/// its VerifyBatches still arrive every round. A take-over from a lagging clock would expire live
/// clients at once (the fault tier saw a clock 20 s older than the owner's last verify). So a take-over
/// raises the clock of an instance the copy shows healthy (and not marked unhealthy by missed beats)
/// to the owner's last verify that listed the copy at its revision (`vouched_ms`): the owner held it
/// healthy then, so it was beaten within about one unhealthy timeout before. The raise is bounded by
/// `beat_unhealthy_timeout_ms` over the last beat known, and only real beats are ever passed on
/// (`raised` tells the raised clocks apart), so a dead instance lives at most one unhealthy timeout
/// past its original deadline, however often responsibility moves; a live one keeps at least an
/// unhealthy timeout from the vouch (clamped by the same bound) for its beats to reach the new owner.
///
/// ## Verify (every verify_interval_ms, only when ready)
/// Each ready node sends every alive peer one VerifyBatch that vouches for all clients it is
/// responsible for (also at once when a peer comes up, so peers learn quickly that this node is ready).
/// The batch is built once per round for every peer. It is a *full list* of (id, revision) while this
/// node is responsible for at most verify_buckets / 8 clients; else a *digest*: the clients are hashed
/// into verify_buckets buckets by id (verify_bucket), and each bucket's digest is the sum of its
/// clients' shares (verify_share(id, revision)), so a round costs 8 bytes per bucket however many
/// clients there are (Nacos sends one message per client per peer every round).
/// * Full list: the receiver renews the copies listed (a listed copy at another revision too: the
///   client lives, and the copy is kept until the sync replaces it) and answers with the ids it lacks
///   or holds at another revision; the sender marks those pending for that peer (full sync).
/// * Digest: the receiver computes the same digests over its copies whose source is the sender. A
///   bucket that matches holds exactly the sender's clients at the sender's revisions, so each copy in
///   it is renewed as if listed. The reply names the buckets that differ (a missing, stale or extra
///   copy, a copy from another source, a client local here); the sender answers at once with a
///   *detail*: the full list of just those buckets, which the receiver handles as a full list
///   restricted to them (a copy of the sender's in a listed bucket but not listed is not renewed).
///   A detail is part of the round its digest began: it does not count as a round of its own.
///   Under churn, a change on its way to the peer would make its bucket differ every round (and
///   list the bucket's neighbours). So the digest leaves out, on both sides, the clients pending
///   or in flight to that peer, and lists them by (id, revision) instead; the receiver renews their
///   copies but reports none of them (the sender has them pending; a delete, revision 0, is
///   not checked at all). A round thus costs the digests
///   plus the changes not yet acknowledged plus the buckets that really diverged: it grows with
///   the changes, not with the clients. The digests are summed once per round; each peer's batch
///   subtracts its own pending clients' shares.
/// Copy expiry follows the copy's
/// *source* (the member that last sent or listed it):
/// * a source that is DOWN, gone from the member list or not ready vouches for nothing: the copy is
///   removed once not renewed for copy_expiry_verify_rounds * verify_interval_ms. That is how a
///   crashed node's sessions leave the cluster. A source DOWN only because its requests time out on
///   an open connection (member_view::unresponsive) is not crashed: the same run of it still holds
///   its clients (and stays ready), so its copies are treated as below, as those of an alive source
///   that sends no verify. Otherwise a node that is starved (or whose peer is) marks its peers
///   DOWN one after the other and drops every live copy each time, only to take them all again.
/// * a source that is alive and ready is asked, not the clock: the copy is removed after
///   copy_expiry_verify_rounds VerifyBatches from it that did not list it. Time this node spent
///   frozen or starved (the verifies waiting in its mailbox) thus removes nothing. A source that sends
///   no verify at all (it does not see this node alive, so it queues no deletes for it either) leaves
///   its copies for copy_expiry_silent_source_factor * copy_expiry_verify_rounds of this node's own
///   sweeps after its last verify or snapshot (sweeps, not time: a starved node sweeps once when it
///   runs again, before it reads the verifies that waited).
/// Local records never expire this way.
/// *Copies absent from their sender's batch are not deleted at once*; they are just not renewed and
/// expire as above. Absence is weak evidence: the batch may have been built before a sync that overtook
/// it, the sender may have just handed the client to another node, and the sender may be
/// mistaken about membership. A lost delete thus lingers at most the expiry time (it cannot be lost
/// by a live owner anyway: deletes are retried until acknowledged). A node that is not ready sends no
/// verify at all, so it can wipe nothing; it renews what a verify lists but answers with an empty
/// reply (its snapshot load brings every client; once ready, the next round repairs the rest).
///
/// ## Snapshot load and readiness
/// A node with peers starts not ready and asks alive peers for a Snapshot one after another (peers
/// known to be ready first, then in address order); a failure moves on to the next peer at once; when
/// every alive peer failed in a round it waits snapshot_retry_delay_ms. A snapshot comes in chunks
/// of at most snapshot_chunk_clients_max clients (and about snapshot_chunk_instances_max
/// instances), in client id order: each chunk is applied as copies when it arrives and the next is
/// asked for after its `last` at once, so one chunk is applied while the next is on its way. A
/// chunk that fails (error, timeout, the peer going DOWN, no progress) fails the load; it starts
/// again from the first chunk, and the copies applied so far stay as any copy (renewed by the next
/// load or a verify, else expired). The last chunk of a load makes the node ready (the copies are
/// re-mapped with self in the routing list); it then verifies at once. A node answers SnapshotRequest only when ready (else
/// UNAVAILABLE). A node becomes ready *alone* once lone_ready_wait_ms passed since start and every peer
/// is DOWN or answered UNAVAILABLE to its last request (a cold start of the whole cluster would
/// otherwise wait forever: Nacos #12012). A node without peers is ready at start.
///
/// ## Bounds and overflow policy
/// * live records (local + copies) <= clients_max: a new copy over the bound is refused
///   (`copies_refused`), the next verify asks for it again. Local changes are never refused here: the
///   gateway bounds local clients before they reach Distro. Tombstones do not count.
/// * tombstones <= tombstones_max: the oldest is dropped (its copies expire at the peers), so deletes
///   pending per peer <= tombstones_max; none is pending for a DOWN peer.
/// * pending per peer <= records (every pending id has a record; erased records leave every set);
///   in flight per peer: one SyncBatch, one VerifyBatch; one SnapshotRequest in total.
/// * peers <= members_max - 1 (sorted; extra members are refused, `members_refused`).
/// * received batches: at most clients_max entries are looked at; a verify reply is bounded by the
///   records held. Beat clocks of a record: at most one per instance of the client (others dropped).
///
/// ## Effects ordering (what the actor must respect)
/// 1. `apply` ops first, in order, before replying to the message that produced them (a SyncBatch is
///    acknowledged after its copies are queued to the client actors).
/// 2. Then send `syncs`, `verifies`, `snapshot_requests` (any order) and report each result back with
///    its id (on_sync_result, on_verify_result, on_snapshot_result). Results for unknown ids are
///    ignored, so actor-side timeouts may equal or exceed the protocol's own.
/// 3. Arm a timer for `wake_at` and call tick() then (stale or extra ticks are harmless). `wake_at` is
///    always later than the `now` of the call.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/member/member_tracker.hpp"
#include "config/defaults.hpp"
#include "config/node_config.hpp"
#include "messages/model.hpp"

namespace registry {

// -- wire messages as plain structs (mirror distro.proto; messages/convert does the protobuf) ----------

namespace distro {

/// InstanceBeat: how long ago a heartbeat instance was last beaten, measured by the sender when it
/// sends (an age, never a time: node clocks differ).
struct beat_age {
  time_ms age_ms = 0;
  bool marked_unhealthy = false; ///< missed beats made it unhealthy (a beat heals it)
  friend bool operator==(const beat_age& a, const beat_age& b) {
    return a.age_ms == b.age_ms && a.marked_unhealthy == b.marked_unhealthy;
  }
};

/// Beat ages of a client's instances: service -> instance_identity -> age. Not part of the
/// revision. An instance without an age is unknown (an older sender): treated as just beaten.
using client_beat_ages = std::map<service_key, std::map<std::string, beat_age>>;

/// ClientData: the whole state of one client, as its responsible node sees it.
struct client_data {
  client_id id;
  std::uint64_t revision = 0; ///< content_revision(services); 0 for deleted
  client_services services;   ///< empty when deleted
  bool deleted = false;
  std::string owner;      ///< the responsible node in the sender's view (informational)
  client_beat_ages beats; ///< heartbeat clients: beat ages at sending
};

/// SyncBatch: owner -> peer. Reply: Ack (always, see on_sync_batch).
struct sync_batch {
  std::string source;
  std::vector<client_data> clients;
};

/// ClientRevision.
struct client_revision {
  client_id id;
  std::uint64_t revision = 0;
};

/// VerifyBatch: owner -> peer. Three forms (see Verify in the file comment):
/// * a full list (`buckets` 0): every client the sender is responsible for; a verify round;
/// * a digest (`digests` holds `buckets` entries): one digest per bucket, and in `clients` the
///   clients whose change to this peer is still pending (revision 0: a delete); a verify round;
/// * a detail (`buckets` > 0, no digests): the clients of the buckets in `listed`, in full; it
///   answers a digest's reply and is not a round of its own.
/// Reply: VerifyReply.
struct verify_batch {
  std::string source;
  std::vector<client_revision> clients;
  std::uint32_t buckets = 0;
  std::vector<std::uint64_t> digests{};
  std::vector<std::uint32_t> listed{};
};

/// VerifyReply: the ids the receiver lacks or holds at another revision (full list, detail), or the
/// buckets whose digest differs here (digest).
struct verify_reply {
  std::vector<client_id> missing;
  std::vector<std::uint32_t> differing{};
};

/// SnapshotRequest: starting node -> peer, one per chunk. Reply: Snapshot, or Error UNAVAILABLE
/// when not ready.
struct snapshot_request {
  std::string source;
  client_id after{};              ///< the clients after this id ("": from the first)
  std::size_t clients_max{0};     ///< at most this many (0: every client in one Snapshot)
  std::size_t instances_max{0};   ///< and at most about this many instances (0: no bound asked)
};

/// Snapshot: the clients the sender holds (local and copies, not tombstones), in id order after
/// the request's `after`: all of them, or a chunk when `more` is set.
struct snapshot {
  std::string source;
  std::vector<client_data> clients;
  bool more{false}; ///< more clients follow: ask again after `last`
  client_id last{};  ///< the last client id this chunk covers ("" from a sender without chunks)
};

} // namespace distro

// -- configuration -------------------------------------------------------------------

struct distro_config {
  /// Merge window: changes within this time after a send go out together.
  time_ms sync_delay_ms = defaults::sync_delay_ms;
  /// A SyncBatch without result after this is failed.
  time_ms sync_timeout_ms = defaults::sync_timeout_ms;
  /// Wait after a failed SyncBatch before the next one to that peer.
  time_ms sync_retry_delay_ms = defaults::sync_retry_delay_ms;
  /// Clients per SyncBatch.
  std::size_t sync_batch_clients_max = defaults::sync_batch_clients_max;
  /// Verify period; also the period of the copy expiry sweep.
  time_ms verify_interval_ms = defaults::verify_interval_ms;
  /// A VerifyBatch without reply after this is failed (the next round sends again).
  time_ms verify_timeout_ms = defaults::verify_timeout_ms;
  /// A copy not renewed for this many verify intervals is removed.
  int copy_expiry_verify_rounds = defaults::copy_expiry_verify_rounds;
  /// Buckets of a digest verify (a node responsible for at most buckets / 8 clients sends the
  /// full list, which is then no longer than the digests).
  std::uint32_t verify_buckets = defaults::verify_buckets;
  /// A SnapshotRequest (one chunk) without result after this is failed, and the load with it.
  time_ms snapshot_timeout_ms = defaults::snapshot_timeout_ms;
  /// Clients per snapshot chunk, asked for and sent (the smaller of the two sides' bounds).
  std::size_t snapshot_chunk_clients_max = defaults::snapshot_chunk_clients_max;
  /// Instances per snapshot chunk, about (a chunk holds at least one client, never half of one).
  std::size_t snapshot_chunk_instances_max = defaults::snapshot_chunk_instances_max;
  /// Wait after a round of failed snapshot requests.
  time_ms snapshot_retry_delay_ms = defaults::snapshot_retry_delay_ms;
  /// A node whose peers are all DOWN (or not ready) becomes ready after this time since start.
  time_ms lone_ready_wait_ms = defaults::lone_ready_wait_ms;
  /// Live records held (local and copies; tombstones do not count).
  std::size_t clients_max = defaults::clients_max;
  /// Tombstones held (deletions not yet acknowledged by every alive peer); the oldest goes first.
  std::size_t tombstones_max = defaults::tombstones_max;
  /// Members, self included.
  std::size_t members_max = defaults::members_max;
  /// The heartbeat clients' unhealthy timeout (the node's `heartbeat.unhealthy_timeout_ms`): how
  /// far a take-over may raise a beat clock over the last beat this node knows (see Beat clocks).
  time_ms beat_unhealthy_timeout_ms = defaults::beat_unhealthy_timeout_ms;

  distro_config() = default;

  /// Takes the timings of the node config's `distro:` section; limits keep their defaults.
  explicit distro_config(const node_config::distro_t& x);
};

/// "" when fine, else the first broken rule (e.g. "copy_expiry_verify_rounds must be at least 2").
std::string validate(const distro_config& x);

/// FNV-1a 64 of a client id (never 0): what its verify bucket and share are computed from.
std::uint64_t verify_id_hash(const client_id& id);

/// The verify bucket of a client id among `buckets` (> 0): the same on every node.
std::uint32_t verify_bucket(const client_id& id, std::uint32_t buckets);
std::uint32_t verify_bucket_of(std::uint64_t id_hash, std::uint32_t buckets);

/// A client's share of its bucket's digest; a bucket's digest is the sum (mod 2^64) of its clients'
/// shares, so it does not depend on their order and is 0 for an empty bucket.
std::uint64_t verify_share(const client_id& id, std::uint64_t revision);
std::uint64_t verify_share_of(std::uint64_t id_hash, std::uint64_t revision);

/// The content revision of a client: the sum (mod 2^64) of one term per service (service_term:
/// FNV-1a 64 over a canonical encoding of its key and instances, in any order, then spread),
/// finished with the number of services. Never 0, so 0 can mean "no content". A sum, so that a
/// change to one service updates the revision without reading the others.
std::uint64_t content_revision(const client_services& services);
std::uint64_t service_term(const service_key& key, const instance_list& instances);
std::uint64_t services_terms(const client_services& services);
std::uint64_t revision_of_terms(std::size_t services, std::uint64_t terms);

// -- the protocol -----------------------------------------------------------------

class distro_protocol {
public:
  // -- member types: inputs ---------------------------------------------------------

  /// A client this node's client actor changed: a new or changed client, or its end. A client
  /// actor numbers its announcements; after a whole one it sends only the services that changed
  /// (`base_seq` set), which apply only on top of the announcement they follow.
  struct local_change {
    client_id id;
    client_services services; ///< ignored when deleted; with base_seq only the changed services
                              ///< (an empty list: the service went)
    bool deleted = false;
    client_beats beats; ///< heartbeat clients: the beat clocks (this node's clock); else empty
    std::uint64_t announcer = 0; ///< who announces (a client actor's id; 0: unknown)
    std::uint64_t seq = 0;       ///< the announcer's number for this announcement
    /// Set: `services` are the changes since the announcer's announcement base_seq. When the record
    /// does not stand at that announcement (another wrote it since), nothing changes and the id is
    /// in effects::announce_whole: the announcer must send the whole client.
    std::optional<std::uint64_t> base_seq;
  };

  /// How a snapshot request ended.
  enum class snapshot_status {
    ok,          ///< a Snapshot arrived
    failed,      ///< error, timeout, peer gone
    unavailable, ///< the peer is not ready itself
  };

  // -- member types: outputs --------------------------------------------------------

  /// A change the client actors of this node must make, in order.
  struct local_op {
    enum class kind {
      replace,   ///< create or replace the client with `services`/`revision`; `local` tells which
                 ///< kind (responsible: heartbeat client with fresh beats; else replica)
      remove,    ///< the copy is gone (deleted by its owner, expired): drop client and instances
      take_over, ///< an existing replica: this node is now responsible (start beat checks, renewed)
      hand_over, ///< an existing client: another node is now responsible (stop beat checks)
    };
    kind what = kind::replace;
    client_id id;
    std::uint64_t revision = 0;
    client_services services;
    bool local = false;
    client_beats beats; ///< replace and take_over: beat clocks to continue (this node's clock)
  };

  struct outgoing_sync {
    std::string peer;
    std::uint64_t batch_id = 0; ///< pass back to on_sync_result
    distro::sync_batch batch;
  };

  struct outgoing_verify {
    std::string peer;
    std::uint64_t verify_id = 0; ///< pass back to on_verify_result
    distro::verify_batch batch;
  };

  struct outgoing_snapshot_request {
    std::string peer;
    std::uint64_t request_id = 0; ///< pass back to on_snapshot_result
    distro::snapshot_request request;
  };

  /// Emitted once, when the last chunk of a snapshot made this node ready.
  struct snapshot_loaded_event {
    std::string source;
    std::size_t clients = 0; ///< in every chunk of the load
    std::size_t chunks = 0;
    time_ms duration_ms = 0; ///< since start()
  };

  /// Log-worthy counts of one step (all zero when nothing happened worth logging).
  struct events {
    std::size_t batches_sent = 0;      ///< SyncBatches emitted
    std::size_t clients_sent = 0;      ///< clients in them
    std::size_t batches_failed = 0;    ///< failed, timed out, or lost with their peer going DOWN
    std::size_t batches_retried = 0;   ///< sent to a peer whose previous batch failed
    std::size_t verify_sent = 0;       ///< VerifyBatches emitted
    std::size_t verify_failed = 0;     ///< failed or timed out
    std::size_t verify_mismatches = 0; ///< ids peers reported missing or stale (synced in full)
    std::size_t verify_missing = 0;    ///< ids this node reported missing or stale to a peer
    std::size_t copies_applied = 0;    ///< copies created or replaced
    std::size_t copies_removed = 0;    ///< copies deleted by their owner
    std::size_t copies_expired = 0;    ///< copies not renewed in time
    std::size_t copies_refused = 0;    ///< over clients_max
    std::size_t conflicts = 0;         ///< data for a client this node is responsible for
    std::size_t stale_sessions = 0;    ///< sessions of a previous run of this node, deleted
    std::size_t taken_over = 0;        ///< clients this node became responsible for
    std::size_t handed_over = 0;       ///< clients another node became responsible for
    std::size_t snapshot_failures = 0; ///< failed or unavailable snapshot requests
    std::size_t snapshot_chunks = 0;   ///< snapshot chunks received and applied (the last too)
    std::size_t stale_results = 0;     ///< results of unknown or old requests, ignored
    std::size_t members_refused = 0;   ///< members over members_max
    std::size_t unknown_sources = 0;   ///< messages from a node that is not a member
    std::size_t malformed = 0;         ///< verifies with inconsistent buckets (ignored)
    std::optional<snapshot_loaded_event> snapshot_loaded;
    bool ready_alone = false; ///< became ready without a snapshot (lone node or cold start)

    bool any() const;
  };

  /// What the actor must do now (ordering rules in the file comment).
  struct effects {
    std::vector<local_op> apply;
    std::vector<outgoing_sync> syncs;
    std::vector<outgoing_verify> verifies;
    std::vector<outgoing_snapshot_request> snapshot_requests; ///< at most one
    std::optional<bool> ready_changed;                        ///< the new readiness
    std::optional<std::vector<std::string>> routing_changed;  ///< the new routing list
    std::optional<time_ms> wake_at;                           ///< call tick() then
    /// Local changes that could not apply (see local_change::base_seq): ask for the whole client.
    std::vector<client_id> announce_whole;
    events log;
  };

  /// on_verify_batch's result: the reply to send back and the effects.
  struct verify_outcome {
    distro::verify_reply reply;
    effects fx;
  };

  /// on_snapshot_request's result: a Snapshot, or nothing (reply Error UNAVAILABLE), and the effects.
  struct snapshot_outcome {
    std::optional<distro::snapshot> reply;
    effects fx;
  };

  /// One client as this node holds it.
  struct record {
    std::uint64_t revision = 0; ///< content revision (0 for tombstones)
    client_services services;
    bool local = false;     ///< this node is responsible (routing); tombstones too
    bool tombstone = false; ///< deleted here, kept until every peer acknowledged the delete
    bool adopted = false;   ///< local by a re-mapping or by arriving data, not changed here since
    std::uint64_t tombstone_seq = 0; ///< tombstones: order of deletion (the oldest goes first)
    std::string source;     ///< who sent the current content or last vouched for it (self for
                            ///< local changes)
    time_ms renewed_ms = 0; ///< last sync, verify or snapshot renewal (copies expire from here)
    std::uint64_t renewed_round = 0; ///< the source's verifies received at that renewal
    client_beats beats;     ///< last known beat clocks on this node's clock (heartbeat clients)
    /// A copy: when its source last listed it in a VerifyBatch at the copy's revision (the owner
    /// still held it so; 0: not since the content last changed or the last take-over). See Beat
    /// clocks.
    time_ms vouched_ms = 0;
    /// verify_id_hash of the record's id, computed at its first verify (0: not yet); a verify
    /// round hashes every record, so the id is hashed once, not once per round.
    mutable std::uint64_t id_hash = 0;
    /// A local record taken over: the clocks handed to the client actor above `beats` (raised by
    /// the last vouch). `beats` keeps the last beat known; a report of a raised clock unchanged is
    /// taken as that beat, so a raise is never passed on as a beat.
    client_beats raised;
    /// The client actor's announcement that `services` stands at (0 with `announcer`: written
    /// by something else since, e.g. a peer's copy: only a whole announcement applies).
    std::uint64_t announcer = 0;
    std::uint64_t announced_seq = 0;
    /// The sum of service_term over `services` while `announcer` is set: a partial announcement
    /// updates it with the services it names (the revision is revision_of_terms of it).
    std::uint64_t announced_terms = 0;
  };

  // -- constructors -----------------------------------------------------------------

  /// @pre `self` is not empty and validate(cfg) is "".
  distro_protocol(std::string self, distro_config cfg);

  // -- inputs -------------------------------------------------------------------------

  /// First call: the initial membership (self may be in it). Without peers the node is ready at once;
  /// else snapshot loading starts.
  effects start(const std::vector<member_view>& members, time_ms now_ms);

  /// A client of this node changed or ended. Never refused. A change to a client another node is
  /// responsible for in the current routing (a race with a re-mapping) is still synced, and answered
  /// with a `hand_over` op.
  effects on_local_change(local_change x, time_ms now_ms);

  /// The whole membership view (member_tracker::view()) whenever it changed. Self entries are ignored.
  effects on_members(const std::vector<member_view>& members, time_ms now_ms);

  /// The result of outgoing sync `batch_id` to `peer`.
  effects on_sync_result(const std::string& peer, std::uint64_t batch_id, bool ok, time_ms now_ms);

  /// A SyncBatch arrived; reply Ack after carrying out `apply` (always Ack: what was not applied is
  /// repaired by verify, and an error would only make the sender resend the same data).
  effects on_sync_batch(const distro::sync_batch& x, time_ms now_ms);

  /// A VerifyBatch arrived (proves its sender ready); reply with the outcome's `reply`. A batch from a
  /// node that is not a member renews nothing and gets an empty reply.
  verify_outcome on_verify_batch(const distro::verify_batch& x, time_ms now_ms);

  /// The result of outgoing verify `verify_id` to `peer`: the reply, or nothing when it failed.
  effects on_verify_result(const std::string& peer, std::uint64_t verify_id,
                           const std::optional<distro::verify_reply>& x, time_ms now_ms);

  /// A SnapshotRequest arrived; reply with the outcome's `reply`: nothing (Error UNAVAILABLE)
  /// while this node is not ready or when the sender is not a member. The first chunk (`after`
  /// empty) marks its sender not ready. The chunk holds the live clients after `after` in id order,
  /// at most min(x.clients_max, snapshot_chunk_clients_max) of them and, past the first, no more
  /// than about min(x.instances_max, snapshot_chunk_instances_max) instances; `more` when a live
  /// client is left after `last`. No state is kept between chunks. A request with clients_max 0
  /// (a sender without chunks) gets every client at once.
  snapshot_outcome on_snapshot_request(const distro::snapshot_request& x, time_ms now_ms);

  /// The result of outgoing snapshot request `request_id` to `peer` (`x` only with status ok).
  /// A chunk is applied at once (as copies: the node is not ready yet); with `more` the next
  /// chunk is asked for in the same effects, else the node is ready. A chunk with `more` whose
  /// `last` does not advance past the cursor fails the load (it would never end). Any failure
  /// fails the load: it starts again from the first chunk (next peer, or after
  /// snapshot_retry_delay_ms); what earlier chunks applied stays as copies, renewed or expired as
  /// any copy, and the node stays not ready.
  effects on_snapshot_result(const std::string& peer, std::uint64_t request_id,
                             snapshot_status status, const distro::snapshot* x, time_ms now_ms);

  /// A timer fired.
  effects tick(time_ms now_ms);

  // -- properties ---------------------------------------------------------------------

  const std::string& self() const {
    return self_;
  }

  const distro_config& config() const {
    return cfg_;
  }

  /// Loaded (or alone, or standalone): serves snapshots and verifies.
  bool ready() const {
    return ready_;
  }

  /// The sorted routing list (see the file comment).
  const std::vector<std::string>& routing() const {
    return routing_;
  }

  /// What this node holds of `id`, as the op that makes a client actor match it: `replace` with the
  /// record's content for a live record (`local` and, for a local one, its beat clocks), else
  /// `remove`. The gateway asks for it whenever it forgot a client actor, because Distro ops and the
  /// ending actor's own last announcement cross (an op that reached the ending actor is dropped
  /// there, and an op sent before Distro read the actor's delete would otherwise leave a client
  /// Distro does not hold). A session of this node is never re-created: it lives only as long as its
  /// actor, so it is `remove`.
  local_op resync(const client_id& id) const;

  /// The node responsible for `id` (a client id or "ip:port") in the current routing: where the gateway
  /// forwards a heartbeat client's write.
  std::string responsible_node(const client_id& id) const;

  /// Every record, tombstones included.
  /// Per responsible node in the current routing (this node while there is none), the instances
  /// of the clients held here; one pass over the records (the console asks once a second).
  std::map<std::string, std::uint64_t> instances_by_owner() const;

  const std::map<client_id, record>& records() const {
    return records_;
  }

  /// The record of `id`, if any.
  const record* find(const client_id& id) const;

  /// Clients pending for `peer` (0 for unknown peers).
  std::size_t pending_count(const std::string& peer) const;

  /// Whether `id` is pending for `peer`.
  bool is_pending(const std::string& peer, const client_id& id) const;

  /// Whether a SyncBatch to `peer` awaits its result.
  bool sync_in_flight(const std::string& peer) const;

  /// The snapshot request (chunk) awaiting its result as `request_id` from `peer`, if any: what a
  /// Snapshot answering it is checked against (distro_wire.hpp).
  const distro::snapshot_request* snapshot_in_flight(const std::string& peer,
                                                      std::uint64_t request_id) const;

  /// The peers (members other than self) with their state, sorted.
  std::vector<member_view> peers() const;

  /// Whether `peer` proved it is ready since it last came up.
  bool peer_ready(const std::string& peer) const;

  /// "" when every internal invariant holds, else the first one broken (tests and simulation call it
  /// after every step; cost O(records * peers)).
  std::string check_invariants() const;

private:
  // -- member types -------------------------------------------------------------------

  struct in_flight_sync {
    std::uint64_t id = 0;
    time_ms sent_ms = 0;
    std::set<client_id> ids;
  };

  struct verify_attempt {
    std::uint64_t id = 0;
    time_ms sent_ms = 0;
    std::uint32_t digest_buckets = 0; ///< a digest: its bucket count (its reply may ask a detail)
  };

  struct peer_state {
    member_state state = member_state::down;
    /// DOWN by timeouts on an open connection (member_view::unresponsive): the same run of the
    /// member, so it stays ready, and its copies are kept as those of a silent source.
    bool unresponsive = false;
    bool ready = false;       ///< proved ready (VerifyBatch or Snapshot) since it last came up
    bool unavailable = false; ///< answered UNAVAILABLE to our last snapshot request
    std::set<client_id> pending;
    client_id cursor;         ///< last id sent; the next batch starts after it (round-robin)
    std::optional<in_flight_sync> in_flight;
    time_ms next_send_ms = 0; ///< merge window end or retry time
    int failure_streak = 0;   ///< failed batches in a row
    /// Clients per batch to this peer: halved by a failed batch, doubled by an answered one,
    /// within 1..sync_batch_clients_max (0: the maximum).
    std::size_t batch_limit = 0;
    std::uint64_t verifies_received = 0; ///< verify rounds from this peer (full lists, digests)
    std::uint64_t vouched_sweep = 0;     ///< sweeps_ at its last VerifyBatch or Snapshot
    std::optional<verify_attempt> verify_in_flight;
  };

  /// A snapshot load from one peer, chunk by chunk.
  struct snapshot_attempt {
    std::string peer;
    std::uint64_t id = 0;      ///< the chunk request in flight
    time_ms sent_ms = 0;       ///< when that chunk was asked for (its timeout runs from here)
    distro::snapshot_request request; ///< that chunk's request (its cursor)
    std::size_t chunks = 0;    ///< chunks applied so far
    std::size_t clients = 0;   ///< clients in them
  };

  using record_map = std::map<client_id, record>;

  // -- steps (each input ends with finish) --------------------------------------------

  void finish(time_ms now_ms, effects& fx);
  void expire_requests(time_ms now_ms, effects& fx);
  void progress_load(time_ms now_ms, effects& fx);
  void verify_round(time_ms now_ms, effects& fx);
  void sweep_copies(time_ms now_ms, effects& fx);
  void flush(const std::string& name, peer_state& p, time_ms now_ms, effects& fx);
  std::optional<time_ms> next_wake(time_ms now_ms) const;

  // -- helpers ------------------------------------------------------------------------

  void update_members(const std::vector<member_view>& members, time_ms now_ms, effects& fx);
  void apply_incoming(const distro::client_data& x, const std::string& source, time_ms now_ms,
                      effects& fx);
  void make_tombstone(const client_id& id, time_ms now_ms);
  void renew(record& r, const std::string& source, time_ms now_ms);
  bool copy_expired(const record& r, time_ms now_ms) const;
  std::size_t batch_limit(const peer_state& p) const;
  void drop_down_deletes(peer_state& p);
  std::size_t live_count() const;
  void erase_record(record_map::iterator i);
  void gc_tombstone(const client_id& id);
  void mark_pending_all(const client_id& id);
  void send_verify(const std::string& name, peer_state& p, const distro::verify_batch& batch,
                   time_ms now_ms, effects& fx);
  std::uint64_t id_hash_of(const client_id& id, const record& r) const;
  distro::verify_batch verify_of_local() const;
  distro::verify_batch verify_for_peer(const distro::verify_batch& all, const peer_state& p) const;
  void check_listed(const distro::client_revision& e, const std::string& source, time_ms now_ms,
                    verify_outcome& out, bool report);
  distro::verify_batch verify_detail(std::uint32_t buckets,
                                     const std::vector<std::uint32_t>& differing) const;
  void verify_listed(const distro::verify_batch& x, time_ms now_ms, verify_outcome& out);
  void verify_digests(const distro::verify_batch& x, time_ms now_ms, verify_outcome& out);
  void fail_sync(peer_state& p, time_ms now_ms, effects& fx);
  void fail_snapshot_attempt(effects& fx);
  void ask_snapshot_chunk(const std::string& peer, client_id after, time_ms now_ms, effects& fx);
  void snapshot_complete(const std::string& peer, time_ms now_ms, effects& fx);
  void peer_came_up(peer_state& p, const std::string& name, time_ms now_ms, effects& fx);
  void peer_went_down(peer_state& p, const std::string& name, time_ms now_ms, effects& fx);
  void set_peer_ready(peer_state& p, const std::string& name, bool ready, time_ms now_ms);
  void remap(time_ms now_ms, effects& fx);
  std::vector<std::string> compute_routing() const;
  bool lone(time_ms now_ms) const;
  distro::client_data to_data(const client_id& id, const record& r, time_ms now_ms) const;
  distro::snapshot snapshot_chunk(const distro::snapshot_request& x, time_ms now_ms) const;
  client_beats take_over_beats(record& r) const;
  client_beats real_beats(record& r, client_beats reported) const;
  void forget_raised_below(record& r) const;

  // -- member variables ---------------------------------------------------------------

  /// This node's address.
  std::string self_;
  /// Timings and limits.
  distro_config cfg_;
  /// Every other member.
  std::map<std::string, peer_state> peers_;
  /// Every client this node knows.
  record_map records_;
  /// Self (when ready) and alive, ready peers; sorted; never empty after start().
  std::vector<std::string> routing_;
  /// start() was called.
  bool started_ = false;
  /// See ready().
  bool ready_ = false;
  /// When start() was called.
  time_ms started_ms_ = 0;
  /// The snapshot request in flight, if any.
  std::optional<snapshot_attempt> attempt_;
  /// Peers tried in the current snapshot round.
  std::set<std::string> tried_;
  /// Earliest time of the next snapshot request.
  time_ms next_attempt_ms_ = 0;
  /// Next verify round (when ready).
  time_ms next_verify_ms_ = 0;
  /// Next copy expiry sweep.
  time_ms next_sweep_ms_ = 0;
  /// Copy expiry sweeps so far (this node's own rounds).
  std::uint64_t sweeps_ = 0;
  /// Id source for batches, verifies and snapshot requests.
  std::uint64_t next_id_ = 1;
  /// Every tombstone by (tombstone_seq, id): its size is the tombstone count, its front the oldest.
  std::set<std::pair<std::uint64_t, client_id>> tombstones_;
  /// Source of tombstone_seq.
  std::uint64_t next_tombstone_seq_ = 1;
};

/// Distro ops for the gateway in one message, in order (actors/interfaces.hpp: replica_ops_ptr).
struct replica_ops {
  std::vector<distro_protocol::local_op> ops;
};

} // namespace registry
