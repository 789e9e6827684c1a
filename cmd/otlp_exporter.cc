#include "coblk/cmd/otlp_exporter.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <cerrno>
#include <utility>

#include "coblk/cmd/commands.h"

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace coblk::cmd {

// ---------------------------------------------------------------------------
// The URL and the interval

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

}  // namespace

Result<OtlpEndpoint> parse_otlp_endpoint(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return Error(EINVAL, "--otlp-endpoint " + quote_for_message(url) + ": " + why +
                             " (expected http://HOST[:PORT][/PATH], e.g. http://127.0.0.1:4318)");
  };
  for (const char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return bad("spaces and control characters are not allowed");
    }
  }
  const size_t sep = url.find("://");
  if (sep == std::string::npos) return bad("not a URL");
  const std::string scheme = lower(url.substr(0, sep));
  if (scheme == "https") {
    return bad(
        "https is not supported (coblk has no TLS); push to a collector's http port over loopback or a "
        "trusted network");
  }
  if (scheme != "http") return bad("unknown scheme '" + scheme + "' (only http:// is supported)");
  const std::string rest = url.substr(sep + 3);
  if (rest.find_first_of("?#") != std::string::npos) return bad("a query or fragment is not supported");
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string::npos) return bad("credentials in the URL are not supported");
  OtlpEndpoint e;
  e.url = url;
  std::string port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return bad("an IPv6 address needs its closing ']'");
    e.host = authority.substr(1, close - 1);
    boost::system::error_code ec;
    (void)asio::ip::make_address_v6(e.host, ec);
    if (ec) return bad("'" + e.host + "' is not an IPv6 address");
    const std::string after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return bad("junk after the IPv6 address");
    if (!after.empty()) port = after.substr(1);
    if (after == ":") return bad("no port after ':'");
  } else {
    const size_t colon = authority.find(':');
    e.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return bad("no port after ':'");
    }
    const bool name_chars = std::all_of(e.host.begin(), e.host.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.';
    });
    if (!name_chars) return bad("'" + e.host + "' is not a host name or address (an IPv6 address goes in brackets)");
  }
  if (e.host.empty()) return bad("no host");
  e.port = 80;
  if (!port.empty()) {
    if (!all_digits(port) || port.size() > 5 || std::stoul(port) < 1 || std::stoul(port) > 65535) {
      return bad("the port must be a number from 1 to 65535");
    }
    e.port = static_cast<std::uint16_t>(std::stoul(port));
  }
  // The OTLP exporter specification: a base URL gets the signal's path
  // appended, v1/metrics, after a '/' (one, however the path ends).
  while (!path.empty() && path.back() == '/') path.pop_back();
  e.target = path + "/v1/metrics";
  return e;
}

Result<std::chrono::milliseconds> parse_otlp_interval(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error(EINVAL, "--otlp-interval " + quote_for_message(text) + ": " + why +
                             " (expected a duration from 1s to 1h, e.g. 10s, 1500ms, 2m)");
  };
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return bad("not a number");
  if (digits > 9) return bad("out of range");
  const std::uint64_t n = std::stoull(text.substr(0, digits));
  const std::string unit = text.substr(digits);
  std::uint64_t ms = 0;
  if (unit.empty() || unit == "s") {
    ms = n * 1000;
  } else if (unit == "ms") {
    ms = n;
  } else if (unit == "m") {
    ms = n * 60 * 1000;
  } else if (unit == "h") {
    ms = n * 3600 * 1000;
  } else {
    return bad("unknown unit '" + unit + "' (ms, s, m or h)");
  }
  if (ms < 1000 || ms > 3600 * 1000) return bad("out of range");
  return std::chrono::milliseconds(ms);
}

// ---------------------------------------------------------------------------
// Pushing

class OtlpPush;

struct OtlpPusher::State : std::enable_shared_from_this<OtlpPusher::State> {
  State(asio::io_context& context, Options o) : io(context), options(std::move(o)), tick(context) {}

  void schedule();
  void push();
  void finish(const std::string& outcome, const std::string& detail);

  asio::io_context& io;
  Options options;
  asio::steady_timer tick;
  bool running = false;
  Counters counters;
  std::shared_ptr<OtlpPush> in_flight;
  std::string logged;                       // the outcome the last log line reported ("" before the first)
  static constexpr unsigned kLogBurst = 3;  // log lines that may follow each other without waiting
  unsigned log_budget = kLogBurst;          // lines that may be logged now
  std::chrono::steady_clock::time_point refilled_at = std::chrono::steady_clock::now();  // last budget refill
};

namespace {

std::string one_line(const std::string& s, size_t limit) {
  std::string out;
  for (const char c : s.substr(0, limit)) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

// One POST: resolve, connect, write, read the answer, within a deadline.
// Each step's handler checks `done_` first: after the deadline (or stop())
// closed the socket, the late completions of its operations do nothing.
class OtlpPush : public std::enable_shared_from_this<OtlpPush> {
 public:
  OtlpPush(const std::shared_ptr<OtlpPusher::State>& owner, std::string body)
      : owner_(owner), resolver_(owner->io), socket_(owner->io), deadline_(owner->io) {
    const OtlpEndpoint& e = owner->options.endpoint;
    const bool v6 = e.host.find(':') != std::string::npos;
    std::string host = v6 ? "[" + e.host + "]" : e.host;
    if (e.port != 80) host += ":" + std::to_string(e.port);
    request_ = http::request<http::string_body>(http::verb::post, e.target, 11);
    request_.set(http::field::host, host);
    request_.set(http::field::user_agent, "coblk-metrics");
    request_.set(http::field::content_type, "application/json");
    request_.keep_alive(false);
    request_.body() = std::move(body);
    request_.prepare_payload();
    parser_.body_limit(64 * 1024);  // an ExportMetricsServiceResponse is a few bytes
  }

  void start(std::chrono::milliseconds timeout) {
    deadline_.expires_after(timeout);
    deadline_.async_wait([self = shared_from_this(), timeout](const boost::system::error_code& ec) {
      if (!ec) self->fail("no answer within " + duration_text(timeout), "");
    });
    const OtlpEndpoint& e = owner_.lock()->options.endpoint;
    resolver_.async_resolve(
        e.host, std::to_string(e.port), tcp::resolver::numeric_service,
        [self = shared_from_this()](const boost::system::error_code& ec, const tcp::resolver::results_type& results) {
          if (self->done_) return;
          if (ec) {
            self->fail("cannot resolve the host: " + ec.message(), "");
            return;
          }
          self->connect(results);
        });
  }

  // Ends the push without reporting it (stop()).
  void abandon() {
    done_ = true;
    close();
  }

 private:
  void connect(const tcp::resolver::results_type& results) {
    asio::async_connect(socket_, results,
                        [self = shared_from_this()](const boost::system::error_code& ec, const tcp::endpoint&) {
                          if (self->done_) return;
                          if (ec) {
                            self->fail("cannot connect: " + ec.message(), "");
                            return;
                          }
                          self->write();
                        });
  }

  void write() {
    http::async_write(socket_, request_, [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
      if (self->done_) return;
      if (ec) {
        self->fail("sending the request failed: " + ec.message(), "");
        return;
      }
      self->read();
    });
  }

  void read() {
    http::async_read(socket_, buffer_, parser_,
                     [self = shared_from_this()](const boost::system::error_code& ec, size_t) { self->answered(ec); });
  }

  void answered(const boost::system::error_code& ec) {
    if (done_) return;
    if (ec) {
      fail("reading the answer failed: " + ec.message(), "");
      return;
    }
    const auto& response = parser_.get();
    const unsigned status = response.result_int();
    if (status < 200 || status > 299) {
      fail("the receiver answered HTTP " + std::to_string(status) + " " + std::string(response.reason()),
           one_line(response.body(), 200));
      return;
    }
    // A 2xx answer may still say that part of the data was refused
    // (ExportMetricsServiceResponse.partialSuccess).
    boost::system::error_code parse_error;
    const boost::json::value answer = boost::json::parse(response.body(), parse_error);
    std::string outcome = "ok";
    if (!parse_error && answer.is_object()) {
      if (const auto* partial = answer.as_object().if_contains("partialSuccess"); partial && partial->is_object()) {
        const auto* rejected = partial->as_object().if_contains("rejectedDataPoints");
        const auto* message = partial->as_object().if_contains("errorMessage");
        std::string n;
        if (rejected && rejected->is_string()) n = std::string(rejected->as_string());
        if (rejected && rejected->is_int64()) n = std::to_string(rejected->as_int64());
        if (!n.empty() && n != "0") {
          outcome = "the receiver rejected " + n + " data points";
          if (message && message->is_string()) outcome += ": " + one_line(std::string(message->as_string()), 200);
        }
      }
    }
    done_ = true;
    close();
    if (auto owner = owner_.lock()) owner->finish(outcome, "");
  }

  void fail(const std::string& outcome, const std::string& detail) {
    if (done_) return;
    done_ = true;
    close();
    if (auto owner = owner_.lock()) owner->finish(outcome, detail);
  }

  void close() {
    boost::system::error_code ignored;
    resolver_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    deadline_.cancel();
  }

  std::weak_ptr<OtlpPusher::State> owner_;
  tcp::resolver resolver_;
  tcp::socket socket_;
  asio::steady_timer deadline_;
  http::request<http::string_body> request_;
  boost::beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
  bool done_ = false;
};

void OtlpPusher::State::schedule() {
  const auto now = std::chrono::steady_clock::now();
  // A fixed cadence: the next push one interval after the previous one's
  // start, or one interval from now if the process fell behind (suspended).
  auto next = tick.expiry() + options.interval;
  if (next <= now) next = now + options.interval;
  tick.expires_at(next);
  tick.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || !self->running) return;
    self->push();
    self->schedule();
  });
}

void OtlpPusher::State::push() {
  if (in_flight) {
    ++counters.skipped;  // cannot happen with a timeout below the interval; kept bounded all the same
    return;
  }
  ++counters.pushes;
  std::string body;
  try {
    body = options.render();
  } catch (const std::exception& e) {
    finish(std::string("rendering the metrics failed: ") + e.what(), "");
    return;
  }
  auto p = std::make_shared<OtlpPush>(shared_from_this(), std::move(body));
  in_flight = p;
  std::chrono::milliseconds timeout = options.timeout;
  if (timeout.count() <= 0) timeout = std::min(options.interval * 3 / 4, std::chrono::milliseconds(10000));
  p->start(timeout);
}

void OtlpPusher::State::finish(const std::string& outcome, const std::string& detail) {
  in_flight.reset();
  if (outcome == "ok") {
    ++counters.succeeded;
  } else {
    ++counters.failed;
  }
  counters.last = outcome;
  if (outcome == logged || !options.log) return;
  // One line per change of outcome, from a budget of kLogBurst lines that
  // regains one line per log_gap: the first changes are all told, and a
  // receiver that keeps flapping is then reported (in its latest state)
  // once per gap, not at every push.
  const auto now = std::chrono::steady_clock::now();
  if (options.log_gap.count() > 0) {
    while (log_budget < kLogBurst && now - refilled_at >= options.log_gap) {
      ++log_budget;
      refilled_at += options.log_gap;
    }
    if (log_budget == kLogBurst) refilled_at = now;
    if (log_budget == 0) return;
    --log_budget;
  }
  const OtlpEndpoint& e = options.endpoint;
  std::string line;
  if (outcome == "ok") {
    line = logged.empty()
               ? "OTLP: pushing to " + e.url + " (POST " + e.target + ") every " + duration_text(options.interval)
               : "OTLP: pushes to " + e.url + " work again";
  } else {
    line = "OTLP: push to " + e.url + " failed: " + outcome + (detail.empty() ? "" : " (" + detail + ")") +
           "; the batch is dropped, the next push is in " + duration_text(options.interval) +
           " (logged again when this changes)";
  }
  logged = outcome;
  options.log(line);
}

OtlpPusher::OtlpPusher(asio::io_context& io, Options options)
    : state_(std::make_shared<State>(io, std::move(options))) {}

OtlpPusher::~OtlpPusher() { stop(); }

void OtlpPusher::start() {
  if (state_->running) return;
  state_->running = true;
  state_->tick.expires_at(std::chrono::steady_clock::now());
  state_->push();
  state_->schedule();
}

void OtlpPusher::stop() {
  state_->running = false;
  state_->tick.cancel();
  if (state_->in_flight) {
    state_->in_flight->abandon();
    state_->in_flight.reset();
  }
}

const OtlpPusher::Counters& OtlpPusher::counters() const { return state_->counters; }

}  // namespace coblk::cmd
