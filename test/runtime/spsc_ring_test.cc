// SpscRing<T>: capacity, FIFO order across wrap-around, batches, item
// lifetimes, and a two-thread stress run.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "coblk/runtime/spsc_ring.h"

BOOST_AUTO_TEST_SUITE(runtime_spsc_ring_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using runtime::SpscRing;

namespace {

/// Counts live instances, so tests can see every item destroyed exactly once.
struct Counted {
  static inline int live = 0;
  int value = -1;
  Counted() noexcept { ++live; }
  explicit Counted(int v) noexcept : value(v) { ++live; }
  Counted(Counted&& o) noexcept : value(o.value) { ++live; }
  Counted& operator=(Counted&& o) noexcept {
    value = o.value;
    return *this;
  }
  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;
  ~Counted() { --live; }
};

}  // namespace

BOOST_AUTO_TEST_CASE(capacity_is_rounded_up_to_a_power_of_two_of_at_least_two) {
  BOOST_TEST(SpscRing<int>(0).capacity() == 2u);
  BOOST_TEST(SpscRing<int>(1).capacity() == 2u);
  BOOST_TEST(SpscRing<int>(2).capacity() == 2u);
  BOOST_TEST(SpscRing<int>(3).capacity() == 4u);
  BOOST_TEST(SpscRing<int>(1000).capacity() == 1024u);
  BOOST_TEST(SpscRing<int>(1024).capacity() == 1024u);
  BOOST_TEST(SpscRing<int>(1025).capacity() == 2048u);
}

BOOST_AUTO_TEST_CASE(room_for_producer_counts_the_free_slots_the_producer_can_see) {
  SpscRing<int> ring(8);
  BOOST_TEST(ring.room_for_producer() == 8u);
  for (int i = 0; i < 8; ++i) {
    BOOST_REQUIRE(ring.try_push(int{i}));
  }
  BOOST_TEST(ring.room_for_producer() == 0u);
  int out = -1;
  BOOST_REQUIRE(ring.try_pop(out));
  BOOST_REQUIRE(ring.try_pop(out));
  BOOST_TEST(ring.room_for_producer() == 2u);  // refreshed, not the cached head
}

BOOST_AUTO_TEST_CASE(a_ring_holds_exactly_its_capacity) {
  SpscRing<int> ring(4);
  for (int i = 0; i < 4; ++i) {
    BOOST_TEST(ring.try_push(int{i}));
  }
  BOOST_TEST(ring.full_for_producer());
  int rejected = 99;
  // A failed push must leave its argument alone; that is what is tested.
  BOOST_TEST(!ring.try_push(std::move(rejected)));  // NOLINT(performance-move-const-arg, bugprone-use-after-move)
  BOOST_TEST(ring.size_approx() == 4u);
  int out = -1;
  BOOST_TEST(ring.try_pop(out));
  BOOST_TEST(out == 0);
  BOOST_TEST(!ring.full_for_producer());
}

BOOST_AUTO_TEST_CASE(items_come_out_in_order_across_many_wrap_arounds) {
  SpscRing<std::uint64_t> ring(8);
  std::uint64_t next_in = 0, next_out = 0;
  // Uneven push/pop counts walk the indices around the ring many times.
  for (int round = 0; round < 1000; ++round) {
    for (int i = 0; i < 5 && ring.try_push(std::uint64_t{next_in}); ++i) {
      ++next_in;
    }
    std::uint64_t v;
    for (int i = 0; i < 3 && ring.try_pop(v); ++i) {
      BOOST_TEST_REQUIRE(v == next_out);
      ++next_out;
    }
  }
  std::uint64_t v;
  while (ring.try_pop(v)) {
    BOOST_TEST_REQUIRE(v == next_out);
    ++next_out;
  }
  BOOST_TEST(next_out == next_in);
  BOOST_TEST(next_in > 2000u);
  BOOST_TEST(ring.empty_for_consumer());
}

BOOST_AUTO_TEST_CASE(batch_push_and_pop_take_as_many_as_fit_and_wrap) {
  SpscRing<int> ring(8);
  std::array<int, 6> in{0, 1, 2, 3, 4, 5};
  std::array<int, 6> out{};
  BOOST_TEST(ring.try_push_batch(std::span(in)) == 6u);
  BOOST_TEST(ring.try_pop_batch(std::span(out).first(4)) == 4u);  // head at 4
  std::array<int, 10> more{6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  BOOST_TEST(ring.try_push_batch(std::span(more)) == 6u);  // 2 left + 6 = 8: wraps
  std::array<int, 16> all{};
  BOOST_TEST(ring.try_pop_batch(std::span(all)) == 8u);
  for (int i = 0; i < 8; ++i) {
    BOOST_TEST(all[static_cast<std::size_t>(i)] == i + 4);
  }
  BOOST_TEST(ring.try_pop_batch(std::span(all)) == 0u);
  BOOST_TEST(ring.try_push_batch(std::span<int>()) == 0u);
}

BOOST_AUTO_TEST_CASE(a_failed_push_leaves_the_value_untouched) {
  SpscRing<std::unique_ptr<int>> ring(2);
  BOOST_TEST(ring.try_push(std::make_unique<int>(1)));
  BOOST_TEST(ring.try_push(std::make_unique<int>(2)));
  auto kept = std::make_unique<int>(3);
  // Reading `kept` after the move is the test: a failed push leaves it alone.
  // NOLINTBEGIN(bugprone-use-after-move)
  BOOST_TEST(!ring.try_push(std::move(kept)));
  BOOST_REQUIRE(kept);
  BOOST_TEST(*kept == 3);
  // NOLINTEND(bugprone-use-after-move)
}

BOOST_AUTO_TEST_CASE(popped_items_are_destroyed_and_the_ring_destroys_what_remains) {
  BOOST_REQUIRE(Counted::live == 0);
  {
    SpscRing<Counted> ring(8);
    for (int i = 0; i < 8; ++i) {
      BOOST_TEST(ring.try_push(Counted(i)));
    }
    BOOST_TEST(Counted::live == 8);  // the temporaries are gone, the items remain
    {
      Counted out;
      BOOST_TEST(ring.try_pop(out));
      BOOST_TEST(out.value == 0);
      std::array<Counted, 3> batch;
      BOOST_TEST(ring.try_pop_batch(std::span(batch)) == 3u);
      BOOST_TEST(batch[2].value == 3);
      BOOST_TEST(Counted::live == 4 + 1 + 3);
    }
    BOOST_TEST(Counted::live == 4);
    // Wrap the indices before destruction so the destructor walks across the end.
    std::array<Counted, 2> refill{Counted(8), Counted(9)};
    BOOST_TEST(ring.try_push_batch(std::span(refill)) == 2u);
    BOOST_TEST(Counted::live == 8);
  }
  BOOST_TEST(Counted::live == 0);
}

BOOST_AUTO_TEST_CASE(two_threads_pass_two_million_items_in_order) {
  // Single items and batches mixed on both sides, through a small ring so
  // that both the full and the empty paths are taken all the time. A side
  // that finds the ring full or empty yields its CPU: on a loaded 2-CPU
  // machine both threads may share one.
  constexpr std::uint64_t n = 2'000'000;
  SpscRing<std::uint64_t> ring(64);
  std::uint64_t out_of_order = 0, received = 0;
  std::thread consumer([&] {
    std::array<std::uint64_t, 16> batch;
    while (received < n) {
      std::uint64_t v;
      if (received % 3 == 0) {
        if (ring.try_pop(v)) {
          out_of_order += v != received;
          ++received;
        } else {
          std::this_thread::yield();
        }
      } else {
        const std::size_t k = ring.try_pop_batch(std::span(batch));
        for (std::size_t i = 0; i < k; ++i) {
          out_of_order += batch[i] != received;
          ++received;
        }
        if (k == 0) {
          std::this_thread::yield();
        }
      }
    }
  });
  std::uint64_t sent = 0;
  std::array<std::uint64_t, 24> batch;
  while (sent < n) {
    if (sent % 2 == 0) {
      if (ring.try_push(std::uint64_t{sent})) {
        ++sent;
      } else {
        std::this_thread::yield();
      }
    } else {
      const std::size_t want = std::min<std::uint64_t>(batch.size(), n - sent);
      for (std::size_t i = 0; i < want; ++i) {
        batch[i] = sent + i;
      }
      const std::size_t pushed = ring.try_push_batch(std::span(batch).first(want));
      sent += pushed;
      if (pushed == 0) {
        std::this_thread::yield();
      }
    }
  }
  consumer.join();
  BOOST_TEST(received == n);
  BOOST_TEST(out_of_order == 0u);
  BOOST_TEST(ring.size_approx() == 0u);
}

BOOST_AUTO_TEST_CASE(items_pushed_unpublished_are_invisible_until_published_and_count_against_the_capacity) {
  SpscRing<int> ring(4);
  BOOST_TEST(ring.try_push_unpublished(1));
  BOOST_TEST(ring.try_push_unpublished(2));
  BOOST_TEST(ring.unpublished() == 2u);
  int v = 0;
  BOOST_TEST(!ring.try_pop(v));
  BOOST_TEST(ring.size_approx() == 0u);
  BOOST_TEST(ring.try_push_unpublished(3));
  BOOST_TEST(ring.try_push_unpublished(4));
  BOOST_TEST(!ring.try_push_unpublished(5));  // full, counting unpublished items
  BOOST_TEST(ring.full_for_producer());
  ring.publish();
  BOOST_TEST(ring.unpublished() == 0u);
  for (int want = 1; want <= 4; ++want) {
    BOOST_TEST(ring.try_pop(v));
    BOOST_TEST(v == want);
  }
  BOOST_TEST(!ring.try_pop(v));
}

BOOST_AUTO_TEST_CASE(a_publishing_push_also_publishes_the_unpublished_items_before_it) {
  SpscRing<int> ring(8);
  BOOST_TEST(ring.try_push_unpublished(1));
  BOOST_TEST(ring.try_push(2));
  std::array<int, 2> more{3, 4};
  BOOST_TEST(ring.try_push_unpublished(5) == true);
  BOOST_TEST(ring.try_push_batch(std::span<int>(more)) == 2u);  // after 5: order is push order
  std::array<int, 8> out{};
  BOOST_TEST(ring.try_pop_batch(std::span<int>(out)) == 5u);
  BOOST_TEST((std::vector<int>(out.begin(), out.begin() + 5)) == (std::vector<int>{1, 2, 5, 3, 4}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_ring_destroyed_with_unpublished_items_destroys_them) {
  auto counter = std::make_shared<int>(0);
  {
    SpscRing<std::shared_ptr<int>> ring(4);
    BOOST_TEST(ring.try_push_unpublished(std::shared_ptr<int>(counter)));
    BOOST_TEST(counter.use_count() == 2);
  }
  BOOST_TEST(counter.use_count() == 1);
}

BOOST_AUTO_TEST_CASE(slots_popped_unreleased_stay_taken_for_the_producer_until_released) {
  SpscRing<std::unique_ptr<int>> ring(4);
  for (int i = 1; i <= 4; ++i) {
    BOOST_TEST(ring.try_push(std::make_unique<int>(i)));
  }
  std::unique_ptr<int> v;
  BOOST_TEST(ring.try_pop_unreleased(v));
  BOOST_TEST(*v == 1);
  BOOST_TEST(ring.try_pop_unreleased(v));
  BOOST_TEST(*v == 2);
  BOOST_TEST(ring.unreleased() == 2u);
  BOOST_TEST(ring.size_approx() == 4u);                  // still counted
  BOOST_TEST(!ring.try_push(std::make_unique<int>(5)));  // and still taken
  BOOST_TEST(ring.full_for_producer());
  ring.release();
  BOOST_TEST(ring.unreleased() == 0u);
  BOOST_TEST(ring.size_approx() == 2u);
  BOOST_TEST(ring.try_push(std::make_unique<int>(5)));
  // A batch pop goes on from where the unreleased pops stopped, and
  // releases everything.
  BOOST_TEST(ring.try_pop_unreleased(v));
  BOOST_TEST(*v == 3);
  std::unique_ptr<int> rest[4];
  BOOST_TEST(ring.try_pop_batch(std::span<std::unique_ptr<int>>(rest, 4)) == 2u);
  BOOST_TEST(*rest[0] == 4);
  BOOST_TEST(*rest[1] == 5);
  BOOST_TEST(ring.unreleased() == 0u);
  BOOST_TEST(ring.size_approx() == 0u);
  BOOST_TEST(!ring.try_pop_unreleased(v));
}

BOOST_AUTO_TEST_CASE(a_ring_destroyed_with_items_popped_unreleased_destroys_only_the_rest) {
  // ASan sees a double destruction or a leak if the destructor starts at
  // the released head instead of the consumer's own position.
  SpscRing<std::unique_ptr<int>> ring(4);
  for (int i = 1; i <= 3; ++i) {
    BOOST_TEST(ring.try_push(std::make_unique<int>(i)));
  }
  std::unique_ptr<int> v;
  BOOST_TEST(ring.try_pop_unreleased(v));
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_spsc_ring_test
