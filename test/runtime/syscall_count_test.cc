// ReactorStats::enters counts io_uring_enter system calls exactly: one per
// submission (and per wait) without SQPOLL; with SQPOLL none for a
// submission while the poller thread is awake, one per wait; and the
// poller can be pinned to a CPU (ReactorConfig::sqpoll_cpus).
#include <boost/test/unit_test.hpp>

#include <liburing.h>
#include <sched.h>

#include <cstdint>
#include <system_error>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "test/require_ok.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_syscall_count_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;

namespace {

constexpr int kOps = 500;

// SQPOLL needs Linux 5.11 to be unprivileged; a kernel or sandbox that
// refuses it skips the SQPOLL cases rather than failing them.
boost::test_tools::assertion_result sqpoll_available(boost::unit_test::test_unit_id /*unused*/) {
  io_uring ring{};
  io_uring_params params{};
  params.flags = IORING_SETUP_SQPOLL;
  params.sq_thread_idle = 10;
  const int ret = io_uring_queue_init_params(8, &ring, &params);
  if (ret != 0) {
    boost::test_tools::assertion_result skip(false);
    skip.message() << "SQPOLL rings are refused here (" << ret << "): skipped";
    return skip;
  }
  io_uring_queue_exit(&ring);
  return true;
}

// A CPU other than 0 that this process may use, or 0 if there is none.
unsigned other_cpu() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return 0;
  for (unsigned cpu = 1; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) return cpu;
  }
  return 0;
}

// A one-core runtime on CPU 0 with the given polling settings.
runtime::RuntimeConfig config(bool sqpoll, unsigned idle_poll_us) {
  runtime::RuntimeConfig c = runtime_test::cores({0});
  c.reactor.sqpoll = sqpoll;
  // Long enough that the poller never sleeps during the loop: a submission
  // then never needs a wake-up.
  c.reactor.sqpoll_idle_ms = 1000;
  c.reactor.idle_poll_us = idle_poll_us;
  return c;
}

struct Counts {
  std::uint64_t enters = 0;
  std::uint64_t sleeps = 0;
  std::uint64_t sqes = 0;
};

// Runs kOps NOPs one after the other and returns the counters' growth over
// exactly that loop (read on the reactor's own thread, before and after).
Counts nops_one_at_a_time(const runtime::RuntimeConfig& c) {
  const auto rt = test::require_ok(runtime::Runtime::create(c));
  return rt->run([&]() -> Task<Counts> {
    // The first submission also carries the reactor's own eventfd read.
    BOOST_TEST_REQUIRE(co_await runtime::nop() == 0);
    const runtime::ReactorStats& s = runtime::Reactor::current()->stats();
    const Counts before{s.enters.get(), s.sleeps.get(), s.sqes_submitted.get()};
    for (int i = 0; i < kOps; ++i) {
      BOOST_TEST_REQUIRE(co_await runtime::nop() == 0);
    }
    co_return Counts{s.enters.get() - before.enters, s.sleeps.get() - before.sleeps,
                     s.sqes_submitted.get() - before.sqes};
  });
}

}  // namespace

BOOST_AUTO_TEST_CASE(without_sqpoll_each_submit_and_wait_is_one_io_uring_enter) {
  const Counts n = nops_one_at_a_time(config(false, 0));
  BOOST_TEST(n.sleeps == std::uint64_t{kOps});
  BOOST_TEST(n.enters == std::uint64_t{kOps});
  BOOST_TEST(n.sqes == std::uint64_t{kOps});
}

BOOST_AUTO_TEST_CASE(without_sqpoll_an_idle_polling_reactor_still_enters_once_per_submission) {
  // No sleeps (the NOP completes within the poll window), but every
  // submission is a system call of its own.
  const Counts n = nops_one_at_a_time(config(false, 100000));
  BOOST_TEST(n.sleeps == 0u);
  BOOST_TEST(n.enters == std::uint64_t{kOps});
}

BOOST_AUTO_TEST_CASE(with_sqpoll_each_wait_is_still_one_io_uring_enter,
                     *boost::unit_test::precondition(sqpoll_available)) {
  // The poller takes the SQE without a syscall, but a reactor that sleeps
  // for its completion enters the kernel to wait: one per sleep.
  const Counts n = nops_one_at_a_time(config(true, 0));
  BOOST_TEST(n.enters == n.sleeps);
  BOOST_TEST(n.sqes == std::uint64_t{kOps});
}

BOOST_AUTO_TEST_CASE(with_sqpoll_and_idle_polling_submissions_need_almost_no_io_uring_enter,
                     *boost::unit_test::precondition(sqpoll_available)) {
  // The reactor polls its CQ for up to 100 ms instead of sleeping, and the
  // poller thread is awake: a NOP costs no syscall. Some remain when the
  // poller is descheduled long enough on this shared host for the reactor
  // to sleep, so the bound is loose; without SQPOLL the same loop makes
  // kOps (the case above).
  runtime::RuntimeConfig c = config(true, 100000);
  // The poller on another CPU than the spinning reactor's (CPU 0), where
  // there is one: sharing a CPU, each waits for the other's time slice.
  if (const unsigned other = other_cpu(); other != 0) c.reactor.sqpoll_cpus = {other};
  const Counts n = nops_one_at_a_time(c);
  BOOST_TEST_MESSAGE(kOps << " NOPs with SQPOLL and idle polling: " << n.enters << " io_uring_enter, " << n.sleeps
                          << " sleeps");
  BOOST_TEST(n.enters == n.sleeps);
  BOOST_TEST(n.enters < std::uint64_t{kOps / 10});
  BOOST_TEST(n.sqes == std::uint64_t{kOps});
}

BOOST_AUTO_TEST_CASE(an_sqpoll_thread_pinned_to_a_cpu_runs_operations,
                     *boost::unit_test::precondition(sqpoll_available)) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  BOOST_TEST_REQUIRE(::sched_getaffinity(0, sizeof(allowed), &allowed) == 0);
  unsigned cpu = 0;
  while (!CPU_ISSET(cpu, &allowed)) ++cpu;
  runtime::RuntimeConfig c = config(true, 0);
  c.reactor.sqpoll_cpus = {cpu};
  const auto rt = test::require_ok(runtime::Runtime::create(c));
  const unsigned flags = rt->run([]() -> Task<unsigned> {
    for (int i = 0; i < 20; ++i) {
      BOOST_TEST_REQUIRE(co_await runtime::nop() == 0);
    }
    co_return runtime::Reactor::current()->ring_flags();
  });
  BOOST_TEST((flags & IORING_SETUP_SQPOLL) != 0u);
  BOOST_TEST((flags & IORING_SETUP_SQ_AFF) != 0u);
}

BOOST_AUTO_TEST_CASE(an_sqpoll_cpu_that_does_not_exist_makes_run_throw,
                     *boost::unit_test::precondition(sqpoll_available)) {
  runtime::RuntimeConfig c = config(true, 0);
  c.reactor.sqpoll_cpus = {4095};  // CONFIG_NR_CPUS is smaller on every kernel this runs on
  const auto rt = test::require_ok(runtime::Runtime::create(c));
  BOOST_CHECK_THROW(rt->run([]() -> Task<void> { co_return; }), std::system_error);
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_syscall_count_test
