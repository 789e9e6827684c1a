// `coblk metrics`' parts: the listen address, the exposition rendered from
// published files (checked by promtool), and the HTTP server's answers,
// limits and indifference to slow clients.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "coblk/cmd/metrics_exporter.h"
#include "test/cmd/published_devices.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(cmd_metrics_exporter_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library
using namespace std::chrono_literals;

namespace {

std::string sample(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return "(absent)";
  const size_t start = at + series.size() + 2;
  return text.substr(start, text.find('\n', start) - start);
}

// --- HTTP helpers: a raw client, so that the test controls every byte.

int connect_to(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  timeval tv{5, 0};  // a hung server fails the test, not the run
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// Everything the server sends until it closes (or 5 s pass).
std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string exchange(unsigned short port, const std::string& request) {
  const int fd = connect_to(port);
  BOOST_REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  std::string response = read_all(fd);
  ::close(fd);
  return response;
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return -1;
  return std::stoi(response.substr(9, 3));
}

// A MetricsServer on 127.0.0.1:<free port>, run on a thread of its own.
struct Server {
  boost::asio::io_context io;
  std::unique_ptr<cmd::MetricsServer> server;
  std::thread thread;
  unsigned short port = 0;
  explicit Server(cmd::MetricsServer::Options options) {
    options.endpoint = boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0);
    server = test::require_ok(cmd::MetricsServer::listen(io, std::move(options)));
    port = server->local_endpoint().port();
    server->start();
    thread = std::thread([this] { io.run(); });
  }
  ~Server() {
    io.stop();
    thread.join();
  }
};

cmd::MetricsServer::Options body_options(const std::string& body) {
  cmd::MetricsServer::Options o;
  o.render = [body] { return body; };
  return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(loopback_addresses_are_accepted) {
  const auto v4 = test::require_ok(cmd::parse_listen_address("127.0.0.1:9477", false));
  BOOST_TEST(v4.port() == 9477);
  BOOST_TEST(v4.address().to_string() == "127.0.0.1");
  BOOST_TEST(test::require_ok(cmd::parse_listen_address("127.1.2.3:0", false)).port() == 0);
  BOOST_TEST(test::require_ok(cmd::parse_listen_address("localhost:80", false)).address().to_string() == "127.0.0.1");
  BOOST_TEST(test::require_ok(cmd::parse_listen_address("[::1]:9477", false)).address().is_v6());
}

BOOST_AUTO_TEST_CASE(other_addresses_need_listen_any) {
  for (const char* a : {"0.0.0.0:9477", "[::]:9477", "192.168.1.10:9477", "[::ffff:10.0.0.1]:1"}) {
    const auto refused = cmd::parse_listen_address(a, false);
    BOOST_TEST_INFO(a);
    BOOST_TEST_REQUIRE(!refused.ok());
    BOOST_TEST(refused.error().message().find("--listen-any") != std::string::npos);
    BOOST_TEST(refused.error().message().find('\n') == std::string::npos);
    BOOST_TEST(cmd::parse_listen_address(a, true).ok());
  }
}

BOOST_AUTO_TEST_CASE(malformed_addresses_are_refused_with_one_line) {
  for (const char* a :
       {"", "127.0.0.1", "127.0.0.1:", ":9477", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:9x", "127.0.0.1:0009477",
        "1.2.3:80", "::1:9477", "[::1]9477", "[::1:9477", "host.example:80", "127.0.0.1 :80", "127.0.0.1:80\n"}) {
    BOOST_TEST_INFO("address '" << a << "'");
    const auto r = cmd::parse_listen_address(a, true);
    BOOST_TEST_REQUIRE(!r.ok());
    BOOST_TEST(r.error().code() == EINVAL);
    BOOST_TEST(r.error().message().find('\n') == std::string::npos);
    BOOST_TEST(r.error().message().find("--listen") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(the_exposition_has_every_family_and_exact_histograms) {
  test::RunDir run("coblk-metrics-run");
  test::PublishedDevices devices;
  const std::string text = cmd::render_prometheus(cmd::collect_device_metrics());
  BOOST_TEST_MESSAGE(text.substr(0, 1500));
  for (const char* family : {"coblk_io_requests_total", "coblk_io_bytes_total", "coblk_io_errors_total",
                             "coblk_io_latency_seconds", "coblk_reactor_busy_seconds_total", "coblk_device_info"}) {
    BOOST_TEST(text.find(std::string("# HELP ") + family + " ") != std::string::npos, family);
    BOOST_TEST(text.find(std::string("# TYPE ") + family + " ") != std::string::npos, family);
  }
  const std::string q0r = "device=\"ublkb0\",queue=\"0\",op=\"read\"";
  BOOST_TEST(sample(text, "coblk_io_requests_total{" + q0r + "}") == "1000");
  BOOST_TEST(sample(text, "coblk_io_bytes_total{" + q0r + "}") == "4096000");
  BOOST_TEST(sample(text, "coblk_io_latency_seconds_count{" + q0r + "}") == "1000");
  BOOST_TEST(sample(text, "coblk_io_latency_seconds_bucket{" + q0r + ",le=\"+Inf\"}") == "1000");
  // 5000..41963 ns: none below 4.096 us, all below 65.536 us.
  BOOST_TEST(sample(text, "coblk_io_latency_seconds_bucket{" + q0r + ",le=\"0.000004096\"}") == "0");
  BOOST_TEST(sample(text, "coblk_io_latency_seconds_bucket{" + q0r + ",le=\"0.000065536\"}") == "1000");
  const std::string q0w = "device=\"ublkb0\",queue=\"0\",op=\"write\"";
  BOOST_TEST(sample(text, "coblk_io_errors_total{" + q0w + "}") == "1");
  BOOST_TEST(sample(text, "coblk_io_bytes_total{" + q0w + "}") == "36864");
  const std::string q1z = "device=\"ublkb0\",queue=\"1\",op=\"write_zeroes\"";
  BOOST_TEST(sample(text, "coblk_io_latency_seconds_bucket{" + q1z + ",le=\"34.359738368\"}") == "0");
  BOOST_TEST(sample(text, "coblk_io_latency_seconds_bucket{" + q1z + ",le=\"+Inf\"}") == "1");
  BOOST_TEST(sample(text, "coblk_reactor_busy_seconds_total{device=\"ublkb0\",core=\"0\"}") == "1.5");
  // The device without metrics is listed, and says so.
  BOOST_TEST(sample(text, "coblk_device_metrics_published{device=\"ublkb1\"}") == "0");
  BOOST_TEST(text.find("queue=\"0\",op=\"read\"", text.find("ublkb1\",queue")) == std::string::npos);
#if COBLK_HAVE_ZRAM
  BOOST_TEST(sample(text, "coblk_zram_orig_data_bytes{device=\"ublkb2\"}") == "40960");
#endif
  const std::string summary = cmd::render_summary(cmd::collect_device_metrics());
  BOOST_TEST(summary.find("P99.9_US") != std::string::npos);
  BOOST_TEST(summary.find("write_zeroes") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(promtool_accepts_the_exposition) {
  test::RunDir run("coblk-metrics-run");
  test::PublishedDevices devices;
  const std::string text = cmd::render_prometheus(cmd::collect_device_metrics());
  const std::string file = run.path() + "/exposition.txt";
  std::ofstream(file) << text;
  BOOST_TEST_REQUIRE(std::system("command -v promtool >/dev/null") == 0,
                     "promtool is missing: ./setup.sh installs it (Debian package prometheus)");
  const std::string out = run.path() + "/promtool.out";
  const int status = std::system(("promtool check metrics < '" + file + "' > '" + out + "' 2>&1").c_str());
  std::ifstream in(out);
  std::stringstream said;
  said << in.rdbuf();
  BOOST_TEST(status == 0, "promtool check metrics: " << said.str());
  BOOST_TEST(said.str().empty(), said.str());
  // And with no device at all.
  std::ofstream(file) << cmd::render_prometheus({});
  BOOST_TEST(std::system(("promtool check metrics < '" + file + "' >/dev/null 2>&1").c_str()) == 0);
}

BOOST_AUTO_TEST_CASE(the_server_answers_each_kind_of_request) {
  Server s(body_options("coblk_exporter_devices 0\n"));
  const std::string ok = exchange(s.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  BOOST_TEST(status_of(ok) == 200);
  BOOST_TEST(ok.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  BOOST_TEST(ok.find("\r\n\r\ncoblk_exporter_devices 0\n") != std::string::npos);
  BOOST_TEST(status_of(exchange(s.port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n")) == 200);
  const std::string head = exchange(s.port, "HEAD /metrics HTTP/1.1\r\n\r\n");
  BOOST_TEST(status_of(head) == 200);
  BOOST_TEST(head.substr(head.find("\r\n\r\n") + 4).empty());
  BOOST_TEST(status_of(exchange(s.port, "GET / HTTP/1.1\r\n\r\n")) == 200);
  BOOST_TEST(status_of(exchange(s.port, "GET /nope HTTP/1.1\r\n\r\n")) == 404);
  const std::string post = exchange(s.port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  BOOST_TEST(status_of(post) == 405);
  BOOST_TEST(post.find("Allow: GET, HEAD") != std::string::npos);
  for (const char* bad :
       {"HELLO\r\n\r\n", "GET /metrics\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/2.0\r\n\r\n",
        "get /metrics HTTP/1.1\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n", "\r\n\r\n"}) {
    BOOST_TEST(status_of(exchange(s.port, bad)) == 400, "request " << bad);
  }
  const std::string huge = "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
  BOOST_TEST(status_of(exchange(s.port, huge)) == 431);
}

BOOST_AUTO_TEST_CASE(a_slow_client_blocks_nobody_and_is_cut_off) {
  auto options = body_options(std::string(1 << 20, 'x'));  // a large body, as with many devices
  options.client_timeout = 1500ms;
  Server s(std::move(options));
  // One client sends half a request and stalls; another never reads its
  // (megabyte) answer.
  const int stalled = connect_to(s.port);
  BOOST_REQUIRE(::send(stalled, "GET /met", 8, MSG_NOSIGNAL) == 8);
  const int not_reading = connect_to(s.port);
  const std::string full = "GET /metrics HTTP/1.1\r\n\r\n";
  BOOST_REQUIRE(::send(not_reading, full.data(), full.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(full.size()));
  // Others are served at once, meanwhile.
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const std::string r = exchange(s.port, full);
    BOOST_TEST(status_of(r) == 200);
    BOOST_TEST(r.size() > (1U << 20));
    BOOST_TEST((std::chrono::steady_clock::now() - start < 1s));
  }
  // The stalled client is closed once its time is up.
  const auto start = std::chrono::steady_clock::now();
  char c;
  BOOST_TEST(::recv(stalled, &c, 1, 0) == 0);
  BOOST_TEST((std::chrono::steady_clock::now() - start < 4s));
  ::close(stalled);
  ::close(not_reading);
}

BOOST_AUTO_TEST_CASE(connections_beyond_the_limit_are_turned_away) {
  auto options = body_options("x\n");
  options.max_clients = 2;
  Server s(std::move(options));
  const int a = connect_to(s.port);
  const int b = connect_to(s.port);
  std::this_thread::sleep_for(200ms);  // both accepted
  BOOST_TEST(s.server->clients() == 2U);
  const int c = connect_to(s.port);
  char byte;
  BOOST_TEST(::recv(c, &byte, 1, 0) == 0);  // closed at once
  ::close(c);
  ::close(a);
  ::close(b);
  // Once they are gone, the server takes clients again.
  for (int i = 0; i < 50 && s.server->clients() != 0; ++i) std::this_thread::sleep_for(100ms);
  BOOST_TEST(status_of(exchange(s.port, "GET /metrics HTTP/1.1\r\n\r\n")) == 200);
}

BOOST_AUTO_TEST_CASE(a_taken_port_is_one_clear_error) {
  Server first(body_options("x\n"));
  boost::asio::io_context io;
  cmd::MetricsServer::Options o = body_options("x\n");
  o.endpoint = boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), first.port);
  const auto second = cmd::MetricsServer::listen(io, std::move(o));
  BOOST_TEST_REQUIRE(!second.ok());
  BOOST_TEST(second.error().code() == EADDRINUSE);
  BOOST_TEST(second.error().message().find("in use") != std::string::npos);
  BOOST_TEST(second.error().message().find("127.0.0.1:" + std::to_string(first.port)) != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_metrics_exporter_test
