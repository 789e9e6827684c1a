// bench_pipeline: the zram target's asynchronous compression
// (ZramTargetConfig::compress_workers, `coblk add --compress-cores`)
// against inline compression, in process, on the same pages, alternating
// sides round by round (perf/ab_report.h):
//
//   pipeline_write_2cores_vs_inline  one queue writing 4 KiB pages at QD32:
//       async compression on two cores (the queue's and one more) against
//       inline compression on one core; pages/s until every page is
//       compressed (staged pages drained), so staging cannot flatter it.
//   pipeline_write_1core_vs_inline   the same with one worker on the
//       queue's own core: what staging costs when no core is spare.
//   pipeline_write_latency_qd1       the time one 4 KiB write takes at QD1
//       with a 50 us gap between writes (a ublk round trip's order), async
//       on two cores against inline: median (and p99 in the line).
//
// Usage: bench_pipeline [--quick] [--rounds N] [--pages N] [--corpus half|binaries] [--only 0|1|2]
// (--only W: one QD32 run, inline (0) or async on W cores, for profiling.)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/reactor.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/when_all.h"
#include "coblk/ublk/zram_target.h"
#include "perf/ab_report.h"
#include "perf/storage/store_corpus.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::size_t ps = 4096;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "bench_pipeline: %s\n", why.c_str());
  std::exit(1);
}

std::unique_ptr<ublk::ZramTarget> make_target(std::size_t pages, unsigned workers) {
  auto made = ublk::ZramTarget::create(ublk::ZramTargetConfig{
      .size_bytes = pages * ps, .codec = {compress::Algorithm::lz4, 1}, .queues = 1, .compress_workers = workers});
  if (!made) fail(made.error().message());
  return std::move(made).value();
}

std::unique_ptr<runtime::Runtime> make_runtime(unsigned cores) {
  runtime::RuntimeConfig rc;
  for (unsigned c = 0; c < cores; ++c) rc.cpus.push_back(c);
  auto rt = runtime::Runtime::create(rc);
  if (!rt) fail(rt.error().message());
  return std::move(rt).value();
}

ublk::Request request_for(std::uint64_t page, const storage::bench::Page& data) {
  ublk::Request r;
  r.queue = 0;
  r.offset = page * ps;
  r.length = ps;
  r.data = const_cast<std::byte*>(data.data());  // NOLINT(cppcoreguidelines-pro-type-const-cast): writes only read it
  return r;
}

// Waits until no page is staged (the pipeline has compressed everything).
runtime::Task<void> drain(ublk::ZramTarget& target) {
  while (target.store().mm_stat().staged_pages != 0) {
    co_await runtime::yield();
  }
}

// One writer of a QD32 run: pages first, first+32, ... After each write
// it goes back to the reactor, as a ublk queue's request does (its
// completion and the next fetch pass through io_uring): the 32 writers
// make one reactor loop iteration per 32 writes, in which the reactor
// also delivers the messages that wake other cores' compression tasks.
runtime::Task<int> writer(ublk::ZramTarget& target, const storage::bench::Corpus& corpus, std::size_t first) {
  int errors = 0;
  for (std::size_t p = first; p < corpus.pages.size(); p += 32) {
    if (co_await target.write(request_for(p, corpus.pages[p])) != static_cast<int>(ps)) ++errors;
    co_await runtime::yield();
  }
  co_return errors;
}

// The share of pages each async run compressed inline (every lane full),
// per run, for the result lines.
std::vector<double> inline_shares;

// Pages per second of writing the corpus at QD32 on one queue, with
// `workers` compression workers (0: inline) on `cores` cores.
double write_rate(const storage::bench::Corpus& corpus, unsigned workers, unsigned cores) {
  auto target = make_target(corpus.pages.size(), workers);
  auto rt = make_runtime(cores);
  const double seconds = rt->run([&]() -> runtime::Task<double> {
    if (co_await target->start_queue(0) != 0) fail("start_queue failed");
    co_await runtime::yield();  // let the workers on other cores start
    const double t0 = perf::now_seconds();
    std::vector<runtime::Task<int>> writers;
    for (std::size_t k = 0; k < 32; ++k) writers.push_back(writer(*target, corpus, k));
    int errors = 0;
    for (int e : co_await runtime::when_all(std::move(writers))) errors += e;
    co_await drain(*target);
    const double t1 = perf::now_seconds();
    if (errors != 0) fail("writes failed");
    co_return t1 - t0;
  });
  // Every page must read back: a benchmark of a store that loses data
  // measures nothing.
  std::vector<std::byte> back(ps);
  for (std::size_t p = 0; p < corpus.pages.size(); p += 97) {
    if (target->store().read(0, p * ps, back) != 0 || std::memcmp(back.data(), corpus.pages[p].data(), ps) != 0) {
      fail("page " + std::to_string(p) + " did not read back");
    }
  }
  if (target->pipeline() != nullptr) {
    inline_shares.push_back(static_cast<double>(target->pipeline()->inline_pages()) /
                            static_cast<double>(corpus.pages.size()));
  }
  return static_cast<double>(corpus.pages.size()) / seconds;
}

struct Latency {
  double median_ns = 0;
  double p99_ns = 0;
};

// Per-write time at QD1 with a 50 us gap between writes.
Latency write_latency(const storage::bench::Corpus& corpus, std::size_t writes, unsigned workers) {
  auto target = make_target(corpus.pages.size(), workers);
  auto rt = make_runtime(workers > 1 ? 2 : 1);
  std::vector<double> ns;
  ns.reserve(writes);
  rt->run([&]() -> runtime::Task<void> {
    if (co_await target->start_queue(0) != 0) fail("start_queue failed");
    for (std::size_t i = 0; i < writes; ++i) {
      const std::size_t p = i % corpus.pages.size();
      const auto t0 = std::chrono::steady_clock::now();
      if (co_await target->write(request_for(p, corpus.pages[p])) != static_cast<int>(ps)) fail("write failed");
      ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
      co_await runtime::sleep_for(std::chrono::microseconds(50));
    }
    co_await drain(*target);
  });
  return Latency{perf::median(ns), perf::quantile(ns, 0.99)};
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 11;
  std::size_t pages = 16384;
  std::string corpus_name = "half";
  int only_workers = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      rounds = 3;
      pages = 1024;
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (a == "--pages" && i + 1 < argc) {
      pages = static_cast<std::size_t>(std::atoll(argv[++i]));
    } else if (a == "--only" && i + 1 < argc) {
      only_workers = std::atoi(argv[++i]);
      if (only_workers < 0 || only_workers > 2) fail("--only takes 0, 1 or 2");
    } else if (a == "--corpus" && i + 1 < argc) {
      corpus_name = argv[++i];
    } else {
      fail("usage: bench_pipeline [--quick] [--rounds N] [--pages N] [--corpus half|binaries] [--only 0|1|2]");
    }
  }
  if (rounds < 1 || pages < 64) fail("--rounds must be at least 1 and --pages at least 64");
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) fail("needs two CPUs");
  const storage::bench::Corpus corpus = corpus_name == "binaries" ? storage::bench::binaries_corpus(pages)
                                        : corpus_name == "half"
                                            ? storage::bench::half_compressible_corpus(pages)
                                            : (fail("--corpus must be half or binaries"), storage::bench::Corpus{});
  if (only_workers >= 0) {
    // One run of one side (for profiling): `--only 0` inline, `--only N` async on N cores.
    const auto w = static_cast<unsigned>(only_workers);
    std::printf("%.0f pages/s\n", write_rate(corpus, w, w == 0 ? 1 : w));
    return 0;
  }
  double load[3] = {};
  getloadavg(load, 3);
  std::printf("{\"bench\":\"header\",\"load\":[%.2f,%.2f,%.2f],\"pages\":%zu,\"corpus\":\"%s\"}\n", load[0], load[1],
              load[2], corpus.pages.size(), corpus.name.c_str());

  perf::AbSeries two("pipeline_write_2cores_vs_inline", "pages/s", perf::Better::higher);
  perf::AbSeries one("pipeline_write_1core_vs_inline", "pages/s", perf::Better::higher);
  for (int r = 0; r < rounds; ++r) {
    double async2 = 0, async1 = 0, inline_rate = 0;
    if (r % 2 == 0) {
      async2 = write_rate(corpus, 2, 2);
      async1 = write_rate(corpus, 1, 1);
      inline_rate = write_rate(corpus, 0, 1);
    } else {
      inline_rate = write_rate(corpus, 0, 1);
      async1 = write_rate(corpus, 1, 1);
      async2 = write_rate(corpus, 2, 2);
    }
    two.add(async2, inline_rate);
    one.add(async1, inline_rate);
  }
  // Runs alternate 2-core and 1-core async: even entries are the first
  // async side of each round.
  std::vector<double> share_two, share_one;
  for (std::size_t i = 0; i < inline_shares.size(); ++i) {
    const bool first_of_round = i % 2 == 0;
    const bool two_cores = (i / 2) % 2 == 0 ? first_of_round : !first_of_round;
    (two_cores ? share_two : share_one).push_back(inline_shares[i]);
  }
  two.print(perf::json_number("inline_share", perf::median(share_two)) + perf::json_number("load_1m", load[0]));
  one.print(perf::json_number("inline_share", perf::median(share_one)) + perf::json_number("load_1m", load[0]));

  perf::AbSeries latency("pipeline_write_latency_qd1", "ns", perf::Better::lower);
  std::vector<double> p99_async, p99_inline;
  const std::size_t writes = std::min<std::size_t>(pages, 4000);
  for (int r = 0; r < rounds; ++r) {
    Latency a, b;
    if (r % 2 == 0) {
      a = write_latency(corpus, writes, 2);
      b = write_latency(corpus, writes, 0);
    } else {
      b = write_latency(corpus, writes, 0);
      a = write_latency(corpus, writes, 2);
    }
    latency.add(a.median_ns, b.median_ns);
    p99_async.push_back(a.p99_ns);
    p99_inline.push_back(b.p99_ns);
  }
  latency.print(perf::json_number("p99_async_ns", perf::median(p99_async)) +
                perf::json_number("p99_inline_ns", perf::median(p99_inline)) + perf::json_number("load_1m", load[0]));
  return 0;
}
