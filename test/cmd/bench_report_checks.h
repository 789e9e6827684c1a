// test/cmd/bench_report_checks.h - a synthetic `coblk bench` report and the checks its HTML must pass.
#pragma once

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <cstddef>
#include <regex>
#include <string>
#include <vector>

#include "coblk/cmd/bench_report.h"

namespace coblk::cmd::test {

/// A report of `targets` x 3 workloads, 3 rounds each, with figures that
/// exercise the rounding: above and below 1000, many digits, a zero, and a
/// host name that needs escaping.
inline BenchReport synthetic_report(const std::vector<std::string>& targets = {"null", "zram"}) {
  BenchReport r;
  r.started_at = "2026-11-30T20:00:00Z";
  r.host = "test<host> & \"quoted\" 'name'";
  r.coblk_version = "0.0-test";
  r.rounds = 3;
  r.runtime_s = 3;
  r.size_bytes = 64ULL << 20;
  r.queues = 1;
  r.load_start = {1.25, 2.5, 3.125};
  r.load_end = {4.0625, 5.5, 0};
  const char* workloads[] = {"randread_4k_qd32", "randread_4k_qd1", "seqwrite_1m"};
  double seed = 1;
  for (const std::string& t : targets) {
    for (const char* w : workloads) {
      BenchSeries s;
      s.target = t;
      s.workload = w;
      s.ours_device = "/dev/ublkb7";
      s.baseline_device = t == "null" ? "/dev/nullb0" : "/dev/zram1";
      s.baseline_kind = t == "null" ? "null_blk" : "zram";
      s.headline = std::string(w) == "seqwrite_1m" ? Headline::bandwidth : Headline::iops;
      for (int i = 0; i < 3; ++i) {
        BenchRound round;
        round.ours_first = i % 2 == 0;
        round.load_1m = 1.5 + i;
        seed += 1.37;
        round.ours = {12345.678 * seed, 48.2259 * seed, 21.1234 * seed, 87.654321 * seed,
                      1234.5678 * seed, 3.3333 / seed,  45.678 * seed,  static_cast<unsigned long long>(1000 * seed)};
        round.baseline = {
            23456.789 + 100 * i, 91.62783 + i,         10.06 + i, 40.0004 + i,
            0.012345 * (i + 1),  i == 1 ? 0.0 : 1.111, 0,         static_cast<unsigned long long>(2000 + i)};
        s.rounds.push_back(round);
      }
      r.series.push_back(std::move(s));
    }
  }
  return r;
}

/// The text of the element whose id is `id` (up to its first child or end
/// tag), or "<missing>".
inline std::string text_of_id(const std::string& html, const std::string& id) {
  const std::string key = "id=\"" + id + "\"";
  std::size_t at = html.find(key);
  if (at == std::string::npos) return "<missing>";
  at = html.find('>', at);
  if (at == std::string::npos) return "<missing>";
  const std::size_t end = html.find('<', at);
  return html.substr(at + 1, end - at - 1);
}

/// The part of `html` from `<svg id="ID"` to its `</svg>`; empty if absent.
inline std::string svg_part(const std::string& html, const std::string& id) {
  const std::size_t start = html.find("<svg id=\"" + id + "\"");
  if (start == std::string::npos) return {};
  const std::size_t end = html.find("</svg>", start);
  if (end == std::string::npos) return {};
  return html.substr(start, end - start);
}

/// How many times `needle` occurs in `hay`.
inline std::size_t count_of(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + needle.size())) ++n;
  return n;
}

/// A JSON number as a double, whether stored as an integer or not.
inline double json_number(const boost::json::value& v) { return v.to_number<double>(); }

/// Checks that `html` (as written, or as chromium's DOM) has every plot
/// with its data elements, and that every number of the summary table and
/// of the plots equals the JSON report `json`'s.
inline void check_html_matches_json(const std::string& html, const boost::json::value& json) {
  const boost::json::array& series = json.at("series").as_array();
  const std::size_t n = series.size();
  BOOST_TEST_REQUIRE(n > 0);
  for (const char* id : {"plot-iops", "plot-bandwidth", "plot-latency", "plot-ratio"}) {
    BOOST_TEST_INFO("plot " << id);
    BOOST_TEST(count_of(html, std::string("<svg id=\"") + id + "\"") == 1U);
  }
  BOOST_TEST(count_of(svg_part(html, "plot-iops"), "<rect class=\"bar ") == 2 * n);
  BOOST_TEST(count_of(svg_part(html, "plot-bandwidth"), "<rect class=\"bar ") == 2 * n);
  BOOST_TEST(count_of(svg_part(html, "plot-latency"), "<rect class=\"bar ") == 6 * n);
  BOOST_TEST(count_of(svg_part(html, "plot-ratio"), "<circle class=\"ratio\"") == n);
  BOOST_TEST(count_of(svg_part(html, "plot-ratio"), "<line class=\"spread\"") == n);

  // The summary table: every figure of every series.
  for (std::size_t i = 0; i < n; ++i) {
    const boost::json::object& sum = series[i].at("summary").as_object();
    const std::string p = "s" + std::to_string(i) + "-";
    for (const char* key : {"ratio", "ratio_min", "ratio_max"}) {
      BOOST_TEST_INFO(p + key);
      BOOST_TEST(std::stod(text_of_id(html, p + key)) == json_number(sum.at(key)));
    }
    for (const char* side : {"ours", "baseline"}) {
      for (const char* key : {"iops", "bw_mib", "p50_us", "p99_us", "p999_us", "fio_cpu_us"}) {
        const std::string id = p + side + "-" + key;
        BOOST_TEST_INFO(id << " = '" << text_of_id(html, id) << "'");
        BOOST_TEST_REQUIRE(text_of_id(html, id) != "<missing>");
        BOOST_TEST(std::stod(text_of_id(html, id)) == json_number(sum.at(side).at(key)));
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::string id = "s" + std::to_string(i) + "-ours-server_cpu_us";
    BOOST_TEST_INFO(id);
    BOOST_TEST(std::stod(text_of_id(html, id)) == json_number(series[i].at("summary").at("ours").at("server_cpu_us")));
  }
  for (const char* when : {"start", "end"}) {
    const boost::json::array& load = json.at(std::string("load_") + when).as_array();
    const char* names[] = {"1m", "5m", "15m"};
    for (std::size_t k = 0; k < 3; ++k) {
      const std::string id = std::string("load-") + when + "-" + names[k];
      BOOST_TEST_INFO(id);
      BOOST_TEST(std::stod(text_of_id(html, id)) == report_round(json_number(load[k])));
    }
  }

  // The plots' data elements: each bar's and dot's figure is the JSON's.
  const std::regex bar_re("<rect class=\"bar (ours|baseline)\" data-series=\"([0-9]+)\" data-value=\"([^\"]+)\"");
  const struct {
    const char* plot;
    std::vector<const char*> keys;
  } plots[] = {
      {"plot-iops", {"iops"}}, {"plot-bandwidth", {"bw_mib"}}, {"plot-latency", {"p50_us", "p99_us", "p999_us"}}};
  for (const auto& plot : plots) {
    const std::string part = svg_part(html, plot.plot);
    std::vector<std::size_t> seen(n * 2, 0);  // bars per series and side, in order
    for (auto it = std::sregex_iterator(part.begin(), part.end(), bar_re); it != std::sregex_iterator(); ++it) {
      const std::string side = (*it)[1];
      const std::size_t i = std::stoul((*it)[2]);
      BOOST_TEST_REQUIRE(i < n);
      std::size_t& k = seen[i * 2 + (side == "ours" ? 0 : 1)];
      BOOST_TEST_REQUIRE(k < plot.keys.size());
      BOOST_TEST_INFO(plot.plot << " series " << i << ' ' << side << ' ' << plot.keys[k]);
      BOOST_TEST(std::stod((*it)[3]) == json_number(series[i].at("summary").at(side).at(plot.keys[k])));
      ++k;
    }
    for (const std::size_t k : seen) BOOST_TEST(k == plot.keys.size());
  }
  const std::string ratio = svg_part(html, "plot-ratio");
  const std::regex dot_re("<circle class=\"ratio\" data-series=\"([0-9]+)\" data-value=\"([^\"]+)\"");
  for (auto it = std::sregex_iterator(ratio.begin(), ratio.end(), dot_re); it != std::sregex_iterator(); ++it) {
    const std::size_t i = std::stoul((*it)[1]);
    BOOST_TEST_REQUIRE(i < n);
    BOOST_TEST(std::stod((*it)[2]) == json_number(series[i].at("summary").at("ratio")));
  }
  const std::regex spread_re(
      "<line class=\"spread\" data-series=\"([0-9]+)\" data-min=\"([^\"]+)\" data-max=\"([^\"]+)\"");
  for (auto it = std::sregex_iterator(ratio.begin(), ratio.end(), spread_re); it != std::sregex_iterator(); ++it) {
    const std::size_t i = std::stoul((*it)[1]);
    BOOST_TEST_REQUIRE(i < n);
    BOOST_TEST(std::stod((*it)[2]) == json_number(series[i].at("summary").at("ratio_min")));
    BOOST_TEST(std::stod((*it)[3]) == json_number(series[i].at("summary").at("ratio_max")));
  }
}

}  // namespace coblk::cmd::test
