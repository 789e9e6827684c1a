// Task<T>: laziness, results, exceptions, ownership, and constant-stack
// symmetric transfer.
#include <boost/test/unit_test.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "coblk/runtime/runtime.h"
#include "coblk/runtime/task.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_task_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::Task;
using runtime_test::run_on_one_core;

static_assert(!std::is_copy_constructible_v<Task<int>>, "a Task owns its frame: it must not be copyable");
static_assert(!std::is_copy_assignable_v<Task<int>>, "a Task owns its frame: it must not be copyable");
static_assert(std::is_nothrow_move_constructible_v<Task<int>>, "a Task is moved into spawn/when_all");
static_assert(std::is_nothrow_move_assignable_v<Task<void>>, "a Task is move-assignable");
static_assert(runtime::is_task_v<Task<void>> && !runtime::is_task_v<int>, "is_task_v recognises tasks only");
// [[nodiscard]] is checked by the runtime_task_is_nodiscard compile test.

namespace {

Task<void> set_flag(bool& flag) {
  flag = true;
  co_return;
}

Task<int> answer() { co_return 42; }

Task<int> add_one(Task<int> inner) { co_return 1 + co_await std::move(inner); }

Task<std::unique_ptr<std::string>> make_move_only() { co_return std::make_unique<std::string>("moved"); }

Task<int> throws_logic_error() {
  throw std::logic_error("child failed");
  co_return 0;
}

Task<void> throws_in_void_task() {
  throw std::runtime_error("void child failed");
  co_return;
}

Task<int> depth(int n) {
  if (n == 0) {
    co_return 0;
  }
  co_return 1 + co_await depth(n - 1);
}

Task<void> void_depth(int n, int& reached) {
  if (n == 0) {
    reached = 1;
    co_return;
  }
  co_await void_depth(n - 1, reached);
  ++reached;
}

struct CountsDestruction {
  int* destroyed;
  explicit CountsDestruction(int* d) : destroyed(d) {}
  CountsDestruction(const CountsDestruction&) = delete;
  CountsDestruction& operator=(const CountsDestruction&) = delete;
  ~CountsDestruction() { ++*destroyed; }
};

Task<void> holds_a_local(int* destroyed, bool* started) {
  *started = true;
  CountsDestruction local(destroyed);
  co_return;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_task_does_not_start_until_awaited) {
  bool ran = false;
  const bool ran_before_await = run_on_one_core([&]() -> Task<bool> {
    Task<void> t = set_flag(ran);
    co_await runtime::yield();  // give a wrongly eager task every chance
    const bool before = ran;
    co_await std::move(t);
    co_return before;
  });
  BOOST_TEST(!ran_before_await);
  BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(a_task_destroyed_without_being_awaited_never_runs_and_frees_its_frame) {
  bool ran = false;
  {
    Task<void> t = set_flag(ran);
    BOOST_TEST(static_cast<bool>(t));
    BOOST_TEST(!t.done());
  }
  BOOST_TEST(!ran);
  // A started-and-finished frame destroys its locals exactly once.
  int destroyed = 0;
  bool started = false;
  run_on_one_core([&]() -> Task<void> { co_await holds_a_local(&destroyed, &started); });
  BOOST_TEST(started);
  BOOST_TEST(destroyed == 1);
}

BOOST_AUTO_TEST_CASE(awaiting_a_task_returns_its_value) {
  BOOST_TEST(run_on_one_core([]() -> Task<int> { co_return co_await add_one(add_one(answer())); }) == 44);
}

BOOST_AUTO_TEST_CASE(a_task_can_return_a_move_only_value) {
  auto p = run_on_one_core([]() -> Task<std::unique_ptr<std::string>> { co_return co_await make_move_only(); });
  BOOST_REQUIRE(p);
  BOOST_TEST(*p == "moved");
}

BOOST_AUTO_TEST_CASE(an_exception_thrown_in_a_child_reaches_its_awaiter) {
  const std::string caught = run_on_one_core([]() -> Task<std::string> {
    try {
      co_await throws_logic_error();
    } catch (const std::logic_error& e) {
      co_return e.what();
    }
    co_return "nothing caught";
  });
  BOOST_TEST(caught == "child failed");
}

BOOST_AUTO_TEST_CASE(an_exception_passes_through_several_awaiting_tasks) {
  BOOST_CHECK_THROW(run_on_one_core([]() -> Task<int> { co_return co_await add_one(add_one(throws_logic_error())); }),
                    std::logic_error);
  BOOST_CHECK_THROW(run_on_one_core([]() -> Task<void> { co_await throws_in_void_task(); }), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(a_moved_from_task_is_empty_and_the_move_target_runs) {
  bool ran = false;
  run_on_one_core([&]() -> Task<void> {
    // The moved-from tasks' state is what is tested.
    // NOLINTBEGIN(bugprone-use-after-move)
    Task<void> a = set_flag(ran);
    Task<void> b = std::move(a);
    BOOST_TEST(!static_cast<bool>(a));
    BOOST_TEST(a.done());
    Task<void> c;
    c = std::move(b);
    co_await std::move(c);
    BOOST_TEST(c.done());
    // NOLINTEND(bugprone-use-after-move)
  });
  BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(a_100000_deep_chain_of_awaits_does_not_overflow_the_stack) {
  // Each level would take a few hundred bytes of stack if symmetric
  // transfer were an ordinary call; 100000 levels then exceed the 8 MiB
  // thread stack. Both directions are covered: starting children (await
  // returns the child's handle) and finishing (final_suspend returns the
  // parent's handle).
  constexpr int levels = 100000;
  BOOST_TEST(run_on_one_core([]() -> Task<int> { co_return co_await depth(levels); }) == levels);
  int reached = 0;
  run_on_one_core([&]() -> Task<void> { co_await void_depth(levels, reached); });
  BOOST_TEST(reached == levels + 1);
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_task_test
