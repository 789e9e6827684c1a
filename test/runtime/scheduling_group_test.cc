// Scheduling groups: a busy background group cannot starve io tasks, and
// the group table is validated.
//
// Starvation is measured in scheduler rounds, not time: every time a
// background task is actually made to yield (its group's slice is used up)
// counts one round, and the io task must make steady progress per round.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/spawn.h"
#include "coblk/runtime/when_all.h"
#include "test/require_ok.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_scheduling_group_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace std::chrono_literals;
using runtime::SchedulingGroup;
using runtime::Task;

namespace {

/// A little CPU work that the optimiser cannot remove.
void spin_a_little() {
  volatile unsigned sink = 0;
  for (unsigned i = 0; i < 2000; ++i) {
    sink = sink + i;
  }
}

struct Spinners {
  bool stop = false;
  std::uint64_t forced_yields = 0;  // rounds in which the background slice ran out
  std::uint64_t units = 0;
  static constexpr std::uint64_t give_up_after = 200000;  // a starving scheduler fails, not hangs
};

Task<void> spin_until_stopped(Spinners* s) {
  while (!s->stop && s->forced_yields < Spinners::give_up_after) {
    spin_a_little();
    ++s->units;
    if (runtime::Reactor::current()->need_yield()) {
      ++s->forced_yields;
    }
    co_await runtime::maybe_yield();
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_busy_background_group_cannot_starve_io_tasks) {
  constexpr int nops = 200, sleeps = 20;
  Spinners bg;
  std::uint64_t rounds_used = 0;
  int io_steps = 0;
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0})));
  rt->run([&]() -> Task<void> {
    runtime::spawn(spin_until_stopped(&bg), "spinner 1", SchedulingGroup::background());
    runtime::spawn(spin_until_stopped(&bg), "spinner 2", SchedulingGroup::background());
    co_await runtime::yield();  // the spinners are running from here on
    for (int i = 0; i < nops; ++i) {
      BOOST_TEST_REQUIRE(co_await runtime::nop() == 0);
      ++io_steps;
    }
    for (int i = 0; i < sleeps; ++i) {
      BOOST_TEST_REQUIRE(co_await runtime::sleep_for(200us) == 0);
      ++io_steps;
    }
    rounds_used = bg.forced_yields;
    bg.stop = true;
  });
  BOOST_TEST(io_steps == nops + sleeps);
  // Each io step needs one trip through the reactor loop, and each trip
  // gives the background group at most one slice (two spinners may both
  // see it end). A scheduler that let the background run unopposed would
  // use many rounds per io step, or all of them.
  BOOST_TEST(rounds_used < Spinners::give_up_after);
  BOOST_TEST(rounds_used <= std::uint64_t{4 * (nops + sleeps) + 20},
             "background rounds while io made " << nops + sleeps << " steps: " << rounds_used);
  BOOST_TEST(bg.units > 0u);  // and the background did run meanwhile
  const auto& io_stats = rt->stats(0).groups[SchedulingGroup::io().index()];
  const auto& bg_stats = rt->stats(0).groups[SchedulingGroup::background().index()];
  BOOST_TEST(io_stats.tasks_run.get() >= std::uint64_t{nops + sleeps});
  BOOST_TEST(bg_stats.tasks_run.get() > 0u);
  BOOST_TEST(io_stats.runtime_ns.get() > 0u);
  BOOST_TEST(bg_stats.runtime_ns.get() > 0u);
}

// Weighted sharing between two always-busy groups is not tested: it is
// measured in time, and on a shared machine one long preemption charged to
// a group skews the split over any short window. Starvation (above) is
// measured in rounds instead, which preemption cannot skew much.

BOOST_AUTO_TEST_CASE(create_scheduling_group_rejects_zero_shares) {
  BOOST_CHECK_THROW(runtime::create_scheduling_group("none", 0), std::invalid_argument);
  BOOST_CHECK_THROW(runtime::set_scheduling_group_shares(SchedulingGroup::background(), 0), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(groups_cannot_be_created_or_changed_while_a_runtime_runs) {
  const unsigned before = runtime::scheduling_group_count();
  int refused = 0;
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0})));
  rt->run([&]() -> Task<void> {
    try {
      runtime::create_scheduling_group("late", 100);
    } catch (const std::logic_error&) {
      ++refused;
    }
    try {
      runtime::set_scheduling_group_shares(SchedulingGroup::io(), 5);
    } catch (const std::logic_error&) {
      ++refused;
    }
    co_return;
  });
  BOOST_TEST(refused == 2);
  BOOST_TEST(runtime::scheduling_group_count() == before);
  BOOST_TEST(SchedulingGroup::io().shares() == 1000u);
}

BOOST_AUTO_TEST_CASE(a_created_group_has_its_name_and_shares_and_runs_tasks) {
  const SchedulingGroup flush = runtime::create_scheduling_group("flush", 300);
  BOOST_TEST(flush.name() == "flush");
  BOOST_TEST(flush.shares() == 300u);
  BOOST_TEST(flush.index() == runtime::scheduling_group_count() - 1);
  runtime::set_scheduling_group_shares(flush, 50);
  BOOST_TEST(flush.shares() == 50u);
  unsigned ran_in = 99;
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0})));
  rt->run([&]() -> Task<void> {
    runtime::spawn(
        [](unsigned* out) -> Task<void> {
          *out = runtime::Reactor::current()->current_group().index();
          co_return;
        }(&ran_in),
        "in flush", flush);
    co_await runtime::yield();
  });
  BOOST_TEST(ran_in == flush.index());
  BOOST_TEST(rt->stats(0).groups[flush.index()].tasks_run.get() == 1u);
}

BOOST_AUTO_TEST_CASE(the_group_table_holds_at_most_eight_groups) {
  while (runtime::scheduling_group_count() < SchedulingGroup::max_groups) {
    runtime::create_scheduling_group("filler", 10);
  }
  BOOST_CHECK_THROW(runtime::create_scheduling_group("one too many", 10), std::logic_error);
  BOOST_TEST(runtime::scheduling_group_count() == SchedulingGroup::max_groups);
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_scheduling_group_test
