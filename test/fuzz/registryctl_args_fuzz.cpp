// Fuzz target: registryctl's argument parsing (tools/registryctl/cli.hpp). The input is split at
// NUL bytes into argv[1..]; parsing must give a command or a usage error, never throw, exit or
// print, and the local checks of the arguments (addresses, weight, metadata, nodes) must fail only
// with a usage error.

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "test/fuzz/fuzz_check.hpp"
#include "tools/registryctl/cli.hpp"

namespace {

constexpr std::size_t args_max = 64;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace registry::ctl;
  std::vector<std::string> words{"registryctl"};
  std::string word;
  for (std::size_t i = 0; i < size && words.size() < args_max; ++i) {
    if (data[i] == 0) {
      words.push_back(word);
      word.clear();
    } else {
      word += static_cast<char>(data[i]);
    }
  }
  if (words.size() < args_max && (size > 0 && data[size - 1] != 0))
    words.push_back(word);
  std::vector<const char*> argv;
  for (auto& w : words)
    argv.push_back(w.c_str());
  argv.push_back(nullptr);

  auto parsed = parse_command_line(static_cast<int>(words.size()), argv.data());
  if (auto* err = std::get_if<usage_error>(&parsed)) {
    FUZZ_CHECK(!err->message.empty());
    return 0;
  }
  auto& c = std::get<command>(parsed);
  if (c.kind == command_kind::help) {
    FUZZ_CHECK(!c.help_text.empty());
    return 0;
  }
  try {
    auto nodes = parse_nodes(c.global.nodes);
    FUZZ_CHECK(!nodes.empty());
  } catch (const usage_error& e) {
    FUZZ_CHECK(!e.message.empty());
  }
  if (c.kind == command_kind::reg) {
    FUZZ_CHECK(!c.instance.addresses.empty() && c.instance.address == c.instance.addresses[0]);
    FUZZ_CHECK(c.instance.addresses.size() == 1 || (c.instance.hold && !c.instance.persistent));
    try {
      auto xs = make_instances(c.instance);
      FUZZ_CHECK(xs.size() == c.instance.addresses.size());
      FUZZ_CHECK(xs.size() <= registry::defaults::batch_register_instances_max);
    } catch (const usage_error& e) {
      FUZZ_CHECK(!e.message.empty());
    }
  }
  if (c.kind == command_kind::reg || c.kind == command_kind::beat
      || c.kind == command_kind::dereg) {
    try {
      auto x = make_instance(c.instance);
      FUZZ_CHECK(x.port <= 65535);
    } catch (const usage_error& e) {
      FUZZ_CHECK(!e.message.empty());
    }
  }
  return 0;
}
