// Interned names: equal texts share one entry that lives exactly as long as its holders, order and
// hashes follow the text, and holders on many threads never free a text under each other.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "actors/distro/distro_protocol.hpp"
#include "messages/model.hpp"

using namespace registry;

TEST_CASE("interned_string: equal texts share one entry, freed with its last holder") {
  auto before = interned_string::live_texts();
  {
    interned_string a{std::string{"svc-interned-a"}};
    interned_string b{"svc-interned-a"};
    CHECK(interned_string::live_texts() == before + 1);
    CHECK(a == b);
    CHECK(&a.str() == &b.str()); // one text, not two copies
    interned_string c{"svc-interned-b"};
    CHECK(interned_string::live_texts() == before + 2);
    CHECK(a != c);
    interned_string d = c;
    c = a; // the other text keeps its holder d
    CHECK(interned_string::live_texts() == before + 2);
    d = interned_string{};
    CHECK(interned_string::live_texts() == before + 1);
  }
  CHECK(interned_string::live_texts() == before);
}

TEST_CASE("interned_string: the empty text holds nothing and equals an interned empty string") {
  auto before = interned_string::live_texts();
  interned_string none;
  interned_string empty{""};
  CHECK(none == empty);
  CHECK(none.empty());
  CHECK(none.str().empty());
  CHECK(none.hash() == interned_string::hash_of(""));
  CHECK(interned_string::live_texts() == before);
}

TEST_CASE("interned_string: order and hash follow the text, as the plain strings did") {
  interned_string b{"beta"};
  interned_string a{"alpha"};
  interned_string z{"zeta"};
  CHECK(a < b);
  CHECK(b < z);
  CHECK_FALSE(b < a);
  CHECK_FALSE(a < a);
  CHECK(a.hash() == interned_string::hash_of("alpha"));
  CHECK(a == std::string{"alpha"});
  CHECK(a + "@@" + b == "alpha@@beta");

  std::map<service_key, int> keys;
  keys[{"public", "g", "svc-b"}] = 2;
  keys[{"public", "g", "svc-a"}] = 1;
  keys[{"dev", "g", "svc-z"}] = 0;
  std::vector<std::string> names;
  for (const auto& entry : keys)
    names.push_back(entry.first.to_string());
  CHECK(names == std::vector<std::string>{"dev##g@@svc-z", "public##g@@svc-a", "public##g@@svc-b"});
}

TEST_CASE("interned_string: a client's content revision depends on its names' texts only") {
  // The revision is compared across nodes: it must not depend on where a text is held.
  client_services a;
  a[{"public", "DEFAULT_GROUP", "orders"}] = instance_list{std::vector<instance>(1)};
  auto revision = content_revision(a);
  client_services b;
  b[{std::string{"public"}, std::string{"DEFAULT_GROUP"}, std::string{"orders"}}] =
    instance_list{std::vector<instance>(1)};
  CHECK(content_revision(b) == revision);
  client_services other;
  other[{"public", "DEFAULT_GROUP", "orderz"}] = instance_list{std::vector<instance>(1)};
  CHECK(content_revision(other) != revision);
}

TEST_CASE("interned_string: holders on many threads share and free texts safely") {
  auto before = interned_string::live_texts();
  constexpr int threads = 4;
  constexpr int rounds = 20000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([t] {
      std::vector<interned_string> held;
      for (int i = 0; i < rounds; ++i) {
        // Few texts, so threads keep taking and dropping the last reference of the same entries.
        interned_string x{"svc-" + std::to_string(i % 8)};
        interned_string copy = x;
        if (copy.str() != "svc-" + std::to_string(i % 8))
          throw std::logic_error("wrong text");
        if ((i + t) % 3 == 0)
          held.push_back(std::move(copy));
        if (held.size() > 4)
          held.erase(held.begin());
      }
    });
  for (auto& w : workers)
    w.join();
  CHECK(interned_string::live_texts() == before);
}
