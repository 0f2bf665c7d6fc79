// service_routes: a client's routes to its service actors (no CAF; handles and updates are ints).

#include <doctest/doctest.h>

#include "actors/client/service_routes.hpp"

using namespace registry;

namespace {

using routes = service_routes<int, int>;

service_key key(const std::string& name) {
  return service_key{"public", "DEFAULT_GROUP", name};
}

auto never_idle = [](const service_key&) { return false; };
auto always_idle = [](const service_key&) { return true; };

} // namespace

TEST_CASE("updates wait in submission order while a route resolves") {
  routes r{8, 4};
  CHECK(r.find(key("a")) == nullptr);
  CHECK(r.enqueue(key("a"), 1, never_idle).what == routes::outcome::resolve);
  CHECK(r.resolving(key("a")));
  CHECK(r.enqueue(key("a"), 2, never_idle).what == routes::outcome::queued);
  CHECK(r.enqueue(key("a"), 3, never_idle).what == routes::outcome::queued);
  CHECK(r.resolved(key("a"), 42) == std::vector<int>{2, 3});
  REQUIRE(r.find(key("a")) != nullptr);
  CHECK(*r.find(key("a")) == 42);
  // A resolved route takes no queue: the caller sends at once.
  int op = 4;
  CHECK(r.enqueue(key("a"), std::move(op), never_idle).what == routes::outcome::full);
}

TEST_CASE("a full queue refuses, a failed resolution hands the updates back") {
  routes r{8, 2};
  CHECK(r.enqueue(key("a"), 1, never_idle).what == routes::outcome::resolve);
  CHECK(r.enqueue(key("a"), 2, never_idle).what == routes::outcome::queued);
  CHECK(r.enqueue(key("a"), 3, never_idle).what == routes::outcome::queued);
  CHECK(r.enqueue(key("a"), 4, never_idle).what == routes::outcome::full);
  CHECK(r.failed(key("a")) == std::vector<int>{2, 3});
  CHECK_FALSE(r.has_route(key("a")));
  // A late answer for a forgotten route changes nothing.
  CHECK(r.resolved(key("a"), 7).empty());
  CHECK(r.find(key("a")) == nullptr);
}

TEST_CASE("a service actor that went away is forgotten, and only its routes") {
  routes r{8, 4};
  r.enqueue(key("a"), 1, never_idle);
  r.resolved(key("a"), 10);
  r.enqueue(key("b"), 1, never_idle);
  r.resolved(key("b"), 11);
  r.enqueue(key("c"), 1, never_idle); // resolving: kept
  auto gone = r.forget_if([](int h) { return h == 10; });
  CHECK(gone == std::vector<service_key>{key("a")});
  CHECK(r.find(key("a")) == nullptr);
  CHECK(r.find(key("b")) != nullptr);
  CHECK(r.resolving(key("c")));
}

TEST_CASE("at the bound an idle route makes room; without one the update is refused") {
  routes r{2, 4};
  r.enqueue(key("a"), 1, never_idle);
  r.resolved(key("a"), 10);
  r.enqueue(key("b"), 1, never_idle);
  CHECK(r.enqueue(key("c"), 1, never_idle).what == routes::outcome::full);
  auto res = r.enqueue(key("c"), 1, always_idle);
  CHECK(res.what == routes::outcome::resolve);
  REQUIRE(res.evicted);
  CHECK(*res.evicted == 10); // the resolved one; a resolving route is never evicted
  CHECK(r.size() == 2);
  auto all = r.clear();
  CHECK(all.first.empty());
  CHECK(r.size() == 0);
}
