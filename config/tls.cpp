#include "config/tls.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "config/defaults.hpp"

namespace registry {

namespace {

std::string quoted(const std::string& path) {
  return "'" + path + "'";
}

/// OpenSSL's queued errors as readable reasons ("no start line; bad decrypt"); clears the queue.
std::string openssl_errors() {
  std::string result;
  while (auto e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    std::string text;
    if (reason != nullptr) {
      text = reason;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      text = buf;
    }
    if (result.find(text) == std::string::npos)
      result += (result.empty() ? "" : "; ") + text;
  }
  return result.empty() ? std::string{"unknown OpenSSL error"} : result;
}

/// "" when `path` is a readable regular file within the size bound, else the problem.
std::string check_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return "cannot read " + quoted(path) + ": " + std::strerror(errno);
  if (!S_ISREG(st.st_mode))
    return "cannot read " + quoted(path) + ": not a regular file";
  if (static_cast<std::uint64_t>(st.st_size) > defaults::tls_file_bytes_max)
    return quoted(path) + " is larger than " + std::to_string(defaults::tls_file_bytes_max)
           + " bytes";
  if (st.st_size == 0)
    return quoted(path) + " is empty";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    return "cannot read " + quoted(path) + ": " + std::strerror(errno);
  std::fclose(f);
  return "";
}

/// Hands the passphrase to OpenSSL and notes that the key asked for one. Unlike OpenSSL's default
/// (which prompts on the terminal), a missing passphrase fails at once.
struct passphrase_source {
  const std::string* passphrase = nullptr;
  bool asked = false;

  static int callback(char* buf, int size, int, void* user) {
    auto* self = static_cast<passphrase_source*>(user);
    self->asked = true;
    const auto& pass = *self->passphrase;
    if (pass.empty() || size <= 0 || pass.size() >= static_cast<std::size_t>(size))
      return -1;
    std::memcpy(buf, pass.data(), pass.size());
    return static_cast<int>(pass.size());
  }
};

using ctx_ptr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;
using bio_ptr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using store_ctx_ptr = std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)>;

/// Loads the key as CAF does (PEM, with the passphrase when there is one) into `ctx`, which holds
/// the certificate already.
std::optional<tls_problem> load_key(SSL_CTX* ctx, const tls_settings& tls) {
  passphrase_source source{&tls.key_passphrase};
  bio_ptr bio{BIO_new_file(tls.key.c_str(), "r"), BIO_free};
  if (!bio)
    return tls_problem{"key", "cannot read " + quoted(tls.key) + ": " + openssl_errors()};
  pkey_ptr key{PEM_read_bio_PrivateKey(bio.get(), nullptr, &passphrase_source::callback, &source),
               EVP_PKEY_free};
  if (!key) {
    auto why = openssl_errors();
    if (source.asked && tls.key_passphrase.empty())
      return tls_problem{"key", "the key in " + quoted(tls.key)
                                  + " is encrypted and no passphrase is given"};
    if (source.asked)
      return tls_problem{"key_passphrase", "does not decrypt the key in " + quoted(tls.key) + " ("
                                             + why + ")"};
    return tls_problem{"key", "cannot load a PEM private key from " + quoted(tls.key) + ": " + why};
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1)
    return tls_problem{"key", quoted(tls.key) + " is not the key of the certificate "
                                + quoted(tls.certificate) + " (" + openssl_errors() + ")"};
  return std::nullopt;
}

/// "" when the certificate in `ctx` is within its validity period, else the problem.
std::string check_validity(SSL_CTX* ctx, const std::string& path) {
  X509* leaf = SSL_CTX_get0_certificate(ctx);
  if (leaf == nullptr)
    return "no certificate in " + quoted(path);
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0)
    return "the certificate in " + quoted(path) + " has expired";
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0)
    return "the certificate in " + quoted(path) + " is not valid yet";
  return "";
}

/// Verifies the certificate in `ctx` against its CA store as a peer does in the TLS handshake:
/// for `use` "ssl_server" (a node accepting) or "ssl_client" (a node dialing), at the context's
/// security level. "" when it verifies.
std::string verify_own(SSL_CTX* ctx, const char* use) {
  X509* leaf = SSL_CTX_get0_certificate(ctx);
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx, &chain);
  store_ctx_ptr sc{X509_STORE_CTX_new(), X509_STORE_CTX_free};
  if (!sc || X509_STORE_CTX_init(sc.get(), SSL_CTX_get_cert_store(ctx), leaf, chain) != 1)
    return openssl_errors();
  X509_STORE_CTX_set_default(sc.get(), use);
  X509_VERIFY_PARAM_set_auth_level(X509_STORE_CTX_get0_param(sc.get()),
                                   SSL_CTX_get_security_level(ctx));
  if (X509_verify_cert(sc.get()) == 1)
    return "";
  ERR_clear_error();
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(sc.get()));
}

} // namespace

const char* tls_settings::mode() const {
  if (!enabled)
    return "off";
  return certificate.empty() ? "anonymous" : "certificate";
}

std::optional<tls_problem> check_tls_relations(const tls_settings& tls) {
  bool cert = !tls.certificate.empty();
  bool key = !tls.key.empty();
  bool ca = !tls.ca_file.empty();
  if (!tls.enabled) {
    if (cert || key || ca || !tls.key_passphrase.empty())
      return tls_problem{cert ? "certificate" : key ? "key" : ca ? "ca_file" : "key_passphrase",
                         "given while TLS is off"};
    return std::nullopt;
  }
  if (cert && !key)
    return tls_problem{"key", "missing: the certificate " + quoted(tls.certificate)
                                + " needs its private key"};
  if (key && !cert)
    return tls_problem{"certificate", "missing: the key " + quoted(tls.key)
                                        + " needs its certificate"};
  if (cert && !ca)
    return tls_problem{"ca_file", "missing: with a certificate, CAF's openssl module verifies "
                                  "the certificate of every peer and needs the CA that signed "
                                  "them (without one no connection succeeds)"};
  if (ca && !cert)
    return tls_problem{"certificate",
                       "missing: with a CA file, CAF's openssl module also presents a "
                       "certificate of this process to every peer (mutual authentication); "
                       "give a certificate and its key too"};
  if (!tls.key_passphrase.empty() && !key)
    return tls_problem{"key_passphrase", "given without a key"};
  if (tls.key_passphrase.size() > defaults::tls_key_passphrase_bytes_max)
    return tls_problem{"key_passphrase",
                       "longer than " + std::to_string(defaults::tls_key_passphrase_bytes_max)
                         + " bytes (OpenSSL would cut it)"};
  return std::nullopt;
}

std::optional<tls_problem> check_tls_files(const tls_settings& tls, tls_role role) {
  if (auto problem = check_tls_relations(tls))
    return problem;
  if (!tls.certificate_mode())
    return std::nullopt;
  const std::pair<const char*, const std::string*> files[] = {
    {"certificate", &tls.certificate}, {"key", &tls.key}, {"ca_file", &tls.ca_file}};
  for (const auto& [field, path] : files)
    if (auto problem = check_file(*path); !problem.empty())
      return tls_problem{field, problem};
  ERR_clear_error();
  ctx_ptr ctx{SSL_CTX_new(TLS_method()), SSL_CTX_free};
  if (!ctx)
    return tls_problem{"certificate", "cannot create an OpenSSL context: " + openssl_errors()};
  // The same calls, in the same order, as CAF's session::create_ssl_context.
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.certificate.c_str()) != 1)
    return tls_problem{"certificate", "cannot load a PEM certificate from "
                                        + quoted(tls.certificate) + ": " + openssl_errors()};
  if (auto problem = load_key(ctx.get(), tls))
    return problem;
  if (SSL_CTX_load_verify_locations(ctx.get(), tls.ca_file.c_str(), nullptr) != 1)
    return tls_problem{"ca_file", "cannot load CA certificates from " + quoted(tls.ca_file) + ": "
                                    + openssl_errors()};
  if (auto problem = check_validity(ctx.get(), tls.certificate); !problem.empty())
    return tls_problem{"certificate", problem};
  if (role == tls_role::node) {
    // A node dials its peers and accepts them, and the peers check its certificate against their
    // CA file, which in a cluster is this one.
    const std::pair<const char*, const char*> uses[] = {{"ssl_server", "server"},
                                                        {"ssl_client", "client"}};
    for (const auto& [use, what] : uses) {
      auto why = verify_own(ctx.get(), use);
      if (!why.empty())
        return tls_problem{"certificate",
                           quoted(tls.certificate) + " does not verify against the CA file "
                             + quoted(tls.ca_file) + " for use as a TLS " + what + ": " + why
                             + "; members with this CA file would refuse this node"};
    }
  }
  return std::nullopt;
}

std::string read_passphrase_file(const std::string& path, std::string& out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return "cannot read " + quoted(path) + ": " + std::strerror(errno);
  if (!S_ISREG(st.st_mode))
    return "cannot read " + quoted(path) + ": not a regular file";
  const auto bound = defaults::tls_key_passphrase_bytes_max + 2; // room for a final CRLF
  if (static_cast<std::uint64_t>(st.st_size) > bound)
    return quoted(path) + " is larger than " + std::to_string(defaults::tls_key_passphrase_bytes_max)
           + " bytes";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    return "cannot read " + quoted(path) + ": " + std::strerror(errno);
  std::string text;
  char buf[256];
  std::size_t n = 0;
  while (text.size() <= bound && (n = std::fread(buf, 1, sizeof buf, f)) > 0)
    text.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int read_errno = errno;
  std::fclose(f);
  if (failed)
    return "cannot read " + quoted(path) + ": " + std::strerror(read_errno);
  if (!text.empty() && text.back() == '\n') {
    text.pop_back();
    if (!text.empty() && text.back() == '\r')
      text.pop_back();
  }
  if (text.empty())
    return quoted(path) + " is empty";
  if (text.size() > defaults::tls_key_passphrase_bytes_max)
    return quoted(path) + " is larger than " + std::to_string(defaults::tls_key_passphrase_bytes_max)
           + " bytes";
  out = std::move(text);
  return "";
}

bool readable_by_others(const std::string& path, std::string& mode_text) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || (st.st_mode & (S_IROTH | S_IWOTH)) == 0)
    return false;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  mode_text = mode;
  return true;
}

} // namespace registry
