// bench_channel: cross-core throughput of runtime::Channel<std::uint64_t>
// between cores 0 and 1, against boost::lockfree::spsc_queue driven by two
// pinned spinning threads (same item type, same capacity: 1024); and the
// round-trip latency of submit_to core 0 -> core 1 -> core 0 against a raw
// SpscRing ping-pong between two spinning threads.
//
//   bench_channel [--quick] [--rounds N] [--seconds S] [--ops N] [--budget S] [--poll-us N]
//
// --poll-us sets the runtime's ReactorConfig::idle_poll_us (default: the
// config's default). A long window (e.g. 10000) keeps both reactors awake
// through a transfer, as the spinning baseline is: on a loaded host, where a
// woken thread waits milliseconds for a CPU, that compares the channels
// rather than the scheduler.
//
// Results:
//   channel_async  ours: a task on core 0 loops `co_await ch.send(i)`, a task
//                  on core 1 loops `co_await ch.recv()` (parking and being
//                  woken through the reactors as the ring fills or empties).
//                  baseline: push(v) / pop(v), spinning while full / empty.
//   channel_batch  ours: try_send_batch / try_recv_batch of up to 64 items,
//                  `co_await yield()` when nothing moved. baseline:
//                  push(array, 64) / pop(array, 64), spinning.
//   submit_to_rtt  ours: `co_await submit_to(1, [] { return 1; })` from core
//                  0, each timed; baseline: a message to a spinning thread on
//                  CPU 1 over an SpscRing and its answer over another.
//                  Reported: the median of per-round medians, in ns, plus p99
//                  over all samples of each side.
// The baselines run on the reactor thread of core 0 (blocking it) and on a
// thread pinned to CPU 1 while core 1's reactor sleeps, so both sides use the
// same two CPUs.

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "coblk/runtime/channel.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/spsc_ring.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/runtime/when_all.h"
#include "perf/ab_report.h"
#include "perf/runtime/bench_config.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Channel;
using runtime::Task;

namespace {

constexpr std::size_t capacity = 1024;
constexpr std::size_t batch = 64;
using BoostQueue = boost::lockfree::spsc_queue<std::uint64_t, boost::lockfree::capacity<capacity>>;

std::uint64_t expected_sum(std::uint64_t n) { return n * (n - 1) / 2; }

double loadavg_1m() {
  double load[3];
  return getloadavg(load, 3) >= 1 ? load[0] : -1;
}

void pin_to_cpu(unsigned cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
    throw std::runtime_error("cannot pin a baseline thread to CPU " + std::to_string(cpu));
  }
}

// ---- ours ----

Task<void> send_all(Channel<std::uint64_t>& channel, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    co_await channel.send(i);
  }
  channel.close();
}

Task<std::uint64_t> receive_all(Channel<std::uint64_t>& channel) {
  std::uint64_t sum = 0;
  while (auto v = co_await channel.recv()) {
    sum += *v;
  }
  co_return sum;
}

Task<void> send_all_batched(Channel<std::uint64_t>& channel, std::uint64_t n) {
  std::uint64_t items[batch];
  std::uint64_t next = 0;
  while (next < n) {
    const std::size_t want = std::min<std::uint64_t>(batch, n - next);
    for (std::size_t i = 0; i < want; ++i) {
      items[i] = next + i;
    }
    std::size_t sent = 0;
    while (sent < want) {
      const std::size_t k = channel.try_send_batch(std::span<std::uint64_t>(items + sent, want - sent));
      if (k == 0) {
        co_await runtime::yield();
      }
      sent += k;
    }
    next += want;
  }
}

Task<std::uint64_t> receive_all_batched(Channel<std::uint64_t>& channel, std::uint64_t n) {
  std::uint64_t items[batch];
  std::uint64_t sum = 0;
  for (std::uint64_t received = 0; received < n;) {
    const std::size_t k = channel.try_recv_batch(std::span<std::uint64_t>(items, batch));
    if (k == 0) {
      co_await runtime::yield();
      continue;
    }
    for (std::size_t i = 0; i < k; ++i) {
      sum += items[i];
    }
    received += k;
  }
  co_return sum;
}

// Runs `make_consumer()` as a task on core 1 and stores its result.
template <typename MakeConsumer>
Task<void> consume_on_core1(MakeConsumer make_consumer, std::uint64_t& sum) {
  sum = co_await runtime::submit_to(1, make_consumer);
}

struct ReactorCounters {
  std::uint64_t sleeps = 0, wakeups = 0, messages = 0, resumes = 0, polled = 0;
  static ReactorCounters read(const runtime::Runtime& rt) {
    ReactorCounters c;
    for (unsigned core = 0; core < rt.cores(); ++core) {
      c.sleeps += rt.stats(core).sleeps.get();
      c.wakeups += rt.stats(core).wakeups_sent.get();
      c.messages += rt.stats(core).messages_sent.get();
      c.resumes += rt.stats(core).tasks_run.get();
      c.polled += rt.stats(core).parked_polled.get();
    }
    return c;
  }
};

// Items per second through a fresh channel, by the async or the batch path.
Task<double> our_channel(bool batched, std::uint64_t n, ReactorCounters* delta) {
  const runtime::Runtime& rt = *runtime::Reactor::current()->runtime();
  Channel<std::uint64_t> channel(capacity);
  std::uint64_t sum = 0;
  std::vector<Task<void>> sides;
  if (batched) {
    sides.push_back(send_all_batched(channel, n));
    sides.push_back(consume_on_core1([&channel, n] { return receive_all_batched(channel, n); }, sum));
  } else {
    sides.push_back(send_all(channel, n));
    sides.push_back(consume_on_core1([&channel] { return receive_all(channel); }, sum));
  }
  // Core 1 has usually slept through the baseline; wake it before the clock
  // starts, as the baseline starts its consumer thread before its clock.
  co_await runtime::submit_to(1, [] {});
  const ReactorCounters before = ReactorCounters::read(rt);
  const double start = perf::now_seconds();
  co_await runtime::when_all(std::move(sides));
  const double seconds = perf::now_seconds() - start;
  const ReactorCounters after = ReactorCounters::read(rt);
  if (sum != expected_sum(n)) {
    throw std::runtime_error("runtime channel lost or corrupted items");
  }
  if (delta != nullptr) {
    delta->sleeps += after.sleeps - before.sleeps;
    delta->wakeups += after.wakeups - before.wakeups;
    delta->messages += after.messages - before.messages;
    delta->resumes += after.resumes - before.resumes;
    delta->polled += after.polled - before.polled;
  }
  co_return static_cast<double>(n) / seconds;
}

// ---- baselines: this thread (core 0's reactor thread) and one on CPU 1 ----

// The baseline's thread on CPU 1 must not share it with core 1's reactor:
// right after our side's round that reactor is still idle-polling (for
// idle_poll_us) before it sleeps. Waiting a few milliseconds here, on core
// 0's thread, which the baseline blocks anyway, lets it fall asleep first.
void let_core1_sleep() { std::this_thread::sleep_for(std::chrono::milliseconds(5)); }

// The queue on lines of its own: on the stack its indices could share a
// line with the frame's other variables, and how fast the baseline runs
// would then depend on where the compiler put them.
struct alignas(64) AlignedBoostQueue {
  BoostQueue queue;
};

double boost_queue(bool batched, std::uint64_t n, unsigned consumer_cpu) {
  let_core1_sleep();
  const auto holder = std::make_unique<AlignedBoostQueue>();
  BoostQueue& queue = holder->queue;
  std::atomic<bool> go{false};
  std::uint64_t sum = 0;
  std::thread consumer([&] {
    pin_to_cpu(consumer_cpu);
    while (!go.load(std::memory_order_acquire)) {}
    std::uint64_t local = 0;
    if (batched) {
      std::uint64_t items[batch];
      for (std::uint64_t received = 0; received < n;) {
        const std::size_t k = queue.pop(items, batch);
        for (std::size_t i = 0; i < k; ++i) {
          local += items[i];
        }
        received += k;
      }
    } else {
      std::uint64_t v;
      for (std::uint64_t received = 0; received < n; ++received) {
        while (!queue.pop(v)) {}
        local += v;
      }
    }
    sum = local;
  });
  const double start = perf::now_seconds();
  go.store(true, std::memory_order_release);
  if (batched) {
    std::uint64_t items[batch];
    for (std::uint64_t next = 0; next < n;) {
      const std::size_t want = std::min<std::uint64_t>(batch, n - next);
      for (std::size_t i = 0; i < want; ++i) {
        items[i] = next + i;
      }
      for (std::size_t sent = 0; sent < want;) {
        sent += queue.push(items + sent, want - sent);
      }
      next += want;
    }
  } else {
    for (std::uint64_t i = 0; i < n; ++i) {
      while (!queue.push(i)) {}
    }
  }
  consumer.join();
  const double seconds = perf::now_seconds() - start;
  if (sum != expected_sum(n)) {
    throw std::runtime_error("boost spsc_queue baseline lost items");
  }
  return static_cast<double>(n) / seconds;
}

// Round trips timed one by one; returns every sample in ns.
std::vector<double> raw_ping_pong(std::size_t count, unsigned peer_cpu) {
  runtime::SpscRing<std::uint64_t> to_peer(64), to_us(64);
  std::thread peer([&] {
    pin_to_cpu(peer_cpu);
    std::uint64_t v;
    for (std::size_t i = 0; i < count; ++i) {
      while (!to_peer.try_pop(v)) {}
      while (!to_us.try_push(std::uint64_t{v + 1})) {}
    }
  });
  std::vector<double> samples;
  samples.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    while (!to_peer.try_push(std::uint64_t{i})) {}
    std::uint64_t answer;
    while (!to_us.try_pop(answer)) {}
    samples.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count());
    if (answer != i + 1) {
      throw std::runtime_error("ping-pong baseline got a wrong answer");
    }
  }
  peer.join();
  return samples;
}

Task<std::vector<double>> our_round_trips(std::size_t count) {
  std::vector<double> samples;
  samples.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const std::size_t answer = co_await runtime::submit_to(1, [i] { return i + 1; });
    samples.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count());
    if (answer != i + 1) {
      throw std::runtime_error("submit_to returned a wrong answer");
    }
  }
  co_return samples;
}

// ---- the benchmark ----

Task<void> throughput(const perf::BenchOptions& options, bool batched, unsigned peer_cpu) {
  (void)co_await our_channel(batched, 10000, nullptr);
  const double rate = boost_queue(batched, 200000, peer_cpu);
  const std::uint64_t n = perf::ops_for(rate, options.seconds, batch, options.ops);
  perf::AbSeries series(batched ? "channel_batch" : "channel_async", "items/s", perf::Better::higher);
  ReactorCounters counters;
  const double load_start = loadavg_1m();
  // The best round of each side: on a host where other work takes one of
  // the two CPUs now and then, short rounds (--seconds 0.005) that ran
  // undisturbed show what each side does with both CPUs to itself.
  double ours_best = 0, baseline_best = 0;
  const perf::RoundBudget budget(options, 1.0 / 3);
  for (int round = 0; budget.next(round); ++round) {
    double ours, baseline;
    if (round % 2 == 0) {
      ours = co_await our_channel(batched, n, &counters);
      baseline = boost_queue(batched, n, peer_cpu);
    } else {
      baseline = boost_queue(batched, n, peer_cpu);
      ours = co_await our_channel(batched, n, &counters);
    }
    series.add(ours, baseline);
    ours_best = std::max(ours_best, ours);
    baseline_best = std::max(baseline_best, baseline);
  }
  const double items = static_cast<double>(n) * options.rounds;
  series.print(perf::json_text("baseline_is", "boost::lockfree::spsc_queue, two pinned spinning threads") +
               perf::json_number("capacity", capacity) + (batched ? perf::json_number("batch", batch) : "") +
               perf::json_number("ours_best", ours_best) + perf::json_number("baseline_best", baseline_best) +
               perf::json_number("best_ratio", ours_best / baseline_best) +
               perf::json_number("sleeps_per_item", static_cast<double>(counters.sleeps) / items) +
               perf::json_number("wakeups_per_item", static_cast<double>(counters.wakeups) / items) +
               perf::json_number("messages_per_item", static_cast<double>(counters.messages) / items) +
               perf::json_number("resumes_per_item", static_cast<double>(counters.resumes) / items) +
               perf::json_number("polled_resumes_per_item", static_cast<double>(counters.polled) / items) +
               perf::json_number("idle_poll_us", runtime::Reactor::current()->config().idle_poll_us) +
               perf::json_number("loadavg_1m", (load_start + loadavg_1m()) / 2));
}

Task<void> round_trip(const perf::BenchOptions& options, unsigned peer_cpu) {
  const std::size_t count = options.ops != 0 ? options.ops : options.quick ? 2000 : 20000;
  (void)co_await our_round_trips(count / 10);
  perf::AbSeries series("submit_to_rtt", "ns", perf::Better::lower);
  std::vector<double> all_ours, all_baseline;
  const double load_start = loadavg_1m();
  const perf::RoundBudget budget(options, 1.0 / 3);
  for (int round = 0; budget.next(round); ++round) {
    std::vector<double> ours, baseline;
    if (round % 2 == 0) {
      ours = co_await our_round_trips(count);
      baseline = raw_ping_pong(count, peer_cpu);
    } else {
      baseline = raw_ping_pong(count, peer_cpu);
      ours = co_await our_round_trips(count);
    }
    series.add(perf::median(ours), perf::median(baseline));
    all_ours.insert(all_ours.end(), ours.begin(), ours.end());
    all_baseline.insert(all_baseline.end(), baseline.begin(), baseline.end());
  }
  series.print(perf::json_text("baseline_is", "raw SpscRing ping-pong, two pinned spinning threads") +
               perf::json_text("statistic", "median round trip") +
               perf::json_number("ours_p99", perf::quantile(all_ours, 0.99)) +
               perf::json_number("baseline_p99", perf::quantile(all_baseline, 0.99)) +
               perf::json_number("idle_poll_us", runtime::Reactor::current()->config().idle_poll_us) +
               perf::json_number("loadavg_1m", (load_start + loadavg_1m()) / 2));
}

Task<int> bench_main(const perf::BenchOptions& options) {
  const unsigned peer_cpu = runtime::Reactor::current()->runtime()->cpu_of(1);
  co_await throughput(options, false, peer_cpu);
  co_await throughput(options, true, peer_cpu);
  co_await round_trip(options, peer_cpu);
  co_return 0;
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
                                                 "[--quick] [--rounds N] [--seconds S] [--ops N] [--poll-us N]");
  try {
    runtime::RuntimeConfig config = perf::bench_runtime_config({0, 1});
    config.reactor.idle_poll_us = poll_us;
    const auto rt = perf::bench_runtime(config);
    return rt->run([&] { return bench_main(options); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_channel: %s\n", e.what());
    return 1;
  }
}
