/// The linearizability checker of test/support/linearizability.hpp on small hand-made histories,
/// linearizable and not.

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "test/support/linearizability.hpp"

using namespace registry::testing;

namespace {

using op = operation<register_model>;

op write(std::int64_t v, std::int64_t call, std::int64_t ret) {
  return op{register_model::input{true, v}, 0, call, ret};
}

op read(std::int64_t v, std::int64_t call, std::int64_t ret) {
  return op{register_model::input{false, 0}, v, call, ret};
}

bool ok(const std::vector<op>& h) {
  auto r = check_linearizable<register_model>(h);
  REQUIRE_FALSE(r.gave_up);
  if (r.linearizable)
    CHECK(r.order.size() == h.size());
  return r.linearizable;
}

} // namespace

TEST_CASE("linearizability: an empty and a sequential history are linearizable") {
  CHECK(ok({}));
  CHECK(ok({read(0, 0, 1), write(1, 2, 3), read(1, 4, 5), write(2, 6, 7), read(2, 8, 9)}));
}

TEST_CASE("linearizability: a read concurrent with a write may see either value") {
  CHECK(ok({write(1, 0, 10), read(0, 2, 4)}));
  CHECK(ok({write(1, 0, 10), read(1, 2, 4)}));
  CHECK(ok({write(1, 0, 10), read(1, 2, 4), read(1, 5, 6)}));
}

TEST_CASE("linearizability: a stale read after a completed write is rejected") {
  CHECK_FALSE(ok({write(1, 0, 10), read(0, 20, 30)}));
  CHECK_FALSE(ok({write(1, 0, 10), write(2, 11, 12), read(1, 20, 30)}));
}

TEST_CASE("linearizability: reads must agree on one order of concurrent writes") {
  // Two concurrent writes; readers see 1, then 2, then 1 again: no single order explains it.
  CHECK_FALSE(ok({write(1, 0, 100), write(2, 0, 100), read(1, 10, 20), read(2, 30, 40),
                  read(1, 50, 60)}));
  // Seeing 2 then 1 is fine (2 was written first).
  CHECK(ok({write(1, 0, 100), write(2, 0, 100), read(2, 10, 20), read(1, 30, 40)}));
  // Two readers overlapping each other may see the values in either order.
  CHECK(ok({write(1, 0, 100), write(2, 0, 100), read(1, 10, 40), read(2, 10, 40)}));
}

TEST_CASE("linearizability: a read of a value nobody wrote is rejected") {
  CHECK_FALSE(ok({write(1, 0, 10), read(7, 5, 15)}));
}

TEST_CASE("linearizability: an unknown outcome may take effect late or never") {
  // The write timed out: a later read may see it, or not.
  CHECK(ok({write(1, 0, unknown_return), read(0, 5, 6)}));
  CHECK(ok({write(1, 0, unknown_return), read(0, 5, 6), read(1, 100, 110)}));
  // But once seen, it cannot be unseen (no other write of 0).
  CHECK_FALSE(ok({write(1, 0, unknown_return), read(1, 5, 6), read(0, 100, 110)}));
  // Nor can it be seen before it was called.
  CHECK_FALSE(ok({read(1, 0, 4), write(1, 5, unknown_return)}));
}

TEST_CASE("linearizability: operations touching at one instant count as concurrent") {
  CHECK(ok({write(1, 0, 10), read(0, 10, 20)}));
}

TEST_CASE("linearizability: many concurrent operations are decided quickly (memoisation)") {
  // 12 writes all concurrent, then reads that pin the last value: without memoisation the
  // search would try 12! (479 million) orders, with it at most 2^12 sets times 13 values.
  std::vector<op> h;
  for (int i = 1; i <= 12; ++i)
    h.push_back(write(i, 0, 1000));
  h.push_back(read(12, 2000, 2001));
  CHECK(ok(h));
  h.push_back(read(5, 2002, 2003));
  CHECK_FALSE(ok(h));
}
