#include "test/cmd/otlp_receiver.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <mutex>
#include <thread>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace coblk::test {

struct OtlpReceiver::State {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  mutable std::mutex mutex;  // requests, mode and callback: the test's thread reads what the server's writes
  Mode mode = Mode::ok;
  std::vector<Request> requests;
  std::function<void(const Request&)> callback;

  void accept();
};

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(OtlpReceiver::State* state, tcp::socket socket) : state_(state), socket_(std::move(socket)) {}

  void start() {
    parser_.body_limit(64 << 20);
    http::async_read(socket_, buffer_, parser_,
                     [self = shared_from_this()](const boost::system::error_code& ec, size_t) { self->on_read(ec); });
  }

 private:
  void on_read(const boost::system::error_code& ec) {
    if (ec) return;  // the client went away: drop the connection
    const auto& req = parser_.get();
    OtlpReceiver::Request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.content_type = std::string(req[http::field::content_type]);
    r.host = std::string(req[http::field::host]);
    r.body = req.body();
    OtlpReceiver::Mode mode;
    std::function<void(const OtlpReceiver::Request&)> callback;
    {
      const std::lock_guard lock(state_->mutex);
      state_->requests.push_back(r);
      mode = state_->mode;
      callback = state_->callback;
    }
    if (callback) callback(r);
    if (mode == OtlpReceiver::Mode::silent) {
      // Keep the connection (and so this object) alive, unanswered, until
      // the client gives up: a read that only ends when it closes.
      socket_.async_read_some(asio::buffer(drain_),
                              [self = shared_from_this()](const boost::system::error_code&, size_t) {});
      return;
    }
    response_.version(11);
    response_.keep_alive(false);
    if (mode == OtlpReceiver::Mode::ok) {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, "application/json");
      response_.body() = "{}";
    } else {
      response_.result(http::status::internal_server_error);
      response_.set(http::field::content_type, "text/plain");
      response_.body() = "the test's receiver fails on purpose";
    }
    response_.prepare_payload();
    http::async_write(socket_, response_, [self = shared_from_this()](const boost::system::error_code&, size_t) {
      boost::system::error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_both, ignored);
    });
  }

  OtlpReceiver::State* state_;  // outlives every connection: destroying its io_context destroys them
  tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
  http::request_parser<http::string_body> parser_;
  http::response<http::string_body> response_;
  char drain_[512] = {};
};

}  // namespace

void OtlpReceiver::State::accept() {
  acceptor.async_accept([self = this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec) return;
    std::make_shared<Connection>(self, std::move(socket))->start();
    self->accept();
  });
}

OtlpReceiver::OtlpReceiver(Mode mode, std::uint16_t port) : state_(std::make_unique<State>()) {
  state_->mode = mode;
  const tcp::endpoint at(asio::ip::address_v4::loopback(), port);
  state_->acceptor.open(at.protocol());
  state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  state_->acceptor.bind(at);
  state_->acceptor.listen();
  state_->accept();
  state_->thread = std::thread([s = state_.get()] { s->io.run(); });
}

OtlpReceiver::~OtlpReceiver() {
  state_->io.stop();
  state_->thread.join();
}

std::uint16_t OtlpReceiver::port() const { return state_->acceptor.local_endpoint().port(); }

void OtlpReceiver::set_mode(Mode mode) {
  const std::lock_guard lock(state_->mutex);
  state_->mode = mode;
}

std::vector<OtlpReceiver::Request> OtlpReceiver::requests() const {
  const std::lock_guard lock(state_->mutex);
  return state_->requests;
}

void OtlpReceiver::on_request(std::function<void(const Request&)> callback) {
  const std::lock_guard lock(state_->mutex);
  state_->callback = std::move(callback);
}

}  // namespace coblk::test
