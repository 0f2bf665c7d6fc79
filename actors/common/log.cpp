#include "actors/common/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace registry {

namespace {

std::shared_ptr<spdlog::logger>& logger_ptr() {
  static std::shared_ptr<spdlog::logger> ptr = [] {
    auto result = std::make_shared<spdlog::logger>(
      "registry", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    result->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
    return result;
  }();
  return ptr;
}

} // namespace

std::string init_logging(const std::string& level, const std::string& file) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    return "unknown log level '" + level + "' (trace, debug, info, warn, error, off)";
  std::shared_ptr<spdlog::logger> fresh;
  try {
    if (file.empty())
      fresh = std::make_shared<spdlog::logger>(
        "registry", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    else
      fresh = std::make_shared<spdlog::logger>(
        "registry", std::make_shared<spdlog::sinks::basic_file_sink_mt>(file));
  } catch (const spdlog::spdlog_ex& e) {
    return std::string{"cannot open log file: "} + e.what();
  }
  fresh->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  fresh->set_level(lvl);
  // Warnings and errors reach the file at once; info lines are flushed by the periodic flush.
  fresh->flush_on(spdlog::level::info);
  logger_ptr() = std::move(fresh);
  return {};
}

spdlog::logger& log() {
  return *logger_ptr();
}

} // namespace registry
