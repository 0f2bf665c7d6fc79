// registryctl's argument parsing (tools/registryctl/cli.hpp): register's batch of addresses.

#include <doctest/doctest.h>

#include <string>
#include <variant>
#include <vector>

#include "config/defaults.hpp"
#include "tools/registryctl/cli.hpp"

using namespace registry;
using namespace registry::ctl;

namespace {

std::variant<command, usage_error> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "registryctl");
  std::vector<const char*> argv;
  for (auto& a : args)
    argv.push_back(a.c_str());
  return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

command parsed(std::vector<std::string> args) {
  auto r = parse(std::move(args));
  if (auto err = std::get_if<usage_error>(&r))
    FAIL("unexpected usage error: " << err->message);
  return std::get<command>(r);
}

std::string usage(std::vector<std::string> args) {
  auto r = parse(std::move(args));
  auto err = std::get_if<usage_error>(&r);
  REQUIRE(err != nullptr);
  return err->message;
}

std::string thrown(const instance_args& a) {
  try {
    make_instances(a);
  } catch (const usage_error& e) {
    return e.message;
  }
  FAIL("make_instances accepted the arguments");
  return {};
}

} // namespace

TEST_CASE("registryctl batch: a single register parses as before") {
  auto c = parsed({"register", "orders", "10.0.0.1:80", "--weight", "2"});
  CHECK(c.kind == command_kind::reg);
  CHECK(c.instance.address == "10.0.0.1:80");
  CHECK(c.instance.addresses == std::vector<std::string>{"10.0.0.1:80"});
  auto xs = make_instances(c.instance);
  REQUIRE(xs.size() == 1);
  CHECK(xs[0].ip == "10.0.0.1");
  CHECK(xs[0].weight == 2.0);
  // beat and deregister keep one address.
  CHECK(parsed({"beat", "orders", "10.0.0.1:80"}).instance.address == "10.0.0.1:80");
  CHECK(usage({"deregister", "orders", "10.0.0.1:80", "10.0.0.2:80"}).find("10.0.0.2:80")
        != std::string::npos);
}

TEST_CASE("registryctl batch: several addresses with --hold are one batch sharing the options") {
  auto c = parsed({"register", "orders", "10.0.0.1:80", "10.0.0.2:81", "[::1]:82", "--hold",
                   "--cluster", "c1", "--meta", "k=v"});
  CHECK(c.instance.hold);
  CHECK(c.instance.address == "10.0.0.1:80");
  auto xs = make_instances(c.instance);
  REQUIRE(xs.size() == 3);
  CHECK(xs[1].address() == "10.0.0.2:81");
  CHECK(xs[2].ip == "::1");
  for (auto& x : xs) {
    CHECK(x.cluster == "c1");
    CHECK(x.metadata == metadata_map{{"k", "v"}});
  }
  // Options may come before the addresses too.
  CHECK(make_instances(parsed({"register", "--hold", "orders", "10.0.0.1:80", "10.0.0.2:80"})
                         .instance)
          .size()
        == 2);
}

TEST_CASE("registryctl batch: bad arguments are named") {
  CHECK(usage({"register", "orders", "10.0.0.1:80", "10.0.0.2:80"}).find("--hold")
        != std::string::npos);
  CHECK(usage({"register", "orders", "10.0.0.1:80", "10.0.0.2:80", "--persistent"})
          .find("--persistent")
        != std::string::npos);
  CHECK(usage({"register", "orders", "--hold"}).find("IP:PORT") != std::string::npos);
  auto c = parsed({"register", "orders", "10.0.0.1:80", "10.0.0.2:x", "--hold"});
  CHECK(thrown(c.instance).find("'10.0.0.2:x'") != std::string::npos);
  c = parsed({"register", "orders", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.1:80", "--hold"});
  auto twice = thrown(c.instance);
  CHECK(twice.find("'10.0.0.1:80' is given twice") != std::string::npos);
  instance_args many;
  many.service = "orders";
  for (std::size_t i = 0; i <= defaults::batch_register_instances_max; ++i)
    many.addresses.push_back("10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250)
                             + ":80");
  CHECK(thrown(many).find(std::to_string(defaults::batch_register_instances_max))
        != std::string::npos);
}
