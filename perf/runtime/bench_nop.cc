// bench_nop: the runtime's per-operation overhead, `co_await runtime::nop()`
// against a raw liburing loop, at batch sizes 1, 8 and 32; then the same
// runtime loop with ReactorConfig::sqpoll on against off.
//
//   bench_nop [--quick] [--rounds N] [--seconds S] [--ops N] [--budget S] [--no-sqpoll]
//
// Structure (both sides run on the same pinned reactor thread, one process):
//   ours      B tasks, each looping `co_await runtime::nop()`; the reactor
//             gathers the B SQEs of one loop iteration into one submit and
//             resumes the tasks as their CQEs are reaped.
//   baseline  prep B NOPs, io_uring_submit_and_wait(B), reap B, on a ring
//             created with the reactor's own ring_flags().
// The raw loop runs inside the reactor's main task, so it blocks the reactor
// while it runs; nothing else is scheduled on that core in the meantime.
//
//   nop_sqpoll_batchB: ours = the runtime loop with sqpoll = true, baseline =
//   the same loop with sqpoll = false (the default); ratio > 1 means SQPOLL
//   is faster. Each side runs in its own Runtime, alternately.
//
//   nop_ring_fd_batchB: ours = the runtime loop with its ring fd registered
//   (ReactorConfig::register_ring_fd, the default), baseline = the same
//   loop entering the kernel by the plain fd; in its own Runtimes likewise.

#include <cstdint>
#include <string>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/when_all.h"
#include "perf/ab_report.h"
#include "perf/runtime/bench_config.h"
#include "perf/runtime/raw_ring.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;

namespace {

constexpr unsigned batches[] = {1, 8, 32};

Task<void> nop_loop(std::uint64_t count, std::uint64_t& failures) {
  for (std::uint64_t i = 0; i < count; ++i) {
    if (co_await runtime::nop() != 0) {
      ++failures;
    }
  }
}

// `batch` tasks issue `total` NOPs between them; returns NOPs per second.
Task<double> our_nops(unsigned batch, std::uint64_t total) {
  std::uint64_t failures = 0;
  std::vector<Task<void>> tasks;
  tasks.reserve(batch);
  for (unsigned i = 0; i < batch; ++i) {
    tasks.push_back(nop_loop(total / batch, failures));
  }
  const double start = perf::now_seconds();
  co_await runtime::when_all(std::move(tasks));
  const double seconds = perf::now_seconds() - start;
  if (failures != 0) {
    throw std::runtime_error("a runtime NOP failed");
  }
  const std::uint64_t done = total / batch * batch;  // whole batches only
  co_return static_cast<double>(done) / seconds;
}

// Prep `batch` NOPs, submit and wait for all of them, reap; repeat.
double raw_nops(io_uring* ring, unsigned batch, std::uint64_t total) {
  const double start = perf::now_seconds();
  std::uint64_t done = 0;
  unsigned in_flight = 0;
  while (done < total) {
    for (; in_flight < batch; ++in_flight) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring);
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, in_flight);
    }
    perf::check_uring(io_uring_submit_and_wait(ring, batch), "io_uring_submit_and_wait");
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(ring, head, cqe) {
      if (cqe->res != 0) {
        throw std::runtime_error("a raw NOP failed");
      }
      ++seen;
    }
    io_uring_cq_advance(ring, seen);
    in_flight -= seen;
    done += seen;
  }
  return static_cast<double>(done) / (perf::now_seconds() - start);
}

std::string hex(unsigned v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%x", v);
  return text;
}

Task<int> ours_against_raw(const perf::BenchOptions& options) {
  runtime::Reactor* reactor = runtime::Reactor::current();
  perf::RawRing raw(reactor->config().ring_entries, reactor->ring_flags());
  for (unsigned batch : batches) {
    // Calibrate on the baseline so both sides do the same number of ops.
    (void)co_await our_nops(batch, 2000 / batch * batch);
    const double rate = raw_nops(raw.get(), batch, 20000);
    const std::uint64_t total = perf::ops_for(rate, options.seconds, batch, options.ops);
    perf::AbSeries series("nop_batch" + std::to_string(batch), "ops/s", perf::Better::higher);
    const perf::RoundBudget budget(options, 1.0 / 5);
    for (int round = 0; budget.next(round); ++round) {
      double ours, baseline;
      if (round % 2 == 0) {
        ours = co_await our_nops(batch, total);
        baseline = raw_nops(raw.get(), batch, total);
      } else {
        baseline = raw_nops(raw.get(), batch, total);
        ours = co_await our_nops(batch, total);
      }
      series.add(ours, baseline);
    }
    series.print(perf::json_text("baseline_is", "raw liburing, same ring flags") +
                 perf::json_text("ring_flags", hex(reactor->ring_flags())));
  }
  co_return 0;
}

// One side of the SQPOLL comparison: a fresh Runtime run of the NOP loop.
double runtime_nops(runtime::Runtime& rt, unsigned batch, std::uint64_t total) {
  return rt.run([=] { return our_nops(batch, total); });
}

// The runtime's NOP loop in a Runtime made with `with` against one made
// with `without`, alternately, at batch 1 and 32; series `name_batchB`.
void config_against_config(const perf::BenchOptions& options, const std::string& name,
                           const runtime::RuntimeConfig& with, const runtime::RuntimeConfig& without,
                           const std::string& ours_is, const std::string& baseline_is) {
  const auto with_runtime = perf::bench_runtime(with);
  const auto without_runtime = perf::bench_runtime(without);
  runtime::Runtime& with_rt = *with_runtime;
  runtime::Runtime& without_rt = *without_runtime;
  for (unsigned batch : {1u, 32u}) {
    const double rate = runtime_nops(without_rt, batch, 20000 / batch * batch);
    const std::uint64_t total = perf::ops_for(rate, options.seconds, batch, options.ops);
    perf::AbSeries series(name + "_batch" + std::to_string(batch), "ops/s", perf::Better::higher);
    const perf::RoundBudget budget(options, 1.0 / 5);
    for (int round = 0; budget.next(round); ++round) {
      double ours, baseline;
      if (round % 2 == 0) {
        ours = runtime_nops(with_rt, batch, total);
        baseline = runtime_nops(without_rt, batch, total);
      } else {
        baseline = runtime_nops(without_rt, batch, total);
        ours = runtime_nops(with_rt, batch, total);
      }
      series.add(ours, baseline);
    }
    series.print(perf::json_text("ours_is", ours_is) + perf::json_text("baseline_is", baseline_is));
  }
}

void sqpoll_against_default(const perf::BenchOptions& options) {
  runtime::RuntimeConfig with = perf::bench_runtime_config();
  runtime::RuntimeConfig without = perf::bench_runtime_config();
  with.reactor.sqpoll = true;
  config_against_config(options, "nop_sqpoll", with, without, "runtime with sqpoll=true", "runtime with sqpoll=false");
}

// IORING_REGISTER_RING_FDS (the default) against a ring entered by its
// plain fd: what the registration saves on each io_uring_enter.
void ring_fd_against_plain(const perf::BenchOptions& options) {
  runtime::RuntimeConfig with = perf::bench_runtime_config();
  runtime::RuntimeConfig without = perf::bench_runtime_config();
  without.reactor.register_ring_fd = false;
  config_against_config(options, "nop_ring_fd", with, without, "runtime with register_ring_fd=true",
                        "runtime with register_ring_fd=false");
}

}  // namespace

int main(int argc, char** argv) {
  const auto options =
      perf::BenchOptions::parse(argc, argv, "[--quick] [--rounds N] [--seconds S] [--ops N] [--no-sqpoll]");
  try {
    const auto rt = perf::bench_runtime(perf::bench_runtime_config());
    rt->run([&] { return ours_against_raw(options); });
    ring_fd_against_plain(options);
    if (options.sqpoll_variant) {
      sqpoll_against_default(options);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_nop: %s\n", e.what());
    return 1;
  }
  return 0;
}
