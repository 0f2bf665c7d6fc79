#pragma once
/// The library's event thread (plain C++, no CAF): runs listener callbacks and session notifications
/// in the order they were posted, never on an application thread and never inside an actor (so a
/// listener may call the naming_client again without deadlocking the library).
///
/// Listener protocol (keeps "first the whole state, then every change" per listener):
/// - add_listener() registers a listener for a cache key, *unprimed*;
/// - post_initial(id, state) primes it and calls it with the whole state;
/// - post_change(key, event) calls every *primed* listener of `key`.
/// Because tasks run in posting order, a change posted before a listener's initial state never reaches
/// it, and every change posted after does.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tools/client/registry_client.hpp"

namespace registry::client {

class event_dispatcher {
public:
  /// Bound of queued tasks; beyond it the oldest change events are dropped (listeners are expected to
  /// keep up; a lagging one sees the latest state later anyway).
  static constexpr std::size_t queue_max = 100000;

  event_dispatcher();
  ~event_dispatcher(); ///< stops and joins the thread (queued tasks are dropped)

  event_dispatcher(const event_dispatcher&) = delete;
  event_dispatcher& operator=(const event_dispatcher&) = delete;

  void add_listener(listener_id id, std::string key, listener fn);
  /// Removes a listener; returns its key ("" if unknown). Later tasks no longer call it.
  std::string remove_listener(listener_id id);
  /// The key of a listener ("" if unknown).
  std::string key_of(listener_id id) const;

  void post_initial(listener_id id, service_info state);
  void post_change(std::string key, change_event event);
  void post(std::function<void()> task);

  /// Stops the thread; idempotent. Called from the destructor.
  void stop();

  /// True when called on the dispatcher's own thread.
  bool on_own_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

private:
  struct entry {
    std::string key;
    std::shared_ptr<listener> fn;
    bool primed = false;
  };

  void run();
  void enqueue(std::function<void()> task);

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::map<listener_id, entry> listeners_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace registry::client
