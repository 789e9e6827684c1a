// `coblk bench`'s report in process: the summary arithmetic, the JSON, the
// HTML's structure and numbers (checked without an HTML parser), and fio's
// JSON output.
#include <algorithm>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "coblk/cmd/bench_fio.h"
#include "coblk/cmd/bench_html.h"
#include "coblk/cmd/bench_report.h"
#include "test/cmd/bench_report_checks.h"

BOOST_AUTO_TEST_SUITE(cmd_bench_report_test)

namespace {

using namespace coblk::cmd;  // NOLINT(google-build-using-namespace): a test of this namespace

BenchRound round_of(double ours_iops, double base_iops, bool ours_first = true) {
  BenchRound r;
  r.ours.iops = ours_iops;
  r.baseline.iops = base_iops;
  r.ours_first = ours_first;
  return r;
}

// The tags of `html` balance: every element opened is closed in order,
// except HTML's void elements and SVG's self-closed ones. A walk over the
// '<' and '>' of the text, not a parser; comments and attribute values with
// '>' are not expected (html_escape writes '>' as &gt;).
bool tags_balance(const std::string& html, std::string& why) {
  static const std::vector<std::string> kVoid = {"meta", "br", "hr", "img", "input", "link"};
  std::vector<std::string> open;
  std::size_t at = 0;
  while ((at = html.find('<', at)) != std::string::npos) {
    const std::size_t end = html.find('>', at);
    if (end == std::string::npos) {
      why = "a '<' is never closed";
      return false;
    }
    std::string tag = html.substr(at + 1, end - at - 1);
    at = end + 1;
    if (tag.rfind("!DOCTYPE", 0) == 0) continue;
    const bool closing = !tag.empty() && tag[0] == '/';
    const bool self_closed = !tag.empty() && tag.back() == '/';
    std::string name = tag.substr(closing ? 1 : 0);
    name = name.substr(0, name.find_first_of(" /"));
    if (closing) {
      if (open.empty() || open.back() != name) {
        why = "</" + name + "> closes " + (open.empty() ? std::string("nothing") : "<" + open.back() + ">");
        return false;
      }
      open.pop_back();
    } else if (!self_closed && std::find(kVoid.begin(), kVoid.end(), name) == kVoid.end()) {
      open.push_back(name);
    }
  }
  if (!open.empty()) {
    why = "<" + open.back() + "> is never closed";
    return false;
  }
  return true;
}

BOOST_AUTO_TEST_CASE(the_ratio_is_the_median_of_the_per_round_ratios_and_the_spread_their_range) {
  BenchSeries s;
  s.headline = Headline::iops;
  s.rounds = {round_of(100, 200), round_of(300, 200, false), round_of(150, 100)};
  const SeriesSummary sum = summarize(s);
  BOOST_TEST(sum.ratio == 1.5);  // ratios 0.5, 1.5, 1.5
  BOOST_TEST(sum.ratio_min == 0.5);
  BOOST_TEST(sum.ratio_max == 1.5);
  BOOST_TEST(sum.ours.iops == 150);  // medians of each side on its own
  BOOST_TEST(sum.baseline.iops == 200);
}

BOOST_AUTO_TEST_CASE(an_even_number_of_rounds_takes_the_mean_of_the_middle_two) {
  BenchSeries s;
  s.rounds = {round_of(100, 100), round_of(200, 100), round_of(300, 100), round_of(400, 100)};
  const SeriesSummary sum = summarize(s);
  BOOST_TEST(sum.ratio == 2.5);
  BOOST_TEST(sum.ours.iops == 250);
}

BOOST_AUTO_TEST_CASE(a_bandwidth_workload_is_judged_by_its_bandwidth) {
  BenchSeries s;
  s.headline = Headline::bandwidth;
  BenchRound r = round_of(1000, 1000);
  r.ours.bw_mib = 50;
  r.baseline.bw_mib = 200;
  s.rounds = {r};
  BOOST_TEST(summarize(s).ratio == 0.25);
}

BOOST_AUTO_TEST_CASE(a_baseline_that_measured_nothing_gives_a_ratio_of_zero_not_infinity) {
  BenchSeries s;
  s.rounds = {round_of(100, 0)};
  BOOST_TEST(summarize(s).ratio == 0);
  BOOST_TEST(summarize(BenchSeries{}).ratio == 0);
}

BOOST_AUTO_TEST_CASE(a_rounded_figure_prints_as_text_that_reads_back_as_the_same_number) {
  for (const double v :
       {0.0, 1e-7, 0.012345, 0.99996, 1.0, 3.14159, 87.654321, 999.95, 999.96, 1000.4, 12345.678, 9.87654e9}) {
    const double r = report_round(v);
    BOOST_TEST_INFO(v << " -> " << r << " -> " << format_report_number(r));
    BOOST_TEST(std::stod(format_report_number(r)) == r);
    BOOST_TEST(std::fabs(r - v) <= std::max(0.5, std::fabs(v) * 1e-3));
  }
  BOOST_TEST(format_report_number(report_round(12345.678)) == "12346");
  BOOST_TEST(format_report_number(report_round(3.14159)) == "3.142");
  BOOST_TEST(report_round(std::nan("")) == 0);
}

BOOST_AUTO_TEST_CASE(the_json_holds_the_settings_the_summary_and_every_round) {
  const BenchReport report = coblk::cmd::test::synthetic_report();
  const boost::json::value json = boost::json::parse(report_json_text(report));
  BOOST_TEST(json.at("rounds").to_number<int>() == 3);
  BOOST_TEST(json.at("size_bytes").to_number<double>() == 64.0 * 1024 * 1024);
  BOOST_TEST(json.at("load_start").as_array().size() == 3U);
  const boost::json::array& series = json.at("series").as_array();
  BOOST_TEST_REQUIRE(series.size() == report.series.size());
  for (std::size_t i = 0; i < series.size(); ++i) {
    const SeriesSummary sum = summarize(report.series[i]);
    const boost::json::object& s = series[i].as_object();
    BOOST_TEST(s.at("target").as_string() == report.series[i].target);
    BOOST_TEST(s.at("rounds").as_array().size() == 3U);
    BOOST_TEST(s.at("summary").at("ratio").to_number<double>() == sum.ratio);
    BOOST_TEST(s.at("summary").at("ours").at("iops").to_number<double>() == sum.ours.iops);
    BOOST_TEST(s.at("summary").at("baseline").at("p999_us").to_number<double>() == sum.baseline.p999_us);
    // Raw per-round figures keep their precision.
    BOOST_TEST(s.at("rounds").at(0).at("ours").at("iops").to_number<double>() == report.series[i].rounds[0].ours.iops);
    BOOST_TEST(s.at("headline").as_string() == headline_name(report.series[i].headline));
  }
}

BOOST_AUTO_TEST_CASE(the_html_is_one_balanced_document_with_nothing_external) {
  const std::string html = render_bench_html(coblk::cmd::test::synthetic_report());
  BOOST_TEST(html.rfind("<!DOCTYPE html>\n<html", 0) == 0U);
  std::string why;
  BOOST_TEST(tags_balance(html, why), why);
  for (const char* banned : {"<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import", "@font-face",
                             "http:", "https:", "//"}) {
    BOOST_TEST_INFO(banned);
    BOOST_TEST(html.find(banned) == std::string::npos);
  }
  BOOST_TEST(coblk::cmd::test::count_of(html, "<svg ") == 4U);
}

BOOST_AUTO_TEST_CASE(the_html_shows_every_plot_and_the_numbers_of_the_json) {
  const BenchReport report = coblk::cmd::test::synthetic_report();
  coblk::cmd::test::check_html_matches_json(render_bench_html(report), report_to_json(report));
}

BOOST_AUTO_TEST_CASE(text_from_the_host_is_escaped_in_the_html) {
  const std::string html = render_bench_html(coblk::cmd::test::synthetic_report());
  BOOST_TEST(html.find("test&lt;host&gt; &amp; &quot;quoted&quot; &#39;name&#39;") != std::string::npos);
  BOOST_TEST(html.find("test<host>") == std::string::npos);
  BOOST_TEST(html_escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;");
}

BOOST_AUTO_TEST_CASE(a_report_of_one_series_with_one_round_renders) {
  BenchReport report = coblk::cmd::test::synthetic_report({"null"});
  report.series.resize(1);
  report.series[0].rounds.resize(1);
  coblk::cmd::test::check_html_matches_json(render_bench_html(report), report_to_json(report));
}

BOOST_AUTO_TEST_CASE(each_series_gives_one_result_line_in_the_benchmarks_format) {
  const BenchReport report = coblk::cmd::test::synthetic_report({"null"});
  const std::string line = series_result_line(report.series[2], report);
  BOOST_TEST(line.find('\n') == std::string::npos);
  const boost::json::value v = boost::json::parse(line);
  const SeriesSummary sum = summarize(report.series[2]);
  BOOST_TEST(v.at("bench").as_string() == "ublk_null_seqwrite_1m");
  BOOST_TEST(v.at("unit").as_string() == "MiB/s");
  BOOST_TEST(v.at("ours").to_number<double>() == sum.ours.bw_mib);
  BOOST_TEST(v.at("ratio").to_number<double>() == sum.ratio);
  BOOST_TEST(std::fabs(v.at("spread").to_number<double>() - (sum.ratio_max - sum.ratio_min) / 2) < 1e-3);
  BOOST_TEST(v.at("rounds").to_number<int>() == 3);
}

// fio 3.33's JSON, trimmed to the fields coblk bench reads, with a warning
// line in front as fio prints one at times.
constexpr const char* kFioJson = R"(fio: note: both iodepth >= 1 and synchronous I/O engine are selected
{
  "fio version" : "fio-3.33",
  "jobs" : [
    {
      "jobname" : "coblk-bench",
      "error" : 0,
      "job_runtime" : 3000,
      "read" : {
        "io_bytes" : 122880000, "bw_bytes" : 40960000, "bw" : 40000, "iops" : 10000.5, "total_ios" : 30000,
        "clat_ns" : { "min" : 1000, "mean" : 20000.0,
          "percentile" : { "50.000000" : 18432, "99.000000" : 70144, "99.900000" : 1318912 } }
      },
      "write" : {
        "io_bytes" : 0, "bw_bytes" : 0, "bw" : 0, "iops" : 0.0, "total_ios" : 0,
        "clat_ns" : { "min" : 0, "mean" : 0.0 }
      },
      "usr_cpu" : 10.0,
      "sys_cpu" : 30.0
    }
  ]
}
)";

BOOST_AUTO_TEST_CASE(fio_json_gives_the_rates_the_percentiles_and_the_cpu_per_io) {
  const auto f = parse_fio_json(kFioJson);
  BOOST_TEST_REQUIRE(f.ok());
  BOOST_TEST(f->iops == 10000.5);
  BOOST_TEST(f->bw_mib == 40960000.0 / (1024 * 1024));
  BOOST_TEST(f->p50_us == 18.432);
  BOOST_TEST(f->p99_us == 70.144);
  BOOST_TEST(f->p999_us == 1318.912);
  BOOST_TEST(f->ios == 30000U);
  // 40% of one CPU over 3 s = 1.2 s of CPU for 30000 I/Os: 40 us each.
  BOOST_TEST(std::fabs(f->fio_cpu_us - 40) < 1e-9);
}

BOOST_AUTO_TEST_CASE(fio_output_that_is_not_its_json_is_refused) {
  BOOST_TEST(!parse_fio_json("fio: engine io_uring not loadable\n").ok());
  BOOST_TEST(!parse_fio_json("{\"jobs\": [ {\"read\": ").ok());
  BOOST_TEST(!parse_fio_json("{\"jobs\": []}").ok());
  BOOST_TEST(!parse_fio_json("{\"jobs\": [{\"error\": 5, \"read\": {\"iops\": 1}}]}").ok());
  BOOST_TEST(!parse_fio_json("{\"jobs\": [{\"error\": 0}]}").ok());
}

BOOST_AUTO_TEST_CASE(the_fio_command_line_asks_for_json_and_the_three_percentiles) {
  FioJob job;
  job.filename = "/dev/ublkb1";
  job.workload = *find_bench_workload("randread_4k_qd32");
  job.size_bytes = 1 << 20;
  const std::vector<std::string> args = fio_arguments(job);
  for (const char* want : {"--output-format=json", "--percentile_list=50:99:99.9", "--iodepth=32", "--rw=randread",
                           "--filename=/dev/ublkb1", "--size=1048576", "--direct=1"}) {
    BOOST_TEST_INFO(want);
    BOOST_TEST((std::find(args.begin(), args.end(), want) != args.end()));
  }
  BOOST_TEST(find_bench_workload("randread_4k_qd64") == nullptr);
  BOOST_TEST(bench_workloads().size() == 5U);
}

BOOST_AUTO_TEST_CASE(a_program_is_found_in_path_or_by_its_path) {
  BOOST_TEST(!find_program("sh").empty());
  BOOST_TEST(find_program("/bin/sh") == "/bin/sh");
  BOOST_TEST(find_program("coblk-no-such-program").empty());
  BOOST_TEST(find_program("/nonexistent/fio").empty());
}

BOOST_AUTO_TEST_CASE(a_program_that_runs_past_its_time_limit_is_killed_and_the_run_fails_with_etimedout) {
  const auto start = std::chrono::steady_clock::now();
  // What it printed before the limit does not make the run a success.
  const coblk::Result<std::string> r =
      run_capture({"sh", "-c", "echo started; exec sleep 30"}, std::chrono::seconds(1));
  const auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ETIMEDOUT);
  BOOST_TEST(r.error().message().find("did not finish within 1 s") != std::string::npos);
  BOOST_TEST((took < std::chrono::seconds(15)));
}

BOOST_AUTO_TEST_CASE(a_program_that_closes_its_output_but_runs_on_is_still_held_to_its_limit) {
  const coblk::Result<std::string> r =
      run_capture({"sh", "-c", "exec >&- 2>&-; exec sleep 30"}, std::chrono::seconds(1));
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ETIMEDOUT);
}

BOOST_AUTO_TEST_CASE(a_program_that_finishes_within_its_limit_gives_its_output) {
  const coblk::Result<std::string> r = run_capture({"sh", "-c", "echo done"}, std::chrono::seconds(30));
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST(*r == "done\n");
}

BOOST_AUTO_TEST_CASE(fio_gets_twice_its_runtime_plus_two_minutes_and_a_fill_a_second_per_four_mebibytes) {
  BOOST_TEST(fio_run_limit(3).count() == 126);
  BOOST_TEST(fio_fill_limit(std::uint64_t{256} << 20).count() == 184);
}

}  // namespace

BOOST_AUTO_TEST_SUITE_END()  // cmd_bench_report_test
