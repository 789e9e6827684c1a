// Fault injection (runtime/fault_injection.h): injected failures reach the
// awaiter, a lost cross-core wake-up is sent again at once, and a failed
// frame allocation is an exception the awaiter sees. Built and run only
// with -DCOBLK_FAULT_INJECTION=ON.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <new>

#include "coblk/runtime/fault_injection.h"
#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "test/require_ok.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_fault_injection_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library
namespace fault = runtime::fault;

namespace {

// Clears every rule when a test case ends, pass or fail.
struct ClearRules {
  ClearRules() { fault::clear(); }
  ~ClearRules() { fault::clear(); }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(fault_injection, ClearRules)

BOOST_AUTO_TEST_CASE(an_injected_error_and_a_short_count_reach_the_awaiter_of_the_matching_operation_only) {
  BOOST_REQUIRE(fault::available());
  const int fd = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  BOOST_REQUIRE(fd >= 0);
  char buf[4096];
  BOOST_REQUIRE(fault::arm({.site = fault::Site::io_result, .opcode = IORING_OP_READ, .skip = 1, .result = -EIO}));
  BOOST_REQUIRE(fault::arm({.site = fault::Site::io_result, .opcode = IORING_OP_READ, .skip = 2, .result = 512}));
  const auto results = runtime_test::run_on_one_core([&]() -> runtime::Task<std::vector<int>> {
    std::vector<int> r;
    r.push_back(co_await runtime::nop());                          // not a read: untouched
    r.push_back(co_await runtime::read(fd, buf, sizeof(buf), 0));  // first read: skipped by both rules
    r.push_back(co_await runtime::read(fd, buf, sizeof(buf), 0));  // -EIO
    r.push_back(co_await runtime::read(fd, buf, sizeof(buf), 0));  // short: 512
    r.push_back(co_await runtime::read(fd, buf, sizeof(buf), 0));  // both rules spent
    co_return r;
  });
  ::close(fd);
  BOOST_TEST((results == std::vector<int>{0, 4096, -EIO, 512, 4096}));
  BOOST_TEST(fault::fired(fault::Site::io_result) == 2u);
}

BOOST_AUTO_TEST_CASE(a_refused_wake_up_is_sent_again_at_once_by_eventfd) {
  // No idle polling: core 1 must be asleep when each message arrives.
  runtime::RuntimeConfig config = runtime_test::cores({0, 1});
  config.reactor.idle_poll_us = 0;
  const auto rt = test::require_ok(runtime::Runtime::create(config));
  // Every MSG_RING wake-up is "refused": each must be resent by eventfd.
  // Without the resend the first round trip would never end (a sleep has
  // no time limit).
  BOOST_REQUIRE(fault::arm({.site = fault::Site::wakeup, .count = 1000000}));
  constexpr int kRoundTrips = 40;
  const auto start = std::chrono::steady_clock::now();
  rt->run([&]() -> runtime::Task<void> {
    for (int i = 0; i < kRoundTrips; ++i) {
      // Let core 1 fall asleep first, so the message needs a wake-up.
      co_await runtime::sleep_for(std::chrono::milliseconds(2));
      co_await runtime::submit_to(1, [] {});
    }
  });
  const auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(fault::fired(fault::Site::wakeup) > 0u);
  BOOST_TEST(rt->stats(0).wakeup_retries.get() + rt->stats(1).wakeup_retries.get() > 0u);
  // 40 round trips with 2 ms sleeps take ~0.1 s.
  BOOST_TEST(took < std::chrono::seconds(5));
}

BOOST_AUTO_TEST_CASE(a_failed_frame_allocation_is_a_bad_alloc_for_the_caller) {
  auto child = []() -> runtime::Task<int> { co_return 7; };
  const int outcome = runtime_test::run_on_one_core([&]() -> runtime::Task<int> {
    BOOST_REQUIRE(fault::arm({.site = fault::Site::frame_alloc}));
    try {
      co_return co_await child();
    } catch (const std::bad_alloc&) {
      co_return -ENOMEM;
    }
  });
  BOOST_TEST(outcome == -ENOMEM);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END()  // runtime_fault_injection_test
