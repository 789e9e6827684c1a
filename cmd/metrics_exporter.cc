#include "coblk/cmd/metrics_exporter.h"

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <utility>

#include "coblk/cmd/commands.h"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace coblk::cmd {

// ---------------------------------------------------------------------------
// The listen address

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_loopback(const asio::ip::address& a) {
  if (a.is_v4()) return a.to_v4().is_loopback();
  const asio::ip::address_v6 v6 = a.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).is_loopback();
  return v6.is_loopback();
}

std::string endpoint_text(const tcp::endpoint& e) {
  const std::string host = e.address().to_string();
  return (e.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(e.port());
}

}  // namespace

Result<tcp::endpoint> parse_listen_address(const std::string& text, bool allow_any) {
  const std::string shown = quote_for_message(text);
  auto bad = [&](const std::string& why) {
    return Error(EINVAL, "--listen " + shown + ": " + why + " (expected HOST:PORT, e.g. 127.0.0.1:9477 or [::1]:9477)");
  };
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos) return bad("an IPv6 address needs its closing ']'");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("no port after the IPv6 address");
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos) return bad("no port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) return bad("an IPv6 address goes in brackets");
  }
  if (host.empty()) return bad("no host");
  if (!all_digits(port) || port.size() > 5 || std::stoul(port) > 65535) {
    return bad("the port must be a number from 0 to 65535");
  }
  boost::system::error_code ec;
  const asio::ip::address address =
      host == "localhost" ? asio::ip::address(asio::ip::address_v4::loopback()) : asio::ip::make_address(host, ec);
  if (ec) return bad("'" + host + "' is not an IP address (host names are not looked up)");
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(std::stoul(port)));
  if (!allow_any && !is_loopback(address)) {
    return Error(EINVAL, "refusing to listen on " + endpoint_text(endpoint) +
                             ", which is not a loopback address: anyone who can reach it would see what the devices "
                             "do; add --listen-any to mean it");
  }
  return endpoint;
}

// ---------------------------------------------------------------------------
// Serving

struct MetricsServer::State : std::enable_shared_from_this<MetricsServer::State> {
  State(asio::io_context& context, Options o) : io(context), options(std::move(o)), acceptor(context), retry(context) {}

  void accept();

  asio::io_context& io;
  Options options;
  tcp::acceptor acceptor;
  asio::steady_timer retry;  // after a failed accept (out of fds), before the next
  unsigned clients = 0;
};

namespace {

// One connection: read one request (bounded in size and time), answer it,
// close. Everything is asynchronous, so a client that sends or reads slowly
// holds only its own connection, until its deadline closes it.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<MetricsServer::State> server, tcp::socket socket)
      : server_(std::move(server)),
        socket_(std::move(socket)),
        deadline_(server_->io),
        request_(server_->options.max_request_bytes) {
    ++server_->clients;
  }
  ~Session() { --server_->clients; }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() {
    deadline_.expires_after(server_->options.client_timeout);
    deadline_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        self->socket_.close(ignored);  // ends the pending read or write
      }
    });
    asio::async_read_until(
        socket_, request_, "\r\n\r\n",
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) { self->on_request(ec); });
  }

 private:
  void on_request(const boost::system::error_code& ec) {
    if (ec == asio::error::not_found) {
      respond(431, "Request Header Fields Too Large", "request too large\n", false);
      return;
    }
    if (ec) {
      close();  // the client went away, or its time was up
      return;
    }
    const auto data = request_.data();
    const std::string head(asio::buffers_begin(data), asio::buffers_end(data));
    const std::string line = head.substr(0, head.find("\r\n"));
    // METHOD SP TARGET SP HTTP/1.x, nothing else.
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos) {
      respond(400, "Bad Request", "malformed request line\n", false);
      return;
    }
    const std::string method = line.substr(0, sp1);
    const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string version = line.substr(sp2 + 1);
    const bool token = !method.empty() && std::all_of(method.begin(), method.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
    });
    if (!token || target.empty() || target.front() != '/' || (version != "HTTP/1.1" && version != "HTTP/1.0")) {
      respond(400, "Bad Request", "malformed request line\n", false);
      return;
    }
    const bool head_only = method == "HEAD";
    if (method != "GET" && !head_only) {
      respond(405, "Method Not Allowed", "only GET and HEAD\n", head_only, "Allow: GET, HEAD\r\n");
      return;
    }
    const std::string path = target.substr(0, target.find('?'));
    if (path == "/metrics") {
      std::string body;
      try {
        body = server_->options.render();
      } catch (const std::exception& e) {
        respond(500, "Internal Server Error", std::string(e.what()) + "\n", head_only);
        return;
      }
      respond(200, "OK", body, head_only, "", "text/plain; version=0.0.4; charset=utf-8");
    } else if (path == "/") {
      respond(200, "OK",
              "<html><head><title>coblk metrics</title></head><body><h1>coblk metrics</h1>"
              "<p><a href=\"/metrics\">/metrics</a></p></body></html>\n",
              head_only, "", "text/html; charset=utf-8");
    } else {
      respond(404, "Not Found", "not found: the metrics are at /metrics\n", head_only);
    }
  }

  void respond(int status, const char* reason, const std::string& body, bool head_only, const std::string& extra = "",
               const char* type = "text/plain; charset=utf-8") {
    response_ = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + type +
                "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" + extra + "\r\n";
    if (!head_only) response_ += body;
    asio::async_write(socket_, asio::buffer(response_),
                      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                        if (ec) {
                          self->close();
                        } else {
                          self->linger();
                        }
                      });
  }

  // After the answer: end our side, then read and drop whatever the client
  // still sends (the rest of an oversized request, a body) until it closes,
  // or the deadline does. Closing with unread data would send a reset, which
  // can destroy the answer before the client reads it.
  void linger() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    drain();
  }

  void drain() {
    socket_.async_read_some(asio::buffer(drain_),
                            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                              if (ec) {
                                self->close();
                              } else {
                                self->drain();
                              }
                            });
  }

  void close() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    deadline_.cancel();
  }

  std::shared_ptr<MetricsServer::State> server_;
  tcp::socket socket_;
  asio::steady_timer deadline_;
  asio::streambuf request_;
  std::string response_;
  std::array<char, 4096> drain_{};
};

}  // namespace

void MetricsServer::State::accept() {
  acceptor.async_accept([self = shared_from_this()](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors, most likely: wait for connections to end.
      self->retry.expires_after(std::chrono::milliseconds(100));
      self->retry.async_wait([self](const boost::system::error_code& e) {
        if (!e) self->accept();
      });
      return;
    }
    if (self->clients >= self->options.max_clients) {
      boost::system::error_code ignored;
      socket.close(ignored);  // too many at once: this one is turned away, the others go on
    } else {
      std::make_shared<Session>(self, std::move(socket))->start();
    }
    self->accept();
  });
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::listen(asio::io_context& io, Options options) {
  const tcp::endpoint endpoint = options.endpoint;
  auto state = std::make_shared<State>(io, std::move(options));
  const std::string where = endpoint_text(endpoint);
  boost::system::error_code ec;
  auto failed = [&](const char* step) -> Error {
    const int err = ec.value();
    if (err == EADDRINUSE) {
      return Error(err, "cannot listen on " + where + ": the port is in use (another exporter or program holds it)");
    }
    if (err == EACCES) {
      return Error(err, "cannot listen on " + where + ": permission denied (ports below 1024 need root or " +
                            "CAP_NET_BIND_SERVICE; pick a port above 1023)");
    }
    if (err == EADDRNOTAVAIL) return Error(err, "cannot listen on " + where + ": not an address of this host");
    return Error(err, std::string("cannot listen on ") + where + ": " + step + ": " + ec.message());
  };
  tcp::acceptor& a = state->acceptor;
  if (a.open(endpoint.protocol(), ec)) return failed("socket");
  // Lets a restarted exporter take its port back from connections in
  // TIME_WAIT; a port another socket listens on is still refused.
  if (a.set_option(tcp::acceptor::reuse_address(true), ec)) return failed("setsockopt");
  if (endpoint.address().is_v6() && a.set_option(asio::ip::v6_only(true), ec)) return failed("setsockopt");
  if (a.bind(endpoint, ec)) return failed("bind");
  if (a.listen(asio::socket_base::max_listen_connections, ec)) return failed("listen");
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(state)));
}

MetricsServer::MetricsServer(std::shared_ptr<State> state) : state_(std::move(state)) {}

MetricsServer::~MetricsServer() {
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  state_->retry.cancel();
}

tcp::endpoint MetricsServer::local_endpoint() const {
  boost::system::error_code ignored;
  return state_->acceptor.local_endpoint(ignored);
}

void MetricsServer::start() { state_->accept(); }

unsigned MetricsServer::clients() const { return state_->clients; }

}  // namespace coblk::cmd
