// cmd/otlp_exporter.h - `coblk metrics --otlp-endpoint`: pushes the metrics to an OTLP/HTTP receiver every interval.
#pragma once

// The push side of the exporter: the endpoint URL and the interval as the
// user types them, and a client that POSTs the OTLP JSON body
// (cmd/otlp_encode.h) on Boost.Asio and Boost.Beast, asynchronously, on the
// exporter's own io_context. The exporter is a process of its own, so a
// receiver that is down, slow or refuses the data costs the devices'
// I/O cores nothing; within the exporter, each push is bounded in time, a
// failed one is dropped (the next carries the cumulative counters anyway)
// and the Prometheus listener on the same io_context is never held up.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// Where an OTLP/HTTP push goes, from --otlp-endpoint.
struct OtlpEndpoint {
  std::string url;     ///< as given, for messages
  std::string host;    ///< a host name, an IPv4 literal or an IPv6 literal (without brackets)
  std::uint16_t port;  ///< 80 unless the URL names one
  std::string target;  ///< the request path: the URL's path with /v1/metrics appended
};

/// Parses --otlp-endpoint's URL: http://HOST[:PORT][/PATH], HOST a name, an
/// IPv4 literal or a bracketed IPv6 literal, PORT 1..65535 (default 80).
/// As the OTLP specification says for a base URL (OTEL_EXPORTER_OTLP_ENDPOINT),
/// the path gets /v1/metrics appended: http://localhost:4318 posts to
/// /v1/metrics, http://gw:8080/otlp to /otlp/v1/metrics. https:// is
/// refused (coblk has no TLS), as are other schemes, credentials, a query
/// or fragment, and spaces or control characters. Error EINVAL with one
/// line naming the option.
Result<OtlpEndpoint> parse_otlp_endpoint(const std::string& url);

/// Parses --otlp-interval: a whole number with the unit ms, s, m or h (no
/// unit: seconds), from 1 s to 1 h. Error EINVAL with one line.
Result<std::chrono::milliseconds> parse_otlp_interval(const std::string& text);

/// Pushes a body to an OTLP/HTTP endpoint every interval, on an io_context
/// the caller runs (one thread). Not thread-safe: call it on that thread,
/// or before and after it runs.
class OtlpPusher {
 public:
  /// What to push, where, and how often.
  struct Options {
    OtlpEndpoint endpoint;                      ///< where to POST
    std::chrono::milliseconds interval{10000};  ///< from the start of one push to the start of the next
    std::chrono::milliseconds timeout{
        0};  ///< one push's limit, resolving to reading the answer; 0: 3/4 of the interval, at most 10 s
    std::function<std::string()> render;          ///< the body (OTLP JSON), made at each push
    std::function<void(const std::string&)> log;  ///< one line when the outcome changes
    /// How often a log line may be written once three have been: each
    /// change of outcome is logged, the first three at once, then at most
    /// one per log_gap (a receiver that keeps coming and going is reported
    /// in its latest state). 0: every change.
    std::chrono::milliseconds log_gap{60000};
  };

  /// What the pusher has done so far.
  struct Counters {
    std::uint64_t pushes = 0;     ///< pushes started
    std::uint64_t succeeded = 0;  ///< answered 2xx
    std::uint64_t failed = 0;     ///< refused, unreachable, timed out or answered otherwise (batch dropped)
    std::uint64_t skipped = 0;    ///< intervals that found the previous push still running
    std::string last;             ///< the outcome of the latest push: "ok" or why it failed
  };

  /// A pusher that does nothing until start().
  OtlpPusher(boost::asio::io_context& io, Options options);
  /// Stops: a push in flight is abandoned.
  ~OtlpPusher();
  OtlpPusher(const OtlpPusher&) = delete;
  OtlpPusher& operator=(const OtlpPusher&) = delete;

  /// Pushes now, then every interval, while the io_context runs.
  void start();
  /// Stops pushing; a push in flight is abandoned (its socket closed).
  void stop();
  /// The counters so far.
  const Counters& counters() const;

  /// The timer, the push in flight and the counters (defined in the .cc
  /// file; public only so that a push can name it).
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace coblk::cmd
