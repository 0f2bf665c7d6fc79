#include "actors/raft/raft_core.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace registry::raft {

namespace {

/// Assertions for programmer errors, on in every build: a broken invariant here can lose
/// acknowledged writes on every node, which is worse than a crash with a message.
[[noreturn]] void check_failed(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: raft_core check failed: %s\n", file, line, what);
  std::abort();
}

#define RAFT_CHECK(cond) ((cond) ? (void)0 : check_failed(#cond, __FILE__, __LINE__))

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

bool is_leader_traffic(const message& m) {
  return std::holds_alternative<append_request>(m.body)
         || std::holds_alternative<heartbeat>(m.body)
         || std::holds_alternative<install_snapshot>(m.body)
         || std::holds_alternative<timeout_now>(m.body);
}

} // namespace

// -- configuration -------------------------------------------------------------------

std::string validate(const raft_config& x) {
  if (x.heartbeat_interval_ms < 1)
    return "heartbeat_interval_ms must be at least 1";
  if (x.election_timeout_ms < 3 * x.heartbeat_interval_ms)
    return "election_timeout_ms must be at least 3 x heartbeat_interval_ms";
  if (x.snapshot_timeout_ms <= x.heartbeat_interval_ms)
    return "snapshot_timeout_ms must be above heartbeat_interval_ms";
  if (x.append_entries_max < 1 || x.inflight_appends_max < 1)
    return "append_entries_max and inflight_appends_max must be at least 1";
  if (x.command_bytes_max > x.append_bytes_max)
    return "command_bytes_max must not exceed append_bytes_max";
  if (x.snapshot_threshold_entries < 1
      || x.snapshot_trailing_entries >= x.snapshot_threshold_entries)
    return "snapshot_trailing_entries must be below snapshot_threshold_entries";
  if (x.snapshot_threshold_entries + x.uncommitted_entries_max >= x.log_entries_max)
    return "log_entries_max must exceed snapshot_threshold_entries + uncommitted_entries_max";
  if (x.persists_in_flight_max < 1 || x.held_messages_max < 1)
    return "persists_in_flight_max and held_messages_max must be at least 1";
  if (x.members_max < 1)
    return "members_max must be at least 1";
  return {};
}

std::string check(const persisted_state& x) {
  term_t prev = x.prev_term;
  for (std::size_t i = 0; i < x.entries.size(); ++i) {
    const auto& e = x.entries[i];
    if (i > 0 && e.index != x.entries[i - 1].index + 1)
      return "log has a gap after index " + std::to_string(x.entries[i - 1].index);
    if (e.index == 0 || e.term == 0)
      return "log holds index or term 0";
    if (e.term < prev)
      return "log terms go down at index " + std::to_string(e.index);
    prev = e.term;
  }
  if (!x.entries.empty() && x.entries.back().term > x.hard.term)
    return "log holds term " + std::to_string(x.entries.back().term) + " above the stored term "
           + std::to_string(x.hard.term);
  if (x.snap && x.snap->meta.term > x.hard.term)
    return "snapshot term above the stored term";
  if (x.snap && x.snap->meta.index > 0 && !x.snap->data)
    return "snapshot without data";
  if (!x.snap && !x.entries.empty() && x.entries.front().index != 1)
    return "log starts at index " + std::to_string(x.entries.front().index) + " without snapshot";
  if (!x.entries.empty() && x.entries.front().index == 1 && x.prev_term != 0)
    return "log starts at index 1 with a previous term";
  return {};
}

std::size_t trim_to_snapshot(persisted_state& x) {
  if (!x.snap || x.entries.empty())
    return 0;
  const auto& s = x.snap->meta;
  auto first = x.entries.front().index;
  auto last = x.entries.back().index;
  bool keep = false;
  if (first <= s.index && s.index <= last)
    keep = x.entries[s.index - first].term == s.term;
  else if (first == s.index + 1)
    keep = x.prev_term == s.term;
  if (keep)
    return 0;
  auto dropped = x.entries.size();
  x.entries.clear();
  x.prev_term = s.term;
  return dropped;
}

persisted_state bootstrap_state(const std::vector<node_id>& voters) {
  configuration c;
  c.voters.insert(voters.begin(), voters.end());
  persisted_state result;
  result.hard.term = 1;
  result.entries.push_back(entry{1, 1, entry_kind::config, encode_configuration(c)});
  return result;
}

const char* to_string(role x) {
  switch (x) {
    case role::follower:
      return "follower";
    case role::pre_candidate:
      return "pre_candidate";
    case role::candidate:
      return "candidate";
    case role::leader:
      return "leader";
  }
  return "unknown";
}

// -- constructors -------------------------------------------------------------------

raft_core::raft_core(node_id self, raft_config cfg, persisted_state state, std::uint64_t seed)
  : self_(std::move(self)), cfg_(cfg), rng_(seed) {
  RAFT_CHECK(!self_.empty());
  RAFT_CHECK(validate(cfg_).empty());
  RAFT_CHECK(check(state).empty());
  term_ = state.hard.term;
  vote_ = state.hard.vote;
  trim_to_snapshot(state);
  if (state.snap) {
    snapshot_ = *state.snap;
    const auto& s = snapshot_.meta;
    log_start_ = s.index;
    log_start_term_ = s.term;
    if (!state.entries.empty() && state.entries.front().index <= s.index) {
      // Trailing entries before the snapshot stay for slow followers.
      log_start_ = state.entries.front().index - 1;
      log_start_term_ = state.prev_term;
    }
    commit_ = applied_ = s.index;
  }
  entries_.assign(state.entries.begin(), state.entries.end());
  durable_last_ = last_index();
  // A segment on disk holds many entries, so the loaded log can reach far behind the snapshot:
  // keep only the trailing entries in memory, as snapshot_taken does, else a restarted leader
  // counts a full log and refuses every proposal.
  if (state.snap) {
    auto s_index = snapshot_.meta.index;
    auto upto = s_index > cfg_.snapshot_trailing_entries ? s_index - cfg_.snapshot_trailing_entries : 0;
    if (upto > log_start_)
      compact(upto);
  }
  refresh_membership();
}

// -- inputs -------------------------------------------------------------------------

raft_core::effects raft_core::start(time_ms now_ms) {
  begin(now_ms);
  reset_election_timer();
  note(self_ + " starts in term " + std::to_string(term_) + " with log "
       + std::to_string(log_start_) + ".." + std::to_string(last_index()) + ", "
       + to_string(config_));
  return finish();
}

raft_core::effects raft_core::tick(time_ms now_ms) {
  begin(now_ms);
  if (role_ == role::leader) {
    if (now_ms_ >= heartbeat_due_ms_) {
      heartbeat_due_ms_ = now_ms_ + cfg_.heartbeat_interval_ms;
      send_heartbeats();
    }
    if (role_ == role::leader && !transfer_target_.empty() && now_ms_ >= transfer_deadline_ms_) {
      note(self_ + " aborts the leadership transfer to " + transfer_target_);
      transfer_target_.clear();
    }
    if (now_ms_ >= quorum_check_due_ms_) {
      quorum_check_due_ms_ = now_ms_ + cfg_.election_timeout_ms;
      check_quorum();
    }
  } else if (now_ms_ >= election_deadline_ms_) {
    if (writes_.size() >= cfg_.persists_in_flight_max) {
      // A node whose disk is this far behind would only stall a term: wait for it.
      reset_election_timer();
    } else {
      campaign(false);
    }
  }
  return finish();
}

raft_core::effects raft_core::step(const message& m, time_ms now_ms) {
  begin(now_ms);
  if (m.to != self_ || m.from.empty() || m.from == self_) {
    note(self_ + " drops a misaddressed " + to_string(m));
    return finish();
  }
  // A full disk queue: drop what could need a write, as if lost (the sender retries).
  bool may_write = m.term > term_ || std::holds_alternative<vote_request>(m.body)
                   || std::holds_alternative<append_request>(m.body)
                   || std::holds_alternative<install_snapshot>(m.body)
                   || std::holds_alternative<timeout_now>(m.body);
  if (may_write && writes_.size() >= cfg_.persists_in_flight_max) {
    ++dropped_;
    return finish();
  }
  if (m.term > term_) {
    auto vr = std::get_if<vote_request>(&m.body);
    auto vresp = std::get_if<vote_response>(&m.body);
    if (vr != nullptr) {
      if (!vr->transfer && in_lease()) {
        // Thesis §4.2.3: a voter that hears from a leader does not help depose it.
        return finish();
      }
      if (!vr->pre_vote)
        become_follower(m.term, node_id{});
    } else if (vresp != nullptr && vresp->pre_vote && vresp->granted) {
      // A granted pre-vote carries the term it was asked for; nothing to adopt.
    } else {
      bool from_leader = std::holds_alternative<append_request>(m.body)
                         || std::holds_alternative<heartbeat>(m.body)
                         || std::holds_alternative<install_snapshot>(m.body);
      become_follower(m.term, from_leader ? m.from : node_id{});
    }
  } else if (m.term < term_) {
    answer_stale(m);
    return finish();
  }
  std::visit(overloaded{
               [&](const vote_request& x) { on_vote_request(m, x); },
               [&](const vote_response& x) { on_vote_response(m, x); },
               [&](const append_request& x) { on_append_request(m, x); },
               [&](const append_response& x) { on_append_response(m, x); },
               [&](const heartbeat& x) { on_heartbeat(m, x); },
               [&](const heartbeat_response&) { on_heartbeat_response(m); },
               [&](const install_snapshot& x) { on_install_snapshot(m, x); },
               [&](const install_snapshot_response& x) { on_install_snapshot_response(m, x); },
               [&](const timeout_now&) { on_timeout_now(m); },
             },
             m.body);
  return finish();
}

raft_core::propose_result raft_core::propose(std::string command, time_ms now_ms) {
  begin(now_ms);
  propose_result result;
  result.refused = refuse_proposal(command.size());
  if (result.refused.empty()) {
    append_as_leader(entry_kind::command, std::move(command));
    result.accepted = true;
    result.index = last_index();
    result.term = term_;
  }
  result.leader = leader_;
  result.fx = finish();
  return result;
}

raft_core::propose_result raft_core::change_membership(const membership_change& x,
                                                       time_ms now_ms) {
  begin(now_ms);
  propose_result result;
  result.refused = refuse_proposal(0);
  configuration next = config_;
  if (result.refused.empty()) {
    using kind = membership_change::kind;
    if (commit_ < term_start_index_)
      result.refused = "the leader has not committed an entry of its term yet";
    else if (config_index_ > commit_)
      result.refused = "a membership change is in progress";
    else if (x.node.empty())
      result.refused = "empty node id";
    else if (x.what == kind::add_learner) {
      if (config_.contains(x.node))
        result.refused = x.node + " is already a member";
      else if (config_.voters.size() + config_.learners.size() >= cfg_.members_max)
        result.refused = "members_max reached";
      else
        next.learners.insert(x.node);
    } else if (x.what == kind::promote) {
      if (config_.learners.count(x.node) == 0)
        result.refused = x.node + " is not a learner";
      else if (!caught_up(x.node))
        result.refused = x.node + " has not caught up yet";
      else {
        next.learners.erase(x.node);
        next.voters.insert(x.node);
      }
    } else {
      if (!config_.contains(x.node))
        result.refused = x.node + " is not a member";
      else if (x.node == self_)
        result.refused = "the leader does not remove itself: transfer leadership first";
      else {
        next.learners.erase(x.node);
        next.voters.erase(x.node);
      }
    }
  }
  if (result.refused.empty()) {
    note(self_ + " proposes " + to_string(next));
    append_as_leader(entry_kind::config, encode_configuration(next));
    result.accepted = true;
    result.index = last_index();
    result.term = term_;
  }
  result.leader = leader_;
  result.fx = finish();
  return result;
}

raft_core::transfer_result raft_core::transfer_leadership(const node_id& target,
                                                          time_ms now_ms) {
  begin(now_ms);
  transfer_result result;
  if (role_ != role::leader)
    result.refused = "not the leader";
  else if (target == self_)
    result.refused = "already the leader";
  else if (!config_.is_voter(target))
    result.refused = target + " is not a voter";
  else if (!transfer_target_.empty() && transfer_target_ != target)
    result.refused = "a transfer to " + transfer_target_ + " is in progress";
  if (result.refused.empty() && transfer_target_.empty()) {
    note(self_ + " transfers leadership to " + target);
    transfer_target_ = target;
    transfer_deadline_ms_ = now_ms_ + cfg_.election_timeout_ms;
    timeout_now_sent_ = false;
    auto& pr = progress_.at(target);
    maybe_send_timeout_now(target, pr);
    if (!timeout_now_sent_)
      send_append(target, pr, true); // even empty: a reject reveals a gap to fill
  }
  result.fx = finish();
  return result;
}

raft_core::effects raft_core::persisted(std::uint64_t id, time_ms now_ms) {
  begin(now_ms);
  if (writes_.empty() || id < writes_.front().id || id >= next_write_id_) {
    note(self_ + " ignores the acknowledgement of unknown write " + std::to_string(id));
    return finish();
  }
  while (!writes_.empty() && writes_.front().id <= id) {
    durable_last_ = writes_.front().last_after;
    writes_.pop_front();
  }
  // Release replies whose writes are all durable, in the order they were made.
  while (!held_.empty() && held_.front().after <= id) {
    fx_.messages.push_back(std::move(held_.front().msg));
    held_.pop_front();
  }
  if (role_ == role::candidate && !self_vote_durable_ && self_vote_write_ <= id) {
    self_vote_durable_ = true;
    count_votes();
  }
  if (role_ == role::leader)
    maybe_commit();
  return finish();
}

raft_core::effects raft_core::snapshot_taken(index_t index, snapshot_bytes data, time_ms now_ms) {
  begin(now_ms);
  if (!data || index <= snapshot_.meta.index || index > applied_ || index <= log_start_
      || writes_.size() >= cfg_.persists_in_flight_max) {
    note(self_ + " ignores a snapshot at " + std::to_string(index));
    return finish();
  }
  snapshot s;
  s.meta.index = index;
  s.meta.term = *term_at(index);
  s.meta.config = membership_at(index);
  s.data = std::move(data);
  snapshot_ = s;
  snapshot_requested_ = 0;
  auto upto = index > cfg_.snapshot_trailing_entries ? index - cfg_.snapshot_trailing_entries : 0;
  upto = std::max(upto, log_start_);
  compact(upto);
  auto& w = write();
  w.snap = std::move(s);
  w.snapshot_resets_log = false;
  w.compact_to = upto;
  note(self_ + " took a snapshot at " + std::to_string(index) + ", log now starts after "
       + std::to_string(log_start_));
  return finish();
}

// -- properties ---------------------------------------------------------------------

term_t raft_core::last_term() const {
  return entries_.empty() ? log_start_term_ : entries_.back().term;
}

std::optional<term_t> raft_core::term_at(index_t i) const {
  if (i == log_start_)
    return log_start_term_;
  if (i < log_start_ || i > last_index())
    return std::nullopt;
  return entries_[i - log_start_ - 1].term;
}

const entry& raft_core::entry_at(index_t i) const {
  RAFT_CHECK(i > log_start_ && i <= last_index());
  return entries_[i - log_start_ - 1];
}

index_t raft_core::stable_index() const {
  index_t result = std::min(durable_last_, last_index());
  for (const auto& w : writes_)
    if (w.first_changed > 0)
      result = std::min(result, w.first_changed - 1);
  if (current_write_ && current_first_changed_ > 0)
    result = std::min(result, current_first_changed_ - 1);
  return result;
}

const raft_core::progress* raft_core::progress_of(const node_id& peer) const {
  auto i = progress_.find(peer);
  return i == progress_.end() ? nullptr : &i->second;
}

bool raft_core::caught_up(const node_id& learner) const {
  auto pr = progress_of(learner);
  return role_ == role::leader && pr != nullptr
         && pr->match + cfg_.catch_up_entries_max >= last_index();
}

std::string raft_core::check_invariants() const {
  if (applied_ > commit_)
    return "applied above commit";
  if (commit_ > last_index())
    return "commit above the last index";
  if (snapshot_.meta.index > applied_)
    return "snapshot above the applied index";
  if (log_start_ > snapshot_.meta.index)
    return "log compacted beyond the snapshot";
  if (log_start_ == snapshot_.meta.index && log_start_term_ != snapshot_.meta.term)
    return "log start term differs from the snapshot's";
  term_t prev = log_start_term_;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].index != log_start_ + 1 + i)
      return "log index out of place at " + std::to_string(log_start_ + 1 + i);
    if (entries_[i].term < prev)
      return "log terms go down at " + std::to_string(entries_[i].index);
    prev = entries_[i].term;
  }
  if (last_term() > term_)
    return "log holds a term above the current term";
  if (role_ == role::leader) {
    if (leader_ != self_)
      return "leader does not name itself";
    if (!config_.is_voter(self_))
      return "leader is not a voter";
    for (const auto& [id, pr] : progress_) {
      if (!config_.contains(id) || id == self_)
        return "progress for a non-member " + id;
      if (pr.match >= pr.next)
        return "progress of " + id + ": match not below next";
      if (pr.next > last_index() + 1)
        return "progress of " + id + ": next beyond the log";
      if (pr.inflight.size() > cfg_.inflight_appends_max)
        return "progress of " + id + ": too many appends in flight";
      if (!std::is_sorted(pr.inflight.begin(), pr.inflight.end()))
        return "progress of " + id + ": appends in flight out of order";
    }
    if (progress_.size() + 1 != config_.voters.size() + config_.learners.size())
      return "progress does not cover every member";
  } else {
    if (!progress_.empty())
      return "progress held by a non-leader";
    if (!transfer_target_.empty())
      return "transfer target held by a non-leader";
  }
  if (leader_ == self_ && role_ != role::leader)
    return "names itself leader without being one";
  if (held_.size() > cfg_.held_messages_max)
    return "too many held replies";
  if (writes_.size() > cfg_.persists_in_flight_max + 1)
    return "too many writes in flight";
  if (current_write_)
    return "a write left unfinished";
  if (config_.voters.size() + config_.learners.size() > cfg_.members_max)
    return "too many members";
  if (membership_at(last_index()) != config_)
    return "membership differs from the log's newest configuration";
  return {};
}

// -- steps ----------------------------------------------------------------------------

void raft_core::begin(time_ms now_ms) {
  RAFT_CHECK(!current_write_);
  now_ms_ = std::max(now_ms_, now_ms);
  fx_ = effects{};
  role_before_ = role_;
  leader_before_ = leader_;
  term_before_ = term_;
}

raft_core::effects raft_core::finish() {
  // Hand out committed entries.
  if (commit_ > applied_) {
    for (index_t i = applied_ + 1; i <= commit_; ++i)
      fx_.committed.push_back(entry_at(i));
    applied_ = commit_;
  }
  // Ask for a snapshot once enough entries were applied since the last one (again if the
  // request seems lost).
  // A log close to log_entries_max asks at every input: proposals are refused once it is full, so
  // waiting for more applied entries could wait forever.
  auto since = applied_ - snapshot_.meta.index;
  bool log_tight = last_index() - log_start_ + cfg_.uncommitted_entries_max >= cfg_.log_entries_max;
  if (since >= cfg_.snapshot_threshold_entries
      && (snapshot_requested_ == 0 || log_tight
          || applied_ >= snapshot_requested_ + cfg_.snapshot_threshold_entries)) {
    snapshot_requested_ = applied_;
    fx_.snapshot_wanted = applied_;
  }
  // Seal this input's write.
  if (current_write_) {
    writes_.push_back(write_record{current_write_->id, current_first_changed_, last_index()});
    fx_.persist = std::move(*current_write_);
    current_write_.reset();
    current_first_changed_ = 0;
  }
  if (role_ != role_before_ || leader_ != leader_before_ || term_ != term_before_)
    fx_.role_changed = role_change{role_, term_, leader_};
  time_ms wake = election_deadline_ms_;
  if (role_ == role::leader) {
    wake = std::min(heartbeat_due_ms_, quorum_check_due_ms_);
    if (!transfer_target_.empty())
      wake = std::min(wake, transfer_deadline_ms_);
  }
  fx_.wake_at = std::max(wake, now_ms_ + 1);
  return std::move(fx_);
}

void raft_core::answer_stale(const message& m) {
  // A message of an older term: tell the sender our term so a deposed leader or a candidate
  // that lost touch steps down (thesis §9.6 explains why pre-vote needs this for leaders).
  std::visit(overloaded{
               [&](const append_request&) {
                 reply(m, append_response{false, 0, 0}, term_);
               },
               [&](const heartbeat&) { reply(m, heartbeat_response{}, term_); },
               [&](const install_snapshot&) {
                 reply(m, install_snapshot_response{0}, term_);
               },
               [&](const vote_request& x) {
                 reply(m, vote_response{false, x.pre_vote}, term_);
               },
               [&](const auto&) {
                 // a stale reply: nothing to do
               },
             },
             m.body);
}

void raft_core::on_vote_request(const message& m, const vote_request& x) {
  // Figure 2, RequestVote receiver: at most one vote per term, only for an up-to-date log
  // (§5.4.1). A pre-vote is answered as the vote would be, without changing anything.
  bool can_vote = vote_ == m.from || (vote_.empty() && leader_.empty())
                  || (x.pre_vote && m.term > term_);
  bool up_to_date = x.last_term > last_term()
                    || (x.last_term == last_term() && x.last_index >= last_index());
  bool grant = can_vote && up_to_date;
  if (grant && !x.pre_vote) {
    vote_ = m.from;
    write().hard = hard_state{term_, vote_};
    reset_election_timer();
    note(self_ + " votes for " + m.from + " in term " + std::to_string(term_));
  }
  reply(m, vote_response{grant, x.pre_vote}, grant && x.pre_vote ? m.term : term_);
}

void raft_core::on_vote_response(const message& m, const vote_response& x) {
  if (x.pre_vote) {
    if (role_ != role::pre_candidate)
      return;
    if (x.granted && m.term != term_ + 1)
      return; // an answer to an older pre-vote
    if (!x.granted && m.term != term_)
      return;
  } else if (role_ != role::candidate || m.term != term_) {
    return;
  }
  if (!config_.is_voter(m.from))
    return;
  votes_.emplace(m.from, x.granted);
  count_votes();
}

void raft_core::on_append_request(const message& m, const append_request& x) {
  if (!accept_from_leader(m))
    return;
  // Validate before trusting: bounded, contiguous, terms not above the sender's, not going down.
  bool ok = x.entries.size() <= cfg_.log_entries_max && x.prev_term <= m.term;
  term_t prev_term = x.prev_term;
  for (std::size_t i = 0; ok && i < x.entries.size(); ++i) {
    const auto& e = x.entries[i];
    ok = e.index == x.prev_index + 1 + i && e.term >= prev_term && e.term <= m.term;
    prev_term = e.term;
  }
  if (!ok) {
    note(self_ + " drops a malformed " + to_string(m));
    return;
  }
  // Entries up to the commit index are committed and equal the leader's (§5.4.3): skip them.
  index_t prev = x.prev_index;
  term_t pterm = x.prev_term;
  std::size_t skip = 0;
  if (prev < commit_) {
    skip = static_cast<std::size_t>(std::min<index_t>(x.entries.size(), commit_ - prev));
    if (prev + skip < commit_) {
      reply(m, append_response{true, commit_, 0}, term_);
      return;
    }
    if (skip > 0) {
      pterm = x.entries[skip - 1].term;
      prev += skip;
    }
  }
  if (!log_matches(prev, pterm)) {
    reply(m, append_response{false, x.prev_index, conflict_hint(prev)}, term_);
    return;
  }
  // §5.3: delete an existing entry that conflicts with a new one and all that follow it; never
  // truncate entries that match (the request may be an old, reordered one).
  std::vector<entry> fresh;
  for (std::size_t i = skip; i < x.entries.size(); ++i) {
    const auto& e = x.entries[i];
    if (!fresh.empty() || e.index > last_index() || *term_at(e.index) != e.term)
      fresh.push_back(e);
  }
  if (!fresh.empty())
    append_entries(std::move(fresh));
  index_t match = x.prev_index + x.entries.size();
  commit_to(std::min(x.commit, match));
  reply(m, append_response{true, match, 0}, term_);
}

void raft_core::on_append_response(const message& m, const append_response& x) {
  if (role_ != role::leader)
    return;
  auto i = progress_.find(m.from);
  if (i == progress_.end())
    return;
  auto& pr = i->second;
  pr.recent_active = true;
  using mode = progress::mode;
  if (!x.success) {
    if (x.index == 0)
      return; // an answer to a stale leader's message, not ours
    if (pr.state == mode::replicate) {
      if (x.index <= pr.match)
        return; // stale
    } else if (pr.state == mode::probe) {
      if (x.index != pr.next - 1)
        return; // stale
    } else {
      return;
    }
    pr.state = mode::probe;
    pr.inflight.clear();
    pr.probe_sent = false;
    pr.next = std::max(pr.match + 1, std::min(x.hint, x.index));
    send_append(m.from, pr, true);
    return;
  }
  if (x.index > last_index())
    return; // not from this leader's log: ignore
  bool updated = x.index > pr.match;
  if (updated)
    pr.match = x.index;
  pr.next = std::max(pr.next, pr.match + 1);
  while (!pr.inflight.empty() && pr.inflight.front() <= x.index)
    pr.inflight.pop_front();
  if (pr.state == mode::probe || (pr.state == mode::snapshot && pr.match >= pr.pending_snapshot)) {
    pr.state = mode::replicate;
    pr.next = pr.match + 1;
    pr.inflight.clear();
    pr.probe_sent = false;
  }
  if (updated) {
    maybe_commit();
    maybe_send_timeout_now(m.from, pr);
  }
  while (send_append(m.from, pr, false)) {
    // pipelining: fill the window
  }
}

void raft_core::on_heartbeat(const message& m, const heartbeat& x) {
  if (!accept_from_leader(m))
    return;
  // The leader sends min(commit, our match): entries we hold and acknowledged to it.
  commit_to(std::min(x.commit, last_index()));
  reply(m, heartbeat_response{}, term_);
}

void raft_core::on_heartbeat_response(const message& m) {
  if (role_ != role::leader)
    return;
  auto i = progress_.find(m.from);
  if (i == progress_.end())
    return;
  auto& pr = i->second;
  pr.recent_active = true;
  // Alive: retry a probe or free a slot of a full window (its append may be lost).
  if (pr.state == progress::mode::probe)
    pr.probe_sent = false;
  else if (pr.state == progress::mode::replicate && pr.inflight.size() >= cfg_.inflight_appends_max)
    pr.inflight.pop_front();
  if (pr.match < last_index())
    send_append(m.from, pr, true);
}

void raft_core::on_install_snapshot(const message& m, const install_snapshot& x) {
  if (!accept_from_leader(m))
    return;
  const auto& s = x.meta;
  if (s.index <= commit_) {
    reply(m, install_snapshot_response{commit_}, term_);
    return;
  }
  if (log_matches(s.index, s.term)) {
    // We hold the entry: the snapshot's entries are committed, keep our log (§7).
    commit_to(s.index);
    reply(m, install_snapshot_response{s.index}, term_);
    return;
  }
  if (!x.data || s.term == 0 || s.term > m.term || s.config.voters.empty()
      || s.config.voters.size() + s.config.learners.size() > cfg_.members_max) {
    note(self_ + " drops a malformed " + to_string(m));
    return;
  }
  snapshot snap{s, x.data};
  reset_log(snap);
  snapshot_ = snap;
  snapshot_requested_ = 0;
  commit_ = applied_ = s.index;
  refresh_membership();
  auto& w = write();
  w.snap = snap;
  w.snapshot_resets_log = true;
  w.compact_to = 0;
  w.entries.clear();
  current_first_changed_ = 1;
  fx_.restore = snap;
  note(self_ + " installs a snapshot at " + std::to_string(s.index) + " from " + m.from);
  reply(m, install_snapshot_response{s.index}, term_);
}

void raft_core::on_install_snapshot_response(const message& m,
                                             const install_snapshot_response& x) {
  if (role_ != role::leader)
    return;
  auto i = progress_.find(m.from);
  if (i == progress_.end() || x.index > last_index())
    return;
  auto& pr = i->second;
  pr.recent_active = true;
  if (x.index == 0)
    return;
  bool updated = x.index > pr.match;
  pr.match = std::max(pr.match, x.index);
  if (pr.state == progress::mode::snapshot) {
    pr.state = progress::mode::probe;
    pr.probe_sent = false;
    pr.next = pr.match + 1;
  }
  pr.next = std::max(pr.next, pr.match + 1);
  if (updated) {
    maybe_commit();
    maybe_send_timeout_now(m.from, pr);
  }
  send_append(m.from, pr, false);
}

void raft_core::on_timeout_now(const message& m) {
  if (role_ != role::follower || !config_.is_voter(self_))
    return;
  note(self_ + " campaigns at once: leadership transfer from " + m.from);
  campaign(true);
}

bool raft_core::accept_from_leader(const message& m) {
  // Messages only a leader of term m.term sends (its term equals ours here).
  if (role_ == role::leader) {
    note(self_ + " sees another leader " + m.from + " in its term " + std::to_string(term_)
         + ": election safety violated");
    return false;
  }
  if (role_ != role::follower || leader_ != m.from)
    become_follower(term_, m.from);
  leader_contact_ms_ = now_ms_;
  leader_contact_ = true;
  reset_election_timer();
  return true;
}

// -- roles --------------------------------------------------------------------------

void raft_core::become_follower(term_t term, const node_id& leader) {
  RAFT_CHECK(term >= term_);
  if (term > term_) {
    term_ = term;
    vote_.clear();
    write().hard = hard_state{term_, vote_};
    leader_contact_ = false;
  }
  if (role_ != role::follower || leader_ != leader)
    note(self_ + " follows " + (leader.empty() ? std::string{"no leader"} : leader) + " in term "
         + std::to_string(term_));
  role_ = role::follower;
  leader_ = leader;
  progress_.clear();
  votes_.clear();
  transfer_target_.clear();
  self_vote_durable_ = false;
  reset_election_timer();
}

void raft_core::become_pre_candidate() {
  role_ = role::pre_candidate;
  leader_.clear();
  progress_.clear();
  votes_.clear();
  votes_[self_] = true;
  reset_election_timer();
  note(self_ + " asks for pre-votes for term " + std::to_string(term_ + 1));
  for (const auto& v : config_.voters)
    if (v != self_)
      send(message{self_, v, term_ + 1, vote_request{last_index(), last_term(), true, false}});
  count_votes();
}

void raft_core::become_candidate(bool transfer) {
  term_ += 1;
  vote_ = self_;
  role_ = role::candidate;
  leader_.clear();
  leader_contact_ = false;
  progress_.clear();
  votes_.clear();
  auto& w = write();
  w.hard = hard_state{term_, vote_};
  self_vote_write_ = w.id;
  self_vote_durable_ = false;
  reset_election_timer();
  note(self_ + " campaigns in term " + std::to_string(term_));
  for (const auto& v : config_.voters)
    if (v != self_)
      send(message{self_, v, term_, vote_request{last_index(), last_term(), false, transfer}});
}

void raft_core::become_leader() {
  RAFT_CHECK(role_ == role::candidate && config_.is_voter(self_));
  role_ = role::leader;
  leader_ = self_;
  votes_.clear();
  transfer_target_.clear();
  progress_.clear();
  sync_progress();
  heartbeat_due_ms_ = now_ms_ + cfg_.heartbeat_interval_ms;
  quorum_check_due_ms_ = now_ms_ + cfg_.election_timeout_ms;
  note(self_ + " leads term " + std::to_string(term_));
  // §5.4.2 / §8: a no-op of its own term lets the leader commit what earlier terms left.
  append_as_leader(entry_kind::noop, std::string{});
  term_start_index_ = last_index();
}

void raft_core::campaign(bool transfer) {
  if (!config_.is_voter(self_)) {
    reset_election_timer();
    return;
  }
  if (cfg_.pre_vote && !transfer)
    become_pre_candidate();
  else
    become_candidate(transfer);
}

void raft_core::count_votes() {
  // A pre-candidate counts itself at once; a candidate once its vote is durable.
  std::size_t granted = 0;
  std::size_t rejected = 0;
  for (const auto& [id, yes] : votes_)
    if (config_.is_voter(id))
      (yes ? granted : rejected) += 1;
  if (role_ == role::candidate && self_vote_durable_)
    granted += 1;
  auto q = config_.quorum();
  if (granted >= q) {
    if (role_ == role::pre_candidate)
      become_candidate(false);
    else if (role_ == role::candidate)
      become_leader();
  } else if (rejected >= q) {
    become_follower(term_, node_id{});
  }
}

bool raft_core::in_lease() const {
  if (!cfg_.check_quorum)
    return false;
  if (role_ == role::leader)
    return true;
  return !leader_.empty() && leader_contact_
         && now_ms_ - leader_contact_ms_ < cfg_.election_timeout_ms;
}

void raft_core::reset_election_timer() {
  election_deadline_ms_ = now_ms_ + random_election_timeout();
}

// -- leader -------------------------------------------------------------------------

bool raft_core::send_append(const node_id& peer, progress& pr, bool send_if_empty) {
  using mode = progress::mode;
  if (pr.state == mode::snapshot || (pr.state == mode::probe && pr.probe_sent)
      || (pr.state == mode::replicate && pr.inflight.size() >= cfg_.inflight_appends_max))
    return false;
  auto prev = pr.next - 1;
  auto prev_term = term_at(prev);
  if (!prev_term) {
    send_snapshot(peer, pr);
    return false;
  }
  append_request req;
  req.prev_index = prev;
  req.prev_term = *prev_term;
  req.commit = commit_;
  std::size_t bytes = 0;
  for (index_t i = pr.next; i <= last_index() && req.entries.size() < cfg_.append_entries_max; ++i) {
    const auto& e = entry_at(i);
    if (!req.entries.empty() && bytes + e.data.size() > cfg_.append_bytes_max)
      break;
    bytes += e.data.size();
    req.entries.push_back(e);
  }
  if (req.entries.empty() && !send_if_empty && pr.state == mode::replicate)
    return false;
  if (pr.state == mode::replicate && req.entries.empty()) {
    // Nothing new, but the follower is behind: an empty append makes it report its gap (the
    // last append may be lost), and a reject switches to probing.
    send(message{self_, peer, term_, std::move(req)});
    return false;
  }
  if (pr.state == mode::replicate) {
    pr.next = req.entries.back().index + 1;
    pr.inflight.push_back(req.entries.back().index);
  } else {
    pr.probe_sent = true;
  }
  send(message{self_, peer, term_, std::move(req)});
  return pr.state == mode::replicate;
}

void raft_core::send_snapshot(const node_id& peer, progress& pr) {
  RAFT_CHECK(snapshot_.data != nullptr && snapshot_.meta.index >= log_start_);
  pr.state = progress::mode::snapshot;
  pr.pending_snapshot = snapshot_.meta.index;
  pr.snapshot_sent_ms = now_ms_;
  pr.inflight.clear();
  pr.probe_sent = false;
  note(self_ + " sends a snapshot at " + std::to_string(snapshot_.meta.index) + " to " + peer);
  send(message{self_, peer, term_, install_snapshot{snapshot_.meta, snapshot_.data}});
}

void raft_core::send_heartbeats() {
  for (auto& [peer, pr] : progress_) {
    if (pr.state == progress::mode::snapshot
        && now_ms_ - pr.snapshot_sent_ms >= cfg_.snapshot_timeout_ms) {
      pr.state = progress::mode::probe;
      pr.probe_sent = false;
      send_append(peer, pr, true);
    }
    send(message{self_, peer, term_, heartbeat{std::min(commit_, pr.match)}});
  }
}

void raft_core::broadcast_append() {
  for (auto& [peer, pr] : progress_)
    send_append(peer, pr, false);
}

void raft_core::maybe_commit() {
  // §5.3/§5.4.2: the highest index stored on a quorum of voters, if it is of this term.
  std::vector<index_t> matches;
  for (const auto& v : config_.voters) {
    if (v == self_) {
      matches.push_back(stable_index());
    } else {
      auto pr = progress_of(v);
      matches.push_back(pr ? pr->match : 0);
    }
  }
  std::sort(matches.begin(), matches.end(), std::greater<index_t>{});
  auto n = matches[config_.quorum() - 1];
  if (n > commit_ && term_at(n) == term_) {
    commit_ = n;
  }
}

void raft_core::maybe_send_timeout_now(const node_id& peer, const progress& pr) {
  if (transfer_target_ != peer || timeout_now_sent_ || pr.match != last_index())
    return;
  timeout_now_sent_ = true;
  send(message{self_, peer, term_, timeout_now{}});
}

void raft_core::check_quorum() {
  if (!cfg_.check_quorum)
    return;
  std::size_t active = config_.is_voter(self_) ? 1 : 0;
  for (auto& [peer, pr] : progress_) {
    if (pr.recent_active && config_.is_voter(peer))
      ++active;
    pr.recent_active = false;
  }
  if (active < config_.quorum()) {
    note(self_ + " steps down: no quorum heard within the election timeout");
    become_follower(term_, node_id{});
  }
}

void raft_core::sync_progress() {
  // Followers the leader replicates to: every member but itself.
  for (auto i = progress_.begin(); i != progress_.end();) {
    if (!config_.contains(i->first))
      i = progress_.erase(i);
    else
      ++i;
  }
  auto add = [&](const node_id& x) {
    if (x == self_ || progress_.count(x) > 0)
      return;
    progress p;
    p.next = last_index() + 1;
    p.recent_active = true; // give a new member one check-quorum round
    progress_.emplace(x, p);
  };
  for (const auto& v : config_.voters)
    add(v);
  for (const auto& l : config_.learners)
    add(l);
  if (!transfer_target_.empty() && !config_.is_voter(transfer_target_))
    transfer_target_.clear();
}

std::string raft_core::refuse_proposal(std::size_t bytes) const {
  if (role_ != role::leader)
    return "not the leader";
  if (!transfer_target_.empty())
    return "leadership transfer in progress";
  if (bytes > cfg_.command_bytes_max)
    return "command larger than command_bytes_max";
  if (last_index() - commit_ >= cfg_.uncommitted_entries_max)
    return "too many uncommitted entries";
  if (last_index() - log_start_ >= cfg_.log_entries_max)
    return "log full until a snapshot compacts it";
  if (writes_.size() >= cfg_.persists_in_flight_max)
    return "disk busy";
  return {};
}

void raft_core::append_as_leader(entry_kind kind, std::string data) {
  RAFT_CHECK(role_ == role::leader);
  std::vector<entry> xs;
  xs.push_back(entry{last_index() + 1, term_, kind, std::move(data)});
  append_entries(std::move(xs));
  broadcast_append();
  maybe_commit(); // nothing yet: our own entry counts once durable
}

// -- log ----------------------------------------------------------------------------

bool raft_core::log_matches(index_t i, term_t t) const {
  auto x = term_at(i);
  return x && *x == t;
}

void raft_core::append_entries(std::vector<entry> xs) {
  RAFT_CHECK(!xs.empty());
  auto first = xs.front().index;
  RAFT_CHECK(first > commit_ && first > log_start_ && first <= last_index() + 1);
  if (role_ == role::leader)
    RAFT_CHECK(first == last_index() + 1); // Leader Append-Only (Figure 3)
  bool truncated = first <= last_index();
  while (last_index() >= first)
    entries_.pop_back();
  bool config_changed = truncated && config_index_ >= first;
  for (auto& e : xs) {
    RAFT_CHECK(e.index == last_index() + 1);
    if (e.kind == entry_kind::config)
      config_changed = true;
    entries_.push_back(e);
  }
  // Record the write: truncate at `first`, then the new entries.
  auto& w = write();
  if (!w.entries.empty()) {
    if (first >= w.entries.front().index)
      w.entries.resize(first - w.entries.front().index);
    else
      w.entries.clear();
  }
  current_first_changed_ =
    current_first_changed_ == 0 ? first : std::min(current_first_changed_, first);
  for (auto& e : xs)
    w.entries.push_back(std::move(e));
  if (config_changed)
    refresh_membership();
}

void raft_core::commit_to(index_t i) {
  if (i > commit_)
    commit_ = std::min(i, last_index());
}

void raft_core::reset_log(const snapshot& s) {
  entries_.clear();
  log_start_ = s.meta.index;
  log_start_term_ = s.meta.term;
}

void raft_core::compact(index_t upto) {
  RAFT_CHECK(upto >= log_start_ && upto <= snapshot_.meta.index);
  if (upto == log_start_)
    return;
  log_start_term_ = *term_at(upto);
  while (log_start_ < upto) {
    entries_.pop_front();
    ++log_start_;
  }
}

void raft_core::refresh_membership() {
  for (auto i = entries_.rbegin(); i != entries_.rend(); ++i) {
    if (i->kind != entry_kind::config)
      continue;
    auto c = decode_configuration(i->data, cfg_.members_max);
    if (!c)
      continue; // validated when proposed; a broken entry never counts
    config_ = *c;
    config_index_ = i->index;
    if (role_ == role::leader)
      sync_progress();
    return;
  }
  config_ = snapshot_.meta.config;
  config_index_ = 0;
  if (role_ == role::leader)
    sync_progress();
}

configuration raft_core::membership_at(index_t i) const {
  for (index_t j = std::min(i, last_index()); j > log_start_; --j) {
    const auto& e = entry_at(j);
    if (e.kind != entry_kind::config)
      continue;
    if (auto c = decode_configuration(e.data, cfg_.members_max))
      return *c;
  }
  return snapshot_.meta.config;
}

index_t raft_core::conflict_hint(index_t prev_index) const {
  if (prev_index > last_index())
    return last_index() + 1;
  // The first index of the conflicting term (but never at or below the commit index).
  auto t = term_at(prev_index);
  index_t i = prev_index;
  while (t && i - 1 > commit_ && i - 1 > log_start_ && term_at(i - 1) == t)
    --i;
  return std::max<index_t>(i, 1);
}

// -- output -------------------------------------------------------------------------

raft_core::persist_request& raft_core::write() {
  if (!current_write_) {
    current_write_ = persist_request{};
    current_write_->id = next_write_id_++;
  }
  return *current_write_;
}

void raft_core::send(message m) {
  RAFT_CHECK(m.to != self_);
  bool pending = current_write_.has_value() || !writes_.empty();
  if (!pending || (role_ == role::leader && is_leader_traffic(m))) {
    fx_.messages.push_back(std::move(m));
    return;
  }
  if (held_.size() >= cfg_.held_messages_max) {
    ++dropped_;
    return;
  }
  auto after = current_write_ ? current_write_->id : writes_.back().id;
  held_.push_back(held_message{after, std::move(m)});
}

void raft_core::reply(const message& to, decltype(message::body) body, term_t term) {
  send(message{self_, to.from, term, std::move(body)});
}

void raft_core::note(std::string line) {
  fx_.log.push_back(std::move(line));
}

time_ms raft_core::random_election_timeout() {
  auto e = static_cast<std::uint64_t>(cfg_.election_timeout_ms);
  return cfg_.election_timeout_ms + static_cast<time_ms>(rng_() % e);
}

} // namespace registry::raft
