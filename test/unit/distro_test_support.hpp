#pragma once
/// Helpers shared by the unit tests of the Distro logic (no CAF).

#include <string>
#include <vector>

#include "actors/distro/distro_protocol.hpp"

namespace registry::test {

/// Every address as an UP member.
inline std::vector<member_view> up(const std::vector<std::string>& xs) {
  std::vector<member_view> result;
  for (const auto& x : xs)
    result.push_back(member_view{x, member_state::up});
  return result;
}

} // namespace registry::test
