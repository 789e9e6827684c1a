// Non-file operations on one reactor: nop, timeouts (sleep_for), poll on a
// pipe, and cancelling every operation on an fd.
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stop_token>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/when_all.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_io_events_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace std::chrono_literals;
using runtime::Task;
using runtime_test::Pipe;
using runtime_test::run_on_one_core;

BOOST_AUTO_TEST_CASE(a_nop_completes_with_zero) {
  run_on_one_core([]() -> Task<void> {
    for (int i = 0; i < 1000; ++i) {
      BOOST_TEST_REQUIRE(co_await runtime::nop() == 0);
    }
  });
}

BOOST_AUTO_TEST_CASE(sleep_for_returns_zero_after_at_least_its_duration) {
  // A lower bound only: it checks the timeout is not ignored, not speed.
  run_on_one_core([]() -> Task<void> {
    const auto start = std::chrono::steady_clock::now();
    BOOST_TEST(co_await runtime::sleep_for(5ms) == 0);
    BOOST_TEST((std::chrono::steady_clock::now() - start >= 5ms));
    BOOST_TEST(co_await runtime::sleep_for(0ns) == 0);
  });
}

BOOST_AUTO_TEST_CASE(a_shorter_sleep_ends_before_a_longer_one_started_together) {
  std::vector<int> order;
  run_on_one_core([&]() -> Task<void> {
    auto sleeper = [](std::chrono::milliseconds d, int id, std::vector<int>* out) -> Task<void> {
      BOOST_TEST(co_await runtime::sleep_for(d) == 0);
      out->push_back(id);
    };
    std::vector<Task<void>> tasks;
    tasks.push_back(sleeper(40ms, 3, &order));
    tasks.push_back(sleeper(1ms, 1, &order));
    tasks.push_back(sleeper(20ms, 2, &order));
    co_await runtime::when_all(std::move(tasks));
  });
  BOOST_TEST(order == (std::vector<int>{1, 2, 3}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_sleep_with_a_stop_token_ends_early_with_ecanceled) {
  run_on_one_core([]() -> Task<void> {
    std::stop_source stop;
    int result = 1;
    auto sleeper = [](std::stop_token token, int* out) -> Task<void> {
      *out = co_await runtime::sleep_for(3600s).with_stop(token);
    };
    auto stopper = [](std::stop_source* s) -> Task<void> {
      co_await runtime::nop();  // the sleep is in the kernel by now
      s->request_stop();
    };
    std::vector<Task<void>> tasks;
    tasks.push_back(sleeper(stop.get_token(), &result));
    tasks.push_back(stopper(&stop));
    co_await runtime::when_all(std::move(tasks));
    BOOST_TEST(result == -ECANCELED);
    // Already stopped: the operation is not even submitted.
    BOOST_TEST(co_await runtime::sleep_for(3600s).with_stop(stop.get_token()) == -ECANCELED);
  });
}

BOOST_AUTO_TEST_CASE(poll_on_a_pipe_reports_readable_once_data_arrives) {
  Pipe pipe;
  run_on_one_core([&]() -> Task<void> {
    int mask = 0;
    bool written = false;
    auto poller = [](int fd, int* out) -> Task<void> { *out = co_await runtime::poll(fd, POLLIN); };
    auto writer = [](int fd, bool* flag) -> Task<void> {
      co_await runtime::sleep_for(2ms);
      *flag = true;
      BOOST_TEST(co_await runtime::write(fd, "x", 1, 0) == 1);
    };
    std::vector<Task<void>> tasks;
    tasks.push_back(poller(pipe.read_end, &mask));
    tasks.push_back(writer(pipe.write_end, &written));
    co_await runtime::when_all(std::move(tasks));
    BOOST_TEST(written);
    BOOST_TEST((mask & POLLIN) != 0);
    // Still readable (poll consumed nothing): completes at once.
    BOOST_TEST((co_await runtime::poll(pipe.read_end, POLLIN) & POLLIN) != 0);
    // The write end of an empty pipe is writable.
    BOOST_TEST((co_await runtime::poll(pipe.write_end, POLLOUT) & POLLOUT) != 0);
  });
}

BOOST_AUTO_TEST_CASE(cancel_fd_cancels_every_pending_operation_on_that_fd) {
  Pipe pipe;
  run_on_one_core([&]() -> Task<void> {
    int read_result = 1;
    int poll_result = 1;
    int cancelled = 0;
    auto reader = [](int fd, int* out) -> Task<void> {
      char byte;
      *out = co_await runtime::read(fd, &byte, 1, 0);
    };
    auto poller = [](int fd, int* out) -> Task<void> { *out = co_await runtime::poll(fd, POLLIN); };
    auto canceller = [](int fd, int* out) -> Task<void> {
      co_await runtime::nop();  // both operations are submitted by now
      *out = co_await runtime::cancel_fd(fd);
    };
    std::vector<Task<void>> tasks;
    tasks.push_back(reader(pipe.read_end, &read_result));
    tasks.push_back(poller(pipe.read_end, &poll_result));
    tasks.push_back(canceller(pipe.read_end, &cancelled));
    co_await runtime::when_all(std::move(tasks));
    BOOST_TEST(cancelled == 2);
    BOOST_TEST(read_result == -ECANCELED);
    BOOST_TEST(poll_result == -ECANCELED);
    BOOST_TEST(co_await runtime::cancel_fd(pipe.read_end) == 0);  // nothing left to cancel
  });
}

BOOST_AUTO_TEST_CASE(madvise_dontneed_drops_anonymous_pages_so_they_read_as_zeros) {
  const std::size_t bytes = 4 * 4096;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  BOOST_REQUIRE(p != MAP_FAILED);
  auto* bytes_p = static_cast<unsigned char*>(p);
  std::fill(bytes_p, bytes_p + bytes, static_cast<unsigned char>(0xab));
  run_on_one_core(
      [&]() -> Task<void> { BOOST_TEST(co_await runtime::madvise(bytes_p + 4096, 2 * 4096, MADV_DONTNEED) == 0); });
  BOOST_TEST(bytes_p[0] == 0xab);
  BOOST_TEST(std::all_of(bytes_p + 4096, bytes_p + 3 * 4096, [](unsigned char c) { return c == 0; }));
  BOOST_TEST(bytes_p[3 * 4096] == 0xab);
  ::munmap(p, bytes);
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_io_events_test
