#pragma once
/// The peer handshake's proof of the cluster secret (no CAF): HMAC-SHA256 over both sides' nonces
/// and addresses, so a proof is good for one handshake only and cannot be replayed or reflected.
///
/// ```
///   dialer                                         answering node
///   PeerHello{address A, nonce a}           --->
///                                           <---   PeerWelcome{address B, nonce b,
///                                                              proof = H(welcome | a | b | B | A)}
///   checks the proof (B knows the secret)
///   PeerAuth{nonce b, proof = H(hello | b | a | A | B)} --->
///                                           <---   PeerWelcome + the peer-facing handle
/// ```
/// Without a secret on both sides there are no proofs: an "unauthenticated cluster". A side with a
/// secret refuses a side without one. Every dial runs the whole exchange, also when the answering
/// node trusts the dialling process from an earlier connection: the dialler authenticates the node
/// it reached. Only a probe over the peer-facing handle (a PeerHello without nonce, from a trusted
/// process) is answered without a challenge.

#include <string>

namespace registry::peer_auth {

/// Bytes of a fresh handshake nonce.
inline constexpr std::size_t nonce_bytes = 16;

/// A fresh random nonce (from the OS's random source).
std::string make_nonce();

/// The answering node's proof: it knows `secret`.
std::string welcome_proof(const std::string& secret, const std::string& dialer_nonce,
                          const std::string& answer_nonce, const std::string& answer_address,
                          const std::string& dialer_address);

/// The dialer's proof: it knows `secret`.
std::string hello_proof(const std::string& secret, const std::string& answer_nonce,
                        const std::string& dialer_nonce, const std::string& dialer_address,
                        const std::string& answer_address);

/// Compares two proofs in constant time.
bool same_proof(const std::string& a, const std::string& b);

} // namespace registry::peer_auth
