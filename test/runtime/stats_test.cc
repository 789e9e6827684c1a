// ReactorStats: the counters move as work is done, and a task that runs
// too long without yielding is reported as a stall under its name.
#define BOOST_TEST_MODULE runtime_stats
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>

#include "coblk/runtime/cycle_clock.h"
#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/spawn.h"
#include "coblk/runtime/submit_to.h"
#include "test/require_ok.h"
#include "test/runtime/support.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace std::chrono_literals;
using runtime::Task;

namespace {

struct Snapshot {
  std::uint64_t tasks_run, sqes_submitted, cqes_reaped, sleeps, messages_sent, messages_received, wakeups_sent;
  explicit Snapshot(const runtime::ReactorStats& s)
      : tasks_run(s.tasks_run.get()),
        sqes_submitted(s.sqes_submitted.get()),
        cqes_reaped(s.cqes_reaped.get()),
        sleeps(s.sleeps.get()),
        messages_sent(s.messages_sent.get()),
        messages_received(s.messages_received.get()),
        wakeups_sent(s.wakeups_sent.get()) {}
};

void busy_wait(std::chrono::microseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {}
}

}  // namespace

BOOST_AUTO_TEST_CASE(counters_grow_with_operations_tasks_sleeps_and_messages) {
  constexpr int nops = 100, naps = 10;
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  std::optional<Snapshot> before0, before1;
  rt->run([&]() -> Task<void> {
    before0.emplace(rt->stats(0));
    before1.emplace(rt->stats(1));
    for (int i = 0; i < nops; ++i) {
      co_await runtime::nop();
    }
    for (int i = 0; i < naps; ++i) {
      co_await runtime::sleep_for(1ms);  // idle: core 0 sleeps, and so does core 1
      co_await runtime::submit_to(1, [] { return 0; });
    }
  });
  const Snapshot after0(rt->stats(0)), after1(rt->stats(1));
  BOOST_TEST(after0.tasks_run - before0->tasks_run >= std::uint64_t{nops + naps});
  BOOST_TEST(after0.sqes_submitted - before0->sqes_submitted >= std::uint64_t{nops + naps});
  BOOST_TEST(after0.cqes_reaped - before0->cqes_reaped >= std::uint64_t{nops + naps});
  BOOST_TEST(after0.sleeps - before0->sleeps >= 1u);
  BOOST_TEST(after1.sleeps - before1->sleeps >= 1u);
  // One request each way per submit_to.
  BOOST_TEST(after0.messages_sent - before0->messages_sent >= std::uint64_t{naps});
  BOOST_TEST(after1.messages_received - before1->messages_received >= std::uint64_t{naps});
  BOOST_TEST(after1.messages_sent - before1->messages_sent >= std::uint64_t{naps});
  BOOST_TEST(after0.messages_received - before0->messages_received >= std::uint64_t{naps});
  // Core 1 sat asleep between requests, so someone had to wake it.
  BOOST_TEST(after0.wakeups_sent - before0->wakeups_sent >= 1u);
  BOOST_TEST(rt->stats(0).unknown_cqes.get() == 0u);
  BOOST_TEST(rt->stats(1).unknown_cqes.get() == 0u);
}

BOOST_AUTO_TEST_CASE(a_task_that_busy_loops_past_the_stall_threshold_is_counted_as_a_stall_under_its_name) {
  runtime::RuntimeConfig config = runtime_test::cores({0});
  config.reactor.stall_threshold = 20ms;
  const auto rt = test::require_ok(runtime::Runtime::create(config));
  runtime_test::StderrCapture capture;
  std::uint64_t stalls_before = 0, stalls_after = 0;
  std::string stalled_task;
  rt->run([&]() -> Task<void> {
    const auto& stats = runtime::Reactor::current()->stats();
    stalls_before = stats.stalls.get();
    runtime::spawn(
        []() -> Task<void> {
          busy_wait(100ms);
          co_return;
        }(),
        "staller");
    co_await runtime::yield();  // the staller runs (and is measured) before we resume
    stalls_after = stats.stalls.get();
    const char* name = stats.last_stall_task.load(std::memory_order_acquire);
    stalled_task = name ? name : "";
  });
  const std::string text = capture.text();
  // At least the staller's; on a loaded machine a preempted main may add one.
  BOOST_TEST(stalls_after - stalls_before >= 1u, "ticks per ns " << runtime::CycleClock::ticks_per_ns()
                                                                 << ", max stall ns "
                                                                 << rt->stats(0).max_stall_ns.get());
  BOOST_TEST(stalled_task == "staller");
  BOOST_TEST(rt->stats(0).max_stall_ns.get() >= 50000000u);  // TSC vs steady_clock: not exact
  BOOST_TEST(text.find("task 'staller'") != std::string::npos, text);
}
