#include "tools/client/failover.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tools/client/registry_client.hpp"
#include "tools/client/service_cache.hpp"

namespace fs = std::filesystem;

namespace registry::client {

failover_switch::failover_switch(std::string cache_dir) {
  if (!cache_dir.empty())
    path_ = (fs::path{failover_dir(cache_dir)} / failover_switch_file_name).string();
}

bool failover_switch::check() {
  if (path_.empty())
    return false;
  bool was_on = on_;
  std::error_code ec;
  auto mtime = fs::last_write_time(path_, ec);
  if (ec) { // missing (or unreadable): off
    seen_ = false;
    on_ = false;
    return was_on != on_;
  }
  if (seen_ && mtime == mtime_)
    return false; // unchanged since the last read
  seen_ = true;
  mtime_ = mtime;
  std::ifstream in{path_};
  std::stringstream buf;
  buf << in.rdbuf();
  ++reads_;
  auto text = buf.str();
  auto first = text.find_first_not_of(" \t\r\n");
  auto last = text.find_last_not_of(" \t\r\n");
  on_ = first != std::string::npos && text.substr(first, last - first + 1) == "1";
  return was_on != on_;
}

void write_failover_switch_file(const std::string& cache_dir, bool on) {
  auto path = (fs::path{failover_dir(cache_dir)} / failover_switch_file_name).string();
  if (auto problem = write_file_atomically(path, on ? "1" : "0"))
    throw std::runtime_error(*problem);
}

void write_failover_switch(const std::string& cache_dir, bool on) {
  if (cache_dir.empty())
    throw error(error_code::invalid_argument, "cache_dir", "the failover switch needs a cache directory");
  try {
    write_failover_switch_file(cache_dir, on);
  } catch (const std::runtime_error& e) {
    throw error(error_code::invalid_argument, "cache_dir", e.what());
  }
}

} // namespace registry::client
