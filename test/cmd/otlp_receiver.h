// test/cmd/otlp_receiver.h - a small OTLP/HTTP receiver for the tests: it records every request and answers as told.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace coblk::test {

/// An HTTP/1.1 server on 127.0.0.1 (Boost.Asio and Beast, on a thread of
/// its own) that takes POSTs as an OpenTelemetry collector's otlp receiver
/// would, and answers 200 "{}", 500, or never.
class OtlpReceiver {
 public:
  /// How it answers.
  enum class Mode {
    ok,      ///< 200, an empty ExportMetricsServiceResponse
    fail,    ///< 500 Internal Server Error
    silent,  ///< reads the request and never answers (the connection stays open)
  };
  /// One request received.
  struct Request {
    std::string method;        ///< e.g. "POST"
    std::string target;        ///< e.g. "/v1/metrics"
    std::string content_type;  ///< the Content-Type header
    std::string host;          ///< the Host header
    std::string body;          ///< the whole body
  };

  /// Listens on 127.0.0.1:`port` (0: any free port) and serves until
  /// destroyed. Throws if it cannot listen.
  explicit OtlpReceiver(Mode mode, std::uint16_t port = 0);
  ~OtlpReceiver();
  OtlpReceiver(const OtlpReceiver&) = delete;
  OtlpReceiver& operator=(const OtlpReceiver&) = delete;

  /// The port it listens on.
  std::uint16_t port() const;
  /// How it answers from now on.
  void set_mode(Mode mode);
  /// The requests received so far.
  std::vector<Request> requests() const;
  /// Called on the receiver's thread for each request, before the answer.
  void on_request(std::function<void(const Request&)> callback);

  /// The server's state (defined in the .cc file).
  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace coblk::test
