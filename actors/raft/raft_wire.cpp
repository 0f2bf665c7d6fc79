#include "actors/raft/raft_wire.hpp"

#include <utility>

namespace registry::raft {

namespace {

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

void to_wire(const entry& x, v1::RaftEntry& out) {
  out.set_index(x.index);
  out.set_term(x.term);
  out.set_kind(static_cast<v1::RaftEntryKind>(x.kind));
  out.set_data(x.data);
}

void to_wire(const snapshot_meta& x, v1::RaftSnapshotMeta& out) {
  out.set_index(x.index);
  out.set_term(x.term);
  auto* c = out.mutable_config();
  for (const auto& v : x.config.voters)
    c->add_voters(v);
  for (const auto& l : x.config.learners)
    c->add_learners(l);
}

/// "" or the problem with `x`.
std::string check_id(const std::string& what, const std::string& x, const wire_limits& limits) {
  if (x.empty())
    return what + " is empty";
  if (x.size() > limits.id_chars_max)
    return what + " is longer than " + std::to_string(limits.id_chars_max) + " characters";
  return {};
}

std::string from_wire(const v1::RaftSnapshotMeta& x, term_t term, const wire_limits& limits,
                      snapshot_meta& out) {
  out.index = x.index();
  out.term = x.term();
  if (out.index == 0 || out.term == 0 || out.term > term)
    return "snapshot " + std::to_string(out.index) + "/" + std::to_string(out.term)
           + " in term " + std::to_string(term);
  const auto& c = x.config();
  if (c.voters_size() == 0)
    return "snapshot configuration without voters";
  if (static_cast<std::size_t>(c.voters_size() + c.learners_size()) > limits.members_max)
    return "snapshot configuration above " + std::to_string(limits.members_max) + " members";
  for (const auto& v : c.voters()) {
    if (auto p = check_id("a voter", v, limits); !p.empty())
      return p;
    out.config.voters.insert(v);
  }
  for (const auto& l : c.learners()) {
    if (auto p = check_id("a learner", l, limits); !p.empty())
      return p;
    if (out.config.voters.count(l) > 0)
      return l + " is voter and learner";
    out.config.learners.insert(l);
  }
  if (out.config.voters.size() + out.config.learners.size()
      != static_cast<std::size_t>(c.voters_size() + c.learners_size()))
    return "a member listed twice";
  return {};
}

std::string from_wire(const v1::RaftAppendRequest& x, term_t term, const wire_limits& limits,
                      append_request& out) {
  out.prev_index = x.prev_index();
  out.prev_term = x.prev_term();
  out.commit = x.commit();
  if (out.prev_term > term)
    return "prev_term " + std::to_string(out.prev_term) + " above the term";
  if (static_cast<std::size_t>(x.entries_size()) > limits.entries_max)
    return std::to_string(x.entries_size()) + " entries, above "
           + std::to_string(limits.entries_max);
  std::size_t bytes = 0;
  term_t prev = out.prev_term;
  out.entries.reserve(static_cast<std::size_t>(x.entries_size()));
  for (int i = 0; i < x.entries_size(); ++i) {
    const auto& e = x.entries(i);
    auto expected = out.prev_index + 1 + static_cast<index_t>(i);
    auto where = "entry " + std::to_string(i + 1);
    if (e.index() != expected)
      return where + " has index " + std::to_string(e.index()) + ", expected "
             + std::to_string(expected);
    if (e.term() < prev || e.term() > term)
      return where + " has term " + std::to_string(e.term()) + " after term "
             + std::to_string(prev) + " in term " + std::to_string(term);
    if (e.kind() < v1::RAFT_ENTRY_COMMAND || e.kind() > v1::RAFT_ENTRY_CONFIG)
      return where + " has unknown kind " + std::to_string(e.kind());
    bytes += e.data().size();
    if (bytes > limits.bytes_max)
      return "entries above " + std::to_string(limits.bytes_max) + " bytes";
    prev = e.term();
    out.entries.push_back(entry{e.index(), e.term(), static_cast<entry_kind>(e.kind()), e.data()});
  }
  return {};
}

} // namespace

v1::RaftMessage to_wire(const message& x) {
  v1::RaftMessage result;
  result.set_from(x.from);
  result.set_to(x.to);
  result.set_term(x.term);
  std::visit(overloaded{
               [&](const vote_request& m) {
                 auto* out = result.mutable_vote_request();
                 out->set_last_index(m.last_index);
                 out->set_last_term(m.last_term);
                 out->set_pre_vote(m.pre_vote);
                 out->set_transfer(m.transfer);
               },
               [&](const vote_response& m) {
                 auto* out = result.mutable_vote_response();
                 out->set_granted(m.granted);
                 out->set_pre_vote(m.pre_vote);
               },
               [&](const append_request& m) {
                 auto* out = result.mutable_append_request();
                 out->set_prev_index(m.prev_index);
                 out->set_prev_term(m.prev_term);
                 out->set_commit(m.commit);
                 for (const auto& e : m.entries)
                   to_wire(e, *out->add_entries());
               },
               [&](const append_response& m) {
                 auto* out = result.mutable_append_response();
                 out->set_success(m.success);
                 out->set_index(m.index);
                 out->set_hint(m.hint);
               },
               [&](const heartbeat& m) { result.mutable_heartbeat()->set_commit(m.commit); },
               [&](const heartbeat_response&) { result.mutable_heartbeat_response(); },
               [&](const install_snapshot& m) {
                 auto* out = result.mutable_install_snapshot();
                 to_wire(m.meta, *out->mutable_meta());
                 if (m.data)
                   out->set_data(*m.data);
               },
               [&](const install_snapshot_response& m) {
                 result.mutable_install_snapshot_response()->set_index(m.index);
               },
               [&](const timeout_now&) { result.mutable_timeout_now(); },
             },
             x.body);
  return result;
}

std::optional<message> from_wire(const v1::RaftMessage& x, std::string& error,
                                 const wire_limits& limits) {
  message out;
  out.from = x.from();
  out.to = x.to();
  out.term = x.term();
  error = check_id("from", out.from, limits);
  if (error.empty())
    error = check_id("to", out.to, limits);
  if (error.empty() && out.term == 0)
    error = "term 0";
  if (!error.empty())
    return std::nullopt;
  using body = v1::RaftMessage::BodyCase;
  switch (x.body_case()) {
    case body::kVoteRequest: {
      const auto& m = x.vote_request();
      if (m.last_term() > out.term)
        error = "vote_request: last_term above the term";
      out.body = vote_request{m.last_index(), m.last_term(), m.pre_vote(), m.transfer()};
      break;
    }
    case body::kVoteResponse:
      out.body = vote_response{x.vote_response().granted(), x.vote_response().pre_vote()};
      break;
    case body::kAppendRequest: {
      append_request m;
      if (auto p = from_wire(x.append_request(), out.term, limits, m); !p.empty())
        error = "append_request: " + p;
      out.body = std::move(m);
      break;
    }
    case body::kAppendResponse: {
      const auto& m = x.append_response();
      out.body = append_response{m.success(), m.index(), m.hint()};
      break;
    }
    case body::kHeartbeat:
      out.body = heartbeat{x.heartbeat().commit()};
      break;
    case body::kHeartbeatResponse:
      out.body = heartbeat_response{};
      break;
    case body::kInstallSnapshot: {
      install_snapshot m;
      if (auto p = from_wire(x.install_snapshot().meta(), out.term, limits, m.meta); !p.empty())
        error = "install_snapshot: " + p;
      else if (x.install_snapshot().data().size() > limits.bytes_max)
        error = "install_snapshot: data above " + std::to_string(limits.bytes_max) + " bytes";
      m.data = std::make_shared<const std::string>(x.install_snapshot().data());
      out.body = std::move(m);
      break;
    }
    case body::kInstallSnapshotResponse:
      out.body = install_snapshot_response{x.install_snapshot_response().index()};
      break;
    case body::kTimeoutNow:
      out.body = timeout_now{};
      break;
    default:
      error = "no body";
  }
  if (!error.empty())
    return std::nullopt;
  return out;
}

} // namespace registry::raft
