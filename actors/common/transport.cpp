#include "actors/common/transport.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/sec.hpp>

namespace registry {

namespace detail {

bool openssl_io_guarded(); // openssl_io.cpp

} // namespace detail

// -- pinned files -------------------------------------------------------------------------------

tls_file_pins::~tls_file_pins() {
  for (int fd : fds_)
    ::close(fd);
}

std::string tls_file_pins::pin_one(const std::string& path) {
  if (path.empty())
    return path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return path; // CAF then reports the failure at the connection, as without pinning
  auto pinned = "/proc/self/fd/" + std::to_string(fd);
  if (::access(pinned.c_str(), R_OK) != 0) {
    ::close(fd);
    return path;
  }
  fds_.push_back(fd);
  return pinned;
}

tls_settings tls_file_pins::pin(const tls_settings& tls) {
  auto result = tls;
  if (!tls.certificate_mode())
    return result;
  result.certificate = pin_one(tls.certificate);
  result.key = pin_one(tls.key);
  result.ca_file = pin_one(tls.ca_file);
  return result;
}

// -- the actor system ---------------------------------------------------------------------------

std::string configure_tls(caf::actor_system_config& cfg, const tls_settings& tls) {
  if (!tls.enabled)
    return "";
  if (!detail::openssl_io_guarded())
    return "TLS is not available in this program: CAF's openssl module would not get the "
           "SSL_read/SSL_write that clear OpenSSL's error queue (actors/common/openssl_io.cpp), "
           "and one connection's handshake could then close the others";
  // CAF's openssl module reads these members (its options are not settable through set()).
  // Certificate mode is chosen by any of them being non-empty, anonymous mode by none.
  cfg.openssl_certificate = tls.certificate;
  cfg.openssl_key = tls.key;
  cfg.openssl_passphrase = tls.key_passphrase;
  cfg.openssl_cafile = tls.ca_file;
  cfg.openssl_capath.clear();
  cfg.load<caf::openssl::manager>();
  return "";
}

caf::io::middleman_actor link_manager(caf::actor_system& sys) {
  if (sys.has_openssl_manager())
    return sys.openssl_manager().actor_handle();
  return sys.middleman().actor_handle();
}

std::string link_transport(caf::actor_system& sys) {
  if (!sys.has_openssl_manager())
    return "plain TCP";
  return sys.openssl_manager().authentication_enabled() ? "TLS (certificate)" : "TLS (anonymous)";
}

bool handshake_failed(const caf::error& err) {
  if (err == caf::sec::disconnect_during_handshake)
    return true;
  // The openssl module's connect fails this way, without the ("ip_connect failed", host, port)
  // context of a refused TCP connect, when the TLS handshake fails at its first read.
  return err == caf::sec::cannot_connect_to_node && err.context().empty();
}

std::string explain_connect_error(caf::actor_system& sys, const caf::error& err,
                                  const std::string& peer_setting) {
  if (!handshake_failed(err))
    return sys.render(err);
  if (!sys.has_openssl_manager())
    return "the connection closed during the handshake: the other side may require TLS ("
           + peer_setting + " must match)";
  if (sys.openssl_manager().authentication_enabled())
    return "the TLS handshake failed: the other side runs without TLS or with anonymous TLS, or "
           "one side's certificate is not accepted by the other side's CA file ("
           + peer_setting + " must match)";
  return "the TLS handshake failed: the other side runs without TLS or with certificates ("
         + peer_setting + " must match)";
}

} // namespace registry
