#pragma once
/// The transport of every CAF link: plain TCP, or TLS through CAF's openssl module
/// (config/tls.hpp says what each TLS mode authenticates).
///
/// A process with TLS loads the openssl module, and then connects and publishes only through
/// `link_manager`, the openssl module's middleman actor, so that none of its links is plain. Both
/// middleman actors share one BASP broker: handles, monitors and heartbeats work the same over
/// either transport.

#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/io/middleman_actor.hpp>

#include "config/tls.hpp"

namespace registry {

/// Keeps the TLS files open for the life of the process and hands CAF their /proc/self/fd paths.
///
/// CAF reads the files again for every new connection and raises an exception in the I/O thread
/// (ending the process) when one fails to load: a key deleted, or a certificate replaced before its
/// key, would kill the node at its next connection. Pinned, the files checked at start are the
/// ones used until the process ends (replacing them takes effect at the next start). Where
/// /proc/self/fd is not available, the paths are used as they are.
class tls_file_pins {
public:
  tls_file_pins() = default;
  ~tls_file_pins();
  tls_file_pins(const tls_file_pins&) = delete;
  tls_file_pins& operator=(const tls_file_pins&) = delete;

  /// `tls` with each file replaced by a path to a descriptor held open here.
  tls_settings pin(const tls_settings& tls);

private:
  std::string pin_one(const std::string& path);
  std::vector<int> fds_;
};

/// Loads CAF's openssl module with `tls` when TLS is enabled (after wire::configure_system, which
/// loads the middleman). The files must have passed check_tls_files, or CAF raises later. Returns
/// "" or why TLS cannot be used in this program (see actors/common/openssl_io.cpp: CAF 0.17.6's
/// openssl module needs SSL_read/SSL_write that clear OpenSSL's error queue, which this project
/// supplies by symbol interposition).
std::string configure_tls(caf::actor_system_config& cfg, const tls_settings& tls);

/// The middleman actor for connect and publish requests: the openssl module's when it is loaded,
/// else the plain middleman's.
caf::io::middleman_actor link_manager(caf::actor_system& sys);

/// "TLS (certificate)", "TLS (anonymous)" or "plain TCP": how this process's links travel.
std::string link_transport(caf::actor_system& sys);

/// Why a connect request to another process failed, with the likely cause when the transports
/// disagree: CAF reports a TLS handshake that fails (TLS against plain TCP, anonymous against
/// certificate mode, a certificate the other side's CA does not accept) as a connection closed
/// during the handshake, within milliseconds. `peer_setting` names what the other side sets
/// (e.g. "the member's tls settings").
std::string explain_connect_error(caf::actor_system& sys, const caf::error& err,
                                  const std::string& peer_setting);

/// True when `err` from a connect request means the TLS (or CAF) handshake with a listening
/// process failed, rather than nothing listening or no answer in time.
bool handshake_failed(const caf::error& err);

} // namespace registry
