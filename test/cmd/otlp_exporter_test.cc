// `coblk metrics --otlp-endpoint`: the OTLP JSON body (structure, and numbers equal to the Prometheus text's),
// the endpoint and interval options, and the pusher against a receiver started here that answers, fails, is
// absent or never answers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "coblk/cmd/metric_families.h"
#include "coblk/cmd/metrics_exporter.h"
#include "coblk/cmd/otlp_encode.h"
#include "coblk/cmd/otlp_exporter.h"
#include "test/cmd/command_outcome.h"
#include "test/cmd/otlp_receiver.h"
#include "test/cmd/published_devices.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(cmd_otlp_exporter_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// A known snapshot (test/cmd/published_devices.h), its reads spread over
// many latency buckets, and a busy time that needs every digit.
constexpr test::SnapshotShape kShape{900, 997, 1'500'000'001};

constexpr std::uint64_t kNow = 1'700'000'000'123'456'789ULL;

std::string attr_text(const json::value& point, const std::string& extra = "") {
  std::string out;
  for (const json::value& a : point.at("attributes").as_array()) {
    out += (out.empty() ? "" : ",") + std::string(a.at("key").as_string()) + "=\"" +
           std::string(a.at("value").at("stringValue").as_string()) + "\"";
  }
  if (!extra.empty()) out += (out.empty() ? "" : ",") + extra;
  return out.empty() ? out : "{" + out + "}";
}

// Prometheus text: series (name and labels, as printed) -> value text.
std::map<std::string, std::string> prometheus_series(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

const json::array& metrics_of(const json::value& request) {
  return request.at("resourceMetrics").at(0).at("scopeMetrics").at(0).at("metrics").as_array();
}

std::uint64_t int_of(const json::value& v) { return std::stoull(std::string(v.as_string())); }

// Whether `parsed`, a double Boost.JSON read from the body, is the double
// `text` (a Prometheus value) denotes. Boost.JSON 1.81's parser is not
// correctly rounded: on about one in eight 19-digit numbers such as a
// timestamp in seconds it is one ulp off, though the serializer's text
// reads back exactly with strtod (measured on 200000 values). One ulp is
// the parser's error, so it is all that is allowed.
bool same_double(double parsed, const std::string& text) {
  const double exact = std::strtod(text.c_str(), nullptr);
  return parsed == exact || parsed == std::nextafter(exact, HUGE_VAL) || parsed == std::nextafter(exact, -HUGE_VAL);
}

// Runs `io` until `done` or `limit` passes; returns whether `done`.
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    io.run_for(20ms);
  }
  return true;
}

// A pusher of `body` to 127.0.0.1:`port` every `interval`, whose log lines
// go to `log`. Tests that expect a push to be answered pass a `timeout`
// far above the interval: the default, 3/4 of a 100 ms interval, is shorter
// than an answer from the receiver's thread can take under ASan on a
// loaded machine, and would log "no answer" instead of what is tested.
std::unique_ptr<cmd::OtlpPusher> pusher(boost::asio::io_context& io, std::uint16_t port,
                                        std::chrono::milliseconds interval, std::vector<std::string>& log,
                                        std::chrono::milliseconds timeout = 0ms, const std::string& body = "{}") {
  cmd::OtlpPusher::Options o;
  o.endpoint = test::require_ok(cmd::parse_otlp_endpoint("http://127.0.0.1:" + std::to_string(port)));
  o.interval = interval;
  o.timeout = timeout;
  o.render = [body] { return body; };
  o.log = [&log](const std::string& line) { log.push_back(line); };
  o.log_gap = 0ms;
  return std::make_unique<cmd::OtlpPusher>(io, std::move(o));
}

// A push's limit where the test needs the receiver's answer (see pusher()).
constexpr std::chrono::milliseconds kAnswered = 5s;

// A port nothing listens on (bound, then closed).
std::uint16_t closed_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::address_v4::loopback(), 0});
  return a.local_endpoint().port();
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_json_has_the_otlp_structure_and_types) {
  test::RunDir run("coblk-otlp-run");
  test::PublishedDevices devices(kShape);
  const json::value request =
      json::parse(cmd::encode_otlp_metrics(cmd::metric_families(cmd::collect_device_metrics()), kNow, "testhost"));
  const json::value& rm = request.at("resourceMetrics").at(0);
  const json::array& resource = rm.at("resource").at("attributes").as_array();
  BOOST_TEST(resource.at(0).at("key").as_string() == "service.name");
  BOOST_TEST(resource.at(0).at("value").at("stringValue").as_string() == "coblk");
  BOOST_TEST(resource.at(1).at("value").at("stringValue").as_string() == "testhost");
  BOOST_TEST(rm.at("scopeMetrics").at(0).at("scope").at("name").as_string() == "coblk");
  std::map<std::string, const json::object*> by_name;
  for (const json::value& m : metrics_of(request)) by_name[std::string(m.at("name").as_string())] = &m.as_object();

  const json::object& requests = *by_name.at("coblk_io_requests_total");
  BOOST_TEST(requests.at("unit").as_string() == "1");
  BOOST_TEST(!requests.at("description").as_string().empty());
  BOOST_TEST(requests.at("sum").at("isMonotonic").as_bool());
  BOOST_TEST(requests.at("sum").at("aggregationTemporality").as_int64() == 2);  // cumulative
  const json::value& point = requests.at("sum").at("dataPoints").at(0);
  BOOST_TEST(attr_text(point) == "{device=\"ublkb0\",queue=\"0\",op=\"read\"}");
  BOOST_TEST(point.at("asInt").as_string() == "1000");  // int64 as a decimal string
  BOOST_TEST(point.at("timeUnixNano").as_string() == std::to_string(kNow));
  // The counting process (this test) started before now, and after boot.
  const std::uint64_t start = int_of(point.at("startTimeUnixNano"));
  BOOST_TEST(start > 1'600'000'000'000'000'000ULL);
  BOOST_TEST(start <= static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch() /
                                                 std::chrono::nanoseconds(1)));
  BOOST_TEST(by_name.at("coblk_io_bytes_total")->at("unit").as_string() == "By");

  const json::object& info = *by_name.at("coblk_device_info");
  BOOST_TEST(info.contains("gauge"));
  BOOST_TEST(!info.contains("sum"));
  BOOST_TEST(!info.at("gauge").at("dataPoints").at(0).as_object().contains("startTimeUnixNano"));

  const json::object& busy = *by_name.at("coblk_reactor_busy_seconds_total");
  BOOST_TEST(busy.at("unit").as_string() == "s");
  BOOST_TEST(busy.at("sum").at("dataPoints").at(0).at("asDouble").as_double() == 1.500000001);

  const json::object& latency = *by_name.at("coblk_io_latency_seconds");
  BOOST_TEST(latency.at("unit").as_string() == "s");
  BOOST_TEST(latency.at("histogram").at("aggregationTemporality").as_int64() == 2);
  for (const json::value& p : latency.at("histogram").at("dataPoints").as_array()) {
    const json::array& counts = p.at("bucketCounts").as_array();
    const json::array& bounds = p.at("explicitBounds").as_array();
    BOOST_TEST_REQUIRE(counts.size() == bounds.size() + 1);
    BOOST_TEST(bounds.front().as_double() == 1024e-9);
    BOOST_TEST(bounds.back().as_double() == 34.359738368);
    std::uint64_t total = 0;
    for (const json::value& c : counts) total += int_of(c);
    BOOST_TEST(total == int_of(p.at("count")));
    BOOST_TEST(p.at("sum").is_double());
  }
  // The 1000 reads of device 0's queue 0 took 900..997 us: per bucket,
  // not cumulative, so the buckets past the largest hold none.
  const json::value& reads = latency.at("histogram").at("dataPoints").at(0);
  BOOST_TEST(attr_text(reads) == "{device=\"ublkb0\",queue=\"0\",op=\"read\"}");
  BOOST_TEST(int_of(reads.at("bucketCounts").at(0)) == 1);  // 900 ns, below 1.024 us
  BOOST_TEST(int_of(reads.at("bucketCounts").as_array().back()) == 0);
  // Families without any series (none here) are left out; the device
  // without metrics has no I/O series.
  for (const json::value& p : requests.at("sum").at("dataPoints").as_array()) {
    BOOST_TEST(attr_text(p).find("ublkb1") == std::string::npos);
  }
#if COBLK_HAVE_ZRAM
  BOOST_TEST(by_name.at("coblk_zram_notify_free_total")->at("sum").at("dataPoints").at(0).at("asInt").as_string() ==
             "7");
  BOOST_TEST(by_name.at("coblk_zram_orig_data_bytes")->contains("gauge"));
#endif
}

BOOST_AUTO_TEST_CASE(every_number_equals_the_prometheus_text) {
  test::RunDir run("coblk-otlp-run");
  test::PublishedDevices devices(kShape);
  const std::vector<cmd::DeviceMetrics> snapshot = cmd::collect_device_metrics();
  const std::map<std::string, std::string> prom = prometheus_series(cmd::render_prometheus(snapshot));
  const json::value request = json::parse(cmd::encode_otlp_metrics(cmd::metric_families(snapshot), kNow, "h"));
  size_t compared = 0;
  auto expect = [&](const std::string& series) -> const std::string& {
    static const std::string absent = "(absent)";
    ++compared;
    const auto it = prom.find(series);
    BOOST_TEST((it != prom.end()), series << " is not in the Prometheus text");
    return it == prom.end() ? absent : it->second;
  };
  for (const json::value& m : metrics_of(request)) {
    const std::string name(m.at("name").as_string());
    for (const char* kind : {"sum", "gauge"}) {
      if (!m.as_object().contains(kind)) continue;
      for (const json::value& p : m.at(kind).at("dataPoints").as_array()) {
        const std::string& text = expect(name + attr_text(p));
        if (p.as_object().contains("asInt")) {
          BOOST_TEST(p.at("asInt").as_string() == text, name + attr_text(p));
        } else {
          BOOST_TEST(same_double(p.at("asDouble").as_double(), text), name + attr_text(p) << " " << text);
        }
      }
    }
    if (!m.as_object().contains("histogram")) continue;
    for (const json::value& p : m.at("histogram").at("dataPoints").as_array()) {
      const json::array& counts = p.at("bucketCounts").as_array();
      const json::array& bounds = p.at("explicitBounds").as_array();
      std::uint64_t cumulative = 0;
      for (size_t i = 0; i < counts.size(); ++i) {
        cumulative += int_of(counts[i]);
        // The bound's text in the Prometheus series is the exact decimal
        // of the same nanoseconds: it reads back as the same double.
        const std::string le =
            i < bounds.size() ? cmd::seconds_text(std::llround(bounds[i].as_double() * 1e9)) : "+Inf";
        if (i < bounds.size()) BOOST_TEST(std::strtod(le.c_str(), nullptr) == bounds[i].as_double());
        BOOST_TEST(expect(name + "_bucket" + attr_text(p, "le=\"" + le + "\"")) == std::to_string(cumulative));
      }
      BOOST_TEST(expect(name + "_count" + attr_text(p)) == std::string(p.at("count").as_string()));
      BOOST_TEST(same_double(p.at("sum").as_double(), expect(name + "_sum" + attr_text(p))));
    }
  }
  // Every Prometheus series has its OTLP counterpart, none more.
  BOOST_TEST(compared == prom.size());
}

BOOST_AUTO_TEST_CASE(endpoint_urls_are_parsed_as_base_urls) {
  const auto local = test::require_ok(cmd::parse_otlp_endpoint("http://127.0.0.1:4318"));
  BOOST_TEST(local.host == "127.0.0.1");
  BOOST_TEST(local.port == 4318);
  BOOST_TEST(local.target == "/v1/metrics");
  const auto named = test::require_ok(cmd::parse_otlp_endpoint("HTTP://otel-collector.example"));
  BOOST_TEST(named.host == "otel-collector.example");
  BOOST_TEST(named.port == 80);
  BOOST_TEST(test::require_ok(cmd::parse_otlp_endpoint("http://gw:8080/otlp/")).target == "/otlp/v1/metrics");
  BOOST_TEST(test::require_ok(cmd::parse_otlp_endpoint("http://gw:8080/")).target == "/v1/metrics");
  const auto v6 = test::require_ok(cmd::parse_otlp_endpoint("http://[::1]:4318"));
  BOOST_TEST(v6.host == "::1");
  BOOST_TEST(v6.port == 4318);
}

BOOST_AUTO_TEST_CASE(malformed_and_unsupported_endpoints_are_refused_with_one_line) {
  for (const char* url : {"",
                          "127.0.0.1:4318",
                          "localhost",
                          "https://collector:4318",
                          "ftp://collector",
                          "grpc://127.0.0.1:4317",
                          "http://",
                          "http://:4318",
                          "http://h:0",
                          "http://h:65536",
                          "http://h:43x8",
                          "http://h:",
                          "http://user:pw@h",
                          "http://h/v1?x=1",
                          "http://h#f",
                          "http://h /",
                          "http://[::1",
                          "http://[zz]:1",
                          "http://[::1]x",
                          "http://h_1:80",
                          "http://::1:4318",
                          "http://h\n"}) {
    BOOST_TEST_INFO("url '" << url << "'");
    const auto r = cmd::parse_otlp_endpoint(url);
    BOOST_TEST_REQUIRE(!r.ok());
    BOOST_TEST(r.error().code() == EINVAL);
    BOOST_TEST(r.error().message().find('\n') == std::string::npos);
    BOOST_TEST(r.error().message().find("--otlp-endpoint") != std::string::npos);
  }
  BOOST_TEST(cmd::parse_otlp_endpoint("https://h").error().message().find("no TLS") != std::string::npos);
  BOOST_TEST(cmd::parse_otlp_endpoint("grpc://h").error().message().find("unknown scheme") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(intervals_are_durations_from_one_second_to_one_hour) {
  BOOST_TEST(test::require_ok(cmd::parse_otlp_interval("10s")).count() == 10000);
  BOOST_TEST(test::require_ok(cmd::parse_otlp_interval("10")).count() == 10000);
  BOOST_TEST(test::require_ok(cmd::parse_otlp_interval("1500ms")).count() == 1500);
  BOOST_TEST(test::require_ok(cmd::parse_otlp_interval("2m")).count() == 120000);
  BOOST_TEST(test::require_ok(cmd::parse_otlp_interval("1h")).count() == 3600000);
  for (const char* t : {"", "0", "0s", "999ms", "61m", "2h", "10x", "-1", "1.5s", "s", "10 s", "99999999999"}) {
    BOOST_TEST_INFO("interval '" << t << "'");
    const auto r = cmd::parse_otlp_interval(t);
    BOOST_TEST_REQUIRE(!r.ok());
    BOOST_TEST(r.error().message().find("--otlp-interval") != std::string::npos);
    BOOST_TEST(r.error().message().find('\n') == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(pushes_arrive_as_json_posts_to_v1_metrics) {
  test::RunDir run("coblk-otlp-run");
  test::PublishedDevices devices(kShape);
  test::OtlpReceiver receiver(test::OtlpReceiver::Mode::ok);
  boost::asio::io_context io;
  std::vector<std::string> log;
  const std::string body = cmd::encode_otlp_metrics(cmd::metric_families(cmd::collect_device_metrics()), kNow, "h");
  auto p = pusher(io, receiver.port(), 200ms, log, kAnswered, body);
  p->start();
  BOOST_TEST_REQUIRE(run_until(io, [&] { return receiver.requests().size() >= 3; }));
  p->stop();
  for (const auto& r : receiver.requests()) {
    BOOST_TEST(r.method == "POST");
    BOOST_TEST(r.target == "/v1/metrics");
    BOOST_TEST(r.content_type == "application/json");
    BOOST_TEST(r.host == "127.0.0.1:" + std::to_string(receiver.port()));
    BOOST_TEST(r.body == body);
  }
  BOOST_TEST(p->counters().failed == 0);
  BOOST_TEST(p->counters().last == "ok");
  BOOST_TEST_REQUIRE(log.size() == 1);  // the first success, once
  BOOST_TEST(log[0].find("pushing to http://127.0.0.1:") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_receiver_answering_500_is_logged_once_and_pushing_goes_on) {
  test::OtlpReceiver receiver(test::OtlpReceiver::Mode::fail);
  boost::asio::io_context io;
  std::vector<std::string> log;
  auto p = pusher(io, receiver.port(), 100ms, log, kAnswered);
  p->start();
  BOOST_TEST_REQUIRE(run_until(io, [&] { return p->counters().failed >= 3; }));
  BOOST_TEST_REQUIRE(log.size() == 1);
  BOOST_TEST(log[0].find("HTTP 500") != std::string::npos, log[0]);
  BOOST_TEST(log[0].find("fails on purpose") != std::string::npos);  // the receiver's reason
  BOOST_TEST(log[0].find('\n') == std::string::npos);
  receiver.set_mode(test::OtlpReceiver::Mode::ok);
  BOOST_TEST_REQUIRE(run_until(io, [&] { return p->counters().succeeded >= 1; }));
  BOOST_TEST_REQUIRE(log.size() == 2);
  BOOST_TEST(log[1].find("work again") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_receiver_not_listening_fails_each_push_quickly) {
  boost::asio::io_context io;
  std::vector<std::string> log;
  auto p = pusher(io, closed_port(), 100ms, log);
  p->start();
  BOOST_TEST_REQUIRE(run_until(io, [&] { return p->counters().failed >= 3; }));
  BOOST_TEST(p->counters().succeeded == 0);
  BOOST_TEST_REQUIRE(log.size() == 1);
  BOOST_TEST(log[0].find("cannot connect") != std::string::npos);
  BOOST_TEST(log[0].find("dropped") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_receiver_that_never_answers_delays_neither_pushes_nor_the_prometheus_endpoint) {
  test::OtlpReceiver receiver(test::OtlpReceiver::Mode::silent);
  boost::asio::io_context io;
  std::vector<std::string> log;
  auto p = pusher(io, receiver.port(), 300ms, log, 100ms);
  // The Prometheus endpoint on the same io_context, as in `coblk metrics`.
  cmd::MetricsServer::Options so;
  so.endpoint = boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0);
  so.render = [] { return std::string("coblk_exporter_devices 0\n"); };
  auto server = test::require_ok(cmd::MetricsServer::listen(io, std::move(so)));
  server->start();
  p->start();
  std::thread loop([&] { io.run_for(2s); });
  // Scrapes from another thread while pushes hang: each answered at once.
  unsigned answered = 0;
  for (int i = 0; i < 5; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(server->local_endpoint().port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{0, 500000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
      const std::string get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
      (void)::send(fd, get.data(), get.size(), MSG_NOSIGNAL);
      char buf[256] = {};
      if (::recv(fd, buf, sizeof(buf) - 1, 0) > 0 && std::string(buf).find("200 OK") != std::string::npos) ++answered;
    }
    ::close(fd);
    std::this_thread::sleep_for(200ms);
  }
  loop.join();
  BOOST_TEST(answered == 5u);
  // About 2 s / 300 ms pushes, each cut off after 100 ms, none skipped.
  BOOST_TEST(p->counters().failed >= 4u);
  BOOST_TEST(p->counters().skipped == 0u);
  BOOST_TEST(p->counters().last == "no answer within 100 ms");
  BOOST_TEST(receiver.requests().size() >= 4u);
  BOOST_TEST_REQUIRE(log.size() == 1);
  BOOST_TEST(log[0].find("no answer within 100 ms") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_flapping_receiver_is_logged_three_times_then_once_per_gap) {
  test::OtlpReceiver receiver(test::OtlpReceiver::Mode::fail);
  boost::asio::io_context io;
  std::vector<std::string> log;
  cmd::OtlpPusher::Options o;
  o.endpoint = test::require_ok(cmd::parse_otlp_endpoint("http://127.0.0.1:" + std::to_string(receiver.port())));
  o.interval = 100ms;
  o.timeout = kAnswered;  // see pusher()
  o.render = [] { return std::string("{}"); };
  o.log = [&log](const std::string& line) { log.push_back(line); };
  o.log_gap = 1h;
  cmd::OtlpPusher p(io, std::move(o));
  p.start();
  BOOST_TEST_REQUIRE(run_until(io, [&] { return p.counters().failed >= 2; }));
  receiver.set_mode(test::OtlpReceiver::Mode::ok);
  BOOST_TEST_REQUIRE(run_until(io, [&] { return p.counters().succeeded >= 2; }));
  for (int flap = 0; flap < 2; ++flap) {
    receiver.set_mode(test::OtlpReceiver::Mode::fail);
    const std::uint64_t failed = p.counters().failed;
    BOOST_TEST_REQUIRE(run_until(io, [&] { return p.counters().failed >= failed + 2; }));
    receiver.set_mode(test::OtlpReceiver::Mode::ok);
    const std::uint64_t succeeded = p.counters().succeeded;
    BOOST_TEST_REQUIRE(run_until(io, [&] { return p.counters().succeeded >= succeeded + 2; }));
  }
  // Six changes: the first three are told (failed, works again, failed),
  // the rest wait for the gap.
  BOOST_TEST_REQUIRE(log.size() == 3u);
  BOOST_TEST(log[0].find("HTTP 500") != std::string::npos, log[0]);
  BOOST_TEST(log[1].find("work again") != std::string::npos, log[1]);
  BOOST_TEST(log[2].find("HTTP 500") != std::string::npos, log[2]);
}

BOOST_AUTO_TEST_CASE(stopping_abandons_a_push_in_flight) {
  test::OtlpReceiver receiver(test::OtlpReceiver::Mode::silent);
  boost::asio::io_context io;
  std::vector<std::string> log;
  auto p = pusher(io, receiver.port(), 10s, log, 8s);
  p->start();
  BOOST_TEST_REQUIRE(run_until(io, [&] { return receiver.requests().size() == 1; }));
  p->stop();
  const auto before = std::chrono::steady_clock::now();
  io.run_for(5s);  // returns once nothing is pending: the push's socket, timer and the tick are gone
  BOOST_TEST((std::chrono::steady_clock::now() - before) < 2s);
  BOOST_TEST(log.empty());
}

// --- The command: bad input is one line and status 2.

namespace {

using Outcome = coblk::test::CommandOutcome;

// Runs coblk with `args`, interrupted (SIGINT, which ends `coblk metrics`
// cleanly) after `seconds`. --foreground: the signal goes to coblk alone;
// without it timeout sends it to its process group as well, and the second
// copy can land after coblk has put SIGINT's default action back.
Outcome run_coblk(const std::string& args, const char* seconds = "10") {
  return coblk::test::run_command("COBLK_RUN_DIR=/tmp/coblk-otlp-cli-" + std::to_string(::getpid()) +
                                      " timeout --foreground --preserve-status -s INT " + seconds + " " + COBLK_BINARY +
                                      " " + args,
                                  "coblk-otlp");
}

void expect_usage_error(const std::string& args, const std::string& needle) {
  BOOST_TEST_INFO("coblk " << args);
  const Outcome o = run_coblk(args);
  BOOST_TEST(o.status == 2);
  BOOST_TEST(o.err.find('\n') == o.err.size() - 1, "not one line: " << o.err);
  BOOST_TEST(o.err.find(needle) != std::string::npos, "stderr was: " << o.err);
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_command_refuses_a_malformed_url_with_status_2) {
  expect_usage_error("metrics --otlp-endpoint 'http://:4318'", "no host");
  expect_usage_error("metrics --otlp-endpoint 127.0.0.1:4318", "not a URL");
}

BOOST_AUTO_TEST_CASE(the_command_refuses_https_and_unknown_schemes_with_status_2) {
  expect_usage_error("metrics --otlp-endpoint https://127.0.0.1:4318", "no TLS");
  expect_usage_error("metrics --otlp-endpoint grpc://127.0.0.1:4317", "unknown scheme 'grpc'");
}

BOOST_AUTO_TEST_CASE(the_command_refuses_a_bad_interval_with_status_2) {
  expect_usage_error("metrics --otlp-endpoint http://127.0.0.1:4318 --otlp-interval 0", "--otlp-interval '0'");
  expect_usage_error("metrics --otlp-endpoint http://127.0.0.1:4318 --otlp-interval 10parsecs", "unknown unit");
  expect_usage_error("metrics --otlp-interval 10s", "needs --otlp-endpoint");
  expect_usage_error("metrics --otlp-endpoint http://127.0.0.1:4318 --print", "--print");
}

BOOST_AUTO_TEST_CASE(the_command_pushes_without_a_port_unless_listen_is_given) {
  test::OtlpReceiver receiver(test::OtlpReceiver::Mode::ok);
  const std::string push = "metrics --otlp-endpoint http://127.0.0.1:" + std::to_string(receiver.port());
  // 3.5 s at one push a second: pushes at 0, 1, 2 and 3 s, of which the
  // check below needs two, so that a slow start (a sanitizer build on a
  // loaded machine takes over a second) still passes.
  const Outcome alone = run_coblk(push + " --otlp-interval 1s", "3.5");
  BOOST_TEST(alone.status == 0, "status " << alone.status << ": " << alone.err);
  BOOST_TEST(alone.out.find("pushing to http://127.0.0.1:") != std::string::npos, alone.out);
  BOOST_TEST(alone.out.find("serving") == std::string::npos, alone.out);
  BOOST_TEST(receiver.requests().size() >= 2u, "--otlp-interval 1s pushed only once in 3.5 s");
  // 4 s, not less: a sanitizer build on a loaded machine once took over
  // 1.5 s to start, and the SIGINT then came before its handler (status
  // 130, nothing printed; the fresh-clone run of 2026-12-03 13:40).
  const Outcome both = run_coblk(push + " --listen 127.0.0.1:0", "4");
  BOOST_TEST(both.status == 0, "status " << both.status << ": " << both.err);
  BOOST_TEST(both.out.find("serving http://127.0.0.1:") != std::string::npos, both.out);
  BOOST_TEST(both.out.find("pushing to") != std::string::npos, both.out);
  // The second run pushed at once too (and would again after 10 s).
  BOOST_TEST(receiver.requests().size() >= 3u);
  for (const auto& r : receiver.requests()) BOOST_TEST(json::parse(r.body).as_object().contains("resourceMetrics"));
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_otlp_exporter_test
