#pragma once
/// registryctl's command line: parsing and the local checks of its arguments, without I/O.
///
/// `parse_command_line` never prints, exits or contacts a node: main() prints what it returns, and
/// the fuzz target test/fuzz/registryctl_args_fuzz.cpp feeds it arbitrary argument vectors.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "config/defaults.hpp"
#include "messages/model.hpp"

namespace registry::ctl {

/// A usage error found locally: exit 2 with this message.
struct usage_error {
  std::string message;
};

struct global_args {
  std::string nodes = "127.0.0.1:7848";
  bool json = false;
  std::string cache_dir;
  int timeout_ms = static_cast<int>(defaults::request_timeout_ms);
  bool no_local_check = false;
  /// CAF heartbeats: must match the node's session.caf_* settings (the side with a timeout drops an
  /// idle peer that beats less often).
  std::int64_t caf_heartbeat_ms = defaults::caf_heartbeat_interval_ms;
  std::int64_t caf_timeout_ms = defaults::caf_connection_timeout_ms;
  /// The namespace whose cache `failover on` freezes.
  std::string failover_namespace = defaults::namespace_id;
  /// The client library's update task period for subscribed services.
  std::int64_t update_interval_ms = 10000;
  /// How often a failed redo (after moving to another node) is retried.
  std::int64_t redo_retry_ms = defaults::client_redo_retry_interval_ms;
  /// TLS to the nodes, matching their `tls` section: --tls alone for anonymous TLS; --tls-ca,
  /// --tls-cert and --tls-key (each implies --tls) for certificate mode, where the node requires a
  /// client certificate its CA accepts. The files are checked by main(), not here.
  bool tls = false;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_key_passphrase_file;
  /// Auth on at the node (auth.enabled): writes need a token, from --user and --password (a login
  /// at the node) or from --token-file (a token from POST /nacos/v1/auth/login).
  std::string user;
  std::string password;
  std::string token_file;
};

/// Options shared by register, beat and deregister.
struct instance_args {
  std::string service;
  std::string address;                ///< the (first) IP:PORT
  std::vector<std::string> addresses; ///< register: every IP:PORT given (one batch if several)
  std::string namespace_id = defaults::namespace_id;
  std::string group = defaults::group;
  std::string cluster = defaults::cluster;
  std::string weight = "1";
  std::vector<std::string> meta;
  bool disabled = false;
  bool hold = false;   // register
  int every_ms = 0;    // beat
  bool persistent = false; // register, deregister: a persistent instance, through Raft
  std::string check;       // register --persistent: tcp (default), none or http:/PATH
};

struct query_args {
  std::string service;
  std::string namespace_id = defaults::namespace_id;
  std::string group = defaults::group;
  std::vector<std::string> clusters;
  bool healthy_only = false;
  int count = 0;        // subscribe
  std::uint32_t page = 1; // services
  std::uint32_t size = defaults::page_size_default;
};

enum class command_kind {
  help, ///< --help or --help-all: print `help_text` and exit 0
  reg,
  beat,
  dereg,
  instances,
  services,
  subscribe,
  status,
  members,
  failover,
  raft,
};

/// The parsed command line: the command and the arguments it reads.
struct command {
  command_kind kind = command_kind::help;
  global_args global;
  instance_args instance; ///< register, beat, deregister
  query_args query;       ///< instances, services, subscribe
  std::string failover_mode;
  /// raft --transfer-to: HOST:PORT of a voter, or "any" (the most up-to-date one); "" when absent.
  std::string transfer_to;
  std::string help_text;
};

/// Parses registryctl's arguments (argv[0] is the program name). Returns the command, or the usage
/// error main() prints before exiting with 2.
std::variant<command, usage_error> parse_command_line(int argc, const char* const* argv);

/// IP:PORT (IPv6 as [addr]:port). The port must be a number 0..65535 (0 is refused by validation).
/// Throws usage_error.
instance parse_ip_port(const std::string& text);

/// A finite number; throws usage_error.
double parse_weight(const std::string& text);

/// HOST:PORT[,HOST:PORT...]; throws usage_error naming the bad item.
std::vector<std::string> parse_nodes(const std::string& text);

/// The instance that register/beat describe; throws usage_error.
instance make_instance(const instance_args& a);

/// The instances of `register` (one per IP:PORT of `a.addresses`, or `a.address` alone), sharing
/// the other options; throws usage_error naming the bad argument: an IP:PORT that does not parse
/// or is given twice, more than defaults::batch_register_instances_max of them.
std::vector<instance> make_instances(const instance_args& a);

} // namespace registry::ctl
