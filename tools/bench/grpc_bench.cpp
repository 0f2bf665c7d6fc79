// registry-grpc-bench: the gRPC load generator of tools/bench.sh (section 6), speaking Nacos 2.x's
// protocol as the SDKs do (ServerCheck, the stream with ConnectionSetup, unary naming calls).
// Each subcommand prints one JSON object on stdout and ends by itself (every call has a deadline,
// every run a duration).
//
//   registry-grpc-bench register --address H:P --connections C --inflight W --duration-s S
//                                [--services-per-connection K]
//   registry-grpc-bench query    --address H:P --connections C --inflight W --duration-s S
//   registry-grpc-bench push     --address H:P --probes N
//   registry-grpc-bench idle     --address H:P --connections N --rss-pid PID
//
// register: connection i registers in service "bg-(i % S)-(n % K)" (K = --services-per-connection,
// default 1: an application registers itself) an instance at 10.x.y.1:(n/K + 1), so every call
// changes what the connection holds there (Nacos: one instance per connection and service,
// replaced: a session register and a deregister of the previous instance). query: ServiceQueryRequest of a service of 100 instances registered first.
// push: one subscriber connection, one writer; the time from a register's send to the push's
// arrival. idle: the node's RSS growth per connection that completed the handshake.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "messages/nacos_grpc_service.grpc.pb.h"

namespace {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

::Payload payload(const std::string& type, const std::string& body) {
  ::Payload p;
  p.mutable_metadata()->set_type(type);
  p.mutable_body()->set_value(body);
  return p;
}

std::string instance_body(const std::string& service, const std::string& ip, int port) {
  return json{{"namespace", "public"}, {"serviceName", service}, {"groupName", "DEFAULT_GROUP"},
              {"type", "registerInstance"},
              {"instance", {{"ip", ip}, {"port", port}, {"weight", 1.0}, {"healthy", true},
                            {"enabled", true}, {"ephemeral", true}, {"clusterName", "DEFAULT"},
                            {"metadata", json::object()}}}}
    .dump();
}

/// One connection: its channel, stubs and open stream (kept open, not read unless asked).
struct connection {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<::Request::Stub> unary;
  std::unique_ptr<::BiRequestStream::Stub> bi;
  grpc::ClientContext stream_ctx;
  std::unique_ptr<grpc::ClientReaderWriter<::Payload, ::Payload>> stream;

  explicit connection(const std::string& address) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    unary = ::Request::NewStub(channel);
    bi = ::BiRequestStream::NewStub(channel);
  }

  std::string call(const std::string& type, const std::string& body) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ::Payload out;
    if (!unary->request(&ctx, payload(type, body), &out).ok())
      return "";
    return out.metadata().type();
  }

  /// ServerCheck, stream, setup; true once a health check is answered (registered).
  bool open() {
    if (call("ServerCheckRequest", "{}") != "ServerCheckResponse")
      return false;
    stream = bi->requestBiStream(&stream_ctx);
    if (!stream->Write(payload("ConnectionSetupRequest",
                               R"({"clientVersion":"registry-grpc-bench","labels":{"module":"naming"}})")))
      return false;
    auto deadline = clock_type::now() + std::chrono::seconds(5);
    while (clock_type::now() < deadline) {
      if (call("HealthCheckRequest", "{}") == "HealthCheckResponse")
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  ~connection() {
    if (stream)
      stream_ctx.TryCancel();
  }
};

std::vector<std::unique_ptr<connection>> open_all(const std::string& address, int n) {
  std::vector<std::unique_ptr<connection>> out;
  for (int i = 0; i < n; ++i) {
    auto c = std::make_unique<connection>(address);
    if (!c->open()) {
      std::cerr << "registry-grpc-bench: connection " << i << " failed its handshake\n";
      break;
    }
    out.push_back(std::move(c));
  }
  return out;
}

/// Keeps `inflight` callback calls running per connection for `duration_s`; `body(conn, n)` makes
/// the n-th request of a connection. Counts answers of `expected` type; latencies in microseconds.
json drive(std::vector<std::unique_ptr<connection>>& conns, int inflight, int duration_s,
           const std::string& type, const std::string& expected,
           const std::function<std::string(std::size_t, std::uint64_t)>& body) {
  struct slot {
    grpc::ClientContext ctx;
    ::Payload in;
    ::Payload out;
    clock_type::time_point t0;
  };
  std::atomic<bool> running{true};
  std::atomic<std::uint64_t> ok{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<int> outstanding{0};
  std::mutex lat_mtx;
  std::vector<std::int64_t> latencies;
  latencies.reserve(1 << 20);
  std::vector<std::atomic<std::uint64_t>> counters(conns.size());
  std::function<void(std::size_t)> start_one;
  start_one = [&](std::size_t ci) {
    auto* s = new slot;
    auto n = counters[ci]++;
    s->in = payload(type, body(ci, n));
    s->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    s->t0 = clock_type::now();
    ++outstanding;
    conns[ci]->unary->async()->request(&s->ctx, &s->in, &s->out, [&, s, ci](grpc::Status st) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - s->t0)
                  .count();
      if (st.ok() && s->out.metadata().type() == expected) {
        ++ok;
        std::lock_guard<std::mutex> guard{lat_mtx};
        if (latencies.size() < latencies.capacity())
          latencies.push_back(us);
      } else {
        ++failed;
      }
      delete s;
      if (running.load())
        start_one(ci);
      --outstanding;
    });
  };
  auto t0 = clock_type::now();
  for (std::size_t ci = 0; ci < conns.size(); ++ci)
    for (int w = 0; w < inflight; ++w)
      start_one(ci);
  std::this_thread::sleep_for(std::chrono::seconds(duration_s));
  running = false;
  auto elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  auto done_ok = ok.load();
  auto deadline = clock_type::now() + std::chrono::seconds(10);
  while (outstanding.load() > 0 && clock_type::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::lock_guard<std::mutex> guard{lat_mtx};
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies.empty() ? 0
                             : latencies[std::min(latencies.size() - 1,
                                                  static_cast<std::size_t>(p * latencies.size()))];
  };
  return json{{"ops_per_s", done_ok / elapsed}, {"ok", done_ok}, {"failed", failed.load()},
              {"p50_us", pct(0.50)}, {"p99_us", pct(0.99)}, {"connections", conns.size()}};
}

std::int64_t rss_kb(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::atoll(line.c_str() + 6);
  return -1;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"registry-grpc-bench: Nacos 2.x gRPC load generator (see tools/bench.sh)"};
  app.require_subcommand(1);
  std::string address;
  int connections = 32;
  int inflight = 16;
  int duration_s = 5;
  int probes = 200;
  int rss_pid = 0;
  int services_per_connection = 1;
  auto* reg = app.add_subcommand("register", "gRPC registrations/s");
  auto* query = app.add_subcommand("query", "gRPC queries/s");
  auto* push = app.add_subcommand("push", "register-to-push latency over gRPC");
  auto* idle = app.add_subcommand("idle", "node RSS per idle gRPC connection");
  for (auto* cmd : {reg, query, push, idle}) {
    cmd->add_option("--address", address, "the node's gRPC HOST:PORT")->required();
    cmd->add_option("--connections", connections, "connections")->check(CLI::Range(1, 100000));
  }
  for (auto* cmd : {reg, query}) {
    cmd->add_option("--inflight", inflight, "calls in flight per connection")->check(CLI::Range(1, 1000));
    cmd->add_option("--duration-s", duration_s, "measured run")->check(CLI::Range(1, 600));
  }
  reg->add_option("--services-per-connection", services_per_connection,
                  "services each connection registers in, in turn")
    ->check(CLI::Range(1, 1000));
  push->add_option("--probes", probes, "registrations timed")->check(CLI::Range(1, 100000));
  idle->add_option("--rss-pid", rss_pid, "the node's pid")->required();
  CLI11_PARSE(app, argc, argv);

  // A watchdog: nothing here may hang the benchmark suite.
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::minutes(10));
    std::cerr << "registry-grpc-bench: watchdog\n";
    std::_Exit(3);
  }).detach();

  if (*reg) {
    auto conns = open_all(address, connections);
    auto r = drive(conns, inflight, duration_s, "InstanceRequest", "InstanceResponse",
                   [&](std::size_t ci, std::uint64_t n) {
                     auto k = static_cast<std::uint64_t>(services_per_connection);
                     auto ip = "10." + std::to_string(ci / 250 % 250) + "." + std::to_string(ci % 250) + ".1";
                     return instance_body("bg-" + std::to_string(ci % 100) + "-" + std::to_string(n % k),
                                          ip, static_cast<int>(n / k % 60000 + 1));
                   });
    std::cout << r.dump() << std::endl;
    return 0;
  }
  if (*query) {
    auto conns = open_all(address, connections);
    // 100 instances in the queried service, from 100 connections (one each).
    auto writers = open_all(address, 100);
    for (std::size_t i = 0; i < writers.size(); ++i)
      writers[i]->call("InstanceRequest",
                       instance_body("bq", "10.200." + std::to_string(i) + ".1", 8080));
    auto body = json{{"namespace", "public"}, {"serviceName", "bq"}, {"groupName", "DEFAULT_GROUP"},
                     {"cluster", ""}, {"healthyOnly", false}}
                  .dump();
    auto r = drive(conns, inflight, duration_s, "ServiceQueryRequest", "QueryServiceResponse",
                   [&](std::size_t, std::uint64_t) { return body; });
    std::cout << r.dump() << std::endl;
    return 0;
  }
  if (*push) {
    connection sub{address};
    connection writer{address};
    if (!sub.open() || !writer.open()) {
      std::cout << json{{"error", "handshake failed"}}.dump() << std::endl;
      return 1;
    }
    auto sub_body = json{{"namespace", "public"}, {"serviceName", "bp"}, {"groupName", "DEFAULT_GROUP"},
                         {"clusters", ""}, {"subscribe", true}}
                      .dump();
    sub.call("SubscribeServiceRequest", sub_body);
    // The reader answers every push and wakes the timer when one shows the awaited port.
    std::mutex mtx;
    std::condition_variable cv;
    int seen_port = -1;
    std::thread reader([&] {
      ::Payload in;
      while (sub.stream->Read(&in)) {
        if (in.metadata().type() != "NotifySubscriberRequest")
          continue;
        auto j = json::parse(in.body().value(), nullptr, false);
        json ack{{"resultCode", 200}, {"errorCode", 0}, {"requestId", j.value("requestId", "")}};
        sub.stream->Write(payload("NotifySubscriberResponse", ack.dump()));
        int port = -1;
        if (j.is_object() && j.contains("serviceInfo"))
          for (auto& h : j["serviceInfo"]["hosts"])
            port = std::max(port, h.value("port", -1));
        std::lock_guard<std::mutex> guard{mtx};
        seen_port = port;
        cv.notify_all();
      }
    });
    std::vector<std::int64_t> us;
    int lost = 0;
    for (int i = 0; i < probes; ++i) {
      auto t0 = clock_type::now();
      writer.call("InstanceRequest", instance_body("bp", "10.250.0.1", i + 1));
      std::unique_lock<std::mutex> lock{mtx};
      if (cv.wait_for(lock, std::chrono::seconds(5), [&] { return seen_port == i + 1; }))
        us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0)
                       .count());
      else
        ++lost;
    }
    sub.stream_ctx.TryCancel();
    reader.join();
    std::sort(us.begin(), us.end());
    auto pct = [&](double p) {
      return us.empty() ? 0 : us[std::min(us.size() - 1, static_cast<std::size_t>(p * us.size()))];
    };
    std::cout << json{{"p50_us", pct(0.5)}, {"p99_us", pct(0.99)}, {"probes", probes}, {"lost", lost}}
                   .dump()
              << std::endl;
    return 0;
  }
  if (*idle) {
    auto before = rss_kb(rss_pid);
    auto conns = open_all(address, connections);
    // Let the node settle (the last setups are processed) before reading its RSS.
    std::this_thread::sleep_for(std::chrono::seconds(2));
    auto after = rss_kb(rss_pid);
    std::cout << json{{"connections", conns.size()}, {"rss_before_kb", before}, {"rss_after_kb", after},
                      {"kb_per_connection",
                       conns.empty() ? 0.0 : static_cast<double>(after - before) / conns.size()}}
                   .dump()
              << std::endl;
    return 0;
  }
  return 2;
}
