// bench_task: the cost of one level of a 1000-deep chain of awaited
// runtime::Task<int>: create the child (allocate its frame), await it
// (symmetric transfer in and out), take its result, destroy it.
//
//   bench_task [--quick] [--rounds N] [--seconds S] [--ops N] [--budget S]
//
// Results (ns per level; ratio > 1 means ours is faster):
//   task_chain1000        baseline: the same recursion with a minimal
//                         hand-written lazy task: frame from the global
//                         operator new (what std::allocator uses), symmetric
//                         transfer, the int result in the promise, no
//                         exception transport. This isolates what Task adds.
//   task_chain1000_plain  baseline: the same recursion as plain (non-inlined)
//                         function calls: the floor, for scale.
//   task_pair             baseline: the minimal task. One task awaiting
//                         another (chain(1): two frames, ns per pair), the
//                         shape of one ublk request (Queue::handle awaiting
//                         the target's operation): two frames live at a
//                         time, so an allocator's per-size cache always hits.
// Everything runs in a Runtime's main task on one pinned core, so frames come
// from the reactor thread's heap as they do in the product. Note: when
// mimalloc is linked (COBLK_USE_MIMALLOC, the default) it also replaces
// malloc and operator new process-wide, so both coroutine sides allocate
// from mimalloc; the difference measured is Task's own bookkeeping.

#include <coroutine>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <utility>

#include "coblk/runtime/runtime.h"
#include "coblk/runtime/task.h"
#include "perf/ab_report.h"
#include "perf/runtime/bench_config.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;

namespace {

constexpr int depth = 1000;
constexpr int pair_depth = 1;  // chain(1): two frames

// ---- ours ----

Task<int> chain(int level) {
  if (level == 0) {
    co_return 0;
  }
  co_return 1 + co_await chain(level - 1);
}

// ---- the minimal lazy task ----

class MinimalTask {
 public:
  struct promise_type {
    static void* operator new(std::size_t size) { return ::operator new(size); }
    static void operator delete(void* p, std::size_t size) noexcept { ::operator delete(p, size); }
    MinimalTask get_return_object() noexcept {
      return MinimalTask(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> self) noexcept {
        return self.promise().continuation;
      }
      void await_resume() const noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void return_value(int v) noexcept { value = v; }
    void unhandled_exception() noexcept { std::terminate(); }

    std::coroutine_handle<> continuation;
    int value = 0;
  };

  explicit MinimalTask(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  MinimalTask(MinimalTask&& o) noexcept : handle_(std::exchange(o.handle_, {})) {}
  MinimalTask& operator=(MinimalTask&&) = delete;
  ~MinimalTask() {
    if (handle_) {
      handle_.destroy();
    }
  }

  auto operator co_await() && noexcept {
    struct Awaiter {
      std::coroutine_handle<promise_type> handle;
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
        handle.promise().continuation = awaiter;
        return handle;
      }
      int await_resume() const noexcept { return handle.promise().value; }
    };
    return Awaiter{handle_};
  }

 private:
  std::coroutine_handle<promise_type> handle_;
};

MinimalTask minimal_chain(int level) {
  if (level == 0) {
    co_return 0;
  }
  co_return 1 + co_await minimal_chain(level - 1);
}

// ---- plain calls ----

[[gnu::noinline]] int plain_chain(int level) {
  if (level == 0) {
    return 0;
  }
  int below = plain_chain(level - 1);
  // Keeps the compiler from turning the recursion into a loop.
  asm volatile("" : "+r"(below));
  return 1 + below;
}

// ---- timing: ns per level over `chains` chains ----

Task<double> time_ours(std::uint64_t chains, int levels) {
  std::uint64_t sum = 0;
  const double start = perf::now_seconds();
  for (std::uint64_t i = 0; i < chains; ++i) {
    sum += static_cast<std::uint64_t>(co_await chain(levels));
  }
  const double seconds = perf::now_seconds() - start;
  if (sum != chains * levels) {
    throw std::runtime_error("task chain returned a wrong depth");
  }
  co_return seconds * 1e9 / static_cast<double>(chains * levels);
}

Task<double> time_minimal(std::uint64_t chains, int levels) {
  std::uint64_t sum = 0;
  const double start = perf::now_seconds();
  for (std::uint64_t i = 0; i < chains; ++i) {
    sum += static_cast<std::uint64_t>(co_await minimal_chain(levels));
  }
  const double seconds = perf::now_seconds() - start;
  if (sum != chains * levels) {
    throw std::runtime_error("minimal task chain returned a wrong depth");
  }
  co_return seconds * 1e9 / static_cast<double>(chains * levels);
}

double time_plain(std::uint64_t chains) {
  std::uint64_t sum = 0;
  const double start = perf::now_seconds();
  for (std::uint64_t i = 0; i < chains; ++i) {
    sum += static_cast<std::uint64_t>(plain_chain(depth));
  }
  const double seconds = perf::now_seconds() - start;
  if (sum != chains * depth) {
    throw std::runtime_error("plain chain returned a wrong depth");
  }
  return seconds * 1e9 / static_cast<double>(chains * depth);
}

Task<int> bench_main(const perf::BenchOptions& options) {
  const double warm_ns = co_await time_minimal(100, depth);
  (void)co_await time_ours(100, depth);
  const std::uint64_t chains = perf::ops_for(1e9 / (warm_ns * depth), options.seconds, 1, options.ops);
  perf::AbSeries against_minimal("task_chain1000", "ns/level", perf::Better::lower);
  perf::AbSeries against_plain("task_chain1000_plain", "ns/level", perf::Better::lower);
  perf::AbSeries pairs("task_pair", "ns/pair", perf::Better::lower);
  // As many frames in pairs as in the deep chains.
  const std::uint64_t pair_count = chains * depth / 2;
  const perf::RoundBudget budget(options, 1.0);
  for (int round = 0; budget.next(round); ++round) {
    double ours = 0, minimal = 0, plain = 0, ours_pair = 0, minimal_pair = 0;
    for (int turn = 0; turn < 5; ++turn) {
      switch ((round + turn) % 5) {
        case 0:
          ours = co_await time_ours(chains, depth);
          break;
        case 1:
          minimal = co_await time_minimal(chains, depth);
          break;
        case 2:
          ours_pair = co_await time_ours(pair_count, pair_depth);
          break;
        case 3:
          minimal_pair = co_await time_minimal(pair_count, pair_depth);
          break;
        default:
          plain = time_plain(chains * 10);
          break;
      }
    }
    against_minimal.add(ours, minimal);
    against_plain.add(ours, plain);
    pairs.add(ours_pair, minimal_pair);
  }
  against_minimal.print(perf::json_text("baseline_is", "minimal lazy task, global operator new") +
                        perf::json_number("depth", depth));
  against_plain.print(perf::json_text("baseline_is", "plain recursive function calls") +
                      perf::json_number("depth", depth));
  pairs.print(perf::json_text("baseline_is", "minimal lazy task, global operator new") +
              perf::json_number("depth", pair_depth));
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = perf::BenchOptions::parse(argc, argv, "[--quick] [--rounds N] [--seconds S] [--ops N]");
  try {
    const auto rt = perf::bench_runtime(perf::bench_runtime_config());
    return rt->run([&] { return bench_main(options); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_task: %s\n", e.what());
    return 1;
  }
}
