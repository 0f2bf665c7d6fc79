#include "actors/raft/raft_types.hpp"

#include <sstream>

namespace registry::raft {

namespace {

void put_u32(std::string& out, std::uint32_t x) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
}

bool get_u32(const std::string& in, std::size_t& pos, std::uint32_t& x) {
  if (pos > in.size() || in.size() - pos < 4)
    return false;
  x = 0;
  for (int i = 0; i < 4; ++i)
    x |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[pos + i])) << (8 * i);
  pos += 4;
  return true;
}

void put_ids(std::string& out, const std::set<node_id>& xs) {
  put_u32(out, static_cast<std::uint32_t>(xs.size()));
  for (const auto& x : xs) {
    put_u32(out, static_cast<std::uint32_t>(x.size()));
    out += x;
  }
}

bool get_ids(const std::string& in, std::size_t& pos, std::size_t members_max,
             std::set<node_id>& xs) {
  std::uint32_t n = 0;
  if (!get_u32(in, pos, n) || n > members_max)
    return false;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint32_t len = 0;
    if (!get_u32(in, pos, len) || len == 0 || in.size() - pos < len)
      return false;
    if (!xs.insert(in.substr(pos, len)).second)
      return false; // a duplicate cannot come from encode_configuration
    pos += len;
  }
  return true;
}

} // namespace

const char* to_string(entry_kind x) {
  switch (x) {
    case entry_kind::command:
      return "command";
    case entry_kind::noop:
      return "noop";
    case entry_kind::config:
      return "config";
  }
  return "unknown";
}

std::string encode_configuration(const configuration& x) {
  std::string result;
  put_ids(result, x.voters);
  put_ids(result, x.learners);
  return result;
}

std::optional<configuration> decode_configuration(const std::string& bytes,
                                                  std::size_t members_max) {
  configuration result;
  std::size_t pos = 0;
  if (!get_ids(bytes, pos, members_max, result.voters)
      || !get_ids(bytes, pos, members_max, result.learners) || pos != bytes.size())
    return std::nullopt;
  if (result.voters.size() + result.learners.size() > members_max)
    return std::nullopt;
  for (const auto& x : result.learners)
    if (result.voters.count(x) > 0)
      return std::nullopt;
  return result;
}

std::string to_string(const configuration& x) {
  std::string result = "voters ";
  const char* sep = "";
  for (const auto& v : x.voters) {
    result += sep + v;
    sep = ",";
  }
  if (x.voters.empty())
    result += "-";
  if (!x.learners.empty()) {
    result += " learners ";
    sep = "";
    for (const auto& v : x.learners) {
      result += sep + v;
      sep = ",";
    }
  }
  return result;
}

const char* type_name(const message& x) {
  static const char* names[] = {"vote_request",     "vote_response",      "append_request",
                                "append_response",  "heartbeat",          "heartbeat_response",
                                "install_snapshot", "install_snapshot_response", "timeout_now"};
  static_assert(std::variant_size_v<decltype(message::body)> == 9);
  return names[x.body.index()];
}

std::string to_string(const message& x) {
  std::ostringstream out;
  out << x.from << "->" << x.to << " t" << x.term << " ";
  if (auto m = std::get_if<vote_request>(&x.body))
    out << (m->pre_vote ? "pre_vote_request" : "vote_request") << " last=" << m->last_index << "/"
        << m->last_term << (m->transfer ? " transfer" : "");
  else if (auto m = std::get_if<vote_response>(&x.body))
    out << (m->pre_vote ? "pre_vote_response" : "vote_response")
        << (m->granted ? " granted" : " rejected");
  else if (auto m = std::get_if<append_request>(&x.body))
    out << "append_request prev=" << m->prev_index << "/" << m->prev_term
        << " n=" << m->entries.size() << " commit=" << m->commit;
  else if (auto m = std::get_if<append_response>(&x.body))
    out << "append_response " << (m->success ? "ok" : "rejected") << " index=" << m->index
        << " hint=" << m->hint;
  else if (auto m = std::get_if<heartbeat>(&x.body))
    out << "heartbeat commit=" << m->commit;
  else if (auto m = std::get_if<install_snapshot>(&x.body))
    out << "install_snapshot " << m->meta.index << "/" << m->meta.term;
  else if (auto m = std::get_if<install_snapshot_response>(&x.body))
    out << "install_snapshot_response index=" << m->index;
  else
    out << type_name(x);
  return out.str();
}

} // namespace registry::raft
