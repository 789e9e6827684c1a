// IORING_OP_MSG_RING between the rings of two cores: a CQE posted into
// another core's ring resumes the operation it names there, and one that
// names no operation is counted and ignored.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <vector>

#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/runtime/when_all.h"
#include "test/require_ok.h"
#include "test/runtime/support.h"

BOOST_AUTO_TEST_SUITE(runtime_msg_ring_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace std::chrono_literals;
using runtime::Task;

namespace {

/// Waits on the current core for a CQE that some other ring will post with
/// MSG_RING: it opens a slot without submitting anything and publishes the
/// slot's user_data (and this ring's fd) for the sender.
class AwaitPostedCqe {
 public:
  AwaitPostedCqe(std::atomic<std::uint64_t>* user_data, std::atomic<int>* ring_fd)
      : published_user_data_(user_data), published_ring_fd_(ring_fd) {}
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    reactor_ = runtime::Reactor::current();
    user_data_ = reactor_->open_slot(reactor_->waiter_for(h));
    published_ring_fd_->store(reactor_->ring()->ring_fd, std::memory_order_relaxed);
    // Release: the slot is open before the sender can see its user_data.
    published_user_data_->store(user_data_, std::memory_order_release);
  }
  int await_resume() noexcept { return reactor_->close_slot(user_data_); }

 private:
  std::atomic<std::uint64_t>* published_user_data_;
  std::atomic<int>* published_ring_fd_;
  runtime::Reactor* reactor_ = nullptr;
  std::uint64_t user_data_ = 0;
};

}  // namespace

BOOST_AUTO_TEST_CASE(msg_ring_posts_a_result_into_another_cores_ring) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  std::atomic<std::uint64_t> user_data{0};
  std::atomic<int> ring_fd{-1};
  const auto results = rt->run([&]() -> Task<std::vector<int>> {
    auto receiver = [&]() -> Task<int> {
      co_return co_await runtime::submit_to(
          1, [&]() -> Task<int> { co_return co_await AwaitPostedCqe(&user_data, &ring_fd); });
    };
    auto sender = [&]() -> Task<int> {
      std::uint64_t ud;
      while ((ud = user_data.load(std::memory_order_acquire)) == 0) {
        co_await runtime::sleep_for(100us);
      }
      co_return co_await runtime::msg_ring(ring_fd.load(std::memory_order_relaxed), 4242, ud);
    };
    std::vector<Task<int>> tasks;
    tasks.push_back(receiver());
    tasks.push_back(sender());
    co_return co_await runtime::when_all(std::move(tasks));
  });
  BOOST_TEST(results[0] == 4242);  // what core 1's operation completed with
  BOOST_TEST(results[1] == 0);     // the sender's own MSG_RING succeeded
}

BOOST_AUTO_TEST_CASE(a_msg_ring_cqe_that_names_no_operation_is_counted_and_ignored) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  rt->run([&]() -> Task<void> {
    const int core1_ring = co_await runtime::submit_to(1, [] { return runtime::Reactor::current()->ring()->ring_fd; });
    // Slot 5 of generation 999 has never been opened on core 1.
    const std::uint64_t stale = (std::uint64_t{999} << 32) | 5;
    BOOST_TEST(co_await runtime::msg_ring(core1_ring, 1, stale) == 0);
    // Core 1 reaps it whenever it next looks at its CQ; give it a bounded time.
    for (int i = 0; i < 5000 && rt->stats(1).unknown_cqes.get() == 0; ++i) {
      co_await runtime::sleep_for(1ms);
    }
    BOOST_TEST(rt->stats(1).unknown_cqes.get() == 1u);
    // Core 1 still works.
    BOOST_TEST(co_await runtime::submit_to(1, [] { return 7; }) == 7);
  });
}

BOOST_AUTO_TEST_CASE(msg_ring_to_an_fd_that_is_not_a_ring_fails_with_ebadfd) {
  runtime_test::Pipe pipe;
  runtime_test::run_on_one_core(
      [&]() -> Task<void> { BOOST_TEST(co_await runtime::msg_ring(pipe.write_end, 1, 1) == -EBADFD); });
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_msg_ring_test
