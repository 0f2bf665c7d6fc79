#include <doctest/doctest.h>

#include "actors/member/member_identity.hpp"

using registry::member_identity;

TEST_CASE("a listed address takes the name of the node that answers there") {
  member_identity id{"127.0.0.1:1", {"127.0.0.1:1", "localhost:2", "b.example:3"}};
  CHECK(id.names() == std::vector<std::string>{"127.0.0.1:1", "localhost:2", "b.example:3"});
  auto out = id.on_announce("localhost:2", "127.0.0.1:2", "n2");
  CHECK(out.members_changed);
  CHECK(out.renamed);
  CHECK(out.problem.empty());
  CHECK(id.names() == std::vector<std::string>{"127.0.0.1:1", "127.0.0.1:2", "b.example:3"});
  CHECK(id.name_of("localhost:2") == "127.0.0.1:2");
  CHECK(id.listed_of("127.0.0.1:2") == "localhost:2");
  // The same announcement again changes nothing.
  auto again = id.on_announce("localhost:2", "127.0.0.1:2", "n2");
  CHECK_FALSE(again.members_changed);
  CHECK_FALSE(again.renamed);
}

TEST_CASE("two spellings of one node are a conflict, never merged silently") {
  member_identity id{"10.0.0.1:1", {"10.0.0.1:1", "10.0.0.2:2", "node2:2"}};
  id.on_announce("10.0.0.2:2", "10.0.0.2:2", "n2");
  auto out = id.on_announce("node2:2", "10.0.0.2:2", "n2");
  CHECK(out.problem.find("same node") != std::string::npos);
  CHECK_FALSE(id.name_of("node2:2"));
  CHECK(id.names() == std::vector<std::string>{"10.0.0.1:1", "10.0.0.2:2"});
  auto rows = id.rows();
  REQUIRE(rows.size() == 3);
  CHECK(rows[2].problem.find("10.0.0.2:2") != std::string::npos);
}

TEST_CASE("this node answering at another listed address is a conflict") {
  member_identity id{"10.0.0.1:1", {"10.0.0.1:1", "me.local:1"}};
  auto out = id.on_announce("me.local:1", "10.0.0.1:1", "self");
  CHECK(out.problem.find("this node itself") != std::string::npos);
  CHECK(id.names() == std::vector<std::string>{"10.0.0.1:1"});
}

TEST_CASE("a reload keeps what listed addresses announced and forgets removed ones") {
  member_identity id{"a:1", {"a:1", "b:2", "c:3"}};
  id.on_announce("b:2", "10.0.0.2:2", "n2");
  CHECK(id.set_listed({"a:1", "b:2"}));
  CHECK(id.names() == std::vector<std::string>{"a:1", "10.0.0.2:2"});
  CHECK_FALSE(id.name_of("c:3"));
  // A node that moved: another node now answers at the address.
  auto out = id.on_announce("b:2", "10.0.0.9:2", "n9");
  CHECK(out.members_changed);
  CHECK(id.names() == std::vector<std::string>{"a:1", "10.0.0.9:2"});
}
