// SSL_read and SSL_write for every process that uses CAF's openssl module: each clears the calling
// thread's OpenSSL error queue, then calls OpenSSL's own function.
//
// Why: OpenSSL's SSL_get_error() reads the thread's error queue first, so "the current thread's
// error queue must be empty before the TLS/SSL I/O operation is attempted" (SSL_get_error(3)).
// CAF 0.17.6's openssl module never clears it: its session calls SSL_read/SSL_write on
// non-blocking sockets and closes the connection unless SSL_get_error says WANT_READ/WANT_WRITE.
// OpenSSL 3.0 leaves harmless entries on the queue during handshakes (seen: EVP errors from
// EVP_PKEY_copy_parameters in the key exchange), and CAF's I/O thread serves every connection,
// so one connection's handshake made the next would-block read of *another* connection look
// fatal: a member dialing a peer that had dialed it first, or a client connecting to a node,
// dropped the healthy links (reproduced with two plain CAF processes; the same class of bug as
// openssl/openssl#11889, h2o#1448; BoringSSL clears the queue in SSL_read/SSL_write itself).
//
// How: these definitions in the executable take precedence over libssl's for libcaf_openssl
// (ELF symbol interposition: the linker exports them because a shared library in the link refers
// to them); the originals are found with dlsym(RTLD_NEXT). transport.cpp checks at start that the
// interposition is in effect and refuses TLS otherwise. Clearing first is exactly what OpenSSL
// asks of every caller, so libcurl (the node's members_url fetch) is not harmed either. Remove this
// file once CAF's openssl module clears the queue itself.

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace {

using read_fn = int (*)(SSL*, void*, int);
using write_fn = int (*)(SSL*, const void*, int);

template <class Fn>
Fn next_definition(const char* name) {
  auto* sym = dlsym(RTLD_NEXT, name);
  if (sym == nullptr) {
    std::fprintf(stderr, "fatal: %s not found in libssl: %s\n", name, dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(sym);
}

} // namespace

extern "C" int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto real = next_definition<read_fn>("SSL_read");
  ERR_clear_error();
  return real(ssl, buf, num);
}

extern "C" int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto real = next_definition<write_fn>("SSL_write");
  ERR_clear_error();
  return real(ssl, buf, num);
}

namespace registry::detail {

/// True when CAF's openssl module calls the functions above (the executable's definitions are the
/// ones the dynamic linker resolves SSL_read and SSL_write to).
bool openssl_io_guarded() {
  return dlsym(RTLD_DEFAULT, "SSL_read") == reinterpret_cast<void*>(&SSL_read)
         && dlsym(RTLD_DEFAULT, "SSL_write") == reinterpret_cast<void*>(&SSL_write);
}

} // namespace registry::detail
