// cmd/metrics_exporter.h - `coblk metrics`: every device's published metrics in Prometheus's text format, over HTTP.
#pragma once

// Two parts, each tested on its own: the listen address (loopback unless
// the caller says otherwise) and a small HTTP/1.x server on Boost.Asio that
// serves the exposition text of device_metrics.h. The exporter is a process
// of its own, so it never runs on a device's I/O cores.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "coblk/cmd/device_metrics.h"
#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// Parses --listen's HOST:PORT: an IPv4 literal, `localhost` (127.0.0.1) or
/// a bracketed IPv6 literal ([::1]:9477), and a port 0..65535 (0: any free
/// port). A host that is not a loopback address (0.0.0.0, ::, a LAN
/// address) is refused unless `allow_any`: the metrics tell anyone who can
/// connect what the devices are doing. Error EINVAL with one line.
Result<boost::asio::ip::tcp::endpoint> parse_listen_address(const std::string& text, bool allow_any);

/// The HTTP side of `coblk metrics`.
class MetricsServer {
 public:
  /// What to serve, and the limits that keep one client from hurting others.
  struct Options {
    boost::asio::ip::tcp::endpoint endpoint;          ///< where to listen
    std::function<std::string()> render;              ///< the body of GET /metrics
    std::chrono::milliseconds client_timeout{10000};  ///< a connection's whole life, request to last byte
    unsigned max_clients = 64;                        ///< connections served at once; more are closed at accept
    std::size_t max_request_bytes = 8192;             ///< request line and headers; more is 431
  };

  /// Opens, binds and listens. Error with one line naming the address:
  /// EADDRINUSE (the port is taken), EACCES (a privileged port without the
  /// right to bind it), EADDRNOTAVAIL (not an address of this host), or
  /// the errno of the failed step.
  static Result<std::unique_ptr<MetricsServer>> listen(boost::asio::io_context& io, Options options);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// The address actually bound (its port when 0 was asked for).
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  /// Starts accepting; every connection is served asynchronously on `io`'s
  /// threads: GET (or HEAD) /metrics is 200, / a short page, another path
  /// 404, another method 405, a malformed request 400, an oversized one
  /// 431. One request per connection. Run `io` to serve.
  void start();
  /// Connections open now.
  unsigned clients() const;

  /// The listening socket and its connections' shared state (defined in
  /// the .cc file; public only so the connections can name it).
  struct State;

 private:
  explicit MetricsServer(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace coblk::cmd
