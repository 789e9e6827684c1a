// submit_to(): run a callable or a Task on another core and await the result.
#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/runtime/when_all.h"
#include "test/require_ok.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_submit_to_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace std::chrono_literals;
using runtime::Task;

namespace {

unsigned here() { return runtime::Reactor::current()->core(); }

}  // namespace

BOOST_AUTO_TEST_CASE(submit_to_returns_the_remote_result) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  const auto where = rt->run([]() -> Task<std::vector<unsigned>> {
    std::vector<unsigned> cores;
    cores.push_back(co_await runtime::submit_to(1, [] { return here(); }));  // value form
    cores.push_back(here());                                                 // the caller resumes on its own core
    cores.push_back(co_await runtime::submit_to(1, []() -> Task<unsigned> {  // Task form
      co_await runtime::sleep_for(1ms);                                      // really suspends on core 1
      co_return here();
    }));
    cores.push_back(here());
    const std::string s = co_await runtime::submit_to(1, [] { return std::string(100, 'q'); });
    cores.push_back(static_cast<unsigned>(s.size()));
    co_return cores;
  });
  BOOST_TEST(where == (std::vector<unsigned>{1, 0, 1, 0, 100}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(submit_to_runs_void_callables_and_void_tasks) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  unsigned ran_on_value = 99, ran_on_task = 99;
  rt->run([&]() -> Task<void> {
    co_await runtime::submit_to(1, [&] { ran_on_value = here(); });
    co_await runtime::submit_to(1, [&]() -> Task<void> {
      co_await runtime::nop();
      ran_on_task = here();
    });
  });
  BOOST_TEST(ran_on_value == 1u);
  BOOST_TEST(ran_on_task == 1u);
}

BOOST_AUTO_TEST_CASE(an_exception_thrown_on_the_target_core_reaches_the_caller) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  const auto messages = rt->run([]() -> Task<std::vector<std::string>> {
    std::vector<std::string> caught;
    try {
      co_await runtime::submit_to(1, []() -> int { throw std::runtime_error("value form failed"); });
    } catch (const std::runtime_error& e) {
      caught.emplace_back(e.what());
    }
    try {
      co_await runtime::submit_to(1, []() -> Task<int> {
        co_await runtime::nop();
        throw std::logic_error("task form failed");
      });
    } catch (const std::logic_error& e) {
      caught.emplace_back(e.what());
    }
    // The target core is unharmed.
    caught.push_back(std::to_string(co_await runtime::submit_to(1, [] { return 5; })));
    co_return caught;
  });
  BOOST_TEST(messages == (std::vector<std::string>{"value form failed", "task form failed", "5"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(submit_to_a_core_that_does_not_exist_throws_out_of_range) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  int caught = 0;
  rt->run([&]() -> Task<void> {
    try {
      co_await runtime::submit_to(2, [] { return 0; });
    } catch (const std::out_of_range&) {
      ++caught;
    }
    try {
      co_await runtime::submit_to(1000, []() -> Task<void> { co_return; });
    } catch (const std::out_of_range&) {
      ++caught;
    }
  });
  BOOST_TEST(caught == 2);
}

BOOST_AUTO_TEST_CASE(submit_to_the_calling_core_runs_locally) {
  const auto results = runtime_test::run_on_one_core([]() -> Task<std::vector<int>> {
    std::vector<int> r;
    r.push_back(co_await runtime::submit_to(0, [] { return 11; }));
    r.push_back(co_await runtime::submit_to(0, []() -> Task<int> {
      co_await runtime::nop();
      co_return 12;
    }));
    try {
      co_await runtime::submit_to(0, []() -> Task<int> { throw std::runtime_error("local"); });
    } catch (const std::runtime_error&) {
      r.push_back(13);
    }
    co_return r;
  });
  BOOST_TEST(results == (std::vector<int>{11, 12, 13}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(many_concurrent_submissions_each_get_their_own_result) {
  // More requests in flight than a small mailbox holds: the overflow
  // queue must keep every message.
  runtime::RuntimeConfig config = runtime_test::cores({0, 1});
  config.reactor.mailbox_capacity = 16;
  const auto rt = test::require_ok(runtime::Runtime::create(config));
  constexpr int n = 2000;
  const auto results = rt->run([]() -> Task<std::vector<int>> {
    std::vector<Task<int>> tasks;
    tasks.reserve(n);
    for (int i = 0; i < n; ++i) {
      tasks.push_back([](int v) -> Task<int> { co_return co_await runtime::submit_to(1, [v] { return v * 3; }); }(i));
    }
    co_return co_await runtime::when_all(std::move(tasks));
  });
  BOOST_REQUIRE(results.size() == std::size_t{n});
  for (int i = 0; i < n; ++i) {
    BOOST_TEST_REQUIRE(results[static_cast<std::size_t>(i)] == i * 3);
  }
}

BOOST_AUTO_TEST_CASE(both_cores_can_submit_to_each_other_at_the_same_time) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  constexpr int rounds = 5000;
  const auto sums = rt->run([]() -> Task<std::vector<long>> {
    auto ping = [](unsigned target) -> Task<long> {
      long sum = 0;
      for (int i = 0; i < rounds; ++i) {
        sum += co_await runtime::submit_to(target, [i] { return static_cast<long>(i); });
      }
      co_return sum;
    };
    std::vector<Task<long>> tasks;
    tasks.push_back(ping(1));  // core 0 -> core 1
    tasks.push_back([](decltype(ping)* p) -> Task<long> {
      co_return co_await runtime::submit_to(1, [p]() { return (*p)(0); });  // core 1 -> core 0
    }(&ping));
    co_return co_await runtime::when_all(std::move(tasks));
  });
  const long expected = static_cast<long>(rounds) * (rounds - 1) / 2;
  BOOST_TEST(sums[0] == expected);
  BOOST_TEST(sums[1] == expected);
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_submit_to_test
