// coblk metrics: a Prometheus exporter of every device's I/O metrics, and an OTLP/HTTP pusher of the same.
#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>

#include "coblk/cmd/commands.h"
#include "coblk/cmd/device_record.h"
#include "coblk/cmd/metric_families.h"
#include "coblk/cmd/metrics_exporter.h"
#include "coblk/cmd/otlp_encode.h"
#include "coblk/cmd/otlp_exporter.h"

namespace po = boost::program_options;

namespace coblk::cmd {

int run_metrics(const std::vector<std::string>& args) {
  po::options_description desc(
      "Usage: coblk metrics [--listen HOST:PORT] [--listen-any] [--otlp-endpoint URL [--otlp-interval T]]\n"
      "       coblk metrics --print | --summary\n"
      "Serves every coblk device's I/O metrics (per queue and operation: requests, bytes, errors, latency\n"
      "histograms; per core: reactor counters; zram statistics) over HTTP at /metrics, in Prometheus's text\n"
      "format, until SIGINT or SIGTERM. With --otlp-endpoint it pushes the same metrics as OTLP/HTTP JSON\n"
      "instead (and serves /metrics too only if --listen is given).\n"
      "Options");
  // clang-format off
  desc.add_options()
    ("help,h", "show this help")
    ("listen", po::value<std::string>()->value_name("HOST:PORT")->default_value("127.0.0.1:9477"),
     "address to serve on: an IP literal or localhost, and a port (0: any free port); a loopback address unless "
     "--listen-any")
    ("listen-any", "allow an address that is not loopback (0.0.0.0, [::], a LAN address): the metrics are then "
     "visible to whoever can reach it")
    ("otlp-endpoint", po::value<std::string>()->value_name("URL"),
     "push the metrics as OTLP/HTTP JSON to URL/v1/metrics, e.g. to an OpenTelemetry collector's otlp receiver "
     "at http://127.0.0.1:4318 (http:// only)")
    ("otlp-interval", po::value<std::string>()->value_name("T")->default_value("10s"),
     "time between two pushes, from 1s to 1h (10s, 1500ms, 1m); a push gets 3/4 of it, at most 10 s; a "
     "failed one is dropped; each change of state is one line on stderr (after three, at most one a minute)")
    ("print", "print the metrics once on stdout, in the exposition format, and exit")
    ("summary", "print a table per queue and operation (requests, bytes, errors, p50/p99/p99.9 latency) and exit");
  // clang-format on
  po::variables_map vm;
  if (auto done = parse_command_line("metrics", args, desc, vm)) return *done;
  if (vm.count("print") && vm.count("summary")) {
    return report_error("metrics", "--print and --summary exclude each other", kExitUsage);
  }
  const bool otlp = vm.count("otlp-endpoint") != 0;
  if (otlp && (vm.count("print") || vm.count("summary"))) {
    return report_error("metrics", "--otlp-endpoint pushes while it runs; it does not go with --print or --summary",
                        kExitUsage);
  }
  if (!otlp && !vm["otlp-interval"].defaulted()) {
    return report_error("metrics", "--otlp-interval needs --otlp-endpoint", kExitUsage);
  }
  std::optional<OtlpEndpoint> otlp_endpoint;
  std::chrono::milliseconds otlp_interval{0};
  if (otlp) {
    Result<OtlpEndpoint> e = parse_otlp_endpoint(vm["otlp-endpoint"].as<std::string>());
    if (!e) return report_error("metrics", e.error().message(), kExitUsage);
    Result<std::chrono::milliseconds> i = parse_otlp_interval(vm["otlp-interval"].as<std::string>());
    if (!i) return report_error("metrics", i.error().message(), kExitUsage);
    otlp_endpoint = std::move(e).value();
    otlp_interval = *i;
  }
  // Pushing alone opens no port; --listen given as well serves /metrics too.
  const bool serve = !otlp || !vm["listen"].defaulted() || vm.count("listen-any") != 0;
  if (Result<void> dir = check_run_directory(false); !dir && dir.error().code() != ENOENT) {
    return report_error("metrics", dir.error().message());
  }
  if (vm.count("print")) {
    std::cout << render_prometheus(collect_device_metrics()) << std::flush;
    return kExitOk;
  }
  if (vm.count("summary")) {
    std::cout << render_summary(collect_device_metrics()) << std::flush;
    return kExitOk;
  }

  std::optional<boost::asio::ip::tcp::endpoint> endpoint;
  if (serve) {
    Result<boost::asio::ip::tcp::endpoint> e =
        parse_listen_address(vm["listen"].as<std::string>(), vm.count("listen-any") != 0);
    if (!e) return report_error("metrics", e.error().message(), kExitUsage);
    endpoint = *e;
  }

  ::signal(SIGPIPE, SIG_IGN);  // a client or receiver that hangs up is that connection's error, not the exporter's end
  boost::asio::io_context io(1);
  std::unique_ptr<MetricsServer> server;
  if (endpoint) {
    MetricsServer::Options options;
    options.endpoint = *endpoint;
    options.render = [] { return render_prometheus(collect_device_metrics()); };
    Result<std::unique_ptr<MetricsServer>> listening = MetricsServer::listen(io, std::move(options));
    if (!listening) return report_error("metrics", listening.error().message());
    server = std::move(listening).value();
    const auto bound = server->local_endpoint();
    const std::string host = bound.address().to_string();
    std::cout << "coblk metrics: serving http://" << (bound.address().is_v6() ? "[" + host + "]" : host) << ":"
              << bound.port() << "/metrics" << std::endl;
    server->start();
  }
  std::unique_ptr<OtlpPusher> pusher;
  if (otlp_endpoint) {
    char name[256] = {};
    const std::string host = ::gethostname(name, sizeof(name) - 1) == 0 ? name : "";
    OtlpPusher::Options options;
    options.endpoint = *otlp_endpoint;
    options.interval = otlp_interval;
    options.render = [host] {
      const auto now = std::chrono::system_clock::now().time_since_epoch();
      return encode_otlp_metrics(
          metric_families(collect_device_metrics()),
          static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()), host);
    };
    options.log = [](const std::string& line) { std::cerr << "coblk metrics: " << line << std::endl; };
    std::cout << "coblk metrics: pushing to " << otlp_endpoint->url << " (POST " << otlp_endpoint->target << ")"
              << std::endl;
    pusher = std::make_unique<OtlpPusher>(io, std::move(options));
    pusher->start();
  }
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](const boost::system::error_code& ec, int) {
    if (!ec) io.stop();
  });
  io.run();
  return kExitOk;
}

}  // namespace coblk::cmd
