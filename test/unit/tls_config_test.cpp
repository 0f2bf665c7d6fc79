// The node config's `tls` section and the TLS file checks (config/tls.hpp): every bad field is
// refused at load with "FILE: tls.FIELD: PROBLEM". Certificates are made by the openssl tool in a
// temporary directory (test/support/test_pki.hpp).

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "config/node_config.hpp"
#include "config/tls.hpp"
#include "test/support/test_pki.hpp"

namespace {

namespace fs = std::filesystem;
using registry::node_config;

const std::string minimal = "listen: 127.0.0.1:8848\nmembers: [127.0.0.1:8848]\n";
const std::string passphrase = "correct horse battery";

/// One set of certificates for every test case (made once: each openssl run takes a few ms).
struct pki_files {
  std::string dir;
  std::string ca_file;
  registry::test::cert_files node;
  registry::test::cert_files other_node;   ///< a second good certificate of the same CA
  registry::test::cert_files stranger;     ///< signed by another CA
  std::string stranger_ca_file;
  registry::test::cert_files expired;
  registry::test::cert_files server_only;  ///< no clientAuth: nodes also dial
  registry::test::cert_files encrypted;    ///< key encrypted with `passphrase`

  pki_files() {
    auto pattern = (fs::temp_directory_path() / "tls-config-test-XXXXXX").string();
    if (!::mkdtemp(pattern.data()))
      throw std::runtime_error("cannot create a temporary directory");
    dir = pattern;
    registry::test::test_pki ca{dir, "cluster"};
    registry::test::test_pki other_ca{dir, "other"};
    ca_file = ca.ca_file();
    node = ca.issue("node");
    other_node = ca.issue("other-node");
    stranger = other_ca.issue("stranger");
    stranger_ca_file = other_ca.ca_file();
    expired = ca.issue("expired", {true, false, ""});
    server_only = ca.issue("server-only", {false, true, ""});
    encrypted = ca.issue("encrypted", {false, false, passphrase});
  }
  ~pki_files() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  std::string write(const std::string& name, const std::string& content, mode_t mode = 0600) const {
    auto path = dir + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    ::chmod(path.c_str(), mode);
    return path;
  }
};

const pki_files& pki() {
  static const pki_files files;
  return files;
}

/// A tls section in flow style; empty values are left out.
std::string tls_yaml(const std::string& certificate, const std::string& key, const std::string& ca,
                     const std::string& extra = "") {
  std::string body;
  auto add = [&](const std::string& k, const std::string& v) {
    if (!v.empty())
      body += (body.empty() ? "" : ", ") + k + ": '" + v + "'";
  };
  add("certificate", certificate);
  add("key", key);
  add("ca_file", ca);
  if (!extra.empty())
    body += (body.empty() ? "" : ", ") + extra;
  return minimal + "tls: {" + body + "}\n";
}

node_config parse_ok(const std::string& text) {
  auto result = registry::parse_node_config(text, "node.yaml");
  if (auto* err = std::get_if<std::string>(&result))
    FAIL("unexpected error: " << *err);
  return std::get<node_config>(result);
}

/// The error for `text`, checked to be "node.yaml: KEY: ..." mentioning every fragment.
std::string refused(const std::string& text, const std::string& key,
                    const std::vector<std::string>& fragments) {
  auto result = registry::parse_node_config(text, "node.yaml");
  if (std::holds_alternative<node_config>(result)) {
    FAIL("accepted a config that must be rejected:\n" << text);
    return "";
  }
  auto message = std::get<std::string>(result);
  INFO("message: " << message);
  CHECK(message.rfind("node.yaml: " + key + ": ", 0) == 0);
  for (const auto& f : fragments)
    CHECK(message.find(f) != std::string::npos);
  return message;
}

} // namespace

TEST_CASE("tls config: absent, empty or all-empty means off") {
  for (const auto& text : {minimal, minimal + "tls:\n", minimal + "tls: {}\n",
                           minimal + "tls: {anonymous: false, certificate: '', key: '', ca_file: ''}\n"}) {
    auto cfg = parse_ok(text);
    CHECK(!cfg.tls.enabled);
    CHECK(std::string{cfg.tls.mode()} == "off");
  }
}

TEST_CASE("tls config: anonymous mode has no files") {
  auto cfg = parse_ok(minimal + "tls: {anonymous: true}\n");
  CHECK(cfg.tls.enabled);
  CHECK(!cfg.tls.certificate_mode());
  CHECK(std::string{cfg.tls.mode()} == "anonymous");
  refused(minimal + "tls: {anonymous: true, certificate: '" + pki().node.certificate + "'}\n",
          "tls.anonymous", {"together", "no certificates"});
}

TEST_CASE("tls config: certificate mode loads; relative paths are taken from the config file") {
  const auto& p = pki();
  auto cfg = parse_ok(tls_yaml(p.node.certificate, p.node.key, p.ca_file));
  CHECK(cfg.tls.certificate_mode());
  CHECK(std::string{cfg.tls.mode()} == "certificate");
  CHECK(cfg.tls.certificate == p.node.certificate);
  CHECK(cfg.tls.key == p.node.key);
  CHECK(cfg.tls.ca_file == p.ca_file);
  CHECK(cfg.warnings.empty());

  auto yaml = p.write("relative.yaml", minimal + "tls:\n  certificate: node.pem\n  key: node.key\n"
                                                 "  ca_file: cluster-ca.pem\n");
  auto loaded = registry::load_node_config(yaml);
  REQUIRE(std::holds_alternative<node_config>(loaded));
  CHECK(std::get<node_config>(loaded).tls.certificate == p.dir + "/node.pem");
  CHECK(std::get<node_config>(loaded).tls.ca_file == p.dir + "/cluster-ca.pem");
}

TEST_CASE("tls config: certificate and key come together, with a CA file") {
  const auto& p = pki();
  refused(tls_yaml(p.node.certificate, "", p.ca_file), "tls.key", {"missing", "private key"});
  refused(tls_yaml("", p.node.key, p.ca_file), "tls.certificate", {"missing", "needs its certificate"});
  refused(tls_yaml(p.node.certificate, p.node.key, ""), "tls.ca_file",
          {"missing", "verifies the certificate of every peer"});
  refused(tls_yaml("", "", p.ca_file), "tls.certificate", {"missing", "mutual authentication"});
  refused(minimal + "tls: {key_passphrase_file: '" + p.write("pass-alone", passphrase) + "'}\n",
          "tls.key_passphrase_file", {"without tls.key"});
}

TEST_CASE("tls config: missing, unreadable and malformed files are refused naming field and path") {
  const auto& p = pki();
  auto missing = p.dir + "/missing.pem";
  auto err = refused(tls_yaml(missing, p.node.key, p.ca_file), "tls.certificate",
                     {"cannot read", "No such file"});
  CHECK(err.find(missing) != std::string::npos);
  refused(tls_yaml(p.node.certificate, missing, p.ca_file), "tls.key", {"cannot read", missing});
  refused(tls_yaml(p.node.certificate, p.node.key, missing), "tls.ca_file", {"cannot read", missing});
  refused(tls_yaml(p.dir, p.node.key, p.ca_file), "tls.certificate", {"not a regular file"});
  refused(tls_yaml(p.write("empty.pem", ""), p.node.key, p.ca_file), "tls.certificate",
          {"is empty"});
  auto garbage = p.write("garbage.pem", "not a certificate\n");
  refused(tls_yaml(garbage, p.node.key, p.ca_file), "tls.certificate",
          {"cannot load a PEM certificate", garbage});
  refused(tls_yaml(p.node.certificate, garbage, p.ca_file), "tls.key",
          {"cannot load a PEM private key", garbage});
  refused(tls_yaml(p.node.certificate, p.node.key, garbage), "tls.ca_file",
          {"cannot load CA certificates", garbage});
  // A key file is no CA file either.
  refused(tls_yaml(p.node.certificate, p.node.key, p.node.key), "tls.ca_file",
          {"cannot load CA certificates"});
  if (::geteuid() != 0) { // root reads any file
    auto locked = p.write("locked.pem", "x", 0000);
    refused(tls_yaml(locked, p.node.key, p.ca_file), "tls.certificate",
            {"cannot read", "Permission denied"});
  }
  refused(minimal + "tls: {bogus: 1}\n", "tls.bogus", {"unknown key", "ca_file"});
  refused(minimal + "tls: {anonymous: maybe}\n", "tls.anonymous", {"true or false"});
  refused(minimal + "tls: [a]\n", "tls", {"expected a mapping"});
  refused(minimal + "tls: {certificate: [a]}\n", "tls.certificate", {"expected a string"});
}

TEST_CASE("tls config: the key must belong to the certificate") {
  const auto& p = pki();
  refused(tls_yaml(p.node.certificate, p.other_node.key, p.ca_file), "tls.key",
          {"is not the key of the certificate", p.node.certificate});
}

TEST_CASE("tls config: the node's certificate must verify against its CA file for both uses") {
  const auto& p = pki();
  refused(tls_yaml(p.stranger.certificate, p.stranger.key, p.ca_file), "tls.certificate",
          {"does not verify against the CA file", "unable to get local issuer certificate",
           "would refuse this node"});
  refused(tls_yaml(p.expired.certificate, p.expired.key, p.ca_file), "tls.certificate",
          {"has expired"});
  refused(tls_yaml(p.server_only.certificate, p.server_only.key, p.ca_file), "tls.certificate",
          {"TLS client", "unsuitable certificate purpose"});
}

TEST_CASE("tls config: an encrypted key needs the right passphrase from key_passphrase_file") {
  const auto& p = pki();
  const auto& e = p.encrypted;
  refused(tls_yaml(e.certificate, e.key, p.ca_file), "tls.key", {"encrypted", "no passphrase"});
  auto wrong = p.write("wrong-pass", "wrong passphrase\n");
  refused(tls_yaml(e.certificate, e.key, p.ca_file, "key_passphrase_file: '" + wrong + "'"),
          "tls.key_passphrase_file", {"does not decrypt the key", e.key});
  refused(tls_yaml(e.certificate, e.key, p.ca_file,
                   "key_passphrase_file: '" + p.dir + "/no-such-pass'"),
          "tls.key_passphrase_file", {"cannot read", "No such file"});
  refused(tls_yaml(e.certificate, e.key, p.ca_file,
                   "key_passphrase_file: '" + p.write("empty-pass", "\n") + "'"),
          "tls.key_passphrase_file", {"is empty"});
  auto good = p.write("good-pass", passphrase + "\n");
  auto cfg = parse_ok(tls_yaml(e.certificate, e.key, p.ca_file, "key_passphrase_file: '" + good + "'"));
  CHECK(cfg.tls.key_passphrase == passphrase);
  CHECK(cfg.tls_key_passphrase_file == good);
}

TEST_CASE("tls config: a key others can read is a warning") {
  const auto& p = pki();
  auto open_key = p.write("open.key", [&] {
    std::ifstream in(p.node.key);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }(), 0644);
  auto cfg = parse_ok(tls_yaml(p.node.certificate, open_key, p.ca_file));
  REQUIRE(cfg.warnings.size() == 1);
  CHECK(cfg.warnings[0].find("tls.key") != std::string::npos);
  CHECK(cfg.warnings[0].find("0644") != std::string::npos);
  CHECK(cfg.warnings[0].find("chmod 600") != std::string::npos);
}

TEST_CASE("tls config: validate() checks the relations of settings built in code") {
  node_config cfg;
  cfg.source_file = "built.yaml";
  cfg.listen = {"127.0.0.1", 8848};
  cfg.members = {cfg.listen};
  cfg.tls.enabled = true;
  CHECK(registry::validate(cfg).empty()); // anonymous
  cfg.tls.certificate = "/etc/node.pem";
  auto err = registry::validate(cfg);
  CHECK(err.rfind("built.yaml: tls.key: missing", 0) == 0);
  cfg.tls.key = "/etc/node.key";
  CHECK(registry::validate(cfg).rfind("built.yaml: tls.ca_file: missing", 0) == 0);
  cfg.tls.enabled = false;
  CHECK(registry::validate(cfg).rfind("built.yaml: tls.certificate: given while TLS is off", 0) == 0);
}

TEST_CASE("tls files: a client's certificate is not checked against its own CA file") {
  // The node checks it against its own CA file, which may be another one.
  const auto& p = pki();
  registry::tls_settings tls;
  tls.enabled = true;
  tls.certificate = p.stranger.certificate;
  tls.key = p.stranger.key;
  tls.ca_file = p.ca_file;
  CHECK(!registry::check_tls_files(tls, registry::tls_role::client));
  auto problem = registry::check_tls_files(tls, registry::tls_role::node);
  REQUIRE(problem);
  CHECK(problem->field == "certificate");
  // An expired certificate is refused for a client too.
  tls.certificate = p.expired.certificate;
  tls.key = p.expired.key;
  problem = registry::check_tls_files(tls, registry::tls_role::client);
  REQUIRE(problem);
  CHECK(problem->problem.find("has expired") != std::string::npos);
}
