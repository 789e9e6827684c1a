// ReactorStats: the counters move as work is done, and a task that runs
// too long without yielding is reported as a stall under its name.
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

BOOST_AUTO_TEST_SUITE(runtime_stats_test)

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
    // In a group of its own the staller is timed alone (the reactor reads
    // the clock after each group's run), so its first stall is named.
    runtime::spawn(
        []() -> Task<void> {
          busy_wait(100ms);
          co_return;
        }(),
        "staller", runtime::SchedulingGroup::background());
    // A timer, not a yield: main must not resume in the same run as the
    // staller, whose stall is counted when that run ends.
    BOOST_TEST(co_await runtime::sleep_for(1ms) == 0);
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

BOOST_AUTO_TEST_CASE(a_stall_among_tasks_timed_together_is_counted_and_the_next_one_is_named) {
  runtime::RuntimeConfig config = runtime_test::cores({0});
  config.reactor.stall_threshold = 20ms;
  const auto rt = test::require_ok(runtime::Runtime::create(config));
  runtime_test::StderrCapture capture;
  std::uint64_t stalls_after_first = 0, stalls_after_second = 0;
  std::string first_name, second_name;
  bool staller_done = false;
  rt->run([&]() -> Task<void> {
    const auto& stats = runtime::Reactor::current()->stats();
    const std::uint64_t before = stats.stalls.get();
    // Same group as main and a few short tasks: the reactor times them 16
    // at a time, so it cannot tell which of them stalled the first time.
    runtime::spawn(
        [](bool& done) -> Task<void> {
          busy_wait(60ms);
          BOOST_TEST(co_await runtime::nop() == 0);
          busy_wait(60ms);  // within a second of the first: timed alone
          done = true;
        }(staller_done),
        "staller");
    for (int i = 0; i < 4; ++i) runtime::spawn([]() -> Task<void> { co_return; }(), "short");
    BOOST_TEST(co_await runtime::nop() == 0);
    stalls_after_first = stats.stalls.get() - before;
    const char* name = stats.last_stall_task.load(std::memory_order_acquire);
    first_name = name ? name : "";
    while (!staller_done) BOOST_TEST_REQUIRE(co_await runtime::nop() == 0);
    BOOST_TEST(co_await runtime::nop() == 0);  // the staller's run has ended
    stalls_after_second = stats.stalls.get() - before;
    name = stats.last_stall_task.load(std::memory_order_acquire);
    second_name = name ? name : "";
  });
  const std::string text = capture.text();
  BOOST_TEST(stalls_after_first >= 1u);
  BOOST_TEST(!first_name.empty());  // the last task of the group timed together
  BOOST_TEST(stalls_after_second >= stalls_after_first + 1);
  BOOST_TEST(second_name == "staller");
  BOOST_TEST(text.find("timing each task for a second") != std::string::npos, text);
  BOOST_TEST(text.find("task 'staller'") != std::string::npos, text);
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_stats_test
