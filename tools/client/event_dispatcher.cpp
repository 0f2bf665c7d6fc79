#include "tools/client/event_dispatcher.hpp"

#include <cstdio>
#include <exception>
#include <vector>

#include "tools/client/service_cache.hpp"

namespace registry::client {

event_dispatcher::event_dispatcher() : thread_([this] { run(); }) {
  // nop
}

event_dispatcher::~event_dispatcher() {
  stop();
}

void event_dispatcher::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
    tasks_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    if (on_own_thread())
      thread_.detach(); // stopped from a callback: cannot join ourselves
    else
      thread_.join();
  }
}

void event_dispatcher::add_listener(listener_id id, std::string key, listener fn) {
  std::lock_guard<std::mutex> guard{mtx_};
  listeners_[id] = entry{std::move(key), std::make_shared<listener>(std::move(fn)), false};
}

std::string event_dispatcher::remove_listener(listener_id id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = listeners_.find(id);
  if (i == listeners_.end())
    return {};
  auto key = std::move(i->second.key);
  listeners_.erase(i);
  return key;
}

std::string event_dispatcher::key_of(listener_id id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = listeners_.find(id);
  return i == listeners_.end() ? std::string{} : i->second.key;
}

namespace {

void call_safely(const listener& fn, const change_event& ev) {
  try {
    fn(ev);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "registry-client: a listener threw: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "registry-client: a listener threw\n");
  }
}

} // namespace

void event_dispatcher::post_initial(listener_id id, service_info state) {
  enqueue([this, id, state = std::move(state)] {
    std::shared_ptr<listener> fn;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto i = listeners_.find(id);
      if (i == listeners_.end() || i->second.primed)
        return; // unsubscribed meanwhile, or already primed by an earlier initial state
      i->second.primed = true;
      fn = i->second.fn;
    }
    call_safely(*fn, initial_event(state));
  });
}

void event_dispatcher::post_change(std::string key, change_event event) {
  enqueue([this, key = std::move(key), event = std::move(event)] {
    std::vector<std::pair<listener_id, std::shared_ptr<listener>>> targets;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      for (const auto& [id, e] : listeners_)
        if (e.primed && e.key == key)
          targets.emplace_back(id, e.fn);
    }
    for (const auto& [id, fn] : targets) {
      {
        // Skip listeners removed while earlier ones of this event ran.
        std::lock_guard<std::mutex> guard{mtx_};
        if (listeners_.count(id) == 0)
          continue;
      }
      call_safely(*fn, event);
    }
  });
}

void event_dispatcher::post(std::function<void()> task) {
  enqueue([task = std::move(task)] {
    try {
      task();
    } catch (...) {
      // A notification callback failed: nothing to tell, it is the application's.
    }
  });
}

void event_dispatcher::enqueue(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_)
      return;
    if (tasks_.size() >= queue_max)
      tasks_.pop_front();
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void event_dispatcher::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> guard{mtx_};
      cv_.wait(guard, [this] { return stopping_ || !tasks_.empty(); });
      if (stopping_)
        return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

} // namespace registry::client
