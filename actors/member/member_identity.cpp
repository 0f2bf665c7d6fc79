#include "actors/member/member_identity.hpp"

#include <algorithm>
#include <set>

namespace registry {

member_identity::member_identity(std::string self, const std::vector<std::string>& listed)
  : self_(std::move(self)) {
  set_listed(listed);
}

bool member_identity::set_listed(const std::vector<std::string>& listed) {
  auto before = names();
  listed_.clear();
  std::map<std::string, row> kept;
  for (auto& x : listed) {
    if (kept.count(x))
      continue;
    listed_.push_back(x);
    auto i = rows_.find(x);
    kept.emplace(x, i != rows_.end() ? i->second : row{x, {}, {}, {}});
  }
  rows_ = std::move(kept);
  recompute_problems();
  return names() != before;
}

void member_identity::recompute_problems() {
  // First come, first served in list order: the literal self entry, then each announced node once.
  std::map<std::string, std::string> owner; // node name -> first listed address naming it
  owner.emplace(self_, self_);
  for (auto& x : listed_) {
    auto& r = rows_[x];
    r.problem.clear();
    if (x == self_)
      continue;
    auto name = r.node.empty() ? x : r.node;
    auto [i, fresh] = owner.emplace(name, x);
    if (fresh)
      continue;
    if (name == self_)
      r.problem = "this node itself answers there (listen address " + self_ + ")";
    else
      r.problem = "the same node (" + name + ") as member " + i->second;
  }
}

member_identity::outcome member_identity::on_announce(const std::string& listed,
                                                      const std::string& node,
                                                      const std::string& node_id) {
  outcome result;
  auto i = rows_.find(listed);
  if (i == rows_.end() || listed == self_)
    return result;
  auto before = names();
  auto old_problem = i->second.problem;
  result.renamed = i->second.node != node;
  i->second.node = node;
  i->second.node_id = node_id;
  recompute_problems();
  result.members_changed = names() != before;
  if (!i->second.problem.empty() && i->second.problem != old_problem)
    result.problem = i->second.problem;
  return result;
}

std::vector<std::string> member_identity::names() const {
  std::vector<std::string> result;
  std::set<std::string> seen;
  for (auto& x : listed_) {
    auto& r = rows_.at(x);
    if (!r.problem.empty())
      continue;
    auto name = x == self_ || r.node.empty() ? x : r.node;
    if (seen.insert(name).second)
      result.push_back(name);
  }
  if (!seen.count(self_))
    result.push_back(self_);
  return result;
}

std::optional<std::string> member_identity::name_of(const std::string& listed) const {
  auto i = rows_.find(listed);
  if (i == rows_.end() || !i->second.problem.empty())
    return std::nullopt;
  return listed == self_ || i->second.node.empty() ? listed : i->second.node;
}

std::optional<std::string> member_identity::listed_of(const std::string& name) const {
  for (auto& x : listed_)
    if (name_of(x) == name)
      return x;
  return std::nullopt;
}

std::vector<member_identity::row> member_identity::rows() const {
  std::vector<row> result;
  for (auto& x : listed_)
    result.push_back(rows_.at(x));
  return result;
}

} // namespace registry
