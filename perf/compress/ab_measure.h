#pragma once
// Side-by-side timing for bench_codec and bench_store: runs "ours" and "baseline"
// alternately, repeated, and reports medians, the median of the per-round
// ratio and its spread (perf/ab_report.h), as one JSON line.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include "perf/ab_report.h"

namespace coblk::compress::bench {

/// Medians of both sides in the reported unit, the median of per-round
/// ours/baseline ratios, and their spread, as perf::AbSeries defines it
/// (half the range of the per-round ratios), like every other benchmark.
struct AbResult {
  double ours = 0;
  double baseline = 0;
  double ratio = 0;
  double spread = 0;
  std::size_t rounds = 0;
};

inline double seconds_of(auto&& call, int iterations) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) perf::sink = perf::sink + call();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Each call of `ours` / `baseline` does one pass over the same input and
/// returns a checksum. A round times each side once, swapping which goes
/// first every round so neither always runs on a warmer cache or clock.
/// Each timing repeats the pass enough to last at least `min_seconds`.
/// `value_of(seconds_per_pass)` converts to the reported unit.
template <class Ours, class Baseline, class Value>
AbResult measure_ab(Ours&& ours, Baseline&& baseline, int rounds, Value&& value_of,
                    perf::Better better = perf::Better::higher, double min_seconds = 0.01) {
  (void)seconds_of(ours, 1);  // warm caches and lazy state of both sides
  (void)seconds_of(baseline, 1);
  const double once = std::max(seconds_of(ours, 1), 1e-9);
  const int iterations = std::max(1, static_cast<int>(std::ceil(min_seconds / once)));
  // As everywhere (perf/ab_report.h): ratio > 1 means ours is better, so
  // a time unit (ns/page) passes Better::lower.
  perf::AbSeries series({}, {}, better);
  for (int round = 0; round < rounds; ++round) {
    double ours_seconds, baseline_seconds;
    if (round % 2 == 0) {
      ours_seconds = seconds_of(ours, iterations);
      baseline_seconds = seconds_of(baseline, iterations);
    } else {
      baseline_seconds = seconds_of(baseline, iterations);
      ours_seconds = seconds_of(ours, iterations);
    }
    series.add(value_of(ours_seconds / iterations), value_of(baseline_seconds / iterations));
  }
  return AbResult{series.ours(), series.baseline(), series.ratio(), series.spread(), series.rounds()};
}

/// Prints one JSON line; `extra` is either empty or starts with a comma.
inline void print_result(const std::string& bench, const AbResult& result, const char* unit,
                         const std::string& extra = {}) {
  std::printf(
      "{\"bench\":\"%s\",\"ours\":%.4g,\"baseline\":%.4g,\"unit\":\"%s\",\"ratio\":%.3f,\"spread\":%.3f,"
      "\"rounds\":%zu%s}\n",
      bench.c_str(), result.ours, result.baseline, unit, result.ratio, result.spread, result.rounds, extra.c_str());
  std::fflush(stdout);
}

}  // namespace coblk::compress::bench
