#pragma once
/// Nacos-style authentication of users (the HTTP API, and the writes of CAF clients), as plain
/// classes (no CAF, no sockets, time as an argument).
///
/// - `user_store`: users from a file of salted password hashes, one `USER:HASH` a line, HASH made
///   by libsodium's crypto_pwhash_str (Argon2id with its salt and costs inside); `#` comments and
///   blank lines are skipped. `registryd --hash-password` prints such a line.
/// - `token_signer`: access tokens `base64url(USER "\n" EXPIRY_MS) "." base64url(HMAC-SHA256)` under
///   the operator's secret (libsodium's crypto_auth_hmacsha256). Tokens expire; a token signed
///   with another secret, altered or malformed is invalid.
/// - `authenticator`: what a request needs: a valid `accessToken`, or `username` and `password`
///   (the npm client sends those on every request; a verified pair is remembered for a minute so
///   that Argon2 runs once, not per request; the cache is bounded).

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>

namespace registry::auth {

class user_store {
public:
  /// Loads the users file; an error names the line.
  static std::variant<user_store, std::string> load(const std::string& path);
  /// Parses the text of a users file.
  static std::variant<user_store, std::string> parse(const std::string& text);
  /// True when `user` exists and `password` matches its hash.
  bool check(const std::string& user, const std::string& password) const;
  std::size_t size() const { return hashes_.size(); }
  /// A users-file line for `user` with a fresh salted hash of `password`.
  static std::string make_line(const std::string& user, const std::string& password);

private:
  std::map<std::string, std::string> hashes_;
};

class token_signer {
public:
  enum class verdict { ok, invalid, expired };
  token_signer(std::string secret, std::int64_t ttl_ms);
  std::string issue(const std::string& user, std::int64_t now_ms) const;
  verdict verify(const std::string& token, std::int64_t now_ms, std::string& user) const;
  std::int64_t ttl_ms() const { return ttl_ms_; }

private:
  std::string mac(const std::string& payload) const;
  std::string secret_;
  std::int64_t ttl_ms_;
};

/// The outcome of an authentication check: ok, or the HTTP status and text to refuse with.
struct auth_result {
  bool ok = false;
  int status = 403;
  std::string message;
  std::string user;
};

class authenticator {
public:
  authenticator(user_store users, token_signer signer);
  /// Checks the credentials of a request (empty strings for absent parameters).
  auth_result check(const std::string& access_token, const std::string& username,
                    const std::string& password, std::int64_t now_ms);
  /// POST /auth/login: a token for a valid user and password.
  auth_result login(const std::string& username, const std::string& password, std::int64_t now_ms,
                    std::string& token);
  const token_signer& signer() const { return signer_; }

private:
  bool password_ok(const std::string& username, const std::string& password, std::int64_t now_ms);
  user_store users_;
  token_signer signer_;
  std::mutex mtx_;
  /// Verified (user, password) pairs, keyed by a keyed hash of both, with their expiry.
  std::map<std::string, std::int64_t> verified_;
};

/// Initialises libsodium once; false when it cannot.
bool sodium_ready();

/// The node's authenticator (auth.enabled): the users file loaded and the signer keyed. An error
/// names the field: "auth.users_file: LINE 3: ...".
std::variant<std::shared_ptr<authenticator>, std::string>
load_authenticator(const std::string& users_file, const std::string& secret, std::int64_t ttl_ms);

} // namespace registry::auth
