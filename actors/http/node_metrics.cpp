#include "actors/http/node_metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace registry::http {

namespace {

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  return buckets;
}

/// The operation an HTTP route stands for, or "" (for registry_operations_total).
const char* operation_of(const std::string& route) {
  if (route == "POST /nacos/v1/ns/instance" || route == "POST /nacos/v2/ns/instance"
      || route == "PUT /nacos/v1/ns/instance" || route == "PUT /nacos/v2/ns/instance")
    return "register";
  if (route == "DELETE /nacos/v1/ns/instance" || route == "DELETE /nacos/v2/ns/instance")
    return "deregister";
  if (route == "PUT /nacos/v1/ns/instance/beat" || route == "PUT /nacos/v2/ns/instance/beat")
    return "beat";
  if (route == "GET /nacos/v1/ns/instance/list" || route == "GET /nacos/v2/ns/instance/list"
      || route == "GET /nacos/v1/ns/instance" || route == "GET /nacos/v2/ns/instance")
    return "query";
  return "";
}

} // namespace

node_metrics::node_metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  requests_ = &BuildCounter()
                 .Name("registry_http_requests_total")
                 .Help("HTTP requests by route and status code")
                 .Register(*registry_);
  request_seconds_ = &BuildHistogram()
                        .Name("registry_http_request_duration_seconds")
                        .Help("Time from a request's arrival to its response, by route")
                        .Register(*registry_);
  operations_ = &BuildCounter()
                   .Name("registry_operations_total")
                   .Help("Registrations, deregistrations, beats and queries over HTTP, by op")
                   .Register(*registry_);
  pushes_ = &BuildCounter()
               .Name("registry_pushes_total")
               .Help("Pushes to subscribers by transport and result")
               .Register(*registry_);
  push_seconds_ = &BuildHistogram()
                     .Name("registry_push_duration_seconds")
                     .Help("Time from a push to its acknowledgement")
                     .Register(*registry_);
  grpc_requests_ = &BuildCounter()
                      .Name("registry_grpc_requests_total")
                      .Help("gRPC requests of Nacos 2.x clients by type and result")
                      .Register(*registry_);
  grpc_connections_ = &BuildGauge()
                         .Name("registry_grpc_connections")
                         .Help("Open gRPC connections (each is a session)")
                         .Register(*registry_)
                         .Add({});
  members_ = &BuildGauge()
                .Name("registry_members")
                .Help("Cluster members by state, as this node sees them")
                .Register(*registry_);
  auto& gauge = [&](const char* name, const char* help) -> Gauge& {
    return BuildGauge().Name(name).Help(help).Register(*registry_).Add({});
  }("registry_clients", "Clients held (sessions, heartbeat clients, replicas)");
  clients_ = &gauge;
  services_ = &BuildGauge().Name("registry_services").Help("Services with instances").Register(*registry_).Add({});
  instances_ = &BuildGauge().Name("registry_instances").Help("Instances").Register(*registry_).Add({});
  subscribers_ = &BuildGauge().Name("registry_subscribers").Help("Subscribers (CAF and UDP)").Register(*registry_).Add({});
  for (const char* op : {"register", "deregister", "beat", "query"})
    operations_->Add({{"op", op}});
  distro_syncs_ = &BuildCounter()
                     .Name("registry_distro_syncs_total")
                     .Help("SyncBatches sent to each peer, by result (ok, failed)")
                     .Register(*registry_);
  distro_verifies_ = &BuildCounter()
                        .Name("registry_distro_verifies_total")
                        .Help("VerifyBatches sent to each peer, by result (ok, failed)")
                        .Register(*registry_);
  distro_repairs_ = &BuildCounter()
                       .Name("registry_distro_repairs_total")
                       .Help("Clients re-sent in full after a peer's verify found them missing "
                             "or stale")
                       .Register(*registry_);
  distro_received_ = &BuildCounter()
                        .Name("registry_distro_received_total")
                        .Help("Batches received from each peer, by kind (sync, verify)")
                        .Register(*registry_);
}

void node_metrics::set_distro(const std::vector<distro_peer>& peers) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto bump = [&](prometheus::Family<prometheus::Counter>* family,
                  std::map<std::string, std::string> labels, const std::string& name,
                  const std::string& peer, double now) {
    auto& last = distro_last_[{peer, name}];
    auto delta = now >= last ? now - last : now; // lower: the distro actor restarted
    last = now;
    family->Add(labels).Increment(delta);
  };
  for (auto& p : peers) {
    bump(distro_syncs_, {{"peer", p.peer}, {"result", "ok"}}, "syncs_ok", p.peer, p.syncs_ok);
    bump(distro_syncs_, {{"peer", p.peer}, {"result", "failed"}}, "syncs_failed", p.peer,
         p.syncs_failed);
    bump(distro_verifies_, {{"peer", p.peer}, {"result", "ok"}}, "verifies_ok", p.peer,
         p.verifies_ok);
    bump(distro_verifies_, {{"peer", p.peer}, {"result", "failed"}}, "verifies_failed", p.peer,
         p.verifies_failed);
    bump(distro_repairs_, {{"peer", p.peer}}, "repairs", p.peer, p.repairs);
    bump(distro_received_, {{"peer", p.peer}, {"kind", "sync"}}, "syncs_received", p.peer,
         p.syncs_received);
    bump(distro_received_, {{"peer", p.peer}, {"kind", "verify"}}, "verifies_received", p.peer,
         p.verifies_received);
  }
}

node_metrics::~node_metrics() = default;

void node_metrics::request_done(const std::string& route, int status, double seconds) {
  requests_->Add({{"route", route}, {"code", std::to_string(status)}}).Increment();
  request_seconds_->Add({{"route", route}}, latency_buckets()).Observe(seconds);
  if (auto* op = operation_of(route); *op != '\0' && status < 400)
    operations_->Add({{"op", op}}).Increment();
}

void node_metrics::push_done(const std::string& transport, const std::string& result,
                             double seconds) {
  pushes_->Add({{"transport", transport}, {"result", result}}).Increment();
  if (result == "acked")
    push_seconds_->Add({{"transport", transport}}, latency_buckets()).Observe(seconds);
}

void node_metrics::grpc_request_done(const std::string& type, const std::string& result) {
  grpc_requests_->Add({{"type", type}, {"result", result}}).Increment();
}

void node_metrics::set_grpc_connections(double n) {
  grpc_connections_->Set(n);
}

void node_metrics::set_counts(double clients, double services, double instances,
                              double subscribers) {
  clients_->Set(clients);
  services_->Set(services);
  instances_->Set(instances);
  subscribers_->Set(subscribers);
}

void node_metrics::set_members(const std::map<std::string, double>& per_state) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [state, gauge] : member_gauges_)
    gauge->Set(0);
  for (auto& [state, n] : per_state) {
    auto& g = member_gauges_[state];
    if (g == nullptr)
      g = &members_->Add({{"state", state}});
    g->Set(n);
  }
}

std::string node_metrics::serialize() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

} // namespace registry::http
