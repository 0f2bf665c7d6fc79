// Fuzz target: the YAML config loader (config/node_config.hpp parse_node_config, which
// load_node_config uses for files). Any input gives a config or one error message naming the
// source; an accepted config passes validate() again and names its source.

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "config/node_config.hpp"
#include "test/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text{reinterpret_cast<const char*>(data), size};
  const std::string source = "fuzz.yaml";
  auto result = registry::parse_node_config(text, source);
  if (auto* err = std::get_if<std::string>(&result)) {
    FUZZ_CHECK(err->rfind(source + ": ", 0) == 0);
    return 0;
  }
  auto& cfg = std::get<registry::node_config>(result);
  FUZZ_CHECK(registry::validate(cfg).empty());
  FUZZ_CHECK(!cfg.members.empty());
  bool listed = false;
  for (auto& m : cfg.members)
    listed = listed || m == cfg.listen;
  FUZZ_CHECK(listed);
  return 0;
}
