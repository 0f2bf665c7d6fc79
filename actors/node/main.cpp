// registryd: one registry node. Loads the YAML config, starts the actor system and the node
// supervisor, publishes the gateway on `listen`, and runs until SIGTERM or SIGINT.

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/common/log.hpp"
#include "actors/auth/user_auth.hpp"
#include "actors/grpc/grpc_front_end.hpp"
#include "actors/http/http_front_end.hpp"
#include "actors/http/node_metrics.hpp"
#include "actors/common/transport.hpp"
#include "actors/member/http_get.hpp"
#include "actors/member/member_source.hpp"
#include "actors/node/node_supervisor.hpp"
#include "actors/raft/raft_actor.hpp"
#include "config/node_config.hpp"
#include "messages/type_ids.hpp"

namespace {

/// Exit codes.
constexpr int exit_ok = 0;
constexpr int exit_runtime_error = 1;
constexpr int exit_bad_config = 2;

/// Seconds the shutdown may take before the process ends anyway.
constexpr int shutdown_grace_s = 10;

/// The modification time of `path` (0 when it cannot be read).
std::int64_t file_mtime(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return 0;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

/// Milliseconds of a monotonic clock, for the member source.
std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

/// Raises the open-file limit to its hard limit: every HTTP connection holds a descriptor.
void raise_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

/// True for 127.0.0.0/8, ::1 and localhost.
bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

/// Waits up to `wait_ms` for one of `signals`; returns it, or -1 when none came.
int wait_signal(const sigset_t& signals, std::int64_t wait_ms) {
  wait_ms = std::max<std::int64_t>(0, wait_ms);
  timespec wait{static_cast<time_t>(wait_ms / 1000), static_cast<long>(wait_ms % 1000) * 1000000};
  return sigtimedwait(&signals, nullptr, &wait);
}

const registry::http_get_limits members_fetch_limits{
  registry::defaults::members_fetch_connect_timeout_ms, registry::defaults::members_fetch_timeout_ms,
  registry::defaults::members_response_bytes_max};

std::vector<std::string> member_strings(const std::vector<registry::host_port>& members) {
  std::vector<std::string> result;
  for (auto& m : members)
    result.push_back(m.to_string());
  return result;
}

/// Logs what the member source reports; the node's address is the subject.
void log_effects(const registry::node_config& cfg, const registry::member_source::effects& fx) {
  for (auto& line : fx.errors)
    registry::log().error("node {} {}", cfg.listen.to_string(), line);
  for (auto& line : fx.infos)
    registry::log().info("node {} {}", cfg.listen.to_string(), line);
}

/// The secret itself never appears here: only whether one is set and where it came from.
std::string summary(const registry::node_config& cfg) {
  std::string members;
  for (auto& m : cfg.members)
    members += (members.empty() ? "" : ",") + m.to_string();
  return "listen=" + cfg.listen.to_string() + " members=[" + members + "] cluster="
         + cfg.cluster_name + (cfg.standalone() ? " mode=standalone" : " mode=cluster")
         + " beat=" + std::to_string(cfg.heartbeat.interval_ms) + "/"
         + std::to_string(cfg.heartbeat.unhealthy_timeout_ms) + "/"
         + std::to_string(cfg.heartbeat.delete_timeout_ms) + "ms caf_heartbeat="
         + std::to_string(cfg.session.caf_heartbeat_interval_ms) + "/"
         + std::to_string(cfg.session.caf_connection_timeout_ms) + "ms push_merge="
         + std::to_string(cfg.push.merge_window_ms) + "ms protection="
         + (cfg.discovery.protection_enabled ? "on" : "off")
         + (cfg.members_url.empty() ? "" : " members_url=" + cfg.members_url)
         + " http=" + (cfg.http.enabled ? cfg.http.listen.to_string() : std::string{"off"})
         + " grpc=" + (cfg.grpc.enabled ? cfg.grpc.listen.to_string() : std::string{"off"})
         + " cluster_secret="
         + (cfg.cluster_secret.empty() ? "none" : "set (from " + cfg.cluster_secret_source + ")")
         + " tls=" + cfg.tls.mode()
         + (cfg.tls.certificate_mode() ? " (certificate " + cfg.tls.certificate + ", ca_file "
                                           + cfg.tls.ca_file + ")"
                                       : "");
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"registryd: a service registry node"};
  std::string config_path;
  std::string log_level;
  app.add_option("--config", config_path, "YAML config file (required to run a node)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off (overrides log.level)");
  bool raft_join = false;
  app.add_flag("--raft-join", raft_join,
               "with an empty data_dir: start without a Raft configuration and wait for the "
               "running cluster's leader to add this node (instead of founding a new cluster "
               "with `members`); ignored once data_dir holds a log");
  std::string hash_user;
  app.add_option("--hash-password", hash_user,
                 "print a users-file line (auth.users_file) for USER, the password read from stdin");
  app.set_version_flag("--version", std::string{REGISTRY_VERSION});
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? exit_ok : exit_bad_config;
  }
  if (!hash_user.empty()) {
    std::string password;
    std::getline(std::cin, password);
    auto line = registry::auth::user_store::make_line(hash_user, password);
    if (line.empty() || hash_user.find(':') != std::string::npos) {
      std::cerr << "registryd: cannot hash the password (a user name has no ':')\n";
      return exit_runtime_error;
    }
    std::cout << line << "\n";
    return exit_ok;
  }
  if (config_path.empty()) {
    std::cerr << "--config is required\nRun with --help for more information.\n";
    return exit_bad_config;
  }

  auto loaded = registry::load_node_config(config_path);
  if (auto* err = std::get_if<std::string>(&loaded)) {
    std::cerr << "registryd: " << *err << "\n";
    return exit_bad_config;
  }
  auto cfg = std::make_shared<registry::node_config>(std::get<registry::node_config>(loaded));
  if (!log_level.empty())
    cfg->log_level = log_level;
  registry::log_options log_opts;
  log_opts.level = cfg->log_level;
  log_opts.file = cfg->log_file;
  log_opts.file_size_bytes_max = cfg->log.file_size_bytes_max;
  log_opts.files_max = cfg->log.files_max;
  log_opts.queue_lines_max = cfg->log.queue_lines_max;
  log_opts.flush_interval_ms = cfg->log.flush_interval_ms;
  // Signals go to this thread only: block them before any thread starts (the asynchronous
  // logger's, libcurl's, CAF's inherit the mask), then sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (auto err = registry::init_logging(log_opts); !err.empty()) {
    std::cerr << "registryd: --log-level/log: " << err << "\n";
    return exit_bad_config;
  }
  for (auto& warning : cfg->warnings)
    registry::log().warn("node {} config {}: {}", cfg->listen.to_string(), config_path, warning);
  if (auto err = registry::http_global_init(); !err.empty()) {
    std::cerr << "registryd: cannot initialise the HTTP client: " << err << "\n";
    return exit_runtime_error;
  }


  // With members_url the list comes from the address server: fetch it before anything starts.
  registry::member_source source{*cfg, now_ms()};
  while (source.starting()) {
    int sig = wait_signal(signals, source.fetch_due_in_ms(now_ms()));
    if (sig == SIGTERM || sig == SIGINT) {
      registry::log().info("node {} stopped before it started", cfg->listen.to_string());
      return exit_ok;
    }
    auto fx = source.on_fetch(now_ms(), registry::http_get(source.url(), members_fetch_limits));
    log_effects(*cfg, fx);
    if (!fx.fatal.empty()) {
      registry::log().error("node {} cannot start: {}", cfg->listen.to_string(), fx.fatal);
      registry::log().flush();
      std::cerr << "registryd: " << config_path << ": " << fx.fatal << "\n";
      return exit_bad_config;
    }
  }
  cfg->members = source.members();

  // Auth on: the users file is read once, for both front ends (HTTP and the CAF front door).
  std::shared_ptr<registry::auth::authenticator> users;
  if (cfg->auth.enabled) {
    auto loaded = registry::auth::load_authenticator(cfg->auth.users_file, cfg->auth.secret,
                                                     cfg->auth.token_ttl_ms);
    if (auto* err = std::get_if<std::string>(&loaded)) {
      registry::log().error("node {} cannot start: {}", cfg->listen.to_string(), *err);
      registry::log().flush();
      std::cerr << "registryd: " << config_path << ": " << *err << "\n";
      return exit_bad_config;
    }
    users = std::get<std::shared_ptr<registry::auth::authenticator>>(std::move(loaded));
  }
  // The HTTP port is bound before the actors start, so a taken port stops the start, and status
  // reports the bound port (http.listen may ask for any free one).
  raise_file_limit();
  std::unique_ptr<registry::http::http_front_end> http;
  if (cfg->http.enabled) {
    http = std::make_unique<registry::http::http_front_end>(*cfg, users);
    if (auto err = http->bind(); !err.empty()) {
      registry::log().error("node {} cannot start: http.listen: {}", cfg->listen.to_string(), err);
      registry::log().flush();
      std::cerr << "registryd: " << config_path << ": http.listen: " << err << "\n";
      return exit_runtime_error;
    }
    cfg->http.listen = http->address();
    if (!is_loopback(cfg->http.listen.host) && !cfg->auth.enabled)
      registry::log().warn("node {} serves HTTP on {}, beyond this machine, with auth off: anyone "
                           "who reaches it can register, deregister and read every service",
                           cfg->listen.to_string(), cfg->http.listen.to_string());
  }
  // gRPC (Nacos 2.x clients) likewise, with its metrics in the HTTP front end's /metrics.
  std::unique_ptr<registry::grpc_api::grpc_front_end> grpc;
  if (cfg->grpc.enabled) {
    registry::grpc_api::grpc_observer observer;
    if (http) {
      auto* metrics = &http->metrics();
      observer.request_done = [metrics](const std::string& type, const std::string& result) {
        metrics->grpc_request_done(type, result);
      };
      observer.push_done = [metrics](const std::string& result, double seconds) {
        metrics->push_done("grpc", result, seconds);
      };
      observer.connections = [metrics](double n) { metrics->set_grpc_connections(n); };
    }
    grpc = std::make_unique<registry::grpc_api::grpc_front_end>(*cfg, users, std::move(observer));
    if (auto err = grpc->bind(); !err.empty()) {
      registry::log().error("node {} cannot start: grpc.listen: {}", cfg->listen.to_string(), err);
      registry::log().flush();
      std::cerr << "registryd: " << config_path << ": grpc.listen: " << err << "\n";
      return exit_runtime_error;
    }
    cfg->grpc.listen = grpc->address();
    if (!is_loopback(cfg->grpc.listen.host) && !cfg->auth.enabled)
      registry::log().warn("node {} serves gRPC on {}, beyond this machine, with auth off: anyone "
                           "who reaches it can register, deregister and read every service",
                           cfg->listen.to_string(), cfg->grpc.listen.to_string());
  }
  if (!is_loopback(cfg->listen.host) && !cfg->auth.enabled)
    registry::log().warn("node {} listens beyond this machine with auth off: any client that "
                         "reaches the CAF port can register and deregister (auth.enabled)",
                         cfg->listen.to_string());
  registry::log().info("node {} starting: {}", cfg->listen.to_string(), summary(*cfg));
  if (cfg->tls.enabled && !cfg->tls.certificate_mode())
    registry::log().warn("node {} uses anonymous TLS: links are encrypted, but TLS authenticates "
                         "no one (an active man in the middle can read and change them){}",
                         cfg->listen.to_string(),
                         cfg->cluster_secret.empty() || cfg->standalone()
                           ? ""
                           : "; peers prove the cluster secret at connect only");
  // The TLS files stay open while the actor system runs: CAF reads them for every connection.
  registry::tls_file_pins tls_pins;
  caf::actor_system_config sys_cfg;
  registry::wire::configure_system(sys_cfg, cfg->session.caf_heartbeat_interval_ms,
                                   cfg->session.caf_connection_timeout_ms,
                                   registry::defaults::scheduler_threads_max);
  if (auto problem = registry::configure_tls(sys_cfg, tls_pins.pin(cfg->tls)); !problem.empty()) {
    registry::log().error("node {} cannot start: {}", cfg->listen.to_string(), problem);
    registry::shutdown_logging();
    std::cerr << "registryd: " << problem << "\n";
    return exit_runtime_error;
  }
  // Raft's directory: opened (and bootstrapped with the members as voters when new) before
  // anything starts; a damaged log stops the start with the file, the offset and what to do.
  std::optional<registry::raft::raft_log_store::open_result> raft_store;
  if (cfg->raft_enabled()) {
    std::vector<std::string> voters;
    for (auto& m : cfg->members)
      voters.push_back(m.to_string());
    raft_store = registry::open_raft_store(cfg->data_dir, voters, raft_join);
    if (!raft_store->error.empty()) {
      registry::log().error("node {} cannot start: data_dir: {}", cfg->listen.to_string(),
                            raft_store->error);
      registry::shutdown_logging();
      std::cerr << "registryd: " << config_path << ": data_dir: " << raft_store->error << "\n";
      return exit_runtime_error;
    }
    for (auto& w : raft_store->warnings)
      registry::log().warn("node {} raft: {}", cfg->listen.to_string(), w);
  }
  int exit_code = exit_ok;
  {
    caf::actor_system sys{sys_cfg};
    registry::raft_actor raft;
    if (raft_store)
      raft = registry::spawn_raft_actor(sys, registry::make_raft_settings(*cfg),
                                        std::move(*raft_store));
    auto supervisor = registry::spawn_node_supervisor(sys, cfg, users, raft);
    bool started = false;
    {
      caf::scoped_actor self{sys};
      self->request(supervisor, std::chrono::seconds(15), registry::wire::start_atom_v)
        .receive(
          [&](std::uint16_t port) {
            registry::log().info("node {} listening on port {} ({})", cfg->listen.to_string(), port,
                                 registry::link_transport(sys));
            started = true;
            if (http)
              http->start(sys, supervisor);
            if (grpc)
              grpc->start(sys, supervisor);
          },
          [&](caf::error& err) {
            registry::log().error("node {} cannot listen: {}", cfg->listen.to_string(),
                                  sys.render(err));
          });
    }
    if (started) {
      // Wait for a signal; re-read the config on SIGHUP or when the file changes; poll the
      // address server when one is configured. A GET blocks for at most its total timeout, so
      // SIGTERM waits at most that long.
      auto last_mtime = file_mtime(config_path);
      for (;;) {
        auto due_ms = source.fetch_due_in_ms(now_ms());
        int sig = wait_signal(signals, due_ms < 0 ? 1000 : std::min<std::int64_t>(1000, due_ms));
        if (sig == SIGTERM || sig == SIGINT) {
          registry::log().info("node {} received {}; shutting down", cfg->listen.to_string(),
                               sig == SIGTERM ? "SIGTERM" : "SIGINT");
          break;
        }
        bool reload = sig == SIGHUP;
        if (sig < 0) {
          auto mtime = file_mtime(config_path);
          reload = mtime != last_mtime;
          last_mtime = mtime;
        }
        registry::member_source::effects fx;
        if (reload)
          fx = source.on_config(now_ms(), registry::load_node_config(config_path));
        else if (source.fetch_due_in_ms(now_ms()) == 0)
          fx = source.on_fetch(now_ms(), registry::http_get(source.url(), members_fetch_limits));
        else
          continue;
        log_effects(*cfg, fx);
        if (fx.members)
          caf::scoped_actor{sys}->send(supervisor, registry::wire::reload_atom_v, member_strings(*fx.members));
      }
    } else {
      exit_code = exit_runtime_error;
    }
    // A shutdown that hangs must not keep the process alive.
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::seconds(shutdown_grace_s));
      registry::log().error("node shutdown took longer than {} s; exiting", shutdown_grace_s);
      registry::shutdown_logging();
      std::_Exit(exit_runtime_error);
    }).detach();
    // gRPC first: its clients are told to move while the node still answers them.
    if (grpc)
      grpc->stop();
    if (http)
      http->stop();
    caf::scoped_actor{sys}->send_exit(supervisor, caf::exit_reason::user_shutdown);
  }
  grpc.reset();
  http.reset();
  registry::log().info("node {} stopped", cfg->listen.to_string());
  registry::http_global_cleanup();
  registry::shutdown_logging();
  return exit_code;
}
