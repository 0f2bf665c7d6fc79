#include "test/support/test_pki.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

extern char** environ;

#ifndef OPENSSL_PATH
#define OPENSSL_PATH "/usr/bin/openssl"
#endif

namespace registry::test {

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

} // namespace

test_pki::test_pki(std::string dir, std::string name)
  : dir_(std::move(dir)), name_(std::move(name)), ca_file_(dir_ + "/" + name_ + "-ca.pem"),
    ca_key_(dir_ + "/" + name_ + "-ca.key") {
  openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", ca_key_, "-out", ca_file_, "-days", "2", "-subj", "/CN=" + name_ + " test CA"});
}

cert_files test_pki::issue(const std::string& name, const cert_options& options) {
  cert_files result{dir_ + "/" + name + ".pem", dir_ + "/" + name + ".key"};
  auto csr = dir_ + "/" + name + ".csr";
  auto ext = dir_ + "/" + name + ".ext";
  std::ofstream(ext) << "basicConstraints = CA:FALSE\n"
                     << "keyUsage = critical, digitalSignature\n"
                     << "extendedKeyUsage = "
                     << (options.server_only ? "serverAuth" : "serverAuth, clientAuth") << "\n"
                     << "subjectAltName = IP:127.0.0.1\n";
  openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", result.key, "-out", csr, "-subj", "/CN=" + name});
  openssl({"x509", "-req", "-in", csr, "-CA", ca_file_, "-CAkey", ca_key_, "-set_serial",
           std::to_string(serial_++), "-days", options.expired ? "-1" : "2", "-extfile", ext,
           "-out", result.certificate});
  if (!options.passphrase.empty()) {
    auto plain = result.key;
    result.key = dir_ + "/" + name + "-encrypted.key";
    openssl({"pkey", "-in", plain, "-aes256", "-passout", "pass:" + options.passphrase, "-out",
             result.key});
  }
  return result;
}

void test_pki::openssl(const std::vector<std::string>& args) {
  auto log = dir_ + "/openssl.log";
  std::vector<std::string> argv{OPENSSL_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> raw;
  for (auto& a : argv)
    raw.push_back(a.data());
  raw.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, raw[0], &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    throw std::runtime_error("cannot start " + argv[0] + " (install the openssl package)");
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string line;
    for (auto& a : argv)
      line += (line.empty() ? "" : " ") + a;
    throw std::runtime_error("failed: " + line + "\n" + slurp(log));
  }
}

} // namespace registry::test
