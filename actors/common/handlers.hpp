#pragma once
/// Handlers every node actor installs, so that nothing unexpected kills it: CAF's defaults quit an
/// actor on an error message and print to stderr on unexpected ones.
///
/// Trust: CAF delivers a message from any connected process to any actor whose handle ever crossed
/// the network (replies and pushes carry their sender), and actor ids are small integers. So no
/// actor may rely on "nobody outside knows my handle": every in-process-only handler checks
/// `from_this_node`, and exit messages from other processes are refused.

#include <atomic>

#include <caf/actor_control_block.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/sec.hpp>
#include <caf/system_messages.hpp>

#include "actors/common/log.hpp"

namespace registry {

/// True when the message being handled comes from an actor of this process (an anonymous message
/// does not count: another process can send one).
template <class Self>
bool from_this_node(Self* self) {
  const auto& sender = self->current_sender();
  return sender != nullptr && sender->node() == self->node();
}

/// Logs a message refused because it came from outside the process. Logs the first few and then
/// every 1000th, so a flood cannot fill the disk.
inline void log_foreign(const char* actor, const char* what, const std::string& sender) {
  static std::atomic<std::uint64_t> refused{0};
  auto n = ++refused;
  if (n <= 20 || n % 1000 == 0)
    log().warn("{} refused {} from another process ({}); {} refused so far", actor, what, sender,
               n);
}

/// The sender of the current message, for logs.
template <class Self>
std::string sender_text(Self* self) {
  const auto& sender = self->current_sender();
  return sender ? to_string(sender->node()) : std::string{"anonymous"};
}

/// For in-process handlers: true when the sender is local; otherwise logs and returns false.
template <class Self>
bool local_only(Self* self, const char* actor, const char* what) {
  if (from_this_node(self))
    return true;
  log_foreign(actor, what, sender_text(self));
  return false;
}

/// A down message is believed when it comes from this process, or when a process reports one of its
/// own actors (CAF's proxies report remote actors going down).
template <class Self>
bool trusted_down(Self* self, const caf::down_msg& dm) {
  const auto& sender = self->current_sender();
  if (sender == nullptr || sender->node() == self->node() || sender->node() == dm.source.node())
    return true;
  log_foreign("actor", "a down message", sender_text(self));
  return false;
}

/// Unexpected messages are logged and refused with an error reply; error messages are logged at
/// warn level and the actor goes on; exit messages from other processes are refused.
template <class Self>
void install_default_handlers(Self* self, const char* name) {
  self->set_default_handler([name](caf::scheduled_actor* ptr, caf::message_view& x)
                              -> caf::result<caf::message> {
    const auto& sender = ptr->current_sender();
    bool local = sender != nullptr && sender->node() == ptr->node();
    auto text = ptr->system().render(
      caf::make_error(caf::sec::unexpected_message, x.copy_content_to_message()));
    if (local)
      log().debug("{} dropped an unexpected message {}", name, text);
    else
      log_foreign(name, "a message its interface does not list", sender_text(ptr));
    return caf::sec::unexpected_message;
  });
  self->set_error_handler([self, name](caf::error& err) {
    log().warn("{} received an error: {}", name, self->system().render(err));
  });
  self->set_exit_handler([self, name](caf::exit_msg& em) {
    if (!from_this_node(self)) {
      log_foreign(name, "an exit message", sender_text(self));
      return;
    }
    if (em.reason)
      self->quit(em.reason);
  });
}

} // namespace registry
