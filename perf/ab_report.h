// perf/ab_report.h - per-round A/B bookkeeping and the JSON result line
// shared by every benchmark (runtime, compress, storage).
//
// Every benchmark alternates "ours" and its baseline inside one
// process, several rounds, rotating which side goes first, and records one
// value per side per round. The result is reported as:
//   ours, baseline  the medians of the per-round values (unit as printed);
//   ratio           the median of the per-round ratios, oriented so that
//                   ratio > 1 always means ours is better: ours/baseline for
//                   rates (ops/s), baseline/ours for times (ns);
//   spread          half the range of the per-round ratios, (max - min) / 2,
//                   in the same units as ratio. It is deliberately the
//                   conservative choice (not the IQR): one disturbed round on
//                   this shared machine shows up in it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace coblk::perf {

/// Results land here so the compiler cannot drop the measured work.
inline volatile unsigned long long sink;

/// Seconds since an arbitrary epoch, from the steady clock.
inline double now_seconds() noexcept {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// The median of `values` (which need not be sorted); 0 for none.
inline double median(std::vector<double> values) {
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

/// The q-quantile (0..1) of `values` by nearest rank; 0 for none.
inline double quantile(std::vector<double> values, double q) {
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::lround(q * static_cast<double>(values.size() - 1)));
  return values[std::min(rank, values.size() - 1)];
}

/// Whether a bigger value of the unit is better (rates) or worse (times).
enum class Better { higher, lower };

/// One benchmark's per-round values of both sides.
class AbSeries {
 public:
  AbSeries(std::string bench, std::string unit, Better better)
      : bench_(std::move(bench)), unit_(std::move(unit)), better_(better) {}

  /// Records one round: the value of ours and of the baseline.
  void add(double ours, double baseline) {
    ours_.push_back(ours);
    baseline_.push_back(baseline);
    ratios_.push_back(better_ == Better::higher ? ours / baseline : baseline / ours);
  }

  /// The median per-round ratio (see the file comment for its orientation).
  double ratio() const { return median(ratios_); }
  /// The median of ours' per-round values.
  double ours() const { return median(ours_); }
  /// The median of the baseline's per-round values.
  double baseline() const { return median(baseline_); }
  /// Rounds recorded.
  std::size_t rounds() const { return ratios_.size(); }
  /// Half the range of the per-round ratios.
  double spread() const {
    if (ratios_.empty()) {
      return 0;
    }
    const auto [lo, hi] = std::minmax_element(ratios_.begin(), ratios_.end());
    return (*hi - *lo) / 2;
  }

  /// Prints the result line; `extra` is empty or starts with a comma.
  void print(const std::string& extra = {}) const {
    std::printf(
        "{\"bench\":\"%s\",\"ours\":%.4g,\"baseline\":%.4g,\"unit\":\"%s\",\"ratio\":%.3f,"
        "\"spread\":%.3f,\"rounds\":%zu%s}\n",
        bench_.c_str(), median(ours_), median(baseline_), unit_.c_str(), ratio(), spread(), ratios_.size(),
        extra.c_str());
    std::fflush(stdout);
  }

 private:
  std::string bench_;
  std::string unit_;
  Better better_;
  std::vector<double> ours_;
  std::vector<double> baseline_;
  std::vector<double> ratios_;
};

/// `,"key":value` for the extra fields of a result line.
inline std::string json_number(const char* key, double value) {
  char text[96];
  std::snprintf(text, sizeof text, ",\"%s\":%.4g", key, value);
  return text;
}

/// `,"key":"value"`.
inline std::string json_text(const char* key, const std::string& value) {
  return std::string(",\"") + key + "\":\"" + value + "\"";
}

/// Command-line options every runtime benchmark accepts:
///   --quick        a smoke run of about a second (few rounds, short rounds);
///   --rounds N     number of A/B rounds (default 11, quick 3);
///   --seconds S    target duration of one side of one round (default 0.1);
///   --no-sqpoll    skip the SQPOLL variants (bench_nop, bench_read);
///   --ops N        fixed work per side per round (operations, items, chains
///                  or round trips) instead of calibrating on --seconds: for
///                  repeatable instruction counts under callgrind;
///   --dir D        directory of bench_read's file (default /dev/shm);
///   --budget S     wall-clock budget of the whole program (default 20 s,
///                  quick 2 s): a series stops adding rounds (after at least
///                  3) once it has used its share, so a loaded machine
///                  cannot stretch a run to minutes.
struct BenchOptions {
  double budget = 20;
  std::string dir = "/dev/shm";
  bool quick = false;
  unsigned long long ops = 0;  // 0: calibrate
  bool sqpoll_variant = true;
  int rounds = 11;
  double seconds = 0.1;

  /// Parses argv; prints usage and exits with status 2 on bad input.
  static BenchOptions parse(int argc, char** argv, const char* usage) {
    BenchOptions o;
    bool rounds_given = false;
    bool seconds_given = false;
    bool budget_given = false;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--quick") {
        o.quick = true;
      } else if (arg == "--no-sqpoll") {
        o.sqpoll_variant = false;
      } else if (arg == "--rounds" && i + 1 < argc) {
        o.rounds = std::atoi(argv[++i]);
        rounds_given = true;
      } else if (arg == "--ops" && i + 1 < argc) {
        o.ops = std::strtoull(argv[++i], nullptr, 10);
        if (o.ops == 0) {
          std::fprintf(stderr, "%s: --ops must be a positive number\n", argv[0]);
          std::exit(2);
        }
      } else if (arg == "--budget" && i + 1 < argc) {
        o.budget = std::atof(argv[++i]);
        budget_given = true;
      } else if (arg == "--dir" && i + 1 < argc) {
        o.dir = argv[++i];
      } else if (arg == "--seconds" && i + 1 < argc) {
        o.seconds = std::atof(argv[++i]);
        seconds_given = true;
      } else if (arg == "--help" || arg == "-h") {
        std::printf("usage: %s %s\n", argv[0], usage);
        std::exit(0);
      } else {
        std::fprintf(stderr, "%s: unknown argument '%s' (usage: %s)\n", argv[0], arg.c_str(), usage);
        std::exit(2);
      }
    }
    if (o.quick) {
      if (!rounds_given) o.rounds = 3;
      if (!seconds_given) o.seconds = 0.01;
      if (!budget_given) o.budget = 2;
    }
    if (o.rounds < 1 || o.rounds > 1000 || !(o.seconds > 0) || o.seconds > 60 || !(o.budget > 0)) {
      std::fprintf(stderr, "%s: --rounds must be 1..1000, --seconds in (0, 60] and --budget > 0\n", argv[0]);
      std::exit(2);
    }
    return o;
  }
};

/// Decides how many rounds a series runs: options.rounds, unless the series
/// has used up its share of the program's --budget, in which case it stops
/// after at least 3 rounds (or options.rounds if fewer).
class RoundBudget {
 public:
  /// `share`: this series' fraction of the budget (e.g. 1.0 / series count).
  RoundBudget(const BenchOptions& options, double share)
      : rounds_(options.rounds), end_(now_seconds() + options.budget * share) {}
  /// True when round number `round` (0-based) should run.
  bool next(int round) const { return round < rounds_ && (round < 3 || now_seconds() < end_); }

 private:
  int rounds_;
  double end_;
};

/// Operation count that makes a side whose measured rate is `ops_per_second`
/// last about `seconds` (or `fixed` when non-zero: --ops), rounded to a
/// multiple of `granule`, at least one granule.
inline unsigned long long ops_for(double ops_per_second, double seconds, unsigned long long granule,
                                  unsigned long long fixed = 0) {
  auto n = fixed != 0 ? fixed : static_cast<unsigned long long>(ops_per_second * seconds);
  n = n / granule * granule;
  return n < granule ? granule : n;
}

}  // namespace coblk::perf
