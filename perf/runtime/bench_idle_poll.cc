// bench_idle_poll: what idle polling (ReactorConfig::idle_poll_us) buys in
// cross-core latency and what it costs in CPU, polling on against polling
// off, side by side in one run.
//
//   bench_idle_poll [--quick] [--rounds N] [--budget S] [--ops N] [--poll-us N]
//
// Each side of each round is a fresh two-core Runtime (CPUs 0 and 1): ours
// with idle_poll_us = N (default: the ReactorConfig default), the baseline
// with idle_poll_us = 0 (every idle reactor sleeps at once, the behaviour
// before idle polling). Which side goes first alternates by round.
//
// Results, one per gap between round trips (`gap_us`: 0, 20, 200, 2000):
//   submit_to_rtt_gap<G>  core 0 times `co_await submit_to(1, [i] { return i
//                         + 1; })` one by one, sleeping G us (a timer, so
//                         core 0 is idle too) between two; the median of
//                         per-round medians, in ns, and `ours_p99` /
//                         `baseline_p99` over all samples of each side.
//                         Extra fields `ours_busy_pct` / `baseline_busy_pct`:
//                         the process's CPU time (user + system) over the
//                         measured stretch, in % of the two cores.
//   idle_cpu              both cores with nothing to do for 200 ms (main
//                         sleeps): busy % of the two cores, ours against
//                         baseline (ratio baseline/ours: < 1 means polling
//                         costs CPU; both are ~0 when truly idle).
// Every line carries `idle_poll_us` and `loadavg_1m`.

#include <time.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "perf/ab_report.h"
#include "perf/runtime/bench_config.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;

namespace {

double loadavg_1m() {
  double load[3];
  return getloadavg(load, 3) >= 1 ? load[0] : -1;
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct SideResult {
  std::vector<double> rtt_ns;
  double busy_pct = 0;  // of the two cores
};

// `count` round trips core 0 -> core 1 -> core 0 with `gap_us` of idleness
// before each, on a fresh Runtime with `idle_poll_us`.
SideResult run_side(unsigned idle_poll_us, unsigned gap_us, std::size_t count) {
  runtime::RuntimeConfig config = perf::bench_runtime_config({0, 1});
  config.reactor.idle_poll_us = idle_poll_us;
  const auto rt = perf::bench_runtime(config);
  SideResult out;
  rt->run([&]() -> Task<void> {
    for (std::size_t i = 0; i < 20; ++i) {  // both cores up and warm
      (void)co_await runtime::submit_to(1, [i] { return i; });
    }
    out.rtt_ns.reserve(count);
    const double cpu_start = process_cpu_seconds();
    const double wall_start = perf::now_seconds();
    for (std::size_t i = 0; i < count; ++i) {
      if (gap_us != 0) {
        co_await runtime::sleep_for(std::chrono::microseconds(gap_us));
      }
      const auto start = std::chrono::steady_clock::now();
      const std::size_t answer = co_await runtime::submit_to(1, [i] { return i + 1; });
      out.rtt_ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count());
      if (answer != i + 1) {
        throw std::runtime_error("submit_to returned a wrong answer");
      }
    }
    const double wall = perf::now_seconds() - wall_start;
    out.busy_pct = 100.0 * (process_cpu_seconds() - cpu_start) / (2.0 * wall);
  });
  return out;
}

// Busy % of the two cores while neither has anything to do for `seconds`.
double idle_busy_pct(unsigned idle_poll_us, double seconds) {
  runtime::RuntimeConfig config = perf::bench_runtime_config({0, 1});
  config.reactor.idle_poll_us = idle_poll_us;
  const auto rt = perf::bench_runtime(config);
  double pct = 0;
  rt->run([&]() -> Task<void> {
    co_await runtime::submit_to(1, [] {});  // core 1 has run, and is now idle
    const double cpu_start = process_cpu_seconds();
    const double wall_start = perf::now_seconds();
    co_await runtime::sleep_for(std::chrono::microseconds(static_cast<long>(seconds * 1e6)));
    pct = 100.0 * (process_cpu_seconds() - cpu_start) / (2.0 * (perf::now_seconds() - wall_start));
  });
  return pct;
}

void rtt_series(const perf::BenchOptions& options, unsigned poll_us, unsigned gap_us, double share) {
  // Enough round trips for a p99, and for a round of roughly --seconds.
  std::size_t count = options.ops != 0 ? options.ops : options.quick ? 200 : 2000;
  if (gap_us >= 200 && options.ops == 0) {
    count = options.quick ? 50 : 400;
  }
  perf::AbSeries series("submit_to_rtt_gap" + std::to_string(gap_us) + "us", "ns", perf::Better::lower);
  std::vector<double> all_ours, all_baseline;
  double ours_busy = 0, baseline_busy = 0;
  int rounds = 0;
  const double load_start = loadavg_1m();
  const perf::RoundBudget budget(options, share);
  for (int round = 0; budget.next(round); ++round) {
    SideResult ours, baseline;
    if (round % 2 == 0) {
      ours = run_side(poll_us, gap_us, count);
      baseline = run_side(0, gap_us, count);
    } else {
      baseline = run_side(0, gap_us, count);
      ours = run_side(poll_us, gap_us, count);
    }
    series.add(perf::median(ours.rtt_ns), perf::median(baseline.rtt_ns));
    all_ours.insert(all_ours.end(), ours.rtt_ns.begin(), ours.rtt_ns.end());
    all_baseline.insert(all_baseline.end(), baseline.rtt_ns.begin(), baseline.rtt_ns.end());
    ours_busy += ours.busy_pct;
    baseline_busy += baseline.busy_pct;
    ++rounds;
  }
  series.print(perf::json_text("baseline_is", "the same runtime with idle_poll_us = 0") +
               perf::json_number("idle_poll_us", poll_us) + perf::json_number("gap_us", gap_us) +
               perf::json_text("statistic", "median round trip") +
               perf::json_number("ours_p99", perf::quantile(all_ours, 0.99)) +
               perf::json_number("baseline_p99", perf::quantile(all_baseline, 0.99)) +
               perf::json_number("ours_busy_pct", ours_busy / rounds) +
               perf::json_number("baseline_busy_pct", baseline_busy / rounds) +
               perf::json_number("loadavg_1m", (load_start + loadavg_1m()) / 2));
}

void idle_series(const perf::BenchOptions& options, unsigned poll_us, double share) {
  const double seconds = options.quick ? 0.05 : 0.2;
  perf::AbSeries series("idle_cpu", "% of 2 cores", perf::Better::lower);
  const double load_start = loadavg_1m();
  const perf::RoundBudget budget(options, share);
  for (int round = 0; budget.next(round); ++round) {
    double ours, baseline;
    if (round % 2 == 0) {
      ours = idle_busy_pct(poll_us, seconds);
      baseline = idle_busy_pct(0, seconds);
    } else {
      baseline = idle_busy_pct(0, seconds);
      ours = idle_busy_pct(poll_us, seconds);
    }
    // A ratio of two near-zero numbers is noise; floor both at 0.01 %.
    series.add(ours < 0.01 ? 0.01 : ours, baseline < 0.01 ? 0.01 : baseline);
  }
  series.print(perf::json_text("baseline_is", "the same runtime with idle_poll_us = 0") +
               perf::json_number("idle_poll_us", poll_us) + perf::json_number("idle_seconds", seconds) +
               perf::json_number("loadavg_1m", (load_start + loadavg_1m()) / 2));
}

}  // namespace

int main(int argc, char** argv) {
  // --poll-us is ours; the rest goes to the common parser.
  unsigned poll_us = runtime::ReactorConfig{}.idle_poll_us;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--poll-us") == 0 && i + 1 < argc) {
      poll_us = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      args.push_back(argv[i]);
    }
  }
  const auto options = perf::BenchOptions::parse(static_cast<int>(args.size()), args.data(),
                                                 "[--quick] [--rounds N] [--budget S] [--ops N] [--poll-us N]");
  if (poll_us == 0) {
    std::fprintf(stderr, "bench_idle_poll: --poll-us must be positive (0 is the baseline)\n");
    return 2;
  }
  try {
    const unsigned gaps[] = {0, 20, 200, 2000};
    const double share = 1.0 / 5;
    for (unsigned gap : gaps) {
      rtt_series(options, poll_us, gap, share);
    }
    idle_series(options, poll_us, share);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_idle_poll: %s\n", e.what());
    return 1;
  }
  return 0;
}
