// bench_compact: the longest reactor stall while a large page store is
// compacted on a queue's core, one-shot against stepped.
//
//   bench_compact [--quick] [--gib N | --pages N] [--rounds N] [--cpu C]
//                 [--entries N] [--moves N] [--spans N] [--releases N]
//
// Each side of each round builds a fresh one-core store of N pages (default
// 4 GiB of device), fills every page with data of varied compressibility
// (objects in most size classes, about 1.7 KiB each on average), discards
// two pages of every three at random (so most spans are a third full), trims
// the span cache as the maintenance task would, and then compacts it on a
// one-core Runtime while an I/O-group probe task sleeps 100 us at a time
// and records how late each wake-up is: that lateness is the stall a
// request on that core would see.
//  - baseline "one-shot": one background task calls PageStore::compact,
//    which runs every step back to back (what compaction was before it was
//    stepped: one synchronous walk);
//  - ours "stepped": one background task calls PageStore::compact_step and
//    co_await runtime::maybe_yield() between steps, as the zram target's
//    maintenance task does.
// Result lines (perf/ab_report.h; ratio > 1: ours better), in ms:
// compact_max_stall, compact_total_time, compact_max_stall_wall,
// compact_total_time_wall.
// The figures come in two clocks. Thread CPU time (compact_max_stall: the
// longest the compacting task kept the core between suspensions;
// compact_total_time) measures the code, whatever else the shared machine
// runs. Wall clock (compact_max_stall_wall: the probe's longest lateness;
// compact_total_time_wall) is what a request would see, machine noise
// included: idle_probe_late_ms is the probe's lateness on the idle core
// just before. Extra fields: the store's size and memory, pages freed
// (both sides must free the same, or the run fails), steps, the longest
// single step, the worst round's longest run, and the reactor's longest
// task run (wall). BENCH_COMPACT_TRACE=1 prints every step and run of the
// stepped side on stderr.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/reactor.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/spawn.h"
#include "coblk/storage/page_store.h"
#include "perf/ab_report.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::size_t ps = 4096;
constexpr auto probe_period = std::chrono::microseconds(100);

struct Options {
  std::uint64_t pages = (4ull << 30) / ps;
  int rounds = 3;
  unsigned cpu = 0;
  storage::StepLimits steps;
};

[[noreturn]] void usage(const char* argv0, const char* bad) {
  std::fprintf(stderr,
               "%s: bad argument '%s'\nusage: %s [--quick] [--gib N | --pages N] [--rounds N] [--cpu C] "
               "[--entries N] [--moves N] [--spans N] [--releases N]\n",
               argv0, bad, argv0);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::uint64_t {
      if (i + 1 >= argc) usage(argv[0], argv[i]);
      const std::uint64_t v = std::strtoull(argv[++i], nullptr, 10);
      if (v == 0) usage(argv[0], argv[i]);
      return v;
    };
    if (arg == "--quick") {
      o.pages = 16384;  // 64 MiB
      o.rounds = 3;
    } else if (arg == "--gib") {
      o.pages = value() * ((1ull << 30) / ps);
    } else if (arg == "--pages") {
      o.pages = value();
    } else if (arg == "--rounds") {
      o.rounds = static_cast<int>(value());
    } else if (arg == "--cpu") {
      if (i + 1 >= argc) usage(argv[0], argv[i]);
      o.cpu = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else if (arg == "--entries") {
      o.steps.entries = value();
    } else if (arg == "--moves") {
      o.steps.moves = value();
    } else if (arg == "--spans") {
      o.steps.spans = value();
    } else if (arg == "--releases") {
      o.steps.releases = value();
    } else {
      usage(argv[0], argv[i]);
    }
  }
  return o;
}

// A page of varied compressibility: `seed` picks how many leading bytes are
// random (64..3200); the rest is a repeated word. lz4 stores it in about
// that many bytes, so objects land in most size classes.
void make_page(std::byte* page, std::uint64_t seed) {
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  const std::size_t random_bytes = 64 + next() % 3137;
  for (std::size_t i = 0; i < ps; i += 8) {
    const std::uint64_t v = i < random_bytes ? next() : 0x6b6c626f63202020ull;
    std::memcpy(page + i, &v, 8);
  }
  std::memcpy(page, &seed, sizeof seed);
}

bool kept(std::uint64_t page) { return (page * 0x9e3779b97f4a7c15ull >> 32) % 3 == 0; }

struct Built {
  std::unique_ptr<storage::PageStore> store;
  std::uint64_t mem_before = 0;  // bytes held when compaction starts
};

// The fragmented store both sides compact.
Built build_store(const Options& o) {
  storage::PageStoreConfig c;
  c.size_bytes = o.pages * ps;
  c.cores = 1;
  c.steps = o.steps;
  auto created = storage::PageStore::create(c);
  if (!created) throw std::runtime_error(created.error().message());
  Built b{std::move(created).value()};
  storage::PageStore& s = *b.store;
  // A pool of distinct pages, reused across the device: making them costs
  // nothing next to compressing them.
  constexpr std::size_t pool_pages = 4096;
  std::vector<std::byte> pool(pool_pages * ps);
  for (std::size_t i = 0; i < pool_pages; ++i) make_page(pool.data() + i * ps, i + 1);
  for (std::uint64_t p = 0; p < o.pages; ++p) {
    const std::span<const std::byte> page(pool.data() + (p % pool_pages) * ps, ps);
    if (s.write(0, p * ps, page) != 0) throw std::runtime_error("store write failed");
  }
  for (std::uint64_t p = 0; p < o.pages; ++p) {
    if (!kept(p) && s.discard(0, p * ps, ps) != 0) throw std::runtime_error("store discard failed");
  }
  while (!s.drain_remote_frees(0)) {}
  b.mem_before = s.mm_stat().mem_used_total;
  return b;
}

// Reads back a sample of the kept pages; false on any difference.
bool verify(storage::PageStore& s, const Options& o) {
  std::vector<std::byte> want(ps), got(ps);
  const std::uint64_t stride = std::max<std::uint64_t>(1, o.pages / 4096);
  for (std::uint64_t p = 0; p < o.pages; p += stride) {
    if (!kept(p)) continue;
    make_page(want.data(), p % 4096 + 1);
    if (s.read(0, p * ps, got) != 0 || got != want) return false;
  }
  return true;
}

struct Measurement {
  double longest_run_ms = 0;   // CPU time of the compaction task's longest run without suspending
  double total_cpu_ms = 0;     // CPU time of the whole compaction
  double total_wall_ms = 0;    // start to end of compaction
  double probe_late_ms = 0;    // the probe's longest lateness during compaction (wall clock)
  double idle_late_ms = 0;     // ... before it, on the idle core
  double longest_step_ms = 0;  // CPU time of the longest compact_step
  double reactor_run_ms = 0;   // the reactor's longest task run (wall clock, above 50 us)
  std::uint64_t steps = 0;
  std::uint64_t pages_freed = 0;
};

// This thread's CPU time, ms: what the work costs, without the time the
// shared machine's other processes took the CPU away.
double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

runtime::Task<void> compact_task(storage::PageStore& s, bool stepped, Measurement& m, bool& done) {
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = thread_cpu_ms();
  if (stepped) {
    const bool trace = std::getenv("BENCH_COMPACT_TRACE") != nullptr;
    double run_start = cpu_start;
    for (;;) {
      const double step_start = thread_cpu_ms();
      const storage::CompactionStep step = s.compact_step(0);
      const double step_end = thread_cpu_ms();
      m.longest_step_ms = std::max(m.longest_step_ms, step_end - step_start);
      m.total_cpu_ms += step_end - step_start;
      ++m.steps;
      if (trace) {
        std::fprintf(
            stderr, "step %llu: %.3f ms spans %llu entries %llu moved %llu released %llu\n",
            static_cast<unsigned long long>(m.steps), step_end - step_start,
            static_cast<unsigned long long>(step.spans_scanned), static_cast<unsigned long long>(step.entries_visited),
            static_cast<unsigned long long>(step.objects_moved), static_cast<unsigned long long>(step.pages_released));
      }
      if (step.done) {
        m.pages_freed = step.pages_freed;
        break;
      }
      // co_await runtime::maybe_yield(), as the zram maintenance task does,
      // spelled out to see when it really suspends.
      if (runtime::Reactor::current()->need_yield()) {
        if (trace) {
          std::fprintf(stderr, "run: %.3f ms cpu\n", thread_cpu_ms() - run_start);
        }
        m.longest_run_ms = std::max(m.longest_run_ms, thread_cpu_ms() - run_start);
        co_await runtime::yield();
        run_start = thread_cpu_ms();
      }
    }
    m.longest_run_ms = std::max(m.longest_run_ms, thread_cpu_ms() - run_start);
  } else {
    m.pages_freed = s.compact(0);
    m.steps = 1;
    m.total_cpu_ms = thread_cpu_ms() - cpu_start;
    m.longest_step_ms = m.longest_run_ms = m.total_cpu_ms;
  }
  m.total_wall_ms = ms_since(start);
  done = true;
}

// The probe's lateness over wake-ups while `done` is false (at most
// `limit` wake-ups when given).
runtime::Task<double> probe(const bool& done, int limit = -1) {
  double worst = 0;
  for (int i = 0; !done && i != limit; ++i) {
    const auto before = std::chrono::steady_clock::now();
    co_await runtime::sleep_for(probe_period);
    const double late = ms_since(before) - std::chrono::duration<double, std::milli>(probe_period).count();
    worst = std::max(worst, late);
  }
  co_return worst;
}

Measurement run_side(storage::PageStore& s, bool stepped, const Options& o) {
  runtime::RuntimeConfig config;
  config.cpus = {o.cpu};
  // Every task run longer than 50 us is recorded (max_stall_ns); the
  // one-shot side is expected to stall, so it is not worth a report per run.
  config.reactor.stall_threshold = std::chrono::microseconds(50);
  auto created = runtime::Runtime::create(config);
  if (!created) throw std::runtime_error(created.error().message());
  const std::unique_ptr<runtime::Runtime> rt = std::move(created).value();
  Measurement m;
  rt->run([&]() -> runtime::Task<void> {
    const bool never = false;
    m.idle_late_ms = co_await probe(never, 200);
    bool done = false;
    runtime::spawn(compact_task(s, stepped, m, done), stepped ? "stepped compaction" : "one-shot compaction",
                   runtime::SchedulingGroup::background());
    m.probe_late_ms = co_await probe(done);
    // `done` is set by compact_task, another task on this core, while this
    // one sleeps: the loop ends although its body does not change it.
    while (!done) co_await runtime::sleep_for(probe_period);  // NOLINT(bugprone-infinite-loop)
  });
  m.reactor_run_ms = static_cast<double>(rt->stats(0).max_stall_ns.get()) / 1e6;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    perf::AbSeries stall("compact_max_stall", "ms", perf::Better::lower);
    perf::AbSeries total("compact_total_time", "ms", perf::Better::lower);
    perf::AbSeries wall_stall("compact_max_stall_wall", "ms", perf::Better::lower);
    perf::AbSeries wall_total("compact_total_time_wall", "ms", perf::Better::lower);
    std::vector<double> steps, longest_step, longest_run, reactor_run, idle;
    std::uint64_t mem_before = 0, mem_after = 0, freed = 0;
    bool same_work = true;
    for (int round = 0; round < o.rounds; ++round) {
      Measurement side[2];  // [0] one-shot, [1] stepped
      for (int k = 0; k < 2; ++k) {
        const bool stepped = (k + round) % 2 == 1;  // rotate which side goes first
        Built b = build_store(o);
        const Measurement m = run_side(*b.store, stepped, o);
        if (!verify(*b.store, o)) throw std::runtime_error("a page read back wrong after compaction");
        mem_before = b.mem_before;
        mem_after = b.store->mm_stat().mem_used_total;
        side[stepped ? 1 : 0] = m;
        idle.push_back(m.idle_late_ms);
      }
      same_work = same_work && side[0].pages_freed == side[1].pages_freed && side[0].pages_freed > 0;
      freed = side[1].pages_freed;
      stall.add(side[1].longest_run_ms, side[0].longest_run_ms);
      total.add(side[1].total_cpu_ms, side[0].total_cpu_ms);
      wall_stall.add(side[1].probe_late_ms, side[0].probe_late_ms);
      wall_total.add(side[1].total_wall_ms, side[0].total_wall_ms);
      steps.push_back(static_cast<double>(side[1].steps));
      longest_step.push_back(side[1].longest_step_ms);
      longest_run.push_back(side[1].longest_run_ms);
      reactor_run.push_back(side[1].reactor_run_ms);
    }
    auto max_of = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
    const std::string extra =
        perf::json_number("device_gib", static_cast<double>(o.pages * ps) / double(1ull << 30)) +
        perf::json_number("mem_before_mib", static_cast<double>(mem_before) / double(1 << 20)) +
        perf::json_number("mem_after_mib", static_cast<double>(mem_after) / double(1 << 20)) +
        perf::json_number("pages_freed", static_cast<double>(freed)) + perf::json_number("steps", perf::median(steps)) +
        perf::json_number("longest_step_ms", max_of(longest_step)) +
        perf::json_number("longest_run_ms_worst_round", max_of(longest_run)) +
        perf::json_number("reactor_longest_run_ms_stepped", max_of(reactor_run)) +
        perf::json_number("idle_probe_late_ms", max_of(idle)) + perf::json_text("baseline_is", "one-shot compact") +
        perf::json_text("ours_is", "stepped compact");
    // CPU time (this thread's): what compaction itself costs and how long
    // it keeps the core, whatever else the shared machine runs.
    stall.print(extra + perf::json_text("clock", "thread CPU"));
    total.print(extra + perf::json_text("clock", "thread CPU"));
    // Wall clock: what a request on the core would see, machine noise
    // included (idle_probe_late_ms is that noise on an idle core).
    wall_stall.print(extra + perf::json_text("clock", "wall, probe lateness"));
    wall_total.print(extra + perf::json_text("clock", "wall"));
    if (!same_work) {
      std::fprintf(stderr, "bench_compact: the two sides freed different pages (or none)\n");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_compact: %s\n", e.what());
    return 1;
  }
}
