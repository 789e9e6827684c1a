// bench_read: 4 KiB random reads of a 64 MiB tmpfs file (/dev/shm) through
// the runtime's read awaitable, against raw liburing and against Boost.Asio's
// io_uring backend, at queue depth 1 and 32; then the runtime with
// ReactorConfig::sqpoll on against off.
//
//   bench_read [--quick] [--rounds N] [--seconds S] [--ops N] [--budget S] [--no-sqpoll] [--dir D]
//
// Structure (all on the same pinned reactor thread, one process; each round
// runs the three sides in a rotating order and every side issues the same
// sequence of offsets):
//   ours      QD tasks, each looping `co_await runtime::read(fd, buf, 4096, off)`.
//   raw       QD reads kept in flight: io_uring_submit_and_wait(1), reap every
//             CQE, re-issue one read per CQE; ring flags = the reactor's.
//   asio      QD coroutines (co_spawn + use_awaitable) each looping
//             random_access_file::async_read_some_at on a one-thread io_context.
// Results: read_qdN (ours vs raw), read_qdN_asio (ours vs Asio) and
// read_sqpoll_qdN (sqpoll = true vs false, both ours).

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/when_all.h"
#include "perf/ab_report.h"
#include "perf/runtime/bench_config.h"
#include "perf/runtime/bench_read_asio.h"
#include "perf/runtime/raw_ring.h"
#include "perf/runtime/read_workload.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using perf::ReadWorkload;
using runtime::Task;

namespace {

constexpr std::uint64_t file_bytes = 64ull << 20;
constexpr unsigned depths[] = {1, 32};
constexpr unsigned max_depth = 32;

/// Page-aligned read buffers, one per in-flight read.
struct Buffers {
  Buffers() : bytes(static_cast<char*>(std::aligned_alloc(4096, max_depth * ReadWorkload::block_size))) {
    if (bytes == nullptr) {
      throw std::bad_alloc();
    }
  }
  ~Buffers() { std::free(bytes); }
  char* slot(unsigned i) const noexcept { return bytes + static_cast<std::size_t>(i) * ReadWorkload::block_size; }
  char* bytes;
};

struct ReadState {
  const ReadWorkload* workload;
  std::uint64_t total;
  std::uint64_t next = 0;
  std::uint64_t failures = 0;
};

Task<void> read_loop(ReadState& state, char* buffer) {
  while (state.next < state.total) {
    const std::uint64_t offset = state.workload->offset(state.next++);
    const int n = co_await runtime::read(state.workload->fd(), buffer, ReadWorkload::block_size, offset);
    if (n != static_cast<int>(ReadWorkload::block_size)) {
      ++state.failures;
    }
  }
}

// `depth` tasks issue `total` reads between them; returns reads per second.
Task<double> our_reads(const ReadWorkload& workload, const Buffers& buffers, unsigned depth, std::uint64_t total) {
  ReadState state{&workload, total};
  std::vector<Task<void>> tasks;
  tasks.reserve(depth);
  for (unsigned i = 0; i < depth; ++i) {
    tasks.push_back(read_loop(state, buffers.slot(i)));
  }
  const double start = perf::now_seconds();
  co_await runtime::when_all(std::move(tasks));
  const double seconds = perf::now_seconds() - start;
  if (state.failures != 0) {
    throw std::runtime_error("a runtime read failed or came back short");
  }
  co_return static_cast<double>(total) / seconds;
}

// Keeps `depth` reads in flight until `total` have completed.
double raw_reads(io_uring* ring, const ReadWorkload& workload, const Buffers& buffers, unsigned depth,
                 std::uint64_t total) {
  std::uint64_t issued = 0;
  std::uint64_t done = 0;
  auto issue = [&](unsigned slot) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    io_uring_prep_read(sqe, workload.fd(), buffers.slot(slot), ReadWorkload::block_size, workload.offset(issued++));
    io_uring_sqe_set_data64(sqe, slot);
  };
  const double start = perf::now_seconds();
  for (unsigned slot = 0; slot < depth && issued < total; ++slot) {
    issue(slot);
  }
  while (done < total) {
    perf::check_uring(io_uring_submit_and_wait(ring, 1), "io_uring_submit_and_wait");
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(ring, head, cqe) {
      if (cqe->res != static_cast<int>(ReadWorkload::block_size)) {
        throw std::runtime_error("a raw read failed or came back short");
      }
      ++seen;
      if (issued < total) {
        issue(static_cast<unsigned>(cqe->user_data));
      }
    }
    io_uring_cq_advance(ring, seen);
    done += seen;
  }
  return static_cast<double>(done) / (perf::now_seconds() - start);
}

Task<int> ours_against_raw_and_asio(const perf::BenchOptions& options, const ReadWorkload& workload) {
  runtime::Reactor* reactor = runtime::Reactor::current();
  perf::RawRing raw(reactor->config().ring_entries, reactor->ring_flags());
  Buffers buffers;
  for (unsigned depth : depths) {
    (void)co_await our_reads(workload, buffers, depth, 2000);
    (void)perf::asio_random_reads(workload, depth, 2000);
    const double rate = raw_reads(raw.get(), workload, buffers, depth, 20000);
    const std::uint64_t total = perf::ops_for(rate, options.seconds, depth, options.ops);
    const std::string name = "read_qd" + std::to_string(depth);
    perf::AbSeries against_raw(name, "ops/s", perf::Better::higher);
    perf::AbSeries against_asio(name + "_asio", "ops/s", perf::Better::higher);
    const perf::RoundBudget budget(options, 1.0 / 4);
    for (int round = 0; budget.next(round); ++round) {
      double ours = 0, raw_rate = 0, asio_rate = 0;
      for (int turn = 0; turn < 3; ++turn) {
        switch ((round + turn) % 3) {
          case 0:
            ours = co_await our_reads(workload, buffers, depth, total);
            break;
          case 1:
            raw_rate = raw_reads(raw.get(), workload, buffers, depth, total);
            break;
          default:
            asio_rate = perf::asio_random_reads(workload, depth, total);
            break;
        }
      }
      against_raw.add(ours, raw_rate);
      against_asio.add(ours, asio_rate);
    }
    const std::string where = perf::json_text("dir", options.dir);
    against_raw.print(perf::json_text("baseline_is", "raw liburing, same ring flags") + where);
    against_asio.print(perf::json_text("baseline_is", "Boost.Asio io_uring, co_spawn + use_awaitable") + where);
  }
  co_return 0;
}

void sqpoll_against_default(const perf::BenchOptions& options, const ReadWorkload& workload) {
  runtime::RuntimeConfig with = perf::bench_runtime_config();
  runtime::RuntimeConfig without = perf::bench_runtime_config();
  with.reactor.sqpoll = true;
  const auto sqpoll_runtime = perf::bench_runtime(with);
  const auto default_runtime = perf::bench_runtime(without);
  runtime::Runtime& sqpoll_rt = *sqpoll_runtime;
  runtime::Runtime& default_rt = *default_runtime;
  Buffers buffers;
  auto measure = [&](runtime::Runtime& rt, unsigned depth, std::uint64_t total) {
    return rt.run([&] { return our_reads(workload, buffers, depth, total); });
  };
  for (unsigned depth : depths) {
    const double rate = measure(default_rt, depth, 20000);
    const std::uint64_t total = perf::ops_for(rate, options.seconds, depth, options.ops);
    perf::AbSeries series("read_sqpoll_qd" + std::to_string(depth), "ops/s", perf::Better::higher);
    const perf::RoundBudget budget(options, 1.0 / 4);
    for (int round = 0; budget.next(round); ++round) {
      double ours, baseline;
      if (round % 2 == 0) {
        ours = measure(sqpoll_rt, depth, total);
        baseline = measure(default_rt, depth, total);
      } else {
        baseline = measure(default_rt, depth, total);
        ours = measure(sqpoll_rt, depth, total);
      }
      series.add(ours, baseline);
    }
    series.print(perf::json_text("ours_is", "runtime with sqpoll=true") +
                 perf::json_text("baseline_is", "runtime with sqpoll=false"));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto options =
      perf::BenchOptions::parse(argc, argv, "[--quick] [--rounds N] [--seconds S] [--ops N] [--no-sqpoll] [--dir D]");
  try {
    ReadWorkload workload(options.dir, options.quick ? (8ull << 20) : file_bytes);
    const auto rt = perf::bench_runtime(perf::bench_runtime_config());
    rt->run([&] { return ours_against_raw_and_asio(options, workload); });
    if (options.sqpoll_variant) {
      sqpoll_against_default(options, workload);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_read: %s\n", e.what());
    return 1;
  }
  return 0;
}
