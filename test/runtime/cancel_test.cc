// Cancelling in-flight operations: with_stop, with_timeout, and a stop
// requested from another core. A cancelled operation's awaiter resumes only
// once the kernel has posted the operation's own CQE, so buffers in its
// frame are never released while the kernel may still write to them.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stop_token>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/runtime/when_all.h"
#include "test/require_ok.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_cancel_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace std::chrono_literals;
using runtime::Task;
using runtime_test::Pipe;
using runtime_test::run_on_one_core;

namespace {

std::uint64_t cqes_reaped_here() { return runtime::Reactor::current()->stats().cqes_reaped.get(); }

}  // namespace

BOOST_AUTO_TEST_CASE(a_cancelled_read_still_completes_before_its_buffer_is_released) {
  Pipe pipe;  // never written to while the read is pending
  struct Observed {
    int result = 1;
    bool reader_resumed = false;
    bool resumed_inside_request_stop = true;
    std::uint64_t cqes_at_stop = 0;
    std::uint64_t cqes_at_resume = 0;
    char buffer = 'S';
  } seen;
  run_on_one_core([&]() -> Task<void> {
    std::stop_source stop;
    auto reader = [](int fd, std::stop_token token, Observed* o) -> Task<void> {
      o->result = co_await runtime::read(fd, &o->buffer, 1, 0).with_stop(token);
      o->cqes_at_resume = cqes_reaped_here();
      o->reader_resumed = true;
    };
    auto stopper = [](std::stop_source* s, Observed* o) -> Task<void> {
      co_await runtime::nop();  // the read has been submitted and is parked in the pipe
      o->cqes_at_stop = cqes_reaped_here();
      s->request_stop();
      // Cancellation is asynchronous: the reader must not have run yet.
      o->resumed_inside_request_stop = o->reader_resumed;
    };
    std::vector<Task<void>> tasks;
    tasks.push_back(reader(pipe.read_end, stop.get_token(), &seen));
    tasks.push_back(stopper(&stop, &seen));
    co_await runtime::when_all(std::move(tasks));

    // The cancelled read is gone from the kernel: a byte written now is
    // read by a new read and never lands in the old buffer.
    BOOST_TEST(::write(pipe.write_end, "x", 1) == 1);
    char fresh = 0;
    BOOST_TEST(co_await runtime::read(pipe.read_end, &fresh, 1, 0) == 1);
    BOOST_TEST(fresh == 'x');
  });
  BOOST_TEST(seen.result == -ECANCELED);
  BOOST_TEST(!seen.resumed_inside_request_stop);
  BOOST_TEST(seen.cqes_at_resume > seen.cqes_at_stop);  // the read's CQE came in between
  BOOST_TEST(seen.buffer == 'S');
}

BOOST_AUTO_TEST_CASE(an_operation_whose_token_is_already_stopped_is_not_submitted) {
  Pipe pipe;
  run_on_one_core([&]() -> Task<void> {
    std::stop_source stop;
    stop.request_stop();
    co_await runtime::nop();  // flush the reactor's own start-up SQEs first
    const auto submitted = runtime::Reactor::current()->stats().sqes_submitted.get();
    char byte = 0;
    BOOST_TEST(co_await runtime::read(pipe.read_end, &byte, 1, 0).with_stop(stop.get_token()) == -ECANCELED);
    co_await runtime::nop();  // flushes whatever was queued
    // Only the nop went to the kernel.
    BOOST_TEST(runtime::Reactor::current()->stats().sqes_submitted.get() - submitted == 1);
  });
}

BOOST_AUTO_TEST_CASE(a_token_that_is_never_stopped_does_not_disturb_the_operation) {
  Pipe pipe;
  run_on_one_core([&]() -> Task<void> {
    std::stop_source stop;
    BOOST_TEST(::write(pipe.write_end, "y", 1) == 1);
    char byte = 0;
    BOOST_TEST(co_await runtime::read(pipe.read_end, &byte, 1, 0).with_stop(stop.get_token()) == 1);
    BOOST_TEST(byte == 'y');
    stop.request_stop();  // after completion: the callback is gone, nothing happens
    co_await runtime::nop();
  });
}

BOOST_AUTO_TEST_CASE(with_timeout_on_a_pipe_read_gives_ecanceled) {
  Pipe pipe;
  std::uint64_t unknown = 1;
  run_on_one_core([&]() -> Task<void> {
    char byte = 0;
    BOOST_TEST(co_await runtime::read(pipe.read_end, &byte, 1, 0).with_timeout(5ms) == -ECANCELED);
    // An operation that finishes in time returns its own result; the
    // linked timer's CQE is ignored.
    BOOST_TEST(::write(pipe.write_end, "z", 1) == 1);
    BOOST_TEST(co_await runtime::read(pipe.read_end, &byte, 1, 0).with_timeout(3600s) == 1);
    BOOST_TEST(byte == 'z');
    for (int i = 0; i < 100; ++i) {
      BOOST_TEST_REQUIRE(co_await runtime::nop().with_timeout(3600s) == 0);
    }
    unknown = runtime::Reactor::current()->stats().unknown_cqes.get();
  });
  BOOST_TEST(unknown == 0u);
}

BOOST_AUTO_TEST_CASE(a_stop_requested_from_another_core_of_the_same_runtime_cancels) {
  Pipe pipe;
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  std::stop_source stop;
  std::atomic<bool> about_to_read{false};
  const int result = rt->run([&]() -> Task<int> {
    auto on_core_1 = [&]() -> Task<int> {
      char byte = 0;
      // Release: core 0 sees the flag only after the token copy exists.
      about_to_read.store(true, std::memory_order_release);
      co_return co_await runtime::read(pipe.read_end, &byte, 1, 0).with_stop(stop.get_token());
    };
    auto stop_from_core_0 = [&]() -> Task<int> {
      while (!about_to_read.load(std::memory_order_acquire)) {
        co_await runtime::sleep_for(100us);
      }
      co_await runtime::sleep_for(10ms);  // usually in the kernel by now; either way it must cancel
      stop.request_stop();
      co_return 0;
    };
    std::vector<Task<int>> tasks;
    tasks.push_back(
        [](decltype(on_core_1)* f) -> Task<int> { co_return co_await runtime::submit_to(1, *f); }(&on_core_1));
    tasks.push_back(stop_from_core_0());
    const auto results = co_await runtime::when_all(std::move(tasks));
    co_return results[0];
  });
  BOOST_TEST(result == -ECANCELED);
  char byte = 0;
  BOOST_TEST(::write(pipe.write_end, "w", 1) == 1);
  BOOST_TEST(::read(pipe.read_end, &byte, 1) == 1);  // the cancelled read took nothing
  BOOST_TEST(byte == 'w');
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_cancel_test
