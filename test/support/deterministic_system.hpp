#pragma once
/// An actor system on CAF's deterministic test scheduler, for the actor tier: nothing runs until
/// the test runs it, and time moves only when the test advances it.

#include <chrono>
#include <memory>
#include <utility>

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include "messages/registry.pb.h"
#include "messages/type_ids.hpp"

namespace registry::test {

struct deterministic_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::unique_ptr<caf::scoped_actor> self;

  deterministic_system() {
    wire::register_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    self = std::make_unique<caf::scoped_actor>(*sys);
  }

  /// Advances virtual time in steps, running every actor after each step.
  void advance(caf::timespan total, caf::timespan step = std::chrono::milliseconds(10)) {
    for (caf::timespan t{0}; t < total; t += step) {
      sched->advance_time(step);
      sched->run();
    }
  }

  /// Sends a request, runs every actor, and returns the envelope it is answered with (an error
  /// answer fails the test).
  template <class... Ts>
  wire::envelope ask(const caf::actor& dest, Ts&&... xs) {
    wire::envelope result;
    auto handle = (*self)->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    sched->run();
    handle.receive([&](wire::envelope& env) { result = std::move(env); },
                   [&](caf::error& err) { FAIL("request failed: " << sys->render(err)); });
    return result;
  }

  /// A client process `remote` says Hello to `gateway`: the reply and the session actor (none when
  /// refused).
  std::pair<wire::envelope, caf::actor> hello(const caf::actor& gateway, const caf::actor& remote) {
    v1::Hello msg;
    msg.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
    std::pair<wire::envelope, caf::actor> result;
    auto h = (*self)->request(gateway, caf::infinite, wire::hello_atom_v, wire::pack(msg), remote);
    sched->run();
    h.receive([&](wire::envelope& env, caf::actor& s) { result = {std::move(env), s}; },
              [&](caf::error& err) { FAIL(sys->render(err)); });
    return result;
  }
};

} // namespace registry::test
