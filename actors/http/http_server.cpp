#include "actors/http/http_server.hpp"

#include <optional>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "actors/common/log.hpp"

namespace registry::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

/// Logs the first refusals and then every 1000th, so a flood cannot fill the disk.
void log_refusal(const char* what) {
  static std::atomic<std::uint64_t> count{0};
  auto n = ++count;
  if (n <= 10 || n % 1000 == 0)
    log().warn("http refused {} ({} refusals so far)", what, n);
}

class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket socket, const server_limits& limits, const request_handler& handler,
          std::shared_ptr<std::atomic<std::size_t>> connections)
    : stream_(std::move(socket)),
      limits_(limits),
      handler_(handler),
      connections_(std::move(connections)),
      buffer_(limits.header_bytes_max + limits.body_bytes_max + 4096) {
    beast::error_code ec;
    auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec)
      remote_ip_ = endpoint.address().to_string();
  }

  ~session() { --*connections_; }

  void start() { wait_request(); }

private:
  /// Waits for the first byte of the next request for at most the idle timeout.
  void wait_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits_.header_bytes_max));
    parser_->body_limit(limits_.body_bytes_max);
    if (buffer_.size() > 0)
      return read_request();
    stream_.expires_after(std::chrono::milliseconds(limits_.idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec)
                                return self->close();
                              self->buffer_.commit(n);
                              self->read_request();
                            });
  }

  /// Reads the rest of the request within the request timeout.
  void read_request() {
    stream_.expires_after(std::chrono::milliseconds(limits_.request_timeout_ms));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->on_read(ec);
                      });
  }

  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::header_limit)
      return refuse(431, "Request Header Fields Too Large", "oversized headers");
    if (ec == bhttp::error::body_limit)
      return refuse(413, "Payload Too Large", "an oversized body");
    if (ec == beast::error::timeout) {
      log_refusal("a request that did not arrive in time");
      return close();
    }
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof
        || ec == asio::error::connection_reset || ec == asio::error::operation_aborted)
      return close();
    if (ec)
      return refuse(400, "Bad Request", "a malformed request");
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    request req;
    req.method = std::string{msg.method_string()};
    req.target = std::string{msg.target()};
    req.body = std::move(msg.body());
    req.content_type = std::string{msg[bhttp::field::content_type]};
    req.user_agent = std::string{msg[bhttp::field::user_agent]};
    req.access_token = std::string{msg["accessToken"]};
    if (req.access_token.empty()) {
      auto authorization = msg[bhttp::field::authorization];
      if (authorization.size() > 7 && authorization.substr(0, 7) == "Bearer ")
        req.access_token = std::string{authorization.substr(7)};
    }
    req.remote_ip = remote_ip_;
    auto self = shared_from_this();
    handler_(std::move(req), [self](response r) {
      auto executor = self->stream_.get_executor();
      asio::post(executor, [self, r = std::move(r)]() mutable { self->write(std::move(r)); });
    });
  }

  void write(response r) {
    response_.emplace(static_cast<bhttp::status>(r.status), version_);
    response_->set(bhttp::field::server, "registryd");
    response_->set(bhttp::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers)
      response_->set(name, value);
    response_->keep_alive(keep_alive_);
    response_->body() = std::move(r.body);
    response_->prepare_payload();
    stream_.expires_after(std::chrono::milliseconds(limits_.request_timeout_ms));
    bhttp::async_write(stream_, *response_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (ec || !self->keep_alive_)
                           return self->close();
                         self->response_.reset();
                         self->wait_request();
                       });
  }

  /// Answers a request the server cannot take and closes the connection.
  void refuse(int status, const char* reason, const char* what) {
    log_refusal(what);
    keep_alive_ = false;
    response r;
    r.status = status;
    r.body = reason;
    r.content_type = "text/plain;charset=UTF-8";
    write(std::move(r));
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  const server_limits& limits_;
  const request_handler& handler_;
  std::shared_ptr<std::atomic<std::size_t>> connections_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::string_body>> response_;
  std::string remote_ip_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
};

} // namespace

struct http_server::impl {
  impl(server_limits l, request_handler h)
    : limits(l), handler(std::move(h)), work(asio::make_work_guard(io)) {}

  asio::io_context io;
  server_limits limits;
  request_handler handler;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::optional<tcp::acceptor> acceptor;
};

http_server::http_server(server_limits limits, request_handler handler)
  : impl_(std::make_unique<impl>(limits, std::move(handler))),
    connections_(std::make_shared<std::atomic<std::size_t>>(0)) {
  // nop
}

http_server::~http_server() {
  stop();
}

std::string http_server::listen(const std::string& host, std::uint16_t port) {
  beast::error_code ec;
  auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) {
    tcp::resolver resolver{impl_->io};
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty())
      return "cannot resolve " + host + ": " + ec.message();
    address = results.begin()->endpoint().address();
  }
  tcp::endpoint endpoint{address, port};
  auto& acceptor = impl_->acceptor.emplace(asio::make_strand(impl_->io));
  acceptor.open(endpoint.protocol(), ec);
  if (!ec)
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec)
    acceptor.bind(endpoint, ec);
  if (!ec)
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    impl_->acceptor.reset();
    return "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message();
  }
  port_ = acceptor.local_endpoint().port();
  return "";
}

namespace {

void accept_loop(tcp::acceptor& acceptor, asio::io_context& io, const server_limits& limits,
                 const request_handler& handler,
                 std::shared_ptr<std::atomic<std::size_t>> connections) {
  acceptor.async_accept(asio::make_strand(io), [&acceptor, &io, &limits, &handler,
                                                connections](beast::error_code ec,
                                                             tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open())
      return;
    if (!ec) {
      if (connections->load() >= limits.connections_max) {
        log_refusal("a connection beyond http.connections_max");
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        ++*connections;
        std::make_shared<session>(std::move(socket), limits, handler, connections)->start();
      }
    } else if (ec == asio::error::no_descriptors) {
      log_refusal("a connection: out of file descriptors");
    }
    accept_loop(acceptor, io, limits, handler, connections);
  });
}

} // namespace

void http_server::start(int threads) {
  if (!impl_->acceptor)
    return;
  accept_loop(*impl_->acceptor, impl_->io, impl_->limits, impl_->handler, connections_);
  for (int i = 0; i < std::max(1, threads); ++i)
    threads_.emplace_back([this] {
      for (;;) {
        try {
          impl_->io.run();
          return;
        } catch (const std::exception& e) {
          log().error("http I/O thread caught {}; going on", e.what());
        }
      }
    });
}

void http_server::stop() {
  if (impl_->acceptor) {
    asio::post(impl_->acceptor->get_executor(), [this] {
      beast::error_code ec;
      impl_->acceptor->close(ec);
    });
  }
  impl_->work.reset();
  impl_->io.stop();
  for (auto& t : threads_)
    if (t.joinable())
      t.join();
  threads_.clear();
}

boost::asio::io_context& http_server::io() {
  return impl_->io;
}

} // namespace registry::http
