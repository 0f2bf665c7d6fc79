#pragma once
/// Throwaway certificates for TLS tests, made at test time with the `openssl` command-line tool
/// (its path comes from meson as OPENSSL_PATH) in a directory the test owns: a CA and leaf
/// certificates it signs, with EC P-256 keys (fast to make).

#include <string>
#include <vector>

namespace registry::test {

/// How a leaf certificate differs from a good one.
struct cert_options {
  bool expired = false;     ///< notAfter before notBefore
  bool server_only = false; ///< extendedKeyUsage serverAuth only (no clientAuth)
  std::string passphrase;   ///< encrypt the key with this passphrase (AES-256) when not empty
};

/// A certificate and its key, as paths.
struct cert_files {
  std::string certificate;
  std::string key;
};

class test_pki {
public:
  /// Makes a CA named `name` in `dir` (which must exist): `dir/name-ca.pem` and its key. Throws
  /// std::runtime_error with openssl's output when the tool fails.
  test_pki(std::string dir, std::string name);

  /// A leaf certificate `name` signed by this CA, for TLS server and client use, subject CN=name,
  /// subjectAltName IP:127.0.0.1. Throws like the constructor.
  cert_files issue(const std::string& name, const cert_options& options = {});

  const std::string& ca_file() const { return ca_file_; }

private:
  void openssl(const std::vector<std::string>& args);
  std::string dir_;
  std::string name_;
  std::string ca_file_;
  std::string ca_key_;
  int serial_ = 1;
};

} // namespace registry::test
