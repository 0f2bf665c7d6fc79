#pragma once
/// TLS settings of one process (a node, registryctl, the client library) and their checks, without
/// CAF: the files are checked with OpenSSL the way CAF's openssl module will load them.
///
/// What CAF 0.17.6's openssl module does (libcaf_openssl, session.cpp), and so what TLS means here:
/// - **certificate mode** (any file configured): every connection, in both directions, is TLS 1.2
///   with ciphers HIGH:!aNULL:!MD5 and *mutual* certificate authentication: each side presents its
///   certificate and refuses a peer that presents none or one its CA file does not accept. So a
///   certificate, its key and a CA file are all needed, on nodes and clients alike. Host names and
///   certificate subjects are not checked: any holder of a certificate the CA signed is accepted as
///   any node or client.
/// - **anonymous mode** (TLS without files): TLS 1.2 with anonymous ECDH (AECDH-AES256-SHA) and no
///   verification: encrypted against eavesdroppers, but nothing is authenticated, so an active man
///   in the middle can read and change everything.
/// The two modes share no cipher, and neither talks to plain TCP: every member of a cluster, and
/// every client, must use the same mode.
///
/// CAF loads the files again for every new connection and raises an exception (which ends the
/// process) when one fails to load; check_tls_files runs the same loads at start, and the node pins
/// the files it checked (actors/common/transport.hpp).

#include <optional>
#include <string>

namespace registry {

struct tls_settings {
  bool enabled = false;
  std::string certificate;    ///< PEM certificate (chain) of this process; "" = anonymous mode
  std::string key;            ///< PEM private key of the certificate
  std::string key_passphrase; ///< decrypts `key` ("" = not encrypted); never log it
  std::string ca_file;        ///< PEM CA certificates a peer's certificate must chain to

  bool certificate_mode() const { return enabled && !certificate.empty(); }
  /// "off", "anonymous" or "certificate".
  const char* mode() const;
};

/// A problem with one setting; `field` is "certificate", "key", "key_passphrase" or "ca_file" and
/// each caller names it its own way (tls.key, --tls-key, options.tls.key).
struct tls_problem {
  std::string field;
  std::string problem;
};

/// The relations between the settings: certificate and key come together, and with a CA file
/// (CAF verifies every peer, so without one no connection succeeds); a passphrase needs a key; no
/// file without `enabled`. No file is read.
std::optional<tls_problem> check_tls_relations(const tls_settings& tls);

/// Whom this process's own certificate must be good for.
enum class tls_role {
  node,   ///< dials and accepts: its certificate must verify against its CA for TLS client and
          ///< server use (peers with the same ca_file then accept it)
  client, ///< only dials: its certificate is checked by the node's CA, which may differ
};

/// check_tls_relations, then every file: present, a regular file of at most
/// defaults::tls_file_bytes_max, readable, loadable by OpenSSL exactly as CAF loads it (certificate
/// chain, key decrypted with the passphrase, CA certificates), the key belonging to the
/// certificate, and for a node the certificate verifying against the CA file (expiry, signature,
/// key usage). Nothing is checked when TLS is off or anonymous.
std::optional<tls_problem> check_tls_files(const tls_settings& tls, tls_role role);

/// Reads a passphrase file into `out` (one final newline, LF or CRLF, is dropped); "" when fine,
/// else the problem, naming the path but never the content.
std::string read_passphrase_file(const std::string& path, std::string& out);

/// True when others (not owner or group) may read `path`: worth a warning for keys and secrets.
bool readable_by_others(const std::string& path, std::string& mode_text);

} // namespace registry
