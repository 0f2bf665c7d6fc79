#include <doctest/doctest.h>

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "actors/common/log.hpp"

using namespace registry;

namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/registry-log-test-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  return tmpl;
}

bool exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

std::string read_all(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace

TEST_CASE("log: bounded cuts long names with a marker, never inside a UTF-8 sequence") {
  CHECK(bounded("orders", 10) == "orders");
  CHECK(bounded("0123456789", 10) == "0123456789");
  CHECK(bounded("0123456789abc", 10) == "0123456789...[+3 bytes]");
  // "é" is two bytes: a cut in its middle backs up before it.
  CHECK(bounded("abc\xc3\xa9xyz", 4) == "abc...[+5 bytes]");
  CHECK(bounded(std::string(100000, 'x')).size() < defaults::log_name_chars_max + 32);
}

TEST_CASE("log: the file rotates at its size and keeps files_max older files") {
  auto dir = temp_dir();
  log_options opts;
  opts.level = "info";
  opts.file = dir + "/node-log";
  opts.file_size_bytes_max = 4096;
  opts.files_max = 2;
  opts.queue_lines_max = 100000;
  REQUIRE(init_logging(opts) == "");
  const std::string filler(100, 'f');
  for (int i = 0; i < 1000; ++i)
    log().info("line {} {}", i, filler);
  log().debug("a debug line is not written at info");
  // A name from outside is bounded in the line.
  log().info("client {} registered", bounded(std::string(10000, 'n')));
  shutdown_logging();
  CHECK(exists(opts.file));
  CHECK(exists(opts.file + ".1"));
  CHECK(exists(opts.file + ".2"));
  CHECK_FALSE(exists(opts.file + ".3"));
  for (auto suffix : {"", ".1", ".2"}) {
    auto text = read_all(opts.file + suffix);
    CAPTURE(suffix);
    CHECK(text.size() <= 4096 + 256);
    CHECK(text.find("debug line") == std::string::npos);
  }
  // The newest lines are in the current file, the last one with its name cut.
  auto current = read_all(opts.file);
  CHECK(current.find("line 999 ") != std::string::npos);
  auto last = current.find("client ");
  REQUIRE(last != std::string::npos);
  CHECK(current.find("...[+", last) != std::string::npos);
  CHECK(current.size() - last < 400);
  for (auto suffix : {"", ".1", ".2"})
    ::unlink((opts.file + suffix).c_str());
  ::rmdir(dir.c_str());
}
