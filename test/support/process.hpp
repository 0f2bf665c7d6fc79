#pragma once
/// Helpers for process tests: start programs on loopback, wait for conditions, stop them by PID.
/// Every wait polls a condition with a deadline; nothing sleeps in place of waiting.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace registry::test {

/// A started process whose stdout and stderr go to files.
class child_process {
public:
  child_process() = default;
  /// Starts argv[0] with the arguments; output goes to files in `dir`.
  child_process(std::vector<std::string> argv, const std::string& dir, const std::string& name);
  ~child_process(); ///< SIGKILL + reap if still running

  child_process(child_process&& other) noexcept;
  child_process& operator=(child_process&& other) noexcept;
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  /// Sends `sig` (no-op when not running).
  void signal(int sig);
  /// Waits for the exit; returns the exit code (128 + signal when killed), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  std::string out() const;
  std::string err() const;
  std::vector<std::string> out_lines() const;
  /// Waits until stdout contains `text`.
  bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout) const;

private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
  std::string out_path_;
  std::string err_path_;
};

/// The result of a program run to completion.
struct run_result {
  int code = -1; ///< -1 when it did not finish in time (it is killed then)
  std::string out;
  std::string err;
  std::chrono::milliseconds elapsed{0};
};

/// Runs a program to completion, killing it after `timeout`.
run_result run(std::vector<std::string> argv, std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// A free TCP port on 127.0.0.1 (bound once and released).
int free_port();

/// A fresh temporary directory, removed by the caller with remove_tree.
std::string make_temp_dir();
void remove_tree(const std::string& path);
void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

/// The absolute path of a program on PATH ("" = none).
std::string which(const std::string& program);

/// Installs an npm package (e.g. "nacos-naming@2.6.3") into a fresh temporary directory with npm,
/// as the tests of real clients do: the directory's node_modules, or "" with `why` set. `env`:
/// extra NAME=VALUE settings for npm.
std::string npm_install(const std::string& package, std::string& why,
                        const std::vector<std::string>& env = {});

/// Paths of the built programs (set by meson).
std::string registryd_path();
std::string registryctl_path();

} // namespace registry::test
