#include "actors/member/member_source.hpp"

#include <algorithm>
#include <cassert>

#include "config/defaults.hpp"

namespace registry {

namespace {

const std::string url_key = "members_url: ";

std::string list_text(const std::vector<host_port>& members) {
  std::string result;
  for (const auto& m : members)
    result += (result.empty() ? "" : ", ") + m.to_string();
  return "[" + result + "]";
}

std::string trim(const std::string& s) {
  const char* space = " \t\r\f\v";
  auto first = s.find_first_not_of(space);
  if (first == std::string::npos)
    return "";
  auto last = s.find_last_not_of(space);
  return s.substr(first, last - first + 1);
}

} // namespace

// -- free functions ----------------------------------------------------------------

std::variant<std::vector<host_port>, std::string> parse_member_lines(const std::string& body,
                                                                     const host_port& listen) {
  if (body.size() > defaults::members_response_bytes_max)
    return url_key + "the list is larger than " +
           std::to_string(defaults::members_response_bytes_max) + " bytes";
  std::vector<host_port> result;
  std::size_t line_no = 0;
  std::size_t start = 0;
  while (start <= body.size()) {
    auto end = body.find('\n', start);
    if (end == std::string::npos)
      end = body.size();
    ++line_no;
    auto line = trim(body.substr(start, end - start));
    start = end + 1;
    if (line.empty())
      continue;
    auto parsed = parse_host_port(line);
    if (auto* problem = std::get_if<std::string>(&parsed))
      return url_key + "LINE " + std::to_string(line_no) + ": " + *problem;
    auto& member = std::get<host_port>(parsed);
    auto problem = check_member_address(member);
    if (!problem.empty())
      return url_key + "LINE " + std::to_string(line_no) + ": " + problem;
    // Bounded by the body size: at most one entry per line of at least 3 bytes.
    result.push_back(std::move(member));
  }
  if (result.empty())
    return url_key + "the list is empty; expected one HOST:PORT per line";
  std::sort(result.begin(), result.end());
  result.erase(std::unique(result.begin(), result.end()), result.end());
  auto count_problem = check_member_count(result.size());
  if (!count_problem.empty())
    return url_key + count_problem;
  auto listen_problem = check_listen_in_members(result, listen);
  if (!listen_problem.empty())
    return url_key + "the list must hold this node's listen address: " + listen_problem;
  return result;
}

std::variant<std::vector<host_port>, std::string> evaluate_fetch(const fetch_outcome& outcome,
                                                                 const host_port& listen) {
  if (!outcome.transferred)
    return url_key + (outcome.error.empty() ? std::string{"no response"} : outcome.error);
  if (outcome.status != 200)
    return url_key + "expected HTTP status 200, got " + std::to_string(outcome.status);
  return parse_member_lines(outcome.body, listen);
}

const char* to_string(member_source_kind kind) {
  switch (kind) {
    case member_source_kind::standalone:
      return "standalone";
    case member_source_kind::file:
      return "file";
    case member_source_kind::url:
      return "url";
  }
  return "?";
}

// -- member_source -------------------------------------------------------------------

member_source::member_source(const node_config& cfg, std::int64_t now_ms)
  : listen_(cfg.listen),
    members_(cfg.members),
    url_(cfg.members_url),
    poll_interval_ms_(cfg.members_poll_interval_ms) {
  assert(poll_interval_ms_ > 0);
  assert(!url_.empty() || !members_.empty());
  starting_ = !url_.empty() && members_.empty();
  start_wait_ms_ = cfg.members_start_wait_ms;
  start_deadline_ms_ = now_ms + start_wait_ms_;
  next_fetch_ms_ = starting_ ? now_ms : now_ms + poll_interval_ms_;
}

member_source_kind member_source::kind() const {
  if (!url_.empty())
    return member_source_kind::url;
  if (members_.size() == 1 && members_.front() == listen_)
    return member_source_kind::standalone;
  return member_source_kind::file;
}

std::int64_t member_source::fetch_due_in_ms(std::int64_t now_ms) const {
  if (url_.empty())
    return -1;
  return std::max<std::int64_t>(0, next_fetch_ms_ - now_ms);
}

member_source::effects member_source::on_fetch(std::int64_t now_ms, const fetch_outcome& outcome) {
  effects fx;
  if (url_.empty())
    return fx; // the file stopped naming a URL while the fetch ran
  auto result = evaluate_fetch(outcome, listen_);
  if (auto* reason = std::get_if<std::string>(&result)) {
    if (starting_) {
      auto retry_ms = std::min(defaults::members_start_retry_ms, poll_interval_ms_);
      if (now_ms + retry_ms > start_deadline_ms_) {
        fx.fatal = *reason + " (no member list from " + url_ + " within members_start_wait_ms = " +
                   std::to_string(start_wait_ms_) + " ms)";
        return fx;
      }
      next_fetch_ms_ = now_ms + retry_ms;
      if (*reason != failure_)
        fx.errors.push_back("cannot fetch the member list from " + url_ + " yet (retrying): " +
                            *reason);
    } else {
      next_fetch_ms_ = now_ms + poll_interval_ms_;
      if (*reason != failure_)
        fx.errors.push_back("keeps its " + std::to_string(members_.size()) +
                            " members: cannot fetch the member list from " + url_ + ": " + *reason);
    }
    failure_ = *reason;
    return fx;
  }
  next_fetch_ms_ = now_ms + poll_interval_ms_;
  auto& fresh = std::get<std::vector<host_port>>(result);
  if (!failure_.empty() && !starting_)
    fx.infos.push_back("fetches the member list from " + url_ + " again");
  failure_.clear();
  if (starting_ || fresh != members_) {
    fx.infos.push_back("takes " + std::to_string(fresh.size()) + " members from " + url_ + ": " +
                       list_text(fresh));
    members_ = fresh;
    fx.members = members_;
  }
  starting_ = false;
  return fx;
}

member_source::effects
member_source::on_config(std::int64_t now_ms, const std::variant<node_config, std::string>& fresh) {
  effects fx;
  if (auto* error = std::get_if<std::string>(&fresh)) {
    fx.errors.push_back("keeps its member list: " + *error);
    return fx;
  }
  const auto& next = std::get<node_config>(fresh);
  if (!(next.listen == listen_)) {
    fx.errors.push_back("keeps its member list: listen cannot change without a restart");
    return fx;
  }
  poll_interval_ms_ = next.members_poll_interval_ms;
  if (!next.members_url.empty()) {
    // Fetch at once: a new URL, a switch from `members`, or SIGHUP asking for a fresh list.
    if (next.members_url != url_)
      failure_.clear();
    url_ = next.members_url;
    next_fetch_ms_ = now_ms;
    fx.infos.push_back("re-read its config; fetches the member list from " + url_);
    return fx;
  }
  url_.clear();
  failure_.clear();
  if (next.members == members_) {
    fx.infos.push_back("re-read its config; members unchanged (other settings take effect at the "
                       "next start)");
    return fx;
  }
  members_ = next.members;
  fx.infos.push_back("re-read its config; " + std::to_string(members_.size()) + " members: " +
                     list_text(members_));
  fx.members = members_;
  return fx;
}

} // namespace registry
