#pragma once
/// Handlers every node actor installs, so that nothing unexpected kills it: CAF's defaults quit an
/// actor on an error message and print to stderr on unexpected ones.

#include <caf/scheduled_actor.hpp>
#include <caf/sec.hpp>

#include "actors/common/log.hpp"

namespace registry {

/// Unexpected messages are logged at debug level and refused; error messages are logged at warn
/// level and the actor goes on.
template <class Self>
void install_default_handlers(Self* self, const char* name) {
  self->set_default_handler([name](caf::scheduled_actor* ptr, caf::message_view& x)
                              -> caf::result<caf::message> {
    log().debug("{} dropped an unexpected message {}", name,
                ptr->system().render(caf::make_error(caf::sec::unexpected_message,
                                                     x.copy_content_to_message())));
    return caf::sec::unexpected_message;
  });
  self->set_error_handler([self, name](caf::error& err) {
    log().warn("{} received an error: {}", name, self->system().render(err));
  });
}

} // namespace registry
