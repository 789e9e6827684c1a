// otlp_receiver PORT DIR: an OTLP/HTTP receiver for the VM tests (test/vm/guest/otlp.sh), where there is no
// python and no collector. For the Nth request it writes DIR/N.txt: a first line "METHOD TARGET CONTENT-TYPE",
// then each data point as "name{key="value",...} value" (a histogram as name_count and name_sum), as the
// Prometheus text would print it; then DIR/count holds N. Runs until killed.
#include <signal.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "test/cmd/otlp_receiver.h"

namespace json = boost::json;

namespace {

std::string attributes(const json::value& point) {
  std::string out;
  if (const auto* attrs = point.as_object().if_contains("attributes")) {
    for (const json::value& a : attrs->as_array()) {
      const auto& kv = a.as_object();
      out += (out.empty() ? "" : ",") + std::string(kv.at("key").as_string()) + "=\"" +
             std::string(kv.at("value").as_object().at("stringValue").as_string()) + "\"";
    }
  }
  return out.empty() ? out : "{" + out + "}";
}

std::string number(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return json::serialize(v);
}

// The request's data points, one a line; "malformed: WHAT" if the body is not OTLP JSON.
std::string flatten(const std::string& body) {
  std::string out;
  try {
    const json::value request = json::parse(body);
    for (const json::value& rm : request.at("resourceMetrics").as_array()) {
      for (const json::value& sm : rm.at("scopeMetrics").as_array()) {
        for (const json::value& m : sm.at("metrics").as_array()) {
          const auto& metric = m.as_object();
          const std::string name(metric.at("name").as_string());
          for (const char* kind : {"sum", "gauge"}) {
            if (const auto* data = metric.if_contains(kind)) {
              for (const json::value& p : data->at("dataPoints").as_array()) {
                const auto& point = p.as_object();
                const json::value& v = point.contains("asInt") ? point.at("asInt") : point.at("asDouble");
                out += name + attributes(p) + " " + number(v) + "\n";
              }
            }
          }
          if (const auto* data = metric.if_contains("histogram")) {
            for (const json::value& p : data->at("dataPoints").as_array()) {
              out += name + "_count" + attributes(p) + " " + number(p.at("count")) + "\n";
              out += name + "_sum" + attributes(p) + " " + number(p.at("sum")) + "\n";
            }
          }
        }
      }
    }
  } catch (const std::exception& e) {
    out += std::string("malformed: ") + e.what() + "\n";
  }
  return out;
}

void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  std::rename(tmp.c_str(), path.c_str());  // readers see the whole file or none
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: otlp_receiver PORT DIR\n");
    return 2;
  }
  const std::string dir = argv[2];
  // Blocked before the receiver's thread starts, so that it inherits the
  // mask and sigwait below takes the signal.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  unsigned n = 0;
  coblk::test::OtlpReceiver receiver(coblk::test::OtlpReceiver::Mode::ok,
                                     static_cast<std::uint16_t>(std::strtoul(argv[1], nullptr, 10)));
  receiver.on_request([&](const coblk::test::OtlpReceiver::Request& r) {
    ++n;
    write_file(dir + "/" + std::to_string(n) + ".txt",
               r.method + " " + r.target + " " + r.content_type + "\n" + flatten(r.body));
    write_file(dir + "/count", std::to_string(n) + "\n");
  });
  std::printf("otlp_receiver: listening on 127.0.0.1:%u\n", receiver.port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}
