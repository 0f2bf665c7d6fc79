#include "test/support/nacos_grpc_client.hpp"

#include <atomic>

#include <grpcpp/grpcpp.h>

#include "messages/nacos_grpc_service.grpc.pb.h"

namespace registry::test {

using json = nlohmann::json;

struct nacos_grpc_connection::impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<::Request::Stub> unary;
  std::unique_ptr<::BiRequestStream::Stub> bi;
  std::unique_ptr<grpc::ClientContext> stream_ctx;
  std::unique_ptr<grpc::ClientReaderWriter<::Payload, ::Payload>> stream;
  std::mutex write_mtx;
  std::thread reader;
  mutable std::mutex mtx;
  std::condition_variable cv;
  std::deque<grpc_message> received;
  bool ended = false;
  bool auto_answer = true;

  static ::Payload payload(const std::string& type, const std::string& body) {
    ::Payload p;
    p.mutable_metadata()->set_type(type);
    p.mutable_metadata()->set_clientip("127.0.0.1");
    p.mutable_body()->set_value(body);
    return p;
  }

  bool write(const ::Payload& p) {
    std::lock_guard<std::mutex> guard{write_mtx};
    return stream && stream->Write(p);
  }

  void read_loop() {
    ::Payload in;
    while (stream->Read(&in)) {
      grpc_message m{in.metadata().type(), json::parse(in.body().value(), nullptr, false)};
      if (auto_answer && m.body.is_object()
          && (m.type == "NotifySubscriberRequest" || m.type == "ClientDetectionRequest")) {
        json ack{{"resultCode", 200}, {"errorCode", 0}, {"requestId", m.body.value("requestId", "")}};
        write(payload(m.type == "NotifySubscriberRequest" ? "NotifySubscriberResponse"
                                                          : "ClientDetectionResponse",
                      ack.dump()));
      }
      std::lock_guard<std::mutex> guard{mtx};
      received.push_back(std::move(m));
      cv.notify_all();
    }
    std::lock_guard<std::mutex> guard{mtx};
    ended = true;
    cv.notify_all();
  }
};

nacos_grpc_connection::nacos_grpc_connection(const std::string& address)
  : impl_(std::make_unique<impl>()) {
  grpc::ChannelArguments args;
  // Without a pool of its own, channels to one address share one TCP connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetMaxSendMessageSize(16 << 20);
  impl_->channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  impl_->unary = ::Request::NewStub(impl_->channel);
  impl_->bi = ::BiRequestStream::NewStub(impl_->channel);
}

nacos_grpc_connection::~nacos_grpc_connection() {
  close();
}

grpc_message nacos_grpc_connection::call_raw(const std::string& type, const std::string& body,
                                             std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  ::Payload out;
  auto status = impl_->unary->request(&ctx, impl::payload(type, body), &out);
  if (!status.ok())
    return {"", json{{"error", status.error_message()}, {"code", static_cast<int>(status.error_code())}}};
  return {out.metadata().type(), json::parse(out.body().value(), nullptr, false)};
}

grpc_message nacos_grpc_connection::call(const std::string& type, const json& body,
                                         const std::map<std::string, std::string>& headers,
                                         std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  auto p = impl::payload(type, body.dump());
  for (auto& [k, v] : headers)
    (*p.mutable_metadata()->mutable_headers())[k] = v;
  ::Payload out;
  auto status = impl_->unary->request(&ctx, p, &out);
  if (!status.ok())
    return {"", json{{"error", status.error_message()}, {"code", static_cast<int>(status.error_code())}}};
  return {out.metadata().type(), json::parse(out.body().value(), nullptr, false)};
}

bool nacos_grpc_connection::open_stream(bool negotiate, bool read, bool auto_answer) {
  impl_->auto_answer = auto_answer;
  impl_->stream_ctx = std::make_unique<grpc::ClientContext>();
  impl_->stream = impl_->bi->requestBiStream(impl_->stream_ctx.get());
  json setup{{"clientVersion", "Nacos-Test-Client:1"},
             {"labels", {{"source", "sdk"}, {"module", "naming"}}},
             {"headers", json::object()},
             {"module", "internal"}};
  if (negotiate)
    setup["abilityTable"] = json::object();
  if (!impl_->write(impl::payload("ConnectionSetupRequest", setup.dump())))
    return false;
  if (read)
    impl_->reader = std::thread([this] { impl_->read_loop(); });
  return true;
}

bool nacos_grpc_connection::send(const std::string& type, const json& body) {
  return impl_->write(impl::payload(type, body.dump()));
}

grpc_message nacos_grpc_connection::wait_for(const std::function<bool(const grpc_message&)>& pred,
                                             std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock{impl_->mtx};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (auto i = impl_->received.begin(); i != impl_->received.end(); ++i)
      if (pred(*i)) {
        auto m = std::move(*i);
        impl_->received.erase(i);
        return m;
      }
    if (impl_->ended || impl_->cv.wait_until(lock, deadline) == std::cv_status::timeout) {
      if (impl_->ended || std::chrono::steady_clock::now() >= deadline)
        return {};
    }
  }
}

bool nacos_grpc_connection::stream_ended() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->ended;
}

void nacos_grpc_connection::close() {
  if (impl_->stream_ctx)
    impl_->stream_ctx->TryCancel();
  if (impl_->reader.joinable())
    impl_->reader.join();
  impl_->stream.reset();
  impl_->stream_ctx.reset();
  impl_->unary.reset();
  impl_->bi.reset();
  impl_->channel.reset();
}

bool nacos_grpc_connection::connect(bool negotiate) {
  // A node answers 300 (starting) until it is ready; SDKs retry, so does this.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  grpc_message check;
  do {
    check = call("ServerCheckRequest", json{{"headers", json::object()}, {"module", "internal"}});
    if (check.type == "ServerCheckResponse")
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < until);
  if (check.type != "ServerCheckResponse")
    return false;
  if (!open_stream(negotiate))
    return false;
  // Registered once a health check is answered as such (not 301).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = call("HealthCheckRequest", json::object());
    if (r.type == "HealthCheckResponse")
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

json instance_request(const std::string& service, const std::string& type, const std::string& ip,
                      int port, const json& extra) {
  json instance{{"ip", ip}, {"port", port}, {"weight", 1.0}, {"healthy", true},
                {"enabled", true}, {"ephemeral", true}, {"clusterName", "DEFAULT"},
                {"metadata", json::object()}};
  for (auto& [k, v] : extra.items())
    instance[k] = v;
  return json{{"headers", json::object()}, {"namespace", "public"}, {"serviceName", service},
              {"groupName", "DEFAULT_GROUP"}, {"type", type}, {"instance", instance},
              {"module", "naming"}};
}

} // namespace registry::test
