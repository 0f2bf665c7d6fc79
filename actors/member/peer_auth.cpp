#include "actors/member/peer_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <random>
#include <stdexcept>

namespace registry::peer_auth {

namespace {

/// HMAC-SHA256 of the fields, each prefixed by its length so no two field lists collide.
std::string mac(const std::string& secret, std::initializer_list<const std::string*> fields) {
  std::string input;
  for (auto* f : fields) {
    auto n = static_cast<std::uint32_t>(f->size());
    for (int i = 0; i < 4; ++i)
      input.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    input += *f;
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, &len))
    throw std::runtime_error("HMAC-SHA256 failed");
  return std::string(reinterpret_cast<const char*>(out), len);
}

const std::string welcome_label = "registry.v1 peer welcome";
const std::string hello_label = "registry.v1 peer hello";

} // namespace

std::string make_nonce() {
  std::string result(nonce_bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(result.data()), static_cast<int>(nonce_bytes))
      != 1)
    throw std::runtime_error("no random bytes for a handshake nonce");
  return result;
}

std::string welcome_proof(const std::string& secret, const std::string& dialer_nonce,
                          const std::string& answer_nonce, const std::string& answer_address,
                          const std::string& dialer_address) {
  return mac(secret, {&welcome_label, &dialer_nonce, &answer_nonce, &answer_address,
                      &dialer_address});
}

std::string hello_proof(const std::string& secret, const std::string& answer_nonce,
                        const std::string& dialer_nonce, const std::string& dialer_address,
                        const std::string& answer_address) {
  return mac(secret, {&hello_label, &answer_nonce, &dialer_nonce, &dialer_address,
                      &answer_address});
}

bool same_proof(const std::string& a, const std::string& b) {
  return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace registry::peer_auth
