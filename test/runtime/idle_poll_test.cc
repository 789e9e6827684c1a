// Idle polling (ReactorConfig::idle_poll_us): an idle reactor checks its
// completion queue, mailboxes and parked waits for a while before it
// sleeps; and a sleep has no time limit.
#include <boost/test/unit_test.hpp>

#include <liburing.h>

#include <chrono>
#include <cstdint>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "test/require_ok.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_idle_poll_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace std::chrono_literals;
using runtime::Task;

namespace {

runtime::RuntimeConfig polling(std::initializer_list<unsigned> cpus, unsigned idle_poll_us) {
  runtime::RuntimeConfig config = runtime_test::cores(cpus);
  config.reactor.idle_poll_us = idle_poll_us;
  return config;
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_idle_reactor_polls_for_a_while_and_then_sleeps) {
  const auto rt = test::require_ok(runtime::Runtime::create(polling({0}, 2000)));
  rt->run([]() -> Task<void> { co_await runtime::sleep_for(30ms); });
  BOOST_TEST(rt->stats(0).idle_polls.get() >= 1u);
  BOOST_TEST(rt->stats(0).sleeps.get() >= 1u);  // 2 ms of polling, then asleep until the timer
}

BOOST_AUTO_TEST_CASE(with_idle_poll_us_0_a_reactor_never_polls) {
  const auto rt = test::require_ok(runtime::Runtime::create(polling({0}, 0)));
  rt->run([]() -> Task<void> { co_await runtime::sleep_for(5ms); });
  BOOST_TEST(rt->stats(0).idle_polls.get() == 0u);
  BOOST_TEST(rt->stats(0).sleeps.get() >= 1u);
}

BOOST_AUTO_TEST_CASE(a_completion_within_the_poll_window_is_reaped_without_sleeping) {
  const auto rt = test::require_ok(runtime::Runtime::create(polling({0}, 200000)));
  std::uint64_t sleeps = 0, hits = 0;
  rt->run([&]() -> Task<void> {
    const std::uint64_t sleeps_before = rt->stats(0).sleeps.get();
    const std::uint64_t hits_before = rt->stats(0).idle_poll_hits.get();
    for (int i = 0; i < 10; ++i) {
      co_await runtime::sleep_for(1ms);  // a timer CQE, found by polling
    }
    sleeps = rt->stats(0).sleeps.get() - sleeps_before;
    hits = rt->stats(0).idle_poll_hits.get() - hits_before;
  });
  BOOST_TEST(sleeps == 0u);
  BOOST_TEST(hits >= 10u);
}

BOOST_AUTO_TEST_CASE(submit_to_round_trips_between_polling_cores_need_no_sleep_and_no_wake_up) {
  const auto rt = test::require_ok(runtime::Runtime::create(polling({0, 1}, 200000)));
  std::uint64_t sleeps = 0, wakeups = 0;
  rt->run([&]() -> Task<void> {
    co_await runtime::submit_to(1, [] {});  // core 1 is running and polling from here on
    const std::uint64_t sleeps_before = rt->stats(0).sleeps.get() + rt->stats(1).sleeps.get();
    const std::uint64_t wakeups_before = rt->stats(0).wakeups_sent.get() + rt->stats(1).wakeups_sent.get();
    for (int i = 0; i < 2000; ++i) {
      co_await runtime::submit_to(1, [] {});
    }
    sleeps = rt->stats(0).sleeps.get() + rt->stats(1).sleeps.get() - sleeps_before;
    wakeups = rt->stats(0).wakeups_sent.get() + rt->stats(1).wakeups_sent.get() - wakeups_before;
  });
  BOOST_TEST(sleeps == 0u);
  BOOST_TEST(wakeups == 0u);
}

BOOST_AUTO_TEST_CASE(a_stop_request_ends_idle_polling_at_once) {
  // Core 1 would poll for 10 s; the run must still end as soon as main does.
  const auto rt = test::require_ok(runtime::Runtime::create(polling({0, 1}, 10000000)));
  const auto start = std::chrono::steady_clock::now();
  rt->run([]() -> Task<void> { co_await runtime::submit_to(1, [] {}); });
  const bool quick = std::chrono::steady_clock::now() - start < 2s;
  BOOST_TEST(quick);
}

BOOST_AUTO_TEST_CASE(a_sleep_has_no_time_limit) {
  // One timer 600 ms away and nothing else: one sleep. With the former
  // 250 ms limit the reactor woke up twice more on its own.
  const auto rt = test::require_ok(runtime::Runtime::create(polling({0}, 0)));
  std::uint64_t sleeps = 0;
  rt->run([&]() -> Task<void> {
    const std::uint64_t before = rt->stats(0).sleeps.get();
    co_await runtime::sleep_for(600ms);
    sleeps = rt->stats(0).sleeps.get() - before;
  });
  BOOST_TEST(sleeps == 1u);
}

BOOST_AUTO_TEST_CASE(a_ring_with_deferred_completions_reports_them_in_its_flags) {
  // Idle polling reads IORING_SQ_TASKRUN instead of entering the kernel; the
  // kernel sets it only for rings created with TASKRUN_FLAG.
  const auto rt = test::require_ok(runtime::Runtime::create(polling({0}, 0)));
  const unsigned flags = rt->run([]() -> Task<unsigned> { co_return runtime::Reactor::current()->ring_flags(); });
  if ((flags & (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN)) != 0) {
    BOOST_TEST((flags & IORING_SETUP_TASKRUN_FLAG) != 0u);
  }
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_idle_poll_test
