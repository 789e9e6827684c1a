// coblk metrics: a Prometheus exporter of every device's I/O metrics.
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cerrno>
#include <iostream>

#include "coblk/cmd/commands.h"
#include "coblk/cmd/device_record.h"
#include "coblk/cmd/metrics_exporter.h"

namespace po = boost::program_options;

namespace coblk::cmd {

int run_metrics(const std::vector<std::string>& args) {
  po::options_description desc(
      "Usage: coblk metrics [--listen HOST:PORT] [--listen-any] | --print | --summary\n"
      "Serves every coblk device's I/O metrics (per queue and operation: requests, bytes, errors, latency\n"
      "histograms; per core: reactor counters; zram statistics) over HTTP at /metrics, in Prometheus's text\n"
      "format, until SIGINT or SIGTERM.\n"
      "Options");
  // clang-format off
  desc.add_options()
    ("help,h", "show this help")
    ("listen", po::value<std::string>()->value_name("HOST:PORT")->default_value("127.0.0.1:9477"),
     "address to serve on: an IP literal or localhost, and a port (0: any free port); a loopback address unless "
     "--listen-any")
    ("listen-any", "allow an address that is not loopback (0.0.0.0, [::], a LAN address): the metrics are then "
     "visible to whoever can reach it")
    ("print", "print the metrics once on stdout, in the exposition format, and exit")
    ("summary", "print a table per queue and operation (requests, bytes, errors, p50/p99/p99.9 latency) and exit");
  // clang-format on
  po::variables_map vm;
  if (auto done = parse_command_line("metrics", args, desc, vm)) return *done;
  if (vm.count("print") && vm.count("summary")) {
    return report_error("metrics", "--print and --summary exclude each other", kExitUsage);
  }
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

  Result<boost::asio::ip::tcp::endpoint> endpoint =
      parse_listen_address(vm["listen"].as<std::string>(), vm.count("listen-any") != 0);
  if (!endpoint) return report_error("metrics", endpoint.error().message(), kExitUsage);

  ::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is that connection's error, not the exporter's end
  boost::asio::io_context io(1);
  MetricsServer::Options options;
  options.endpoint = *endpoint;
  options.render = [] { return render_prometheus(collect_device_metrics()); };
  Result<std::unique_ptr<MetricsServer>> server = MetricsServer::listen(io, std::move(options));
  if (!server) return report_error("metrics", server.error().message());
  const auto bound = (*server)->local_endpoint();
  const std::string host = bound.address().to_string();
  std::cout << "coblk metrics: serving http://" << (bound.address().is_v6() ? "[" + host + "]" : host) << ":"
            << bound.port() << "/metrics" << std::endl;
  (*server)->start();
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](const boost::system::error_code& ec, int) {
    if (!ec) io.stop();
  });
  io.run();
  return kExitOk;
}

}  // namespace coblk::cmd
