#include "actors/auth/user_auth.hpp"

#include <sodium.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace registry::auth {

namespace {

constexpr std::int64_t verified_pair_ms = 60000;
constexpr std::size_t verified_pairs_max = 10000;

std::string b64url(const std::string& in) {
  std::string out(sodium_base64_encoded_len(in.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()),
                    in.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool from_b64url(const std::string& in, std::string& out) {
  out.assign(in.size(), '\0');
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), in.data(),
                        in.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING)
      != 0)
    return false;
  out.resize(len);
  return true;
}

} // namespace

bool sodium_ready() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

std::variant<user_store, std::string> user_store::parse(const std::string& text) {
  user_store result;
  std::istringstream in{text};
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty() || line[0] == '#')
      continue;
    auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == line.size())
      return "line " + std::to_string(number) + ": expected USER:HASH";
    auto hash = line.substr(colon + 1);
    if (hash.rfind("$argon2", 0) != 0 || hash.size() >= crypto_pwhash_STRBYTES)
      return "line " + std::to_string(number)
             + ": expected a hash made by registryd --hash-password ($argon2id$...)";
    if (!result.hashes_.emplace(line.substr(0, colon), hash).second)
      return "line " + std::to_string(number) + ": user " + line.substr(0, colon)
             + " is listed twice";
  }
  if (result.hashes_.empty())
    return "no users";
  return result;
}

std::variant<user_store, std::string> user_store::load(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return "cannot read " + path;
  std::stringstream text;
  text << in.rdbuf();
  auto result = parse(text.str());
  if (auto* err = std::get_if<std::string>(&result))
    return path + ": " + *err;
  return result;
}

bool user_store::check(const std::string& user, const std::string& password) const {
  auto i = hashes_.find(user);
  if (i == hashes_.end() || !sodium_ready())
    return false;
  return crypto_pwhash_str_verify(i->second.c_str(), password.data(), password.size()) == 0;
}

std::string user_store::make_line(const std::string& user, const std::string& password) {
  char hash[crypto_pwhash_STRBYTES];
  if (!sodium_ready()
      || crypto_pwhash_str(hash, password.data(), password.size(),
                           crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE)
           != 0)
    return "";
  return user + ":" + hash;
}

token_signer::token_signer(std::string secret, std::int64_t ttl_ms)
  : secret_(std::move(secret)), ttl_ms_(ttl_ms) {
  sodium_ready();
}

std::string token_signer::mac(const std::string& payload) const {
  unsigned char out[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(secret_.data()),
                              secret_.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(payload.data()),
                                payload.size());
  crypto_auth_hmacsha256_final(&st, out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

std::string token_signer::issue(const std::string& user, std::int64_t now_ms) const {
  auto payload = user + "\n" + std::to_string(now_ms + ttl_ms_);
  return b64url(payload) + "." + b64url(mac(payload));
}

token_signer::verdict token_signer::verify(const std::string& token, std::int64_t now_ms,
                                           std::string& user) const {
  auto dot = token.find('.');
  if (dot == std::string::npos || token.size() > 1024)
    return verdict::invalid;
  std::string payload, tag;
  if (!from_b64url(token.substr(0, dot), payload) || !from_b64url(token.substr(dot + 1), tag))
    return verdict::invalid;
  auto expected = mac(payload);
  if (tag.size() != expected.size()
      || sodium_memcmp(tag.data(), expected.data(), expected.size()) != 0)
    return verdict::invalid;
  auto nl = payload.rfind('\n');
  if (nl == std::string::npos)
    return verdict::invalid;
  std::int64_t expiry = 0;
  try {
    expiry = std::stoll(payload.substr(nl + 1));
  } catch (...) {
    return verdict::invalid;
  }
  user = payload.substr(0, nl);
  return now_ms < expiry ? verdict::ok : verdict::expired;
}

authenticator::authenticator(user_store users, token_signer signer)
  : users_(std::move(users)), signer_(std::move(signer)) {
  // nop
}

bool authenticator::password_ok(const std::string& username, const std::string& password,
                                std::int64_t now_ms) {
  // The cache key: a MAC of user and password under the signing secret, so the cache holds no
  // passwords.
  auto key = signer_.issue(username + "\n" + password, 0);
  key = key.substr(key.find('.') + 1);
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = verified_.find(key);
    if (i != verified_.end() && i->second > now_ms)
      return true;
  }
  if (!users_.check(username, password))
    return false;
  std::lock_guard<std::mutex> guard{mtx_};
  if (verified_.size() >= verified_pairs_max)
    verified_.clear();
  verified_[key] = now_ms + verified_pair_ms;
  return true;
}

auth_result authenticator::check(const std::string& access_token, const std::string& username,
                                 const std::string& password, std::int64_t now_ms) {
  auth_result r;
  if (!access_token.empty()) {
    switch (signer_.verify(access_token, now_ms, r.user)) {
      case token_signer::verdict::ok:
        r.ok = true;
        return r;
      case token_signer::verdict::expired:
        r.message = "token expired!";
        return r;
      case token_signer::verdict::invalid:
        r.message = "token invalid!";
        return r;
    }
  }
  if (!username.empty()) {
    if (password_ok(username, password, now_ms)) {
      r.ok = true;
      r.user = username;
      return r;
    }
    r.message = "unknown user!";
    return r;
  }
  r.message = "user not found!";
  return r;
}

auth_result authenticator::login(const std::string& username, const std::string& password,
                                 std::int64_t now_ms, std::string& token) {
  auth_result r;
  if (username.empty() || !password_ok(username, password, now_ms)) {
    r.message = "unknown user!";
    return r;
  }
  r.ok = true;
  r.user = username;
  token = signer_.issue(username, now_ms);
  return r;
}

std::variant<std::shared_ptr<authenticator>, std::string>
load_authenticator(const std::string& users_file, const std::string& secret, std::int64_t ttl_ms) {
  if (!sodium_ready())
    return std::string{"auth: libsodium cannot start"};
  auto users = user_store::load(users_file);
  if (auto* err = std::get_if<std::string>(&users))
    return "auth.users_file: " + *err;
  return std::make_shared<authenticator>(std::get<user_store>(std::move(users)),
                                         token_signer{secret, ttl_ms});
}

} // namespace registry::auth
