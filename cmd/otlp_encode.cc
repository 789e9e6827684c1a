#include "coblk/cmd/otlp_encode.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string>

namespace json = boost::json;

namespace coblk::cmd {

namespace {

// OTLP's JSON encoding writes 64-bit integers (fixed64, int64) as decimal
// strings, as protobuf's JSON mapping does: a JSON number would lose
// precision above 2^53 in many readers.
json::string int64_text(std::uint64_t v) { return json::string(std::to_string(v)); }

// Nanoseconds as seconds: the double that the Prometheus text's exact
// decimal (seconds_text) reads as, so the two give the same number even
// above 2^53 ns (a timestamp), where dividing would round twice.
double seconds(std::uint64_t ns) {
  const std::string text = seconds_text(ns);
  double value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);  // the C locale's digits, always
  return value;
}

json::object attribute(const std::string& key, const std::string& value) {
  return json::object{{"key", key}, {"value", json::object{{"stringValue", value}}}};
}

json::array attributes(const MetricSample& s) {
  json::array out;
  for (const auto& [name, value] : s.labels) out.push_back(attribute(name, value));
  return out;
}

const char* unit_of(const MetricFamily& f) {
  if (f.seconds) return "s";
  if (f.name.find("_bytes") != std::string::npos) return "By";
  return "1";
}

json::object number_point(const MetricFamily& f, const MetricSample& s, const json::string& now) {
  json::object p;
  p["attributes"] = attributes(s);
  if (f.type == MetricType::counter && s.start_unix_ns != 0) p["startTimeUnixNano"] = int64_text(s.start_unix_ns);
  p["timeUnixNano"] = now;
  if (f.seconds) {
    p["asDouble"] = seconds(s.value);
  } else if (s.value <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    p["asInt"] = int64_text(s.value);  // sfixed64
  } else {
    p["asDouble"] = static_cast<double>(s.value);  // beyond asInt's range: nearest double, never a wrapped value
  }
  return p;
}

json::object histogram_point(const MetricFamily& f, const MetricSample& s, const json::string& now) {
  json::object p;
  p["attributes"] = attributes(s);
  if (s.start_unix_ns != 0) p["startTimeUnixNano"] = int64_text(s.start_unix_ns);
  p["timeUnixNano"] = now;
  std::uint64_t count = 0;
  json::array counts;
  for (const std::uint64_t c : s.counts) {
    count += c;
    counts.push_back(int64_text(c));
  }
  json::array bounds;
  for (const std::uint64_t b : f.bounds_ns) bounds.push_back(seconds(b));
  p["count"] = int64_text(count);
  p["sum"] = seconds(s.sum_ns);
  p["bucketCounts"] = std::move(counts);
  p["explicitBounds"] = std::move(bounds);
  return p;
}

// AGGREGATION_TEMPORALITY_CUMULATIVE: every value counts from the start of
// its process, as the Prometheus counters do.
constexpr int kCumulative = 2;

}  // namespace

std::string encode_otlp_metrics(const std::vector<MetricFamily>& families, std::uint64_t now_unix_ns,
                                const std::string& host) {
  const json::string now = int64_text(now_unix_ns);
  json::array metrics;
  for (const MetricFamily& f : families) {
    if (f.samples.empty()) continue;
    json::array points;
    for (const MetricSample& s : f.samples) {
      points.push_back(f.type == MetricType::histogram ? histogram_point(f, s, now) : number_point(f, s, now));
    }
    json::object m{{"name", f.name}, {"description", f.help}, {"unit", unit_of(f)}};
    switch (f.type) {
      case MetricType::counter:
        m["sum"] = json::object{
            {"dataPoints", std::move(points)}, {"aggregationTemporality", kCumulative}, {"isMonotonic", true}};
        break;
      case MetricType::gauge:
        m["gauge"] = json::object{{"dataPoints", std::move(points)}};
        break;
      case MetricType::histogram:
        m["histogram"] = json::object{{"dataPoints", std::move(points)}, {"aggregationTemporality", kCumulative}};
        break;
    }
    metrics.push_back(std::move(m));
  }
  json::array resource_attributes{attribute("service.name", "coblk")};
  if (!host.empty()) resource_attributes.push_back(attribute("host.name", host));
  const json::object request{
      {"resourceMetrics",
       json::array{json::object{{"resource", json::object{{"attributes", std::move(resource_attributes)}}},
                                {"scopeMetrics", json::array{json::object{{"scope", json::object{{"name", "coblk"}}},
                                                                          {"metrics", std::move(metrics)}}}}}}}};
  return json::serialize(request);
}

}  // namespace coblk::cmd
