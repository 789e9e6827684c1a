#pragma once
// Side-by-side measurement for bench_codec: runs "ours" and "baseline"
// alternately, repeated, and reports medians, the median of the per-round
// ratio and its spread, as one JSON line.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace compress::bench {

/// Results land here so the compiler cannot drop the measured work.
inline volatile std::uint64_t sink;

/// Medians of both sides in the reported unit, the median of per-round
/// ours/baseline ratios, and the spread of those ratios: (p75 - p25) / median.
struct AbResult {
    double ours = 0;
    double baseline = 0;
    double ratio = 0;
    double spread = 0;
};

inline double seconds_of(auto&& call, int iterations) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) sink = sink + call();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

inline double quantile(std::vector<double> values, double q) {
    std::sort(values.begin(), values.end());
    const double position = q * static_cast<double>(values.size() - 1);
    const auto low = static_cast<std::size_t>(position);
    const std::size_t high = std::min(low + 1, values.size() - 1);
    return values[low] + (values[high] - values[low]) * (position - static_cast<double>(low));
}

/// Each call of `ours` / `baseline` does one pass over the same input and
/// returns a checksum. A round times each side once, swapping which goes
/// first every round so neither always runs on a warmer cache or clock.
/// Each timing repeats the pass enough to last at least `min_seconds`.
/// `value_of(seconds_per_pass)` converts to the reported unit.
template <class Ours, class Baseline, class Value>
AbResult measure_ab(Ours&& ours, Baseline&& baseline, int rounds, Value&& value_of, double min_seconds = 0.01) {
    (void)seconds_of(ours, 1); // warm caches and lazy state of both sides
    (void)seconds_of(baseline, 1);
    const double once = std::max(seconds_of(ours, 1), 1e-9);
    const int iterations = std::max(1, static_cast<int>(std::ceil(min_seconds / once)));
    std::vector<double> ours_values, baseline_values, ratios;
    for (int round = 0; round < rounds; ++round) {
        double ours_seconds, baseline_seconds;
        if (round % 2 == 0) {
            ours_seconds = seconds_of(ours, iterations);
            baseline_seconds = seconds_of(baseline, iterations);
        } else {
            baseline_seconds = seconds_of(baseline, iterations);
            ours_seconds = seconds_of(ours, iterations);
        }
        ours_values.push_back(value_of(ours_seconds / iterations));
        baseline_values.push_back(value_of(baseline_seconds / iterations));
        ratios.push_back(ours_values.back() / baseline_values.back());
    }
    AbResult result;
    result.ours = quantile(ours_values, 0.5);
    result.baseline = quantile(baseline_values, 0.5);
    result.ratio = quantile(ratios, 0.5);
    result.spread = (quantile(ratios, 0.75) - quantile(ratios, 0.25)) / result.ratio;
    return result;
}

/// Prints one JSON line; `extra` is either empty or starts with a comma.
inline void print_result(const std::string& bench, const AbResult& result, const char* unit,
                         const std::string& extra = {}) {
    std::printf("{\"bench\":\"%s\",\"ours\":%.4g,\"baseline\":%.4g,\"unit\":\"%s\",\"ratio\":%.3f,\"spread\":%.3f%s}\n",
                bench.c_str(), result.ours, result.baseline, unit, result.ratio, result.spread, extra.c_str());
    std::fflush(stdout);
}

} // namespace compress::bench
