// bench_histogram: the cost of recording one latency sample into a
// runtime::LatencyHistogram, against a plain per-core counter increment.
//
//   bench_histogram [--quick] [--rounds N] [--seconds S] [--ops N] [--budget S]
//
// Both sides run on this thread, pinned to its first allowed CPU, and walk
// the same 4096 latencies (log-normal around 20 us, with a tail to tens of
// milliseconds: the bucket touched changes from sample to sample, as on the
// I/O path) in the same loop:
//   ours      histogram.record(v)          (bucket index + two counter updates)
//   baseline  counter.add(v)               (runtime::OwnedCounter: one update)
// Printed: ns per sample of each side (medians of the rounds), the ratio
// baseline/ours (< 1: recording costs more than a counter), its spread, the
// extra nanoseconds a sample costs over the counter, whether ours is within
// the 5 ns budget the I/O metrics are held to, and the load average.
//
// A second series, queue_request_metrics, is what a ublk queue adds to each
// request it completes (ublk/queue.cc): a Reactor::task_started() load and
// a CycleClock read around the request, and QueueMetrics::record (the operation's request, byte and
// latency counters), against the one counter increment every request costs
// anyway (Queue::completed). Its extra_ns, set against the time a request
// takes, is the share of IOPS the metrics can cost.

#include <sched.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "coblk/runtime/cycle_clock.h"
#include "coblk/runtime/latency_histogram.h"
#include "coblk/runtime/reactor_stats.h"
#include "coblk/ublk/io_metrics.h"
#include "perf/ab_report.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::size_t kValues = 4096;  // 32 KiB: stays in L1/L2, as a hot I/O path's would
constexpr double kBudgetNs = 5.0;

std::vector<std::uint64_t> latencies() {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> d(std::log(20000.0), 1.2);
  std::vector<std::uint64_t> v(kValues);
  for (auto& x : v) x = static_cast<std::uint64_t>(d(rng));
  return v;
}

// ns per sample of `total` records (a multiple of kValues).
template <typename Sink>
double per_sample_ns(const std::vector<std::uint64_t>& values, std::uint64_t total, Sink&& sink) {
  const double start = perf::now_seconds();
  for (std::uint64_t done = 0; done < total; done += kValues) {
    for (const std::uint64_t v : values) sink(v);
  }
  return (perf::now_seconds() - start) * 1e9 / static_cast<double>(total);
}

void pin_to_first_cpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      (void)::sched_setaffinity(0, sizeof(one), &one);
      return;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = perf::BenchOptions::parse(argc, argv, "[--quick] [--rounds N] [--seconds S] [--ops N]");
  pin_to_first_cpu();
  const std::vector<std::uint64_t> values = latencies();
  // Heap objects, as a queue's metrics are; the compiler cannot see through.
  auto histogram = std::make_unique<runtime::LatencyHistogram<>>();
  auto counter = std::make_unique<runtime::OwnedCounter>();
  auto record = [&](std::uint64_t v) { histogram->record(v); };
  auto count = [&](std::uint64_t v) { counter->add(v); };

  // Calibrate on the counter so both sides do the same work per round.
  const double warm = per_sample_ns(values, kValues * 256, count);
  (void)per_sample_ns(values, kValues * 256, record);
  const std::uint64_t total = perf::ops_for(1e9 / warm, options.seconds, kValues, options.ops);

  perf::AbSeries series("histogram_record", "ns", perf::Better::lower);
  std::vector<double> extra;
  const perf::RoundBudget budget(options, 1.0);
  for (int round = 0; budget.next(round); ++round) {
    double ours, baseline;
    if (round % 2 == 0) {
      ours = per_sample_ns(values, total, record);
      baseline = per_sample_ns(values, total, count);
    } else {
      baseline = per_sample_ns(values, total, count);
      ours = per_sample_ns(values, total, record);
    }
    series.add(ours, baseline);
    extra.push_back(ours - baseline);
  }
  // Both sides must have seen every sample: the work was not optimised away.
  const auto counts = histogram->counts();
  std::uint64_t expected_sum = 0;
  for (const std::uint64_t v : values) expected_sum += v;
  const std::uint64_t rounds_done = series.rounds() + 1;  // + the calibration pass
  if (counts.count() != total * series.rounds() + kValues * 256 || counter->get() == 0 ||
      counts.sum != expected_sum * (total / kValues * series.rounds() + 256)) {
    std::fprintf(stderr, "bench_histogram: the histogram lost samples (%llu rounds)\n",
                 static_cast<unsigned long long>(rounds_done));
    return 1;
  }
  double load[3] = {0, 0, 0};
  if (::getloadavg(load, 3) < 0) load[0] = load[1] = load[2] = -1;
  const std::string load_fields = perf::json_number("loadavg_1m", load[0]) + perf::json_number("loadavg_5m", load[1]);
  series.print(perf::json_number("extra_ns", perf::median(extra)) +
               perf::json_number("p99_ns_of_samples", static_cast<double>(counts.percentile(0.99))) +
               perf::json_text("within_5ns", series.ours() <= kBudgetNs ? "yes" : "no") + load_fields +
               perf::json_text("baseline_is", "OwnedCounter::add, same loop and values"));

  // What a queue adds per request: the start the reactor read when it
  // resumed the task (here a load from memory), one clock read at the end,
  // and QueueMetrics::record.
  auto task_started = std::make_unique<std::uint64_t>(runtime::CycleClock::now());
  auto metrics = std::make_unique<ublk::QueueMetrics>();
  std::uint64_t lengths[kValues];
  for (std::size_t i = 0; i < kValues; ++i) lengths[i] = values[i] % 3 == 0 ? 1 : 0;  // 1 in 3 a write
  std::size_t at = 0;
  auto per_request = [&](std::uint64_t) {
    const std::uint64_t started = *task_started;
    const auto op = static_cast<std::uint8_t>(lengths[at++ & (kValues - 1)]);
    metrics->record(op, 8, 4096, runtime::CycleClock::now() - started);
  };
  // Calibrated on its own: a request's metrics cost far more than a counter.
  const double request_warm = per_sample_ns(values, kValues * 64, per_request);
  const std::uint64_t request_total = perf::ops_for(1e9 / request_warm, options.seconds, kValues, options.ops);
  perf::AbSeries request_series("queue_request_metrics", "ns", perf::Better::lower);
  std::vector<double> request_extra;
  const perf::RoundBudget request_budget(options, 1.0);
  for (int round = 0; request_budget.next(round); ++round) {
    double ours, baseline;
    if (round % 2 == 0) {
      ours = per_sample_ns(values, request_total, per_request);
      baseline = per_sample_ns(values, request_total, count);
    } else {
      baseline = per_sample_ns(values, request_total, count);
      ours = per_sample_ns(values, request_total, per_request);
    }
    request_series.add(ours, baseline);
    request_extra.push_back(ours - baseline);
  }
  if (metrics->op(0).requests.get() + metrics->op(1).requests.get() !=
      request_total * request_series.rounds() + kValues * 64) {
    std::fprintf(stderr, "bench_histogram: the queue metrics lost requests\n");
    return 1;
  }
  request_series.print(perf::json_number("extra_ns", perf::median(request_extra)) + load_fields +
                       perf::json_text("ours_is", "a loaded start, CycleClock::now, QueueMetrics::record") +
                       perf::json_text("baseline_is", "OwnedCounter::add (Queue::completed)"));
  return 0;
}
