// `coblk bench`'s summary arithmetic and JSON (cmd/bench_report.h).
#include "coblk/cmd/bench_report.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <functional>

namespace coblk::cmd {
namespace {

double median_of(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// The median over `rounds` of one figure of one side, rounded.
double side_median(const std::vector<BenchRound>& rounds, const std::function<double(const BenchRound&)>& pick) {
  std::vector<double> v;
  v.reserve(rounds.size());
  for (const BenchRound& r : rounds) v.push_back(pick(r));
  return report_round(median_of(std::move(v)));
}

SideSummary side_summary(const std::vector<BenchRound>& rounds, FioFigures BenchRound::*side) {
  SideSummary s;
  s.iops = side_median(rounds, [side](const BenchRound& r) { return (r.*side).iops; });
  s.bw_mib = side_median(rounds, [side](const BenchRound& r) { return (r.*side).bw_mib; });
  s.p50_us = side_median(rounds, [side](const BenchRound& r) { return (r.*side).p50_us; });
  s.p99_us = side_median(rounds, [side](const BenchRound& r) { return (r.*side).p99_us; });
  s.p999_us = side_median(rounds, [side](const BenchRound& r) { return (r.*side).p999_us; });
  s.fio_cpu_us = side_median(rounds, [side](const BenchRound& r) { return (r.*side).fio_cpu_us; });
  s.server_cpu_us = side_median(rounds, [side](const BenchRound& r) { return (r.*side).server_cpu_us; });
  std::vector<double> ios;
  ios.reserve(rounds.size());
  for (const BenchRound& r : rounds) ios.push_back(static_cast<double>((r.*side).ios));
  s.ios = static_cast<unsigned long long>(std::llround(median_of(std::move(ios))));
  return s;
}

// A rounded figure as JSON: whole numbers as integers (Boost.JSON writes a
// double such as 12345.0 as "1.2345E4"), the rest as doubles.
boost::json::value number(double rounded) {
  if (std::fabs(rounded) >= 1000 && std::fabs(rounded) < 9e15) return std::llround(rounded);
  return rounded;
}

boost::json::object side_json(const FioFigures& f, bool rounded) {
  auto put = [rounded](double v) { return rounded ? number(v) : boost::json::value(v); };
  boost::json::object o;
  o["iops"] = put(f.iops);
  o["bw_mib"] = put(f.bw_mib);
  o["p50_us"] = put(f.p50_us);
  o["p99_us"] = put(f.p99_us);
  o["p999_us"] = put(f.p999_us);
  o["fio_cpu_us"] = put(f.fio_cpu_us);
  o["server_cpu_us"] = put(f.server_cpu_us);
  o["ios"] = f.ios;
  return o;
}

boost::json::array load_json(const std::array<double, 3>& load) {
  boost::json::array a;
  for (const double l : load) a.emplace_back(l);
  return a;
}

}  // namespace

double report_round(double value) {
  if (!std::isfinite(value) || value == 0) return 0;
  if (std::fabs(value) >= 1000) return std::round(value);
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", value);
  return std::strtod(text, nullptr);
}

std::string format_report_number(double value) {
  char text[40];
  if (std::fabs(value) >= 1000) {
    std::snprintf(text, sizeof(text), "%.0f", value);
  } else {
    std::snprintf(text, sizeof(text), "%.4g", value);
  }
  return text;
}

const char* headline_name(Headline headline) { return headline == Headline::iops ? "iops" : "bandwidth"; }

double round_ratio(const BenchRound& round, Headline headline) {
  const double ours = headline == Headline::iops ? round.ours.iops : round.ours.bw_mib;
  const double base = headline == Headline::iops ? round.baseline.iops : round.baseline.bw_mib;
  return base > 0 ? ours / base : 0;
}

SeriesSummary summarize(const BenchSeries& series) {
  SeriesSummary s;
  if (series.rounds.empty()) return s;
  s.ours = side_summary(series.rounds, &BenchRound::ours);
  s.baseline = side_summary(series.rounds, &BenchRound::baseline);
  std::vector<double> ratios;
  std::vector<double> cpu_ratios;
  for (const BenchRound& r : series.rounds) {
    ratios.push_back(round_ratio(r, series.headline));
    if (r.baseline.fio_cpu_us > 0) cpu_ratios.push_back(r.ours.fio_cpu_us / r.baseline.fio_cpu_us);
  }
  const auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
  s.ratio_min = report_round(*lo);
  s.ratio_max = report_round(*hi);
  s.ratio = report_round(median_of(std::move(ratios)));
  s.fio_cpu_ratio = report_round(median_of(std::move(cpu_ratios)));
  return s;
}

boost::json::value report_to_json(const BenchReport& report) {
  boost::json::object root;
  root["tool"] = "coblk bench";
  root["coblk_version"] = report.coblk_version;
  root["started_at"] = report.started_at;
  root["host"] = report.host;
  root["rounds"] = report.rounds;
  root["runtime_s"] = report.runtime_s;
  root["size_bytes"] = report.size_bytes;
  root["queues"] = report.queues;
  root["load_start"] = load_json(report.load_start);
  root["load_end"] = load_json(report.load_end);
  root["ratio_is"] = "median of per-round ours/baseline of the headline figure; > 1: coblk is faster";
  boost::json::array all;
  for (const BenchSeries& series : report.series) {
    const SeriesSummary sum = summarize(series);
    boost::json::object s;
    s["target"] = series.target;
    s["workload"] = series.workload;
    s["ours_device"] = series.ours_device;
    s["baseline_device"] = series.baseline_device;
    s["baseline_kind"] = series.baseline_kind;
    s["headline"] = headline_name(series.headline);
    boost::json::object summary;
    summary["ours"] = side_json(sum.ours, true);
    summary["baseline"] = side_json(sum.baseline, true);
    summary["ratio"] = number(sum.ratio);
    summary["ratio_min"] = number(sum.ratio_min);
    summary["ratio_max"] = number(sum.ratio_max);
    summary["fio_cpu_ratio"] = number(sum.fio_cpu_ratio);
    s["summary"] = std::move(summary);
    boost::json::array rounds;
    for (const BenchRound& r : series.rounds) {
      boost::json::object o;
      o["ours_first"] = r.ours_first;
      o["load_1m"] = r.load_1m;
      o["ratio"] = round_ratio(r, series.headline);
      o["ours"] = side_json(r.ours, false);
      o["baseline"] = side_json(r.baseline, false);
      rounds.push_back(std::move(o));
    }
    s["rounds"] = std::move(rounds);
    all.push_back(std::move(s));
  }
  root["series"] = std::move(all);
  return root;
}

std::string series_result_line(const BenchSeries& series, const BenchReport& report) {
  const SeriesSummary sum = summarize(series);
  const bool iops = series.headline == Headline::iops;
  boost::json::object o;
  o["bench"] = "ublk_" + series.target + "_" + series.workload;
  o["ours"] = number(iops ? sum.ours.iops : sum.ours.bw_mib);
  o["baseline"] = number(iops ? sum.baseline.iops : sum.baseline.bw_mib);
  o["unit"] = iops ? "iops" : "MiB/s";
  o["ratio"] = number(sum.ratio);
  o["spread"] = number(report_round((sum.ratio_max - sum.ratio_min) / 2));
  o["ratio_min"] = number(sum.ratio_min);
  o["ratio_max"] = number(sum.ratio_max);
  o["rounds"] = series.rounds.size();
  o["ours_fio_cpu_us"] = number(sum.ours.fio_cpu_us);
  o["baseline_fio_cpu_us"] = number(sum.baseline.fio_cpu_us);
  o["ours_srv_cpu_us"] = number(sum.ours.server_cpu_us);
  o["baseline_is"] = series.baseline_kind + " " + series.baseline_device;
  o["load_start"] = load_json(report.load_start);
  o["load_end"] = load_json(report.load_end);
  return boost::json::serialize(o);
}

std::string report_json_text(const BenchReport& report) {
  return boost::json::serialize(report_to_json(report)) + "\n";
}

}  // namespace coblk::cmd
