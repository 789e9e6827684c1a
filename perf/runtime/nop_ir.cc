// nop_ir: a fixed amount of NOP work for counting instructions under
// callgrind (not a bench_*: perf/run does not run it, and it times nothing).
//
//   nop_ir ours|raw BATCH OPS
//
// Does exactly what one side of bench_nop's nop_batchB does, OPS operations
// in all, once: `ours` runs BATCH tasks looping `co_await runtime::nop()`,
// `raw` the raw liburing loop on a ring with the reactor's flags. The
// per-operation count is (Ir(2N) - Ir(N)) / N from two runs, which cancels
// the start-up and shutdown work:
//
//   valgrind --tool=callgrind --callgrind-out-file=out.N nop_ir ours 32 N

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/when_all.h"
#include "perf/runtime/bench_config.h"
#include "perf/runtime/raw_ring.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;

namespace {

Task<void> nop_loop(std::uint64_t count, std::uint64_t& failures) {
  for (std::uint64_t i = 0; i < count; ++i) {
    if (co_await runtime::nop() != 0) ++failures;
  }
}

Task<std::uint64_t> ours(unsigned batch, std::uint64_t total) {
  std::uint64_t failures = 0;
  std::vector<Task<void>> tasks;
  tasks.reserve(batch);
  for (unsigned i = 0; i < batch; ++i) tasks.push_back(nop_loop(total / batch, failures));
  co_await runtime::when_all(std::move(tasks));
  co_return failures;
}

std::uint64_t raw(unsigned batch, std::uint64_t total) {
  runtime::Reactor* reactor = runtime::Reactor::current();
  perf::RawRing ring(reactor->config().ring_entries, reactor->ring_flags());
  std::uint64_t done = 0;
  std::uint64_t failures = 0;
  unsigned in_flight = 0;
  while (done < total) {
    for (; in_flight < batch; ++in_flight) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring.get());
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, in_flight);
    }
    perf::check_uring(io_uring_submit_and_wait(ring.get(), batch), "io_uring_submit_and_wait");
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(ring.get(), head, cqe) {
      failures += cqe->res != 0;
      ++seen;
    }
    io_uring_cq_advance(ring.get(), seen);
    in_flight -= seen;
    done += seen;
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string side = argc == 4 ? argv[1] : "";
  const unsigned long batch = argc == 4 ? std::strtoul(argv[2], nullptr, 10) : 0;
  const unsigned long long ops = argc == 4 ? std::strtoull(argv[3], nullptr, 10) : 0;
  if ((side != "ours" && side != "raw") || batch == 0 || batch > 128 || ops == 0) {
    std::fprintf(stderr, "usage: nop_ir ours|raw BATCH(1..128) OPS\n");
    return 2;
  }
  try {
    const auto rt = perf::bench_runtime(perf::bench_runtime_config());
    const std::uint64_t failures = rt->run([&]() -> Task<std::uint64_t> {
      if (side == "raw") co_return raw(static_cast<unsigned>(batch), ops);
      co_return co_await ours(static_cast<unsigned>(batch), ops);
    });
    if (failures != 0) throw std::runtime_error("a NOP failed");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nop_ir: %s\n", e.what());
    return 1;
  }
  return 0;
}
