// `coblk bench`'s HTML report (cmd/bench_html.h): summary tables and four
// inline SVG plots, drawn with horizontal bars so that long series names
// fit as row labels.
#include "coblk/cmd/bench_html.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

namespace coblk::cmd {
namespace {

// Geometry of every plot, in SVG user units (= CSS pixels).
constexpr double kLabelWidth = 220;  // series names, left of the bars
constexpr double kPlotWidth = 480;   // the bars' span
constexpr double kValueWidth = 90;   // room for the value printed after the longest bar
constexpr double kTop = 30;          // legend
constexpr double kBottom = 28;       // axis ticks
constexpr double kWidth = kLabelWidth + kPlotWidth + kValueWidth;

// Coordinates with one decimal: enough for a screen, short in the file.
std::string coord(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", v);
  return text;
}

std::string series_name(const BenchSeries& s) { return s.target + " " + s.workload; }

const char* side_name(bool ours) { return ours ? "coblk" : "kernel"; }

// A legend of the two sides, at the top of a plot.
void legend(std::ostringstream& out, const std::string& baseline_label) {
  out << "<rect class=\"key ours\" x=\"" << kLabelWidth << "\" y=\"8\" width=\"12\" height=\"12\"/>"
      << "<text x=\"" << kLabelWidth + 16 << "\" y=\"18\">coblk</text>"
      << "<rect class=\"key baseline\" x=\"" << kLabelWidth + 80 << "\" y=\"8\" width=\"12\" height=\"12\"/>"
      << "<text x=\"" << kLabelWidth + 96 << "\" y=\"18\">" << html_escape(baseline_label) << "</text>";
}

// Tick marks and labels under a plot at `y`, for a linear axis 0..`max`.
void linear_axis(std::ostringstream& out, double y, double max) {
  out << "<line class=\"axis\" x1=\"" << kLabelWidth << "\" y1=\"" << coord(y) << "\" x2=\"" << kLabelWidth + kPlotWidth
      << "\" y2=\"" << coord(y) << "\"/>";
  for (int i = 0; i <= 4; ++i) {
    const double x = kLabelWidth + kPlotWidth * i / 4;
    out << "<text class=\"tick\" x=\"" << coord(x) << "\" y=\"" << coord(y + 16) << "\">"
        << format_report_number(report_round(max * i / 4)) << "</text>";
  }
}

// One bar of a side: a rect with its figure, a tooltip, and the figure
// printed after it.
void bar(std::ostringstream& out, std::size_t series, bool ours, double y, double height, double length, double value,
         const std::string& tooltip) {
  const std::string v = format_report_number(value);
  out << "<rect class=\"bar " << (ours ? "ours" : "baseline") << "\" data-series=\"" << series << "\" data-value=\""
      << v << "\" x=\"" << kLabelWidth << "\" y=\"" << coord(y) << "\" width=\"" << coord(std::max(0.0, length))
      << "\" height=\"" << coord(height) << "\"><title>" << html_escape(tooltip) << ": " << v << "</title></rect>"
      << "<text class=\"val\" x=\"" << coord(kLabelWidth + std::max(0.0, length) + 4) << "\" y=\""
      << coord(y + height - 2) << "\">" << v << "</text>";
}

std::string svg_open(const char* id, double height, const char* what) {
  std::ostringstream out;
  out << "<svg id=\"" << id << "\" role=\"img\" aria-label=\"" << what << "\" width=\"" << kWidth << "\" height=\""
      << coord(height) << "\" viewBox=\"0 0 " << kWidth << ' ' << coord(height) << "\">";
  return out.str();
}

// The IOPS or bandwidth plot: per series a bar of each side, linear axis.
std::string throughput_plot(const BenchReport& report, const std::vector<SeriesSummary>& sums, bool iops) {
  constexpr double kRow = 36;
  const double height = kTop + kRow * static_cast<double>(report.series.size()) + kBottom;
  double max = 0;
  for (const SeriesSummary& s : sums) {
    max = std::max({max, iops ? s.ours.iops : s.ours.bw_mib, iops ? s.baseline.iops : s.baseline.bw_mib});
  }
  if (max <= 0) max = 1;
  std::ostringstream out;
  out << svg_open(iops ? "plot-iops" : "plot-bandwidth", height, iops ? "IOPS per series" : "MiB/s per series");
  legend(out, "kernel");
  for (std::size_t i = 0; i < report.series.size(); ++i) {
    const double y = kTop + kRow * static_cast<double>(i);
    out << "<text class=\"label\" x=\"" << kLabelWidth - 6 << "\" y=\"" << coord(y + 18) << "\">"
        << html_escape(series_name(report.series[i])) << "</text>";
    for (const bool ours : {true, false}) {
      const SideSummary& side = ours ? sums[i].ours : sums[i].baseline;
      const double v = iops ? side.iops : side.bw_mib;
      const std::string device = ours ? report.series[i].ours_device : report.series[i].baseline_device;
      bar(out, i, ours, y + (ours ? 2 : 16), 13, kPlotWidth * v / max, v,
          series_name(report.series[i]) + ", " + side_name(ours) + " " + device + (iops ? ", IOPS" : ", MiB/s"));
    }
  }
  linear_axis(out, height - kBottom + 2, max);
  out << "</svg>";
  return out.str();
}

// Latency percentiles: per series three pairs of bars on a log axis, which
// keeps a p50 of 20 us and a p99.9 of 20 ms readable in one plot.
std::string latency_plot(const BenchReport& report, const std::vector<SeriesSummary>& sums) {
  constexpr double kBar = 8;
  constexpr double kGroup = 2 * kBar + 4;
  constexpr double kRow = 3 * kGroup + 12;
  const double height = kTop + kRow * static_cast<double>(report.series.size()) + kBottom;
  double lo = 0;
  double hi = 0;
  for (const SeriesSummary& s : sums) {
    for (const double v :
         {s.ours.p50_us, s.ours.p99_us, s.ours.p999_us, s.baseline.p50_us, s.baseline.p99_us, s.baseline.p999_us}) {
      if (v <= 0) continue;
      lo = lo == 0 ? v : std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  // Whole decades, at least one.
  const double lo_exp = lo > 0 ? std::floor(std::log10(lo)) : 0;
  const double hi_exp = std::max(lo_exp + 1, hi > 0 ? std::ceil(std::log10(hi)) : 1);
  const auto length = [&](double v) {
    if (v <= 0) return 0.0;
    return kPlotWidth * (std::log10(v) - lo_exp) / (hi_exp - lo_exp);
  };
  std::ostringstream out;
  out << svg_open("plot-latency", height, "completion latency percentiles per series, log scale");
  legend(out, "kernel");
  static constexpr const char* kNames[] = {"p50", "p99", "p99.9"};
  for (std::size_t i = 0; i < report.series.size(); ++i) {
    const double y = kTop + kRow * static_cast<double>(i);
    // The series' name left of its three percentile labels.
    out << "<text class=\"label\" x=\"" << kLabelWidth - 44 << "\" y=\"" << coord(y + kGroup + 14) << "\">"
        << html_escape(series_name(report.series[i])) << "</text>";
    for (int p = 0; p < 3; ++p) {
      const double gy = y + kGroup * p;
      out << "<text class=\"sub\" x=\"" << kLabelWidth - 6 << "\" y=\"" << coord(gy + kGroup - 2) << "\">" << kNames[p]
          << "</text>";
      for (const bool ours : {true, false}) {
        const SideSummary& side = ours ? sums[i].ours : sums[i].baseline;
        const double v = p == 0 ? side.p50_us : p == 1 ? side.p99_us : side.p999_us;
        bar(out, i, ours, gy + (ours ? 0 : kBar + 1), kBar, length(v), v,
            series_name(report.series[i]) + ", " + side_name(ours) + " " + kNames[p] + " us");
      }
    }
  }
  // Decade ticks.
  const double axis_y = height - kBottom + 2;
  out << "<line class=\"axis\" x1=\"" << kLabelWidth << "\" y1=\"" << coord(axis_y) << "\" x2=\""
      << kLabelWidth + kPlotWidth << "\" y2=\"" << coord(axis_y) << "\"/>";
  for (double e = lo_exp; e <= hi_exp; e += 1) {
    const double x = kLabelWidth + kPlotWidth * (e - lo_exp) / (hi_exp - lo_exp);
    out << "<text class=\"tick\" x=\"" << coord(x) << "\" y=\"" << coord(axis_y + 16) << "\">"
        << format_report_number(report_round(std::pow(10.0, e))) << " us</text>";
  }
  out << "</svg>";
  return out.str();
}

// The ratio of each series: a dot at the median, a line over the range of
// the per-round ratios, and a reference line at 1 (parity with the kernel).
std::string ratio_plot(const BenchReport& report, const std::vector<SeriesSummary>& sums) {
  constexpr double kRow = 24;
  const double height = kTop + kRow * static_cast<double>(report.series.size()) + kBottom;
  double max = 1.25;
  for (const SeriesSummary& s : sums) max = std::max(max, s.ratio_max * 1.1);
  const auto x_of = [&](double v) { return kLabelWidth + kPlotWidth * std::max(0.0, v) / max; };
  std::ostringstream out;
  out << svg_open("plot-ratio", height, "ratio coblk/kernel per series: median and range of the rounds");
  out << "<text x=\"" << kLabelWidth << "\" y=\"18\">median of the rounds (dot), their range (line); 1 = parity</text>";
  out << "<line class=\"ref\" x1=\"" << coord(x_of(1)) << "\" y1=\"" << kTop - 4 << "\" x2=\"" << coord(x_of(1))
      << "\" y2=\"" << coord(height - kBottom + 2) << "\"/>";
  for (std::size_t i = 0; i < report.series.size(); ++i) {
    const SeriesSummary& s = sums[i];
    const double y = kTop + kRow * static_cast<double>(i) + kRow / 2;
    const std::string name = html_escape(series_name(report.series[i]));
    out << "<text class=\"label\" x=\"" << kLabelWidth - 6 << "\" y=\"" << coord(y + 4) << "\">" << name << "</text>";
    out << "<line class=\"spread\" data-series=\"" << i << "\" data-min=\"" << format_report_number(s.ratio_min)
        << "\" data-max=\"" << format_report_number(s.ratio_max) << "\" x1=\"" << coord(x_of(s.ratio_min)) << "\" y1=\""
        << coord(y) << "\" x2=\"" << coord(x_of(s.ratio_max)) << "\" y2=\"" << coord(y) << "\"><title>" << name
        << ": rounds from " << format_report_number(s.ratio_min) << " to " << format_report_number(s.ratio_max)
        << "</title></line>";
    out << "<circle class=\"ratio\" data-series=\"" << i << "\" data-value=\"" << format_report_number(s.ratio)
        << "\" cx=\"" << coord(x_of(s.ratio)) << "\" cy=\"" << coord(y) << "\" r=\"5\"><title>" << name
        << ": median ratio " << format_report_number(s.ratio) << "</title></circle>";
    out << "<text class=\"val\" x=\"" << coord(std::max(x_of(s.ratio_max), x_of(s.ratio)) + 8) << "\" y=\""
        << coord(y + 4) << "\">" << format_report_number(s.ratio) << "</text>";
  }
  linear_axis(out, height - kBottom + 2, max);
  out << "</svg>";
  return out.str();
}

void cell(std::ostringstream& out, const std::string& id, double value) {
  out << "<td id=\"" << id << "\">" << format_report_number(value) << "</td>";
}

void summary_table(std::ostringstream& out, const BenchReport& report, const std::vector<SeriesSummary>& sums) {
  out << "<table id=\"summary\"><thead><tr><th rowspan=\"2\">target</th><th rowspan=\"2\">workload</th>"
         "<th rowspan=\"2\">kernel device</th><th rowspan=\"2\">judged by</th>"
         "<th colspan=\"3\">ratio coblk/kernel</th><th colspan=\"2\">IOPS</th><th colspan=\"2\">MiB/s</th>"
         "<th colspan=\"3\">coblk latency (us)</th><th colspan=\"3\">kernel latency (us)</th>"
         "<th colspan=\"2\">fio CPU per I/O (us)</th><th rowspan=\"2\">coblk server CPU per I/O "
         "(us)</th></tr><tr><th>median</th><th>min</th><th>max</th>"
         "<th>coblk</th><th>kernel</th><th>coblk</th><th>kernel</th><th>p50</th><th>p99</th><th>p99.9</th>"
         "<th>p50</th><th>p99</th><th>p99.9</th><th>coblk</th><th>kernel</th></tr></thead><tbody>";
  for (std::size_t i = 0; i < report.series.size(); ++i) {
    const BenchSeries& s = report.series[i];
    const SeriesSummary& m = sums[i];
    const std::string p = "s" + std::to_string(i) + "-";
    out << "<tr id=\"s" << i << "\"><td>" << html_escape(s.target) << "</td><td>" << html_escape(s.workload)
        << "</td><td>" << html_escape(s.baseline_kind + " " + s.baseline_device) << "</td><td>"
        << headline_name(s.headline) << "</td>";
    cell(out, p + "ratio", m.ratio);
    cell(out, p + "ratio_min", m.ratio_min);
    cell(out, p + "ratio_max", m.ratio_max);
    cell(out, p + "ours-iops", m.ours.iops);
    cell(out, p + "baseline-iops", m.baseline.iops);
    cell(out, p + "ours-bw_mib", m.ours.bw_mib);
    cell(out, p + "baseline-bw_mib", m.baseline.bw_mib);
    cell(out, p + "ours-p50_us", m.ours.p50_us);
    cell(out, p + "ours-p99_us", m.ours.p99_us);
    cell(out, p + "ours-p999_us", m.ours.p999_us);
    cell(out, p + "baseline-p50_us", m.baseline.p50_us);
    cell(out, p + "baseline-p99_us", m.baseline.p99_us);
    cell(out, p + "baseline-p999_us", m.baseline.p999_us);
    cell(out, p + "ours-fio_cpu_us", m.ours.fio_cpu_us);
    cell(out, p + "baseline-fio_cpu_us", m.baseline.fio_cpu_us);
    cell(out, p + "ours-server_cpu_us", m.ours.server_cpu_us);
    out << "</tr>";
  }
  out << "</tbody></table>";
}

// Every round's headline figures, for a reader who wants to see the spread.
void rounds_table(std::ostringstream& out, const BenchReport& report) {
  out << "<table id=\"rounds\"><thead><tr><th>series</th><th>round</th><th>first</th><th>coblk</th>"
         "<th>kernel</th><th>ratio</th><th>load (1 min)</th></tr></thead><tbody>";
  for (const BenchSeries& s : report.series) {
    for (std::size_t r = 0; r < s.rounds.size(); ++r) {
      const BenchRound& round = s.rounds[r];
      const bool iops = s.headline == Headline::iops;
      out << "<tr><td>" << html_escape(series_name(s)) << "</td><td>" << r + 1 << "</td><td>"
          << side_name(round.ours_first) << "</td><td>"
          << format_report_number(report_round(iops ? round.ours.iops : round.ours.bw_mib)) << "</td><td>"
          << format_report_number(report_round(iops ? round.baseline.iops : round.baseline.bw_mib)) << "</td><td>"
          << format_report_number(report_round(round_ratio(round, s.headline))) << "</td><td>"
          << format_report_number(report_round(round.load_1m)) << "</td></tr>";
    }
  }
  out << "</tbody></table>";
}

constexpr const char* kStyle =
    "body{font-family:sans-serif;margin:1.5em;color:#222;max-width:80em}"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em}"
    "table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}"
    "th,td{border:1px solid #bbb;padding:2px 6px;text-align:right}"
    "th{background:#eee}td:first-child,td:nth-child(2),td:nth-child(3){text-align:left}"
    "svg{display:block;margin:0.5em 0;font-size:11px}"
    "svg text.label,svg text.sub{text-anchor:end}svg text.tick{text-anchor:middle;fill:#555}"
    ".ours{fill:#1f6fb4}.baseline{fill:#e8892b}.axis{stroke:#888}"
    ".ref{stroke:#c00;stroke-dasharray:4 3}.spread{stroke:#333;stroke-width:2}circle.ratio{fill:#1f6fb4}"
    ".note{color:#555;font-size:0.9em}.wide{overflow-x:auto}";

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string render_bench_html(const BenchReport& report) {
  std::vector<SeriesSummary> sums;
  sums.reserve(report.series.size());
  for (const BenchSeries& s : report.series) sums.push_back(summarize(s));
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>coblk bench "
      << html_escape(report.started_at) << "</title><style>" << kStyle << "</style></head><body>\n";
  out << "<h1>coblk bench: coblk's devices against the kernel's</h1>\n";
  out << "<p>" << html_escape(report.host) << ", coblk " << html_escape(report.coblk_version) << ", started "
      << html_escape(report.started_at) << ". Each round runs fio on both devices back to back, alternating which "
      << "goes first; " << report.rounds << " rounds of " << format_report_number(report.runtime_s) << " s per run, "
      << report.size_bytes / (1024 * 1024) << " MiB, " << report.queues << " queue(s) and fio job(s).</p>\n";
  out << "<table id=\"load\"><thead><tr><th>load average</th><th>1 min</th><th>5 min</th><th>15 min</th></tr>"
         "</thead><tbody>";
  for (const bool start : {true, false}) {
    const auto& load = start ? report.load_start : report.load_end;
    const std::string p = start ? "load-start-" : "load-end-";
    out << "<tr><td>" << (start ? "at the start" : "at the end") << "</td>";
    cell(out, p + "1m", report_round(load[0]));
    cell(out, p + "5m", report_round(load[1]));
    cell(out, p + "15m", report_round(load[2]));
    out << "</tr>";
  }
  out << "</tbody></table>\n<h2>Summary</h2>\n<p class=\"note\">Every figure is the median over the rounds. The "
         "ratio is the median of the per-round ratios coblk/kernel of the figure the workload is judged by (IOPS "
         "for 4 KiB, MiB/s for 1 MiB); above 1 coblk is faster. Min and max are the range of the per-round "
         "ratios: the wider it is, the less the median says.</p>\n";
  out << "<div class=\"wide\">";
  summary_table(out, report, sums);
  out << "</div>";
  out << "\n<h2>Ratio coblk/kernel, with its spread</h2>\n" << ratio_plot(report, sums);
  out << "\n<h2>IOPS</h2>\n" << throughput_plot(report, sums, true);
  out << "\n<h2>Bandwidth (MiB/s)</h2>\n" << throughput_plot(report, sums, false);
  out << "\n<h2>Completion latency percentiles (us, log scale)</h2>\n" << latency_plot(report, sums);
  out << "\n<h2>Rounds</h2>\n";
  rounds_table(out, report);
  out << "\n</body></html>\n";
  return out.str();
}

}  // namespace coblk::cmd
