#pragma once
/// The node's Prometheus metrics (prometheus-cpp), served by the HTTP front end at GET /metrics in
/// the text format. Thread-safe: I/O threads and actors record into it.
///
/// - registry_http_requests_total{route,code}, registry_http_request_duration_seconds{route}
/// - registry_operations_total{op}: HTTP registrations, deregistrations, beats and queries
/// - registry_pushes_total{transport,result}, registry_push_duration_seconds{transport}
/// - registry_grpc_requests_total{type,result}, registry_grpc_connections (Nacos 2.x clients);
///   their pushes count in registry_pushes_total{transport="grpc"}
/// - registry_members{state}; registry_clients, _services, _instances, _subscribers (gauges,
///   refreshed from the node's status at each scrape)
/// - registry_distro_syncs_total{peer,result}, registry_distro_verifies_total{peer,result},
///   registry_distro_repairs_total{peer}, registry_distro_received_total{peer,kind}: the distro
///   actor's per-peer counters from the node's status at each scrape

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace prometheus {
class Registry;
class Counter;
class Histogram;
class Gauge;
template <typename T>
class Family;
} // namespace prometheus

namespace registry::http {

class node_metrics {
public:
  node_metrics();
  ~node_metrics();

  /// One HTTP request: its route label, status code and duration.
  void request_done(const std::string& route, int status, double seconds);
  /// One push (transport "udp"): result "acked", "failed" or "resent"; the latency of an acked one.
  void push_done(const std::string& transport, const std::string& result, double seconds);
  /// One gRPC unary request: its Nacos type (bounded set) and result ("ok" or "error").
  void grpc_request_done(const std::string& type, const std::string& result);
  /// Open gRPC connections (each is a session).
  void set_grpc_connections(double n);
  /// The node's counts from its status.
  void set_counts(double clients, double services, double instances, double subscribers);
  /// Members per state (every state of a previous call not given is set to 0).
  void set_members(const std::map<std::string, double>& per_state);
  /// Distro traffic per peer, from the node's status: absolute counts since the distro actor
  /// started (a count lower than the last one means it restarted; the counters grow by the new
  /// count then, so they never go down).
  struct distro_peer {
    std::string peer;
    double syncs_ok = 0, syncs_failed = 0, verifies_ok = 0, verifies_failed = 0, repairs = 0,
           syncs_received = 0, verifies_received = 0;
  };
  void set_distro(const std::vector<distro_peer>& peers);
  /// The text format of every metric.
  std::string serialize() const;

private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* request_seconds_;
  prometheus::Family<prometheus::Counter>* operations_;
  prometheus::Family<prometheus::Counter>* pushes_;
  prometheus::Family<prometheus::Histogram>* push_seconds_;
  prometheus::Family<prometheus::Gauge>* members_;
  prometheus::Family<prometheus::Counter>* grpc_requests_;
  prometheus::Gauge* grpc_connections_;
  prometheus::Gauge* clients_;
  prometheus::Gauge* services_;
  prometheus::Gauge* instances_;
  prometheus::Gauge* subscribers_;
  mutable std::mutex mtx_;
  std::map<std::string, prometheus::Gauge*> member_gauges_;
  prometheus::Family<prometheus::Counter>* distro_syncs_;
  prometheus::Family<prometheus::Counter>* distro_verifies_;
  prometheus::Family<prometheus::Counter>* distro_repairs_;
  prometheus::Family<prometheus::Counter>* distro_received_;
  /// The last absolute counts per peer and counter name.
  std::map<std::pair<std::string, std::string>, double> distro_last_;
};

} // namespace registry::http
