// Stopping a Runtime: with tasks blocked in I/O, sleeps and channel receives
// on several cores; from another thread; and running a Runtime again.
// Under ASan/LSan these also check that nothing leaks or is used after free.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "coblk/runtime/channel.h"
#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/runtime/when_all.h"
#include "test/require_ok.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_shutdown_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace std::chrono_literals;
using runtime::Task;

namespace {

/// Counts frames torn down: a local of this type dies with its frame.
struct FrameGuard {
  std::atomic<int>* destroyed;
  explicit FrameGuard(std::atomic<int>* d) : destroyed(d) {}
  FrameGuard(const FrameGuard&) = delete;
  FrameGuard& operator=(const FrameGuard&) = delete;
  ~FrameGuard() { destroyed->fetch_add(1, std::memory_order_relaxed); }
};

struct Blocked {
  runtime_test::Pipe pipe0, pipe1;
  runtime::Channel<int> channel{4};
  runtime::Channel<int> full_channel{2};
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  std::atomic<int> destroyed{0};
};

Task<void> read_forever(Blocked* b, int fd) {
  FrameGuard guard(&b->destroyed);
  std::vector<char> buffer(4096);  // owned by the frame the kernel writes into
  b->started.fetch_add(1);
  co_await runtime::read(fd, buffer.data(), 4096, 0);
  b->finished.fetch_add(1);
}

Task<void> sleep_forever(Blocked* b) {
  FrameGuard guard(&b->destroyed);
  b->started.fetch_add(1);
  co_await runtime::sleep_for(3600s);
  b->finished.fetch_add(1);
}

Task<void> receive_forever(Blocked* b) {
  FrameGuard guard(&b->destroyed);
  b->started.fetch_add(1);
  co_await b->channel.recv();
  b->finished.fetch_add(1);
}

Task<void> send_forever(Blocked* b) {
  FrameGuard guard(&b->destroyed);
  b->started.fetch_add(1);
  for (int i = 0;; ++i) {
    co_await b->full_channel.send(int{i});  // nobody receives: parks on the third
  }
}

Task<void> await_many_children(Blocked* b) {
  FrameGuard guard(&b->destroyed);
  std::vector<Task<void>> children;
  children.push_back(sleep_forever(b));
  children.push_back(read_forever(b, b->pipe0.read_end));
  co_await runtime::when_all(std::move(children));
  b->finished.fetch_add(1);
}

Task<void> wait_on_the_other_core(Blocked* b) {
  FrameGuard guard(&b->destroyed);
  b->started.fetch_add(1);
  co_await runtime::submit_to(1, [b]() -> Task<void> { co_await sleep_forever(b); });
  b->finished.fetch_add(1);
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_runtime_stops_with_operations_in_flight) {
  Blocked b;
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  rt->run([&]() -> Task<void> {
    runtime::spawn(read_forever(&b, b.pipe0.read_end), "reader0");
    runtime::spawn(sleep_forever(&b), "sleeper0");
    runtime::spawn(send_forever(&b), "sender0");
    runtime::spawn(wait_on_the_other_core(&b), "waiter0");
    co_await runtime::submit_to(1, [&] {
      runtime::spawn(read_forever(&b, b.pipe1.read_end), "reader1");
      runtime::spawn(sleep_forever(&b), "sleeper1");
      runtime::spawn(receive_forever(&b), "receiver1");
      runtime::spawn(await_many_children(&b), "parent1");
    });
    // 9 tasks report that they started (parent1's two children included).
    for (int i = 0; i < 5000 && b.started.load() < 10; ++i) {
      co_await runtime::sleep_for(1ms);
    }
    co_await runtime::sleep_for(5ms);  // let every one reach the kernel
  });
  BOOST_TEST(b.started.load() == 10);
  BOOST_TEST(b.finished.load() == 0);
  // Every blocked frame was destroyed: 9 spawned or child tasks with a
  // guard, plus the submit_to task on core 1 that runs sleep_forever.
  BOOST_TEST(b.destroyed.load() == 11);
  // The pipes can still be used: no cancelled read kept a claim on them.
  BOOST_TEST(::write(b.pipe0.write_end, "a", 1) == 1);
  char c = 0;
  BOOST_TEST(::read(b.pipe0.read_end, &c, 1) == 1);
}

BOOST_AUTO_TEST_CASE(request_stop_from_another_thread_ends_run) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  std::atomic<bool> main_started{false};
  std::thread stopper([&] {
    while (!main_started.load()) {
      std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(5ms);
    rt->request_stop();
  });
  bool main_finished = false;
  rt->run([&]() -> Task<void> {
    main_started.store(true);
    co_await runtime::sleep_for(3600s);
    main_finished = true;
  });
  stopper.join();
  BOOST_TEST(!main_finished);
}

BOOST_AUTO_TEST_CASE(run_of_a_value_main_that_was_stopped_early_throws_instead_of_returning_garbage) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0})));
  // request_stop() may only race with a run() that has started main (it
  // reads state that run() sets up), hence the flag.
  std::atomic<bool> main_started{false};
  std::thread stopper([&] {
    while (!main_started.load()) {
      std::this_thread::sleep_for(1ms);
    }
    rt->request_stop();
  });
  BOOST_CHECK_THROW(rt->run([&]() -> Task<int> {
    main_started.store(true);
    co_await runtime::sleep_for(3600s);
    co_return 1;
  }),
                    std::runtime_error);
  stopper.join();
}

BOOST_AUTO_TEST_CASE(a_runtime_can_run_again_after_it_stopped) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  for (int round = 0; round < 3; ++round) {
    const int got = rt->run([round]() -> Task<int> {
      runtime::spawn([]() -> Task<void> { co_await runtime::sleep_for(3600s); }(), "left behind");
      co_return co_await runtime::submit_to(1, [round] { return round * 10; });
    });
    BOOST_TEST(got == round * 10);
  }
}

BOOST_AUTO_TEST_CASE(an_exception_from_main_is_rethrown_by_run_after_shutdown) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  BOOST_CHECK_THROW(rt->run([]() -> Task<void> {
    runtime::spawn([]() -> Task<void> { co_await runtime::sleep_for(3600s); }(), "left behind");
    co_await runtime::nop();
    throw std::invalid_argument("main failed");
  }),
                    std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(request_stop_from_another_thread_while_runs_come_and_go_never_touches_a_freed_reactor) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  std::atomic<bool> done{false};
  // Stops whatever run is on, all the time: between runs too, when the
  // reactors of the last one are being destroyed (ASan would see a write
  // to a freed one).
  std::thread stopper([&] {
    while (!done.load()) rt->request_stop();
  });
  for (int round = 0; round < 200; ++round) {
    rt->run([]() -> Task<void> { co_await runtime::sleep_for(3600s); });
  }
  done.store(true);
  stopper.join();
  BOOST_TEST(true);
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_shutdown_test
