#pragma once
/// Delegation with a typed result, and relaying.
///
/// delegate() keeps the original sender, so the receiver sees the requester (possibly another
/// process). A handler that only takes in-process messages (see handlers.hpp) must be asked with
/// relay_envelope() instead: this actor asks on its own behalf and passes the reply back.

#include <chrono>

#include <caf/delegated.hpp>
#include <caf/typed_response_promise.hpp>

#include "messages/convert.hpp"
#include "messages/type_ids.hpp"

namespace registry {

/// Hands the current request to `dest`; its reply (an envelope) goes straight to the requester.
/// CAF 0.17's delegate() on dynamically typed actors yields delegated<message>, which a handler
/// returning result<envelope> cannot return.
template <class Self, class Dest, class... Ts>
caf::delegated<wire::envelope> delegate_envelope(Self* self, const Dest& dest, Ts&&... xs) {
  self->delegate(dest, std::forward<Ts>(xs)...);
  return {};
}

/// Asks `dest` on this actor's own behalf and passes its reply (an envelope) to the requester; a
/// timeout or error becomes an UNAVAILABLE Error envelope.
template <class Self, class Dest, class... Ts>
caf::typed_response_promise<wire::envelope>
relay_envelope(Self* self, const Dest& dest, std::chrono::milliseconds timeout, Ts&&... xs) {
  auto rp = self->template make_response_promise<wire::envelope>();
  self->request(dest, timeout, std::forward<Ts>(xs)...)
    .then([=](wire::envelope& reply) mutable { rp.deliver(std::move(reply)); },
          [=](caf::error& err) mutable {
            rp.deliver(wire::pack(make_error(v1::Error::UNAVAILABLE, "",
                                             "the node did not answer in time: "
                                               + self->system().render(err))));
          });
  return rp;
}

} // namespace registry
