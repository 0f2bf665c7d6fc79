#include "tools/registryctl/cli.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <utility>

#include <CLI/CLI.hpp>

#include "config/node_config.hpp"
#include "messages/validate.hpp"

namespace registry::ctl {

namespace {

/// `several`: IP:PORT takes one or more addresses (register's batch).
void add_instance_options(CLI::App* cmd, instance_args& a, bool several = false) {
  cmd->add_option("SERVICE", a.service, "service name")->required();
  if (several)
    cmd->add_option("IP:PORT", a.addresses,
                    "the instance's address; several (with --hold) register as one batch")
      ->required();
  else
    cmd->add_option("IP:PORT", a.address, "the instance's address")->required();
  cmd->add_option("--namespace", a.namespace_id, "namespace")->capture_default_str();
  cmd->add_option("--group", a.group, "group")->capture_default_str();
  cmd->add_option("--cluster", a.cluster, "cluster")->capture_default_str();
  cmd->add_option("--weight", a.weight, "weight, 0..10000")->capture_default_str();
  cmd->add_option("--meta", a.meta, "metadata entry k=v (repeatable)");
  cmd->add_flag("--disabled", a.disabled, "register the instance disabled");
}

void add_query_options(CLI::App* cmd, query_args& q, bool with_service) {
  if (with_service)
    cmd->add_option("SERVICE", q.service, "service name")->required();
  cmd->add_option("--namespace", q.namespace_id, "namespace")->capture_default_str();
  cmd->add_option("--group", q.group, "group")->capture_default_str();
}

/// The first word that should be a command but is none ("" if there is no such word).
std::string unknown_command(CLI::App& app, int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--node" || arg == "--cache-dir" || arg == "--timeout-ms" || arg == "--tls-ca" ||
        arg == "--tls-cert" || arg == "--tls-key" || arg == "--tls-key-passphrase-file") {
      ++i; // skip the value
      continue;
    }
    if (!arg.empty() && arg[0] == '-')
      continue;
    try {
      app.get_subcommand(arg);
      return {};
    } catch (const CLI::OptionNotFound&) {
      return arg;
    }
  }
  return {};
}

} // namespace

/// IP:PORT (IPv6 as [addr]:port). The port must be a number 0..65535 (0 is refused by validation).
instance parse_ip_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    throw usage_error{"bad IP:PORT '" + text + "': expected IP:PORT, e.g. 10.0.0.1:8080"};
  auto ip = text.substr(0, colon);
  auto port_text = text.substr(colon + 1);
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']')
    ip = ip.substr(1, ip.size() - 2);
  if (port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw usage_error{"bad IP:PORT '" + text + "': port '" + port_text + "' is not a number"};
  auto port = std::stoul(port_text);
  if (port > 65535)
    throw usage_error{"bad IP:PORT '" + text + "': port " + port_text + " is out of range 1..65535"};
  instance x;
  x.ip = ip;
  x.port = static_cast<std::uint32_t>(port);
  return x;
}

double parse_weight(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  double w = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(w))
    throw usage_error{"bad --weight '" + text + "': not a number"};
  return w;
}

std::vector<std::string> parse_nodes(const std::string& text) {
  std::vector<std::string> result;
  std::string::size_type pos = 0;
  for (;;) {
    auto comma = text.find(',', pos);
    auto item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    auto parsed = parse_host_port(item);
    if (auto why = std::get_if<std::string>(&parsed))
      throw usage_error{"bad --node '" + item + "': " + *why};
    result.push_back(std::get<host_port>(parsed).to_string());
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return result;
}

instance make_instance(const instance_args& a) {
  auto x = parse_ip_port(a.address);
  x.cluster = a.cluster;
  x.weight = parse_weight(a.weight);
  x.enabled = !a.disabled;
  for (const auto& m : a.meta) {
    std::pair<std::string, std::string> kv;
    if (auto e = parse_metadata_entry(m, kv))
      throw usage_error{"bad --meta '" + m + "': " + e->message + " (expected k=v)"};
    auto i = std::find_if(x.metadata.begin(), x.metadata.end(),
                          [&](const auto& p) { return p.first == kv.first; });
    if (i != x.metadata.end())
      i->second = kv.second;
    else
      x.metadata.push_back(std::move(kv));
  }
  std::sort(x.metadata.begin(), x.metadata.end());
  return x;
}

std::vector<instance> make_instances(const instance_args& a) {
  if (a.addresses.size() > defaults::batch_register_instances_max)
    throw usage_error{"IP:PORT: " + std::to_string(a.addresses.size())
                      + " addresses, a batch registers at most "
                      + std::to_string(defaults::batch_register_instances_max)};
  std::vector<instance> result;
  auto one = a;
  for (const auto& address : a.addresses.empty() ? std::vector<std::string>{a.address}
                                                 : a.addresses) {
    one.address = address;
    auto x = make_instance(one);
    for (const auto& y : result)
      if (x.same_identity(y))
        throw usage_error{"IP:PORT '" + address + "' is given twice (as " + y.address()
                          + "): a batch names each instance once"};
    result.push_back(std::move(x));
  }
  return result;
}

std::variant<command, usage_error> parse_command_line(int argc, const char* const* argv) {
  CLI::App app{"registryctl: the command-line client of registryd"};
  app.require_subcommand(1);
  app.fallthrough(); // global options may come after the command too
  command result;
  global_args& g = result.global;
  app.add_option("--node", g.nodes, "node(s) HOST:PORT[,HOST:PORT...], tried in order")
    ->capture_default_str();
  app.add_flag("--json", g.json, "print JSON");
  app.add_option("--cache-dir", g.cache_dir, "disk cache and failover directory");
  app.add_option("--timeout-ms", g.timeout_ms, "request timeout in ms")->capture_default_str();
  app.add_flag("--no-local-check", g.no_local_check, "send input unchecked (tests)")->group("");
  app.add_option("--update-interval-ms", g.update_interval_ms,
                 "how often subscribed services are re-queried (repairs lost pushes)")
    ->capture_default_str()
    ->check(CLI::Range(10, 3600000));
  app.add_option("--redo-retry-ms", g.redo_retry_ms,
                 "how often a refused re-registration after a move to another node is retried")
    ->capture_default_str()
    ->check(CLI::Range(10, 3600000));
  app.add_option("--caf-heartbeat-ms", g.caf_heartbeat_ms,
                 "CAF heartbeat interval; must match the node's session.caf_heartbeat_interval_ms")
    ->capture_default_str()
    ->check(CLI::Range(1, 3600000));
  app.add_option("--caf-timeout-ms", g.caf_timeout_ms,
                 "CAF connection timeout; must match the node's session.caf_connection_timeout_ms")
    ->capture_default_str()
    ->check(CLI::Range(2, 3600000));
  app.add_flag("--tls", g.tls, "TLS to the nodes (alone: anonymous TLS, for nodes with tls.anonymous)");
  app.add_option("--tls-ca", g.tls_ca,
                 "PEM CA file the node's certificate must chain to (certificate mode; implies --tls, "
                 "needs --tls-cert and --tls-key)");
  app.add_option("--tls-cert", g.tls_cert,
                 "PEM certificate of this client, signed by a CA in the node's tls.ca_file");
  app.add_option("--tls-key", g.tls_key, "PEM private key of --tls-cert");
  app.add_option("--tls-key-passphrase-file", g.tls_key_passphrase_file,
                 "file holding the passphrase of an encrypted --tls-key");
  app.add_option("--user", g.user, "user of a node with auth on (with --password): writes log in");
  app.add_option("--password", g.password, "password of --user");
  app.add_option("--token-file", g.token_file,
                 "file holding an access token (auth on; instead of --user and --password)");

  instance_args& ia = result.instance;
  query_args& qa = result.query;
  std::string& failover_mode = result.failover_mode;

  auto reg = app.add_subcommand("register", "register an instance (heartbeat client, or --hold), "
                                            "or several as one batch (--hold)");
  add_instance_options(reg, ia, true);
  reg->add_flag("--hold", ia.hold,
                "register through a session and stay until SIGINT/SIGTERM (then deregister)");
  reg->add_flag("--persistent", ia.persistent,
                "a persistent instance: written through Raft, never expires, checked by the "
                "cluster");
  reg->add_option("--check", ia.check, "with --persistent: tcp (default), none or http:/PATH");
  auto beat = app.add_subcommand("beat", "send a heartbeat (re-creates an unknown instance)");
  add_instance_options(beat, ia);
  beat->add_option("--every-ms", ia.every_ms, "keep beating at this period until signalled");
  auto dereg = app.add_subcommand("deregister",
                                  "deregister a heartbeat-client (or --persistent) instance");
  add_instance_options(dereg, ia);
  dereg->add_flag("--persistent", ia.persistent, "a persistent instance, through Raft");

  auto inst = app.add_subcommand("instances", "list a service's instances (direct query)");
  add_query_options(inst, qa, true);
  inst->add_option("--cluster", qa.clusters, "cluster (repeatable)")->delimiter(',');
  inst->add_flag("--healthy-only", qa.healthy_only, "healthy instances only");
  auto svcs = app.add_subcommand("services", "list services");
  add_query_options(svcs, qa, false);
  svcs->add_option("--page", qa.page, "page, from 1")->capture_default_str();
  svcs->add_option("--size", qa.size, "page size")->capture_default_str();
  auto sub = app.add_subcommand("subscribe", "print a service's instances now and on every change");
  add_query_options(sub, qa, true);
  sub->add_option("--cluster", qa.clusters, "cluster (repeatable)")->delimiter(',');
  sub->add_option("--count", qa.count, "exit after this many lists");
  auto status = app.add_subcommand("status", "the node's state");
  auto members = app.add_subcommand("members", "the cluster members and their states");
  auto raft = app.add_subcommand("raft", "the node's Raft state (persistent instances)");
  raft->add_option("--transfer-to", result.transfer_to,
                   "the node (the Raft leader) hands leadership to this voter (HOST:PORT as in "
                   "raft's member list, or 'any': the most up-to-date one)");
  auto fo = app.add_subcommand("failover", "turn the failover switch on or off (needs --cache-dir)");
  fo->add_option("MODE", failover_mode, "on (saves the disk cache as failover data) or off")
    ->required()
    ->check(CLI::IsMember({"on", "off"}));
  fo->add_option("--namespace", g.failover_namespace, "namespace whose cache is saved")
    ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    result.kind = command_kind::help;
    result.help_text = app.help();
    return result;
  } catch (const CLI::CallForAllHelp&) {
    result.kind = command_kind::help;
    result.help_text = app.help("", CLI::AppFormatMode::All);
    return result;
  } catch (const CLI::ParseError& e) {
    if (auto unknown = unknown_command(app, argc, argv); !unknown.empty())
      return usage_error{"unknown command '" + unknown + "' (see registryctl --help)"};
    return usage_error{std::string{e.what()} + " (see registryctl --help)"};
  }

  const std::pair<CLI::App*, command_kind> commands[] = {
    {reg, command_kind::reg},         {beat, command_kind::beat},
    {dereg, command_kind::dereg},     {inst, command_kind::instances},
    {svcs, command_kind::services},   {sub, command_kind::subscribe},
    {status, command_kind::status},   {members, command_kind::members},
    {fo, command_kind::failover},     {raft, command_kind::raft},
  };
  for (const auto& [cmd, kind] : commands)
    if (cmd->parsed()) {
      result.kind = kind;
      if (kind == command_kind::reg) {
        ia.address = ia.addresses.front();
        auto several = "IP:PORT: " + std::to_string(ia.addresses.size()) + " addresses ";
        if (ia.addresses.size() > 1 && ia.persistent)
          return usage_error{several + "with --persistent: a persistent instance is registered "
                                       "one IP:PORT at a time"};
        if (ia.addresses.size() > 1 && !ia.hold)
          return usage_error{several + "register as one batch through a session: add --hold (a "
                                       "heartbeat client is one IP:PORT)"};
      }
      if (kind == command_kind::reg && ia.persistent && ia.hold)
        return usage_error{"--persistent and --hold exclude each other: a persistent instance "
                           "belongs to no session"};
      if (!ia.check.empty() && !(kind == command_kind::reg && ia.persistent))
        return usage_error{"--check needs register --persistent"};
      if (!ia.check.empty() && ia.check != "tcp" && ia.check != "none"
          && ia.check.rfind("http:/", 0) != 0)
        return usage_error{"--check: expected tcp, none or http:/PATH, got '" + ia.check + "'"};
      return result;
    }
  return usage_error{"no command (see registryctl --help)"};
}

} // namespace registry::ctl
