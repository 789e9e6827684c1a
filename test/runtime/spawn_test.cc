// spawn (detached tasks), when_all and yield on one reactor.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/spawn.h"
#include "coblk/runtime/when_all.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_spawn_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace std::chrono_literals;
using runtime::SchedulingGroup;
using runtime::Task;
using runtime_test::run_on_one_core;

namespace {

const runtime::ReactorStats& stats() { return runtime::Reactor::current()->stats(); }

}  // namespace

BOOST_AUTO_TEST_CASE(an_uncaught_exception_in_a_detached_task_is_reported_with_its_name_and_does_not_kill_the_runtime) {
  runtime_test::StderrCapture capture;
  std::uint64_t uncaught = 0;
  bool later_task_ran = false;
  run_on_one_core([&]() -> Task<void> {
    runtime::spawn(
        []() -> Task<void> {
          co_await runtime::nop();
          throw std::runtime_error("boom");
        }(),
        "doomed");
    runtime::spawn(
        []() -> Task<void> {
          throw 42;
          co_return;
        }(),
        "throws an int");
    for (int i = 0; i < 100 && stats().uncaught_exceptions.get() < 2; ++i) {
      co_await runtime::nop();
    }
    uncaught = stats().uncaught_exceptions.get();
    // The reactor keeps running tasks afterwards.
    runtime::spawn(
        [](bool* flag) -> Task<void> {
          *flag = true;
          co_return;
        }(&later_task_ran),
        "later");
    co_await runtime::yield();
  });
  const std::string text = capture.text();
  BOOST_TEST(uncaught == 2u);
  BOOST_TEST(later_task_ran);
  BOOST_TEST(text.find("task 'doomed'") != std::string::npos, text);
  BOOST_TEST(text.find("boom") != std::string::npos, text);
  BOOST_TEST(text.find("task 'throws an int'") != std::string::npos, text);
  BOOST_TEST(text.find("unknown exception") != std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(spawn_queues_the_task_instead_of_running_it_inline) {
  run_on_one_core([]() -> Task<void> {
    bool ran = false;
    runtime::spawn(
        [](bool* flag) -> Task<void> {
          *flag = true;
          co_return;
        }(&ran),
        "queued");
    BOOST_TEST(!ran);
    co_await runtime::yield();
    BOOST_TEST(ran);
  });
}

BOOST_AUTO_TEST_CASE(a_spawned_task_runs_in_the_group_it_was_given_or_its_spawners_group) {
  std::vector<unsigned> groups;
  run_on_one_core([&]() -> Task<void> {
    auto record = [](std::vector<unsigned>* out) -> Task<void> {
      out->push_back(runtime::Reactor::current()->current_group().index());
      co_return;
    };
    runtime::spawn(record(&groups), "bg", SchedulingGroup::background());
    runtime::spawn(record(&groups), "io", SchedulingGroup::io());
    // From a background task, a plain spawn stays in the background group.
    runtime::spawn(
        [](decltype(record)* r, std::vector<unsigned>* out) -> Task<void> {
          runtime::spawn((*r)(out), "inherits");
          co_return;
        }(&record, &groups),
        "spawner", SchedulingGroup::background());
    // Sleep, not yield: a yielding io-group task may keep the background
    // group waiting for its share for longer than any fixed number of
    // yields (a slow first run of the spawner, under ASan, put it far
    // behind); while this task sleeps the background group runs.
    for (int i = 0; i < 2000 && groups.size() < 3; ++i) {
      co_await runtime::sleep_for(1ms);
    }
  });
  BOOST_REQUIRE(groups.size() == 3u);
  std::sort(groups.begin(), groups.end());
  BOOST_TEST(groups == (std::vector<unsigned>{0, 1, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(when_all_returns_results_in_order_whatever_order_they_finish_in) {
  std::vector<int> finish_order;
  const auto results = run_on_one_core([&]() -> Task<std::vector<std::string>> {
    auto after = [](std::chrono::milliseconds d, std::string s, std::vector<int>* order, int id) -> Task<std::string> {
      co_await runtime::sleep_for(d);
      order->push_back(id);
      co_return s;
    };
    std::vector<Task<std::string>> tasks;
    tasks.push_back(after(30ms, "first", &finish_order, 0));
    tasks.push_back(after(1ms, "second", &finish_order, 1));
    tasks.push_back(after(15ms, "third", &finish_order, 2));
    tasks.push_back([]() -> Task<std::string> { co_return "fourth (synchronous)"; }());
    co_return co_await runtime::when_all(std::move(tasks));
  });
  BOOST_TEST(results == (std::vector<std::string>{"first", "second", "third", "fourth (synchronous)"}),
             boost::test_tools::per_element());
  BOOST_TEST(finish_order == (std::vector<int>{1, 2, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(when_all_of_no_tasks_completes_at_once) {
  const auto sizes = run_on_one_core([]() -> Task<std::size_t> {
    auto values = co_await runtime::when_all(std::vector<Task<int>>{});
    co_await runtime::when_all(std::vector<Task<void>>{});
    co_return values.size();
  });
  BOOST_TEST(sizes == 0u);
}

BOOST_AUTO_TEST_CASE(when_all_rethrows_the_first_exception_after_all_tasks_finish) {
  bool slow_task_finished = false;
  bool finished_before_rethrow = false;
  std::string caught;
  run_on_one_core([&]() -> Task<void> {
    std::vector<Task<int>> tasks;
    tasks.push_back([](bool* done) -> Task<int> {
      co_await runtime::sleep_for(20ms);
      *done = true;
      co_return 1;
    }(&slow_task_finished));
    tasks.push_back([]() -> Task<int> {
      co_await runtime::sleep_for(5ms);
      throw std::runtime_error("first by position");
    }());
    tasks.push_back([]() -> Task<int> {
      throw std::runtime_error("first in time");  // before its first suspension
      co_return 0;
    }());
    try {
      co_await runtime::when_all(std::move(tasks));
    } catch (const std::runtime_error& e) {
      caught = e.what();
      finished_before_rethrow = slow_task_finished;
    }
    // The void form behaves the same.
    std::vector<Task<void>> voids;
    voids.push_back([]() -> Task<void> { co_await runtime::nop(); }());
    voids.push_back([]() -> Task<void> {
      co_await runtime::nop();
      throw std::logic_error("void");
    }());
    // NOLINTNEXTLINE(bugprone-use-after-move): clang's AST of co_await repeats the operand; it is moved once
    BOOST_CHECK_THROW(co_await runtime::when_all(std::move(voids)), std::logic_error);
  });
  BOOST_TEST(caught == "first by position");
  BOOST_TEST(finished_before_rethrow);
}

BOOST_AUTO_TEST_CASE(yield_lets_other_tasks_run) {
  std::string log;
  run_on_one_core([&]() -> Task<void> {
    auto worker = [](char name, std::string* out) -> Task<void> {
      for (int i = 0; i < 3; ++i) {
        *out += name;
        co_await runtime::yield();
      }
    };
    std::vector<Task<void>> tasks;
    tasks.push_back(worker('a', &log));
    tasks.push_back(worker('b', &log));
    tasks.push_back(worker('c', &log));
    co_await runtime::when_all(std::move(tasks));
  });
  BOOST_TEST(log == "abcabcabc");
}

BOOST_AUTO_TEST_CASE(a_task_that_never_yields_runs_to_its_end_before_others_start) {
  // The contrast to yield(): scheduling is cooperative.
  std::string log;
  run_on_one_core([&]() -> Task<void> {
    auto worker = [](char name, std::string* out) -> Task<void> {
      for (int i = 0; i < 3; ++i) {
        *out += name;
      }
      co_return;
    };
    runtime::spawn(worker('a', &log), "a");
    runtime::spawn(worker('b', &log), "b");
    co_await runtime::yield();
  });
  BOOST_TEST(log == "aaabbb");
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_spawn_test
