// cmd/bench_report.h - `coblk bench`'s results: per-round fio figures of both sides, their summary, and the JSON.
#pragma once

// `coblk bench` runs each workload on a coblk device ("ours") and on the
// kernel's matching device ("baseline") in alternating order, round after
// round. This file holds what it measured and the arithmetic every report
// shares: per side the median of the rounds, the median of the per-round
// ratios and their range. No I/O, no clock: the report writers
// (report_to_json here, render_bench_html in cmd/bench_html.h) are pure
// functions, tested on synthetic results.

#include <array>
#include <boost/json/value.hpp>
#include <string>
#include <vector>

namespace coblk::cmd {

/// What one fio run of one side measured (fio's group-reported job).
struct FioFigures {
  double iops = 0;             ///< requests per second, reads and writes together
  double bw_mib = 0;           ///< MiB (2^20 bytes) per second, reads and writes together
  double p50_us = 0;           ///< completion latency, 50th percentile, microseconds
  double p99_us = 0;           ///< completion latency, 99th percentile, microseconds
  double p999_us = 0;          ///< completion latency, 99.9th percentile, microseconds
  double fio_cpu_us = 0;       ///< fio's own CPU time (user + system) per I/O, microseconds
  double server_cpu_us = 0;    ///< the ublk server\'s CPU time per I/O, microseconds; 0 for a kernel device
  unsigned long long ios = 0;  ///< I/Os completed in the run
};

/// One round of one workload: both sides, and which ran first.
struct BenchRound {
  FioFigures ours;         ///< the coblk device
  FioFigures baseline;     ///< the kernel's device
  bool ours_first = true;  ///< rounds alternate, so drift on the host hits both sides alike
  double load_1m = 0;      ///< the host's 1-minute load average when the round started
};

/// Which figure a workload is judged by: IOPS for small blocks, bandwidth for large.
enum class Headline { iops, bandwidth };

/// One workload on one target: the devices and every round.
struct BenchSeries {
  std::string target;                  ///< coblk's target: null, ram, zram or loop
  std::string workload;                ///< e.g. "randread_4k_qd32" (cmd/bench_fio.h lists them)
  std::string ours_device;             ///< e.g. "/dev/ublkb3"
  std::string baseline_device;         ///< e.g. "/dev/nullb1"
  std::string baseline_kind;           ///< the kernel driver: null_blk, brd, zram or loop
  Headline headline = Headline::iops;  ///< the figure the ratio is taken of
  std::vector<BenchRound> rounds;      ///< in the order they ran
};

/// A whole `coblk bench` run: its settings, the host's load and every series.
struct BenchReport {
  std::string started_at;              ///< UTC, ISO 8601 ("2026-11-30T20:00:00Z")
  std::string host;                    ///< the kernel's node name and release, from uname
  std::string coblk_version;           ///< the version of the coblk that ran it
  unsigned rounds = 0;                 ///< rounds asked for (each series has this many)
  double runtime_s = 0;                ///< fio's --runtime of each run
  unsigned long long size_bytes = 0;   ///< each device's size, and fio's --size
  unsigned queues = 1;                 ///< queues of each coblk device, and fio jobs
  std::array<double, 3> load_start{};  ///< /proc/loadavg's 1, 5 and 15-minute averages at the start
  std::array<double, 3> load_end{};    ///< the same at the end
  std::vector<BenchSeries> series;     ///< in the order they ran
};

/// The medians of one side's rounds, each figure on its own (the p99 shown
/// is the median of the rounds' p99s, not a p99 over every request).
using SideSummary = FioFigures;

/// A series reduced to what the report shows; every number already rounded
/// by report_round, so the JSON and the HTML carry the same values.
struct SeriesSummary {
  SideSummary ours;          ///< medians of the coblk device's rounds
  SideSummary baseline;      ///< medians of the kernel device's rounds
  double ratio = 0;          ///< median of the per-round ours / baseline of the headline figure (> 1: coblk is faster)
  double ratio_min = 0;      ///< the smallest per-round ratio
  double ratio_max = 0;      ///< the largest per-round ratio
  double fio_cpu_ratio = 0;  ///< median of the per-round fio CPU per I/O, ours / baseline (0 when unknown)
};

/// Rounds a figure the way the reports print it: to a whole number from
/// 1000 up, else to 4 significant digits. The JSON stores the rounded value
/// and the HTML prints it with format_report_number, so the two agree exactly.
double report_round(double value);

/// The text of a report_round'ed value: "12345", "987.6", "0.1234", "0".
/// std::stod of the text gives back `value` when `value` came from report_round.
std::string format_report_number(double value);

/// The per-round ratio of the headline figure: ours / baseline, 0 when the
/// baseline measured nothing.
double round_ratio(const BenchRound& round, Headline headline);

/// The summary of `series`; zeros when it has no rounds.
SeriesSummary summarize(const BenchSeries& series);

/// The whole report as JSON: the settings, the load averages, and per series
/// its devices, its summary (the rounded numbers of the HTML) and every
/// round's raw figures. docs/performance.md describes the fields.
boost::json::value report_to_json(const BenchReport& report);

/// report_to_json, serialized, with a final newline.
std::string report_json_text(const BenchReport& report);

/// One line of JSON for `series` (no newline) in the format every coblk
/// benchmark prints (perf/ab_report.h, docs/performance.md): "bench"
/// ("ublk_<target>_<workload>"), "ours", "baseline" (headline medians),
/// "unit", "ratio", "spread" ((max - min) / 2 of the per-round ratios),
/// "ratio_min", "ratio_max", "rounds", "ours_fio_cpu_us",
/// "baseline_fio_cpu_us", "ours_srv_cpu_us", and the load averages of `report`.
std::string series_result_line(const BenchSeries& series, const BenchReport& report);

/// The headline's name as the JSON and the HTML spell it: "iops" or "bandwidth".
const char* headline_name(Headline headline);

}  // namespace coblk::cmd
