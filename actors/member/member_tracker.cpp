#include "actors/member/member_tracker.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <utility>

namespace registry {

namespace {

/// Assertions for programmer errors, on in every build (TigerStyle): a broken invariant in membership
/// would silently mis-route clients, which is worse than a crash with a message.
[[noreturn]] void check_failed(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: member_tracker check failed: %s\n", file, line, what);
  std::abort();
}

#define MEMBER_CHECK(cond)                                                     \
  ((cond) ? (void)0 : check_failed(#cond, __FILE__, __LINE__))

/// Sorted, unique, self removed.
std::vector<std::string> normalise(const std::vector<std::string>& xs, const std::string& self) {
  std::set<std::string> unique{xs.begin(), xs.end()};
  unique.erase(self);
  unique.erase(std::string{});
  return {unique.begin(), unique.end()};
}

} // namespace

// -- member states -------------------------------------------------------------

const char* to_string(member_state x) {
  switch (x) {
    case member_state::up:
      return "UP";
    case member_state::suspicious:
      return "SUSPICIOUS";
    case member_state::down:
      return "DOWN";
  }
  return "?";
}

// -- responsibility ------------------------------------------------------------

std::uint64_t fnv1a_64(std::string_view x) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : x) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::uint64_t mix_64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

std::uint64_t rendezvous_score(std::string_view node, std::string_view key) {
  // Mixing the key hash before combining keeps two keys that differ in one byte from getting
  // correlated scores on every node.
  return mix_64(fnv1a_64(node) ^ mix_64(fnv1a_64(key)));
}

std::optional<std::string_view> session_owner(std::string_view id) {
  auto slash = id.find('/');
  if (slash == std::string_view::npos || slash == 0)
    return std::nullopt;
  return id.substr(0, slash);
}

std::string_view routing_key(std::string_view id) {
  constexpr std::string_view suffix = "#true";
  if (id.size() > suffix.size() && id.substr(id.size() - suffix.size()) == suffix)
    return id.substr(0, id.size() - suffix.size());
  return id;
}

std::string responsible_node(const std::vector<std::string>& nodes, std::string_view id) {
  if (auto owner = session_owner(id))
    return std::string{*owner};
  auto key = routing_key(id);
  const std::string* best = nullptr;
  std::uint64_t best_score = 0;
  for (const auto& node : nodes) {
    auto score = rendezvous_score(node, key);
    if (best == nullptr || score > best_score || (score == best_score && node < *best)) {
      best = &node;
      best_score = score;
    }
  }
  return best == nullptr ? std::string{} : *best;
}

// -- configuration -------------------------------------------------------------

member_tracker_config::member_tracker_config(const node_config::distro_t& x)
  : failures_until_down(x.member_failures_until_down),
    backoff_min_ms(x.reconnect_backoff_min_ms),
    backoff_max_ms(x.reconnect_backoff_max_ms) {
  // nop
}

std::string validate(const member_tracker_config& x) {
  if (x.failures_until_down < 1)
    return "failures_until_down must be at least 1";
  if (x.backoff_min_ms <= 0)
    return "backoff_min_ms must be positive";
  if (x.backoff_min_ms > x.backoff_max_ms)
    return "backoff_min_ms must not exceed backoff_max_ms";
  if (x.members_max < 1)
    return "members_max must be at least 1";
  return {};
}

// -- constructors --------------------------------------------------------------

member_tracker::member_tracker(std::string self, const std::vector<std::string>& members,
                               member_tracker_config cfg, time_ms now_ms)
  : self_(std::move(self)), cfg_(cfg) {
  MEMBER_CHECK(!self_.empty());
  MEMBER_CHECK(validate(cfg_).empty());
  auto others = normalise(members, self_);
  for (const auto& m : others) {
    if (peers_.size() + 1 >= cfg_.members_max)
      break;
    peers_.emplace(m, make_peer(now_ms));
  }
  alive_ = compute_alive();
  MEMBER_CHECK(alive_.size() == 1);
}

// -- inputs --------------------------------------------------------------------

member_tracker::changes member_tracker::set_members(const std::vector<std::string>& members,
                                                    time_ms now_ms) {
  auto others = normalise(members, self_);
  std::size_t refused = 0;
  if (others.size() + 1 > cfg_.members_max) {
    refused = others.size() + 1 - cfg_.members_max;
    others.resize(cfg_.members_max - 1);
  }
  std::vector<transition> ts;
  std::set<std::string> wanted{others.begin(), others.end()};
  for (auto i = peers_.begin(); i != peers_.end();) {
    if (wanted.count(i->first) == 0) {
      ts.push_back(transition{i->first, i->second.state, std::nullopt});
      i = peers_.erase(i);
    } else {
      ++i;
    }
  }
  for (const auto& m : others) {
    if (peers_.count(m) == 0) {
      auto p = make_peer(now_ms);
      ts.push_back(transition{m, std::nullopt, p.state});
      peers_.emplace(m, p);
    }
  }
  std::sort(ts.begin(), ts.end(),
            [](const transition& a, const transition& b) { return a.address < b.address; });
  auto result = finish(std::move(ts));
  result.members_refused = refused;
  MEMBER_CHECK(peers_.size() + 1 <= cfg_.members_max);
  return result;
}

member_tracker::changes member_tracker::on_success(const std::string& member, time_ms) {
  auto i = peers_.find(member);
  if (i == peers_.end())
    return {};
  auto& p = i->second;
  auto before = p.state;
  p.state = member_state::up;
  p.failures = 0;
  p.unresponsive = false;
  p.backoff_ms = cfg_.backoff_min_ms;
  p.reconnect_at.reset();
  std::vector<transition> ts;
  if (before != p.state)
    ts.push_back(transition{member, before, p.state});
  return finish(std::move(ts));
}

member_tracker::changes member_tracker::on_failure(const std::string& member, time_ms now_ms) {
  auto i = peers_.find(member);
  if (i == peers_.end())
    return {};
  auto& p = i->second;
  auto before = p.state;
  // Capped so that a member failing for days cannot overflow the counter.
  p.failures = std::min(p.failures + 1, cfg_.failures_until_down);
  if (before == member_state::down)
    return {};
  if (p.failures >= cfg_.failures_until_down) {
    enter_down(p, now_ms);
    p.unresponsive = true;
  } else
    p.state = member_state::suspicious;
  std::vector<transition> ts;
  if (before != p.state)
    ts.push_back(transition{member, before, p.state});
  return finish(std::move(ts));
}

member_tracker::changes member_tracker::on_connection_lost(const std::string& member,
                                                           time_ms now_ms) {
  auto i = peers_.find(member);
  if (i == peers_.end())
    return {};
  if (i->second.state == member_state::down) {
    if (!i->second.unresponsive)
      return {};
    i->second.unresponsive = false;
    auto result = finish({});
    result.view_changed = true;
    return result;
  }
  auto before = i->second.state;
  i->second.failures = cfg_.failures_until_down;
  enter_down(i->second, now_ms);
  return finish({transition{member, before, member_state::down}});
}

std::vector<std::string> member_tracker::due_reconnects(time_ms now_ms) {
  std::vector<std::string> result;
  for (auto& [address, p] : peers_) {
    if (p.state != member_state::down || !p.reconnect_at || *p.reconnect_at > now_ms)
      continue;
    result.push_back(address);
    p.reconnect_at = now_ms + p.backoff_ms;
    p.backoff_ms = next_backoff(p.backoff_ms);
  }
  return result;
}

std::optional<time_ms> member_tracker::next_wake() const {
  std::optional<time_ms> result;
  for (const auto& [address, p] : peers_)
    if (p.state == member_state::down && p.reconnect_at)
      result = result ? std::min(*result, *p.reconnect_at) : *p.reconnect_at;
  return result;
}

// -- properties ----------------------------------------------------------------

std::optional<member_state> member_tracker::state(const std::string& member) const {
  if (member == self_)
    return member_state::up;
  auto i = peers_.find(member);
  if (i == peers_.end())
    return std::nullopt;
  return i->second.state;
}

int member_tracker::failures(const std::string& member) const {
  auto i = peers_.find(member);
  return i == peers_.end() ? 0 : i->second.failures;
}

std::optional<time_ms> member_tracker::reconnect_at(const std::string& member) const {
  auto i = peers_.find(member);
  return i == peers_.end() ? std::nullopt : i->second.reconnect_at;
}

time_ms member_tracker::backoff_ms(const std::string& member) const {
  auto i = peers_.find(member);
  return i == peers_.end() ? 0 : i->second.backoff_ms;
}

std::vector<std::string> member_tracker::members() const {
  std::vector<std::string> result;
  result.reserve(peers_.size() + 1);
  for (const auto& [address, p] : peers_)
    result.push_back(address);
  result.insert(std::lower_bound(result.begin(), result.end(), self_), self_);
  return result;
}

std::vector<member_view> member_tracker::view() const {
  std::vector<member_view> result;
  result.reserve(peers_.size() + 1);
  for (const auto& [address, p] : peers_)
    result.push_back(member_view{address, p.state, p.unresponsive});
  auto pos = std::lower_bound(result.begin(), result.end(), self_,
                              [](const member_view& v, const std::string& s) {
                                return v.address < s;
                              });
  result.insert(pos, member_view{self_, member_state::up});
  return result;
}

std::string member_tracker::responsible_node(std::string_view id) const {
  return registry::responsible_node(alive_, id);
}

// -- helpers -------------------------------------------------------------------

member_tracker::peer member_tracker::make_peer(time_ms now_ms) const {
  peer p;
  p.state = member_state::down;
  p.failures = 0;
  p.backoff_ms = cfg_.backoff_min_ms;
  p.reconnect_at = now_ms;
  return p;
}

void member_tracker::enter_down(peer& p, time_ms now_ms) {
  MEMBER_CHECK(p.state != member_state::down);
  p.state = member_state::down;
  p.backoff_ms = cfg_.backoff_min_ms;
  p.reconnect_at = now_ms + p.backoff_ms;
  p.backoff_ms = next_backoff(p.backoff_ms);
}

time_ms member_tracker::next_backoff(time_ms current) const {
  MEMBER_CHECK(current > 0);
  return current >= cfg_.backoff_max_ms / 2 ? cfg_.backoff_max_ms : current * 2;
}

member_tracker::changes member_tracker::finish(std::vector<transition> transitions) {
  changes result;
  auto alive = compute_alive();
  result.alive_changed = alive != alive_;
  alive_ = std::move(alive);
  result.transitions = std::move(transitions);
  MEMBER_CHECK(!alive_.empty());
  MEMBER_CHECK(std::is_sorted(alive_.begin(), alive_.end()));
  return result;
}

std::vector<std::string> member_tracker::compute_alive() const {
  std::vector<std::string> result;
  for (const auto& [address, p] : peers_)
    if (is_alive(p.state))
      result.push_back(address);
  result.insert(std::lower_bound(result.begin(), result.end(), self_), self_);
  return result;
}

} // namespace registry
