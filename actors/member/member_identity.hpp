#pragma once
/// Which node answers at each address of the member list (no CAF, no I/O).
///
/// A member list names nodes by addresses as an operator wrote them: `localhost:8848`, a DNS name, an
/// IP. A node names itself by its own listen address, and that is what travels in Distro messages
/// (sources, owners, routing). So a member is the node that *answers* at a listed address: the peer
/// handshake tells which listen address (its cluster name) and node id answered, and this class maps
/// each listed address to that name.
///
/// * Before a listed address has answered, its tracker name is the listed spelling itself (the member
///   is DOWN then, so it takes part in nothing).
/// * An address at which this node itself answers, or the same node as an earlier entry of the list,
///   is a CONFLICT: it is left out of membership and shown with the problem, never silently merged.

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace registry {

class member_identity {
public:
  /// One row of the member list as `members`/`status` show it.
  struct row {
    std::string listed;  ///< as written in the list
    std::string node;    ///< the listen address announced there ("" = never answered)
    std::string node_id; ///< the id announced there
    std::string problem; ///< non-empty: a CONFLICT, left out of membership
  };

  /// What an announcement changed.
  struct outcome {
    bool members_changed = false; ///< names() differs: the tracker's member list must be reset
    std::string problem;          ///< a new conflict to log as an error ("" = none)
    bool renamed = false;         ///< the listed address now maps to another (or a first) node
  };

  member_identity(std::string self, const std::vector<std::string>& listed);

  /// The member list changed (reload). Announcements of addresses still listed are kept.
  /// Returns true when names() changed.
  bool set_listed(const std::vector<std::string>& listed);

  /// The node at `listed` announced `node` and `node_id` in the handshake.
  outcome on_announce(const std::string& listed, const std::string& node,
                      const std::string& node_id);

  /// The member names for the tracker and the protocol, self included, in list order, without
  /// duplicates or conflicts.
  std::vector<std::string> names() const;

  /// The tracker name of a listed address; nothing when it is a conflict or not listed.
  std::optional<std::string> name_of(const std::string& listed) const;

  /// The listed address to dial for a member name; nothing when unknown.
  std::optional<std::string> listed_of(const std::string& name) const;

  /// Every row of the list, in list order.
  std::vector<row> rows() const;

  const std::string& self() const { return self_; }

private:
  void recompute_problems();

  std::string self_;
  std::vector<std::string> listed_;
  std::map<std::string, row> rows_;
};

} // namespace registry
