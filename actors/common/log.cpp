#include "actors/common/log.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace registry {

namespace {

constexpr const char* pattern = "%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v";
constexpr const char* logger_name = "registry";

std::shared_ptr<spdlog::logger> make_stderr_logger() {
  auto result = std::make_shared<spdlog::logger>(
    logger_name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  result->set_pattern(pattern);
  return result;
}

std::shared_ptr<spdlog::logger>& logger_ptr() {
  static std::shared_ptr<spdlog::logger> ptr = make_stderr_logger();
  return ptr;
}

/// The writer thread of the asynchronous logger (none without a file).
std::shared_ptr<spdlog::details::thread_pool>& pool_ptr() {
  static std::shared_ptr<spdlog::details::thread_pool> ptr;
  return ptr;
}

/// Loggers replaced by init_logging or shutdown_logging stay alive: another thread may still hold
/// a reference obtained from log().
std::vector<std::shared_ptr<spdlog::logger>>& retired() {
  static std::vector<std::shared_ptr<spdlog::logger>> xs;
  return xs;
}

std::mutex& setup_mutex() {
  static std::mutex mtx;
  return mtx;
}

/// Flushes the logger every interval on its own thread (spdlog's flush_every takes whole seconds).
class periodic_flusher {
public:
  explicit periodic_flusher(std::chrono::milliseconds interval)
    : thread_([this, interval] { run(interval); }) {
    // nop
  }

  ~periodic_flusher() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

private:
  void run(std::chrono::milliseconds interval);

  std::mutex mtx_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

std::unique_ptr<periodic_flusher>& flusher_ptr() {
  static std::unique_ptr<periodic_flusher> ptr;
  return ptr;
}

void periodic_flusher::run(std::chrono::milliseconds interval) {
  std::unique_lock<std::mutex> lock{mtx_};
  while (!cv_.wait_for(lock, interval, [this] { return stop_; })) {
    std::lock_guard<std::mutex> guard{setup_mutex()};
    logger_ptr()->flush();
  }
}

/// Reports lines the full queue dropped since the last report (called at shutdown).
void report_overruns() {
  static std::size_t reported = 0;
  auto pool = pool_ptr();
  if (!pool)
    return;
  auto total = pool->overrun_counter();
  if (total > reported) {
    logger_ptr()->warn("log dropped {} lines: the log queue was full", total - reported);
    reported = total;
  }
}

std::string init_logger(const log_options& opts, spdlog::level::level_enum lvl);

} // namespace

std::string init_logging(const log_options& opts) {
  auto lvl = spdlog::level::from_str(opts.level);
  if (lvl == spdlog::level::off && opts.level != "off")
    return "unknown log level '" + opts.level + "' (trace, debug, info, warn, error, off)";
  flusher_ptr().reset(); // joined outside the setup lock, which its thread takes
  std::string result = init_logger(opts, lvl);
  if (result.empty() && !opts.file.empty())
    flusher_ptr() = std::make_unique<periodic_flusher>(
      std::chrono::milliseconds(opts.flush_interval_ms));
  return result;
}

namespace {

std::string init_logger(const log_options& opts, spdlog::level::level_enum lvl) {
  std::lock_guard<std::mutex> guard{setup_mutex()};
  std::shared_ptr<spdlog::logger> fresh;
  std::shared_ptr<spdlog::details::thread_pool> pool;
  try {
    if (opts.file.empty()) {
      fresh = make_stderr_logger();
    } else {
      auto sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
        opts.file, static_cast<std::size_t>(opts.file_size_bytes_max),
        static_cast<std::size_t>(opts.files_max));
      pool = std::make_shared<spdlog::details::thread_pool>(
        static_cast<std::size_t>(opts.queue_lines_max), 1);
      // overrun_oldest: a full queue drops its oldest line instead of blocking an actor thread.
      fresh = std::make_shared<spdlog::async_logger>(logger_name, std::move(sink), pool,
                                                     spdlog::async_overflow_policy::overrun_oldest);
    }
  } catch (const spdlog::spdlog_ex& e) {
    return std::string{"cannot open log file: "} + e.what();
  }
  fresh->set_pattern(pattern);
  fresh->set_level(lvl);
  // Warnings and errors reach the file at once; the rest with the periodic flush, not per line.
  fresh->flush_on(spdlog::level::warn);
  retired().push_back(logger_ptr());
  logger_ptr() = fresh;
  // Replacing a pool drains it: its destructor joins the writer after the queued lines.
  pool_ptr() = std::move(pool);
  return {};
}

} // namespace

std::string init_logging(const std::string& level, const std::string& file) {
  log_options opts;
  opts.level = level;
  opts.file = file;
  return init_logging(opts);
}

void shutdown_logging() {
  flusher_ptr().reset();
  std::lock_guard<std::mutex> guard{setup_mutex()};
  report_overruns();
  auto current = logger_ptr();
  current->flush();
  auto pool = std::move(pool_ptr());
  retired().push_back(current);
  logger_ptr() = make_stderr_logger();
  // Destroying the pool queues a stop behind every pending line and joins the writer thread, so
  // everything logged so far is written. A late line of another thread reports to stderr.
  pool.reset();
  // Flush what the writer wrote (the sinks outlive the pool with their loggers).
  for (auto& x : retired())
    for (auto& sink : x->sinks())
      sink->flush();
}

spdlog::logger& log() {
  return *logger_ptr();
}

std::string bounded(std::string_view text, std::size_t max) {
  if (text.size() <= max)
    return std::string{text};
  auto cut = max;
  // Back up to the start of a UTF-8 sequence (continuation bytes are 10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;
  std::string result{text.substr(0, cut)};
  result += "...[+" + std::to_string(text.size() - cut) + " bytes]";
  return result;
}

} // namespace registry
