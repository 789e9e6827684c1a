// cmd/bench_html.h - `coblk bench`'s HTML report: one offline file of tables and inline SVG plots.
#pragma once

// The page is one file that opens offline: its style is an inline <style>,
// its plots inline <svg> elements, and it has no <script>, no <link>, no
// image and no URL. Every number it shows is a summary figure of
// cmd/bench_report.h printed with format_report_number, so it equals the
// JSON report's value. The elements the tests (test/cmd/bench_report_test.cc,
// test/cmd/bench_report_chromium_test.cc) look for:
//
//   <td id="sI-ours-iops">, sI-baseline-iops, ...-bw_mib, -p50_us, -p99_us,
//   -p999_us, -fio_cpu_us; sI-ours-server_cpu_us; sI-ratio, sI-ratio_min,
//   sI-ratio_max  (series I)
//   <td id="load-start-1m">, load-start-5m, load-start-15m, load-end-...
//   <svg id="plot-iops">       2 <rect class="bar ..."> per series
//   <svg id="plot-bandwidth">  2 per series
//   <svg id="plot-latency">    6 per series (p50, p99, p99.9 of each side)
//   <svg id="plot-ratio">      per series one <circle class="ratio"> and one <line class="spread">
//
// Each bar, dot and spread line carries data-series="I" and its figure in
// data-value (data-min/data-max for a spread line), printed as in the tables.

#include <string>

#include "coblk/cmd/bench_report.h"

namespace coblk::cmd {

/// The whole HTML page for `report`.
std::string render_bench_html(const BenchReport& report);

/// `text` with &, <, >, " and ' replaced by character references, for text
/// and attribute values.
std::string html_escape(const std::string& text);

}  // namespace coblk::cmd
