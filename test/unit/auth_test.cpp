// Auth of the HTTP API: users from a file of salted hashes, signed tokens that expire, and the
// checks a request goes through, with an injected clock.

#include <doctest/doctest.h>

#include "actors/auth/user_auth.hpp"

using namespace registry::auth;

namespace {

const std::string secret = "0123456789abcdef0123456789abcdef";

user_store one_user() {
  auto line = user_store::make_line("alice", "wonderland");
  REQUIRE(!line.empty());
  auto users = user_store::parse("# users\n\n" + line + "\n");
  REQUIRE(std::holds_alternative<user_store>(users));
  return std::get<user_store>(users);
}

} // namespace

TEST_CASE("auth: a users file holds salted hashes, checked by password") {
  auto users = one_user();
  CHECK(users.size() == 1);
  CHECK(users.check("alice", "wonderland"));
  CHECK(!users.check("alice", "wrong"));
  CHECK(!users.check("bob", "wonderland"));
  // The same password hashes differently each time (salted).
  CHECK(user_store::make_line("x", "pw") != user_store::make_line("x", "pw"));
  CHECK(std::get<std::string>(user_store::parse("alice\n")) == "line 1: expected USER:HASH");
  CHECK(std::get<std::string>(user_store::parse("alice:plaintext\n")).find("--hash-password")
        != std::string::npos);
  CHECK(std::get<std::string>(user_store::parse("")) == "no users");
}

TEST_CASE("auth: tokens verify until they expire; others' and altered tokens are invalid") {
  token_signer signer{secret, 1000};
  auto token = signer.issue("alice", 5000);
  std::string user;
  CHECK(signer.verify(token, 5000, user) == token_signer::verdict::ok);
  CHECK(user == "alice");
  CHECK(signer.verify(token, 5999, user) == token_signer::verdict::ok);
  CHECK(signer.verify(token, 6000, user) == token_signer::verdict::expired);
  token_signer other{"another-secret-of-thirty-two-bytes!", 1000};
  CHECK(other.verify(token, 5000, user) == token_signer::verdict::invalid);
  auto altered = token;
  altered[1] = altered[1] == 'A' ? 'B' : 'A';
  CHECK(signer.verify(altered, 5000, user) == token_signer::verdict::invalid);
  CHECK(signer.verify("garbage", 5000, user) == token_signer::verdict::invalid);
  CHECK(signer.verify("", 5000, user) == token_signer::verdict::invalid);
}

TEST_CASE("auth: requests need a good token or a user and password") {
  authenticator auth{one_user(), token_signer{secret, 1000}};
  CHECK(auth.check("", "", "", 0).message == "user not found!");
  CHECK(auth.check("bad.token", "", "", 0).message == "token invalid!");
  std::string token;
  REQUIRE(auth.login("alice", "wonderland", 100, token).ok);
  CHECK(auth.check(token, "", "", 200).ok);
  CHECK(auth.check(token, "", "", 1100).message == "token expired!");
  CHECK(!auth.login("alice", "nope", 100, token).ok);
  CHECK(auth.check("", "alice", "wonderland", 0).ok);
  CHECK(auth.check("", "alice", "wonderland", 10).ok); // remembered
  CHECK(auth.check("", "alice", "wrong", 0).message == "unknown user!");
}
