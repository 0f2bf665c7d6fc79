#include "test/support/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace registry::test {

namespace fs = std::filesystem;

child_process::child_process(std::vector<std::string> argv, const std::string& dir,
                             const std::string& name)
  : out_path_(dir + "/" + name + ".out"), err_path_(dir + "/" + name + ".err") {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  auto rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    throw std::runtime_error("cannot start " + argv[0]);
}

child_process::~child_process() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
  }
}

child_process::child_process(child_process&& other) noexcept {
  *this = std::move(other);
}

child_process& child_process::operator=(child_process&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status_, 0);
    }
    pid_ = other.pid_;
    status_ = other.status_;
    exited_ = other.exited_;
    out_path_ = std::move(other.out_path_);
    err_path_ = std::move(other.err_path_);
    other.pid_ = -1;
    other.exited_ = true;
  }
  return *this;
}

bool child_process::running() {
  if (pid_ <= 0 || exited_)
    return false;
  if (waitpid(pid_, &status_, WNOHANG) == pid_) {
    exited_ = true;
    return false;
  }
  return true;
}

void child_process::signal(int sig) {
  if (running())
    ::kill(pid_, sig);
}

int child_process::wait(std::chrono::milliseconds timeout) {
  if (!wait_until([this] { return !running(); }, timeout))
    return -1;
  if (WIFEXITED(status_))
    return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_))
    return 128 + WTERMSIG(status_);
  return -1;
}

std::string child_process::out() const {
  return read_file(out_path_);
}

std::string child_process::err() const {
  return read_file(err_path_);
}

std::vector<std::string> child_process::out_lines() const {
  std::vector<std::string> result;
  std::istringstream in{out()};
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      result.push_back(line);
  return result;
}

bool child_process::wait_for_output(const std::string& text,
                                    std::chrono::milliseconds timeout) const {
  return wait_until([&] { return out().find(text) != std::string::npos; }, timeout);
}

run_result run(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  static int counter = 0;
  auto dir = fs::temp_directory_path().string();
  auto name = "registry-run-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  auto start = std::chrono::steady_clock::now();
  run_result result;
  {
    child_process proc{std::move(argv), dir, name};
    result.code = proc.wait(timeout);
    result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
    result.out = proc.out();
    result.err = proc.err();
  }
  fs::remove(dir + "/" + name + ".out");
  fs::remove(dir + "/" + name + ".err");
  return result;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a free port");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string make_temp_dir() {
  auto pattern = (fs::temp_directory_path() / "registry-test-XXXXXX").string();
  if (!mkdtemp(pattern.data()))
    throw std::runtime_error("cannot create a temp dir");
  return pattern;
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out{path, std::ios::trunc};
  out << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string registryd_path() {
  return REGISTRYD_PATH;
}

std::string registryctl_path() {
  return REGISTRYCTL_PATH;
}

std::string which(const std::string& program) {
  std::string result;
  if (FILE* f = ::popen(("command -v " + program + " 2>/dev/null").c_str(), "r")) {
    char buf[4096];
    if (std::fgets(buf, sizeof buf, f) != nullptr)
      result = buf;
    ::pclose(f);
  }
  while (!result.empty() && (result.back() == '\n' || result.back() == '\r'))
    result.pop_back();
  return result;
}

std::string npm_install(const std::string& package, std::string& why,
                        const std::vector<std::string>& env) {
  if (which("npm").empty() || which("node").empty()) {
    why = "no npm or node on PATH (tools/install-deps installs them)";
    return "";
  }
  auto dir = make_temp_dir();
  std::vector<std::string> argv{which("env")};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.insert(argv.end(), {which("npm"), "install", "--prefix", dir, "--no-audit", "--no-fund",
                           "--loglevel=error", package});
  auto r = run(argv, std::chrono::seconds(300));
  if (r.code != 0) {
    why = "npm install " + package + " failed: " + r.err;
    return "";
  }
  return dir + "/node_modules";
}

} // namespace registry::test
