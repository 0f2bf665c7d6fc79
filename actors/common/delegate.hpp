#pragma once
/// Delegation with a typed result: CAF 0.17's delegate() on dynamically typed actors yields
/// delegated<message>, which a handler returning result<envelope> cannot return.

#include <caf/delegated.hpp>

#include "messages/type_ids.hpp"

namespace registry {

/// Hands the current request to `dest`; its reply (an envelope) goes straight to the requester.
template <class Self, class Dest, class... Ts>
caf::delegated<wire::envelope> delegate_envelope(Self* self, const Dest& dest, Ts&&... xs) {
  self->delegate(dest, std::forward<Ts>(xs)...);
  return {};
}

} // namespace registry
