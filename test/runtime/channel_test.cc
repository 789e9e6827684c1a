// Channel<T>: order, backpressure, batches and close, on one core and
// between two cores.
#include <boost/test/unit_test.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "coblk/runtime/channel.h"
#include "coblk/runtime/cycle_clock.h"
#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/runtime/when_all.h"
#include "test/require_ok.h"
#include "test/runtime/support.h"

namespace coblk::runtime {
// Reaches into a Channel to stage the interleavings the tests below need:
// a push or pop whose wake-up check comes later, and that check alone.
struct ChannelTestAccess {
  template <typename T>
  static bool push_without_waking(Channel<T>& ch, T v) {
    return ch.ring_.try_push(std::move(v));
  }
  template <typename T>
  static bool pop_without_waking(Channel<T>& ch, T& out) {
    return ch.ring_.try_pop(out);
  }
  template <typename T>
  static void wake_consumer(Channel<T>& ch) {
    Channel<T>::wake(ch.consumer_);
  }
  template <typename T>
  static void wake_producer(Channel<T>& ch) {
    Channel<T>::wake(ch.producer_);
  }
  template <typename T>
  static bool consumer_parked(Channel<T>& ch) {
    return ch.consumer_.waiting.load();
  }
  template <typename T>
  static bool producer_parked(Channel<T>& ch) {
    return ch.producer_.waiting.load();
  }
  // The parked producer's condition, as if it had parked `parked_ns` ago.
  template <typename T>
  static bool producer_ready(Channel<T>& ch, bool polling, std::uint64_t parked_ns) {
    ch.producer_.parked_at = CycleClock::now() - CycleClock::from_ns(parked_ns);
    return ch.producer_.ready(ch.producer_, polling);
  }
};
}  // namespace coblk::runtime

BOOST_AUTO_TEST_SUITE(runtime_channel_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace std::chrono_literals;
using runtime::Channel;
using runtime::Task;
using runtime_test::run_on_one_core;

using runtime::ChannelTestAccess;

namespace {

/// Runs `a` on core 0 and `b` on core 1 of a two-core runtime, concurrently.
template <typename A, typename B>
void run_pair(A a, B b, runtime::RuntimeConfig config = runtime_test::cores({0, 1})) {
  const auto rt = test::require_ok(runtime::Runtime::create(std::move(config)));
  rt->run([&]() -> Task<void> {
    std::vector<Task<void>> tasks;
    tasks.push_back(a());
    tasks.push_back([](B* f) -> Task<void> { co_await runtime::submit_to(1, *f); }(&b));
    co_await runtime::when_all(std::move(tasks));
  });
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_channel_delivers_a_million_items_in_order_between_two_cores) {
  constexpr std::uint64_t n = 1000000;
  Channel<std::uint64_t> channel(256);
  std::uint64_t received = 0, out_of_order = 0;
  run_pair(
      [&]() -> Task<void> {  // consumer, core 0
        while (std::optional<std::uint64_t> v = co_await channel.recv()) {
          out_of_order += *v != received;
          ++received;
        }
      },
      [&]() -> Task<void> {  // producer, core 1
        for (std::uint64_t i = 0; i < n; ++i) {
          co_await channel.send(i);
        }
        channel.close();
      });
  BOOST_TEST(received == n);
  BOOST_TEST(out_of_order == 0u);
}

BOOST_AUTO_TEST_CASE(a_full_channel_suspends_its_producer) {
  Channel<int> channel(4);
  int attempted = -1, sent = 0;
  std::size_t buffered_while_parked = 0;
  int sent_while_parked = -1, attempted_while_parked = -1;
  std::vector<int> got;
  run_on_one_core([&]() -> Task<void> {
    auto producer = [&]() -> Task<void> {
      for (int i = 0; i < 10; ++i) {
        attempted = i;
        co_await channel.send(i);
        sent = i + 1;
      }
      channel.close();
    };
    auto consumer = [&]() -> Task<void> {
      co_await runtime::sleep_for(5ms);  // the producer fills the channel meanwhile
      sent_while_parked = sent;
      attempted_while_parked = attempted;
      buffered_while_parked = channel.size_approx();
      while (auto v = co_await channel.recv()) {
        got.push_back(*v);
      }
    };
    std::vector<Task<void>> tasks;
    tasks.push_back(producer());
    tasks.push_back(consumer());
    co_await runtime::when_all(std::move(tasks));
  });
  BOOST_TEST(sent_while_parked == 4);       // capacity 4: four sends completed...
  BOOST_TEST(attempted_while_parked == 4);  // ...and the fifth is parked
  BOOST_TEST(buffered_while_parked == 4u);
  BOOST_TEST(got == (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_full_channel_suspends_a_producer_on_another_core) {
  Channel<int> channel(4);
  std::atomic<int> sent{0};
  int sent_while_parked = -1;
  std::vector<int> got;
  run_pair(
      [&]() -> Task<void> {  // consumer, core 0
        // Wait until the producer has filled the channel, then a while
        // longer: it must still be parked on its fifth send.
        for (int i = 0; i < 5000 && sent.load(std::memory_order_relaxed) < 4; ++i) {
          co_await runtime::sleep_for(1ms);
        }
        co_await runtime::sleep_for(10ms);
        sent_while_parked = sent.load(std::memory_order_relaxed);
        while (auto v = co_await channel.recv()) {
          got.push_back(*v);
        }
      },
      [&]() -> Task<void> {  // producer, core 1
        for (int i = 0; i < 100; ++i) {
          co_await channel.send(int{i});
          sent.store(i + 1, std::memory_order_relaxed);
        }
        channel.close();
      });
  BOOST_TEST(sent_while_parked == 4);
  BOOST_REQUIRE(got.size() == 100u);
  for (int i = 0; i < 100; ++i) {
    BOOST_TEST_REQUIRE(got[static_cast<std::size_t>(i)] == i);
  }
}

BOOST_AUTO_TEST_CASE(try_send_and_try_recv_never_suspend_and_report_full_and_empty) {
  run_on_one_core([]() -> Task<void> {
    Channel<int> channel(2);
    int out = -1;
    BOOST_TEST(!channel.try_recv(out));
    BOOST_TEST(channel.try_send(1));
    BOOST_TEST(channel.try_send(2));
    BOOST_TEST(!channel.try_send(3));  // full
    BOOST_TEST(channel.try_recv(out));
    BOOST_TEST(out == 1);
    BOOST_TEST(channel.try_send(3));
    BOOST_TEST(channel.try_recv(out));
    BOOST_TEST(out == 2);
    BOOST_TEST(channel.try_recv(out));
    BOOST_TEST(out == 3);
    BOOST_TEST(!channel.try_recv(out));
    co_return;
  });
}

BOOST_AUTO_TEST_CASE(batch_send_and_recv_move_as_many_items_as_fit_in_order) {
  run_on_one_core([]() -> Task<void> {
    Channel<std::unique_ptr<int>> channel(8);
    std::vector<std::unique_ptr<int>> in;
    in.reserve(12);
    for (int i = 0; i < 12; ++i) {
      in.push_back(std::make_unique<int>(i));
    }
    BOOST_TEST(channel.try_send_batch(std::span(in)) == 8u);  // capacity 8
    BOOST_TEST(!in[0]);                                       // moved from
    BOOST_TEST(in[8] != nullptr);                             // not taken
    std::array<std::unique_ptr<int>, 5> out;
    BOOST_TEST(channel.try_recv_batch(std::span(out)) == 5u);
    for (int i = 0; i < 5; ++i) {
      BOOST_TEST(*out[static_cast<std::size_t>(i)] == i);
    }
    BOOST_TEST(channel.try_send_batch(std::span(in).subspan(8)) == 4u);
    std::array<std::unique_ptr<int>, 16> rest;
    BOOST_TEST(channel.try_recv_batch(std::span(rest)) == 7u);
    for (int i = 0; i < 7; ++i) {
      BOOST_TEST(*rest[static_cast<std::size_t>(i)] == i + 5);
    }
    BOOST_TEST(channel.try_recv_batch(std::span(rest)) == 0u);
    co_return;
  });
}

BOOST_AUTO_TEST_CASE(batches_between_two_cores_arrive_complete_and_in_order) {
  constexpr int n = 200000;
  Channel<int> channel(64);
  int received = 0, out_of_order = 0;
  run_pair(
      [&]() -> Task<void> {  // consumer: one awaited recv, then drain in batches
        std::array<int, 32> batch;
        while (auto first = co_await channel.recv()) {
          out_of_order += *first != received;
          ++received;
          std::size_t k;
          while ((k = channel.try_recv_batch(std::span(batch))) != 0) {
            for (std::size_t i = 0; i < k; ++i) {
              out_of_order += batch[i] != received;
              ++received;
            }
          }
        }
      },
      [&]() -> Task<void> {  // producer: batches, parking on send when full
        std::array<int, 48> batch;
        int next = 0;
        while (next < n) {
          const int count = std::min<int>(48, n - next);
          for (int i = 0; i < count; ++i) {
            batch[static_cast<std::size_t>(i)] = next + i;
          }
          std::size_t done = channel.try_send_batch(std::span(batch).first(static_cast<std::size_t>(count)));
          next += static_cast<int>(done);
          if (done < static_cast<std::size_t>(count)) {
            co_await channel.send(int{next});  // waits for room
            ++next;
          }
        }
        channel.close();
      });
  BOOST_TEST(received == n);
  BOOST_TEST(out_of_order == 0);
}

BOOST_AUTO_TEST_CASE(close_ends_recv_with_nullopt_after_draining) {
  run_on_one_core([]() -> Task<void> {
    Channel<int> channel(8);
    co_await channel.send(1);
    co_await channel.send(2);
    co_await channel.send(3);
    channel.close();
    std::vector<int> got;
    while (auto v = co_await channel.recv()) {
      got.push_back(*v);
    }
    BOOST_TEST(got == (std::vector<int>{1, 2, 3}), boost::test_tools::per_element());
    BOOST_TEST(!(co_await channel.recv()).has_value());  // stays closed
  });
}

BOOST_AUTO_TEST_CASE(close_wakes_a_consumer_parked_on_another_core) {
  Channel<int> channel(8);
  bool got_nullopt = false;
  run_pair(
      [&]() -> Task<void> {                 // closer, core 0
        co_await runtime::sleep_for(10ms);  // the consumer is usually parked by now
        channel.close();
      },
      [&]() -> Task<void> {  // consumer, core 1
        got_nullopt = !(co_await channel.recv()).has_value();
      });
  BOOST_TEST(got_nullopt);
}

BOOST_AUTO_TEST_CASE(a_consumer_woken_by_a_stale_claim_parks_again_instead_of_reporting_a_closed_channel) {
  // The interleaving: the producer pushes 1, the consumer takes it and
  // parks again, and only then does the producer's wake-up check for 1 run
  // and claim the parked consumer. Resumed with nothing there, recv() used
  // to return std::nullopt on an open channel.
  Channel<int> channel(4);
  std::vector<int> got;
  bool ended = false, closed = false, ended_before_close = false;
  run_on_one_core([&]() -> Task<void> {
    auto consumer = [&]() -> Task<void> {
      while (auto v = co_await channel.recv()) {
        got.push_back(*v);
      }
      ended = true;
      ended_before_close = !closed;
    };
    auto driver = [&]() -> Task<void> {
      co_await runtime::sleep_for(1ms);  // the consumer parks on the empty channel
      BOOST_REQUIRE(ChannelTestAccess::consumer_parked(channel));
      BOOST_REQUIRE(ChannelTestAccess::push_without_waking(channel, 1));
      co_await runtime::sleep_for(1ms);  // its reactor sees the item, resumes it; it parks again
      BOOST_REQUIRE(got == std::vector<int>{1});
      BOOST_REQUIRE(ChannelTestAccess::consumer_parked(channel));
      ChannelTestAccess::wake_consumer(channel);  // the late check for item 1: a stale claim
      co_await runtime::sleep_for(1ms);
      BOOST_TEST(!ended);
      BOOST_TEST(ChannelTestAccess::consumer_parked(channel));
      co_await channel.send(2);
      closed = true;
      channel.close();
    };
    std::vector<Task<void>> tasks;
    tasks.push_back(consumer());
    tasks.push_back(driver());
    co_await runtime::when_all(std::move(tasks));
  });
  BOOST_TEST(got == (std::vector<int>{1, 2}), boost::test_tools::per_element());
  BOOST_TEST(ended);
  BOOST_TEST(!ended_before_close);
}

BOOST_AUTO_TEST_CASE(a_producer_woken_by_a_stale_claim_parks_again_and_loses_no_item) {
  // The interleaving: the consumer pops, the producer uses the freed slot
  // and parks on a full ring again, and only then does the consumer's
  // wake-up check run and claim it. Resumed with no room, send() used to
  // drop its item.
  Channel<int> channel(2);
  int sent = 0;
  std::vector<int> got;
  run_on_one_core([&]() -> Task<void> {
    auto producer = [&]() -> Task<void> {
      for (int i = 0; i < 6; ++i) {
        co_await channel.send(i);
        sent = i + 1;
      }
      channel.close();
    };
    auto driver = [&]() -> Task<void> {
      co_await runtime::sleep_for(1ms);  // 0 and 1 fill the ring; the producer parks on 2
      BOOST_REQUIRE(sent == 2);
      BOOST_REQUIRE(ChannelTestAccess::producer_parked(channel));
      int v = -1;
      BOOST_REQUIRE(ChannelTestAccess::pop_without_waking(channel, v));
      got.push_back(v);
      co_await runtime::sleep_for(1ms);  // its reactor sees the slot: 2 goes in, 3 parks
      BOOST_REQUIRE(sent == 3);
      BOOST_REQUIRE(ChannelTestAccess::producer_parked(channel));
      ChannelTestAccess::wake_producer(channel);  // the late check for the pop: a stale claim
      co_await runtime::sleep_for(1ms);
      BOOST_TEST(sent == 3);  // still parked on 3, which is not lost
      BOOST_TEST(ChannelTestAccess::producer_parked(channel));
      while (auto item = co_await channel.recv()) {
        got.push_back(*item);
      }
    };
    std::vector<Task<void>> tasks;
    tasks.push_back(producer());
    tasks.push_back(driver());
    co_await runtime::when_all(std::move(tasks));
  });
  BOOST_TEST(got == (std::vector<int>{0, 1, 2, 3, 4, 5}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_consumer_parked_on_an_awake_core_is_resumed_by_its_reactor_without_a_message) {
  runtime::RuntimeConfig config = runtime_test::cores({0, 1});
  config.reactor.idle_poll_us = 200000;  // core 1 polls, and does not sleep, for the whole test
  const auto rt = test::require_ok(runtime::Runtime::create(config));
  Channel<int> channel(8);
  std::atomic<int> got{0};
  std::uint64_t messages = 0, polled = 0;
  rt->run([&]() -> Task<void> {
    // Named, so the closures outlive their coroutines.
    auto consume = [&]() -> Task<void> {
      auto v = co_await channel.recv();
      got.store(v.value_or(-1));
    };
    auto consumer = [&]() -> Task<void> { co_await runtime::submit_to(1, consume); };
    auto producer = [&]() -> Task<void> {
      // Until the consumer is parked (it starts late on a loaded host).
      for (int i = 0; i < 5000 && !ChannelTestAccess::consumer_parked(channel); ++i) {
        co_await runtime::sleep_for(1ms);
      }
      BOOST_REQUIRE(ChannelTestAccess::consumer_parked(channel));
      const std::uint64_t messages_before = rt->stats(0).messages_sent.get();
      const std::uint64_t polled_before = rt->stats(1).parked_polled.get();
      BOOST_REQUIRE(channel.try_send(42));
      while (got.load() == 0) {
        co_await runtime::sleep_for(100us);
      }
      messages = rt->stats(0).messages_sent.get() - messages_before;
      polled = rt->stats(1).parked_polled.get() - polled_before;
    };
    std::vector<Task<void>> tasks;
    tasks.push_back(consumer());
    tasks.push_back(producer());
    co_await runtime::when_all(std::move(tasks));
  });
  BOOST_TEST(got.load() == 42);
  BOOST_TEST(messages == 0u);
  BOOST_TEST(polled == 1u);
}

BOOST_AUTO_TEST_CASE(a_consumer_parked_on_a_sleeping_core_is_woken_by_a_message) {
  runtime::RuntimeConfig config = runtime_test::cores({0, 1});
  config.reactor.idle_poll_us = 0;
  const auto rt = test::require_ok(runtime::Runtime::create(config));
  Channel<int> channel(8);
  std::atomic<int> got{0};
  std::uint64_t messages = 0;
  rt->run([&]() -> Task<void> {
    // Named, so the closures outlive their coroutines.
    auto consume = [&]() -> Task<void> {
      auto v = co_await channel.recv();
      got.store(v.value_or(-1));
    };
    auto consumer = [&]() -> Task<void> { co_await runtime::submit_to(1, consume); };
    auto producer = [&]() -> Task<void> {
      for (int i = 0; i < 5000 && !ChannelTestAccess::consumer_parked(channel); ++i) {
        co_await runtime::sleep_for(1ms);
      }
      co_await runtime::sleep_for(5ms);  // core 1 is asleep by now
      const std::uint64_t before = rt->stats(0).messages_sent.get();
      BOOST_REQUIRE(channel.try_send(42));
      messages = rt->stats(0).messages_sent.get() - before;
      while (got.load() == 0) {
        co_await runtime::sleep_for(100us);
      }
    };
    std::vector<Task<void>> tasks;
    tasks.push_back(consumer());
    tasks.push_back(producer());
    co_await runtime::when_all(std::move(tasks));
  });
  BOOST_TEST(got.load() == 42);
  BOOST_TEST(messages <= 1u);  // one, unless core 1 happened to be awake
}

BOOST_AUTO_TEST_CASE(every_item_arrives_in_order_with_and_without_idle_polling_and_fence_free_wakers) {
  for (const bool light : {true, false}) {
    for (const unsigned poll_us : {0u, 50u}) {
      const bool mode = runtime::detail::set_light_wakers_for_testing(light);
      BOOST_TEST_MESSAGE("fence-free wakers " << mode << ", idle_poll_us " << poll_us);
      runtime::RuntimeConfig config = runtime_test::cores({0, 1});
      config.reactor.idle_poll_us = poll_us;
      constexpr std::uint64_t n = 200000;
      Channel<std::uint64_t> channel(16);  // small: both sides park often
      std::uint64_t received = 0, out_of_order = 0;
      run_pair(
          [&]() -> Task<void> {  // consumer, core 0
            while (std::optional<std::uint64_t> v = co_await channel.recv()) {
              out_of_order += *v != received;
              ++received;
            }
          },
          [&]() -> Task<void> {  // producer, core 1
            for (std::uint64_t i = 0; i < n; ++i) {
              co_await channel.send(i);
            }
            channel.close();
          },
          config);
      BOOST_TEST(received == n);
      BOOST_TEST(out_of_order == 0u);
    }
  }
  runtime::detail::enable_light_wakers();  // back to what Runtime::create chose
}

BOOST_AUTO_TEST_CASE(a_polling_reactor_resumes_a_parked_producer_once_a_quarter_of_the_ring_is_free_or_after_20_us) {
  Channel<int> channel(8);  // a quarter: 2 slots
  for (int i = 0; i < 8; ++i) {
    BOOST_REQUIRE(channel.try_send(int{i}));
  }
  int v = -1;
  BOOST_TEST(!ChannelTestAccess::producer_ready(channel, false, 0));  // full: not ready, either way
  BOOST_TEST(!ChannelTestAccess::producer_ready(channel, true, 1000000000));
  BOOST_REQUIRE(ChannelTestAccess::pop_without_waking(channel, v));
  // One free slot: enough for a claim and for the check before sleeping...
  BOOST_TEST(ChannelTestAccess::producer_ready(channel, false, 0));
  // ...but a reactor polling while awake waits for more, for at most 20 us.
  // Parked "just now" is measured with the clock: a preemption of over
  // 20 us between the test's reading and the channel's (seen once under
  // TSan on a loaded 2-core host) makes one check see the wait as over, so
  // the check gets 100 tries, of which one must find the producer waiting.
  bool waits = false;
  for (int i = 0; i < 100 && !waits; ++i) {
    waits = !ChannelTestAccess::producer_ready(channel, true, 0);
  }
  BOOST_TEST(waits);
  BOOST_TEST(ChannelTestAccess::producer_ready(channel, true, 21000));
  BOOST_REQUIRE(ChannelTestAccess::pop_without_waking(channel, v));
  BOOST_TEST(ChannelTestAccess::producer_ready(channel, true, 0));  // a quarter free
}

BOOST_AUTO_TEST_CASE(recv_hands_its_slots_back_once_the_consumer_suspends) {
  Channel<int> channel(64);
  std::size_t held = 0, after_suspending = 0;
  run_on_one_core([&]() -> Task<void> {
    for (int i = 0; i < 10; ++i) {
      BOOST_REQUIRE(channel.try_send(int{i}));
    }
    for (int i = 0; i < 3; ++i) {
      BOOST_REQUIRE(*co_await channel.recv() == i);
    }
    held = channel.size_approx();  // popped, slots not yet handed back
    co_await runtime::nop();       // any suspension hands them back
    after_suspending = channel.size_approx();
  });
  BOOST_TEST(held == 10u);
  BOOST_TEST(after_suspending == 7u);
}

BOOST_AUTO_TEST_CASE(recv_hands_slots_back_every_quarter_ring_without_waiting_for_the_consumer_to_suspend) {
  Channel<int> channel(64);  // a quarter: 16
  std::size_t after_15 = 0, after_16 = 0;
  run_on_one_core([&]() -> Task<void> {
    for (int i = 0; i < 20; ++i) {
      BOOST_REQUIRE(channel.try_send(int{i}));
    }
    for (int i = 0; i < 15; ++i) {
      (void)co_await channel.recv();
    }
    after_15 = channel.size_approx();
    (void)co_await channel.recv();
    after_16 = channel.size_approx();
  });
  BOOST_TEST(after_15 == 20u);
  BOOST_TEST(after_16 == 4u);
}

BOOST_AUTO_TEST_CASE(recv_finding_the_channel_empty_hands_its_slots_back_at_once) {
  Channel<int> channel(64);
  std::size_t after_end = 1;
  run_on_one_core([&]() -> Task<void> {
    for (int i = 0; i < 3; ++i) {
      BOOST_REQUIRE(channel.try_send(int{i}));
    }
    channel.close();
    while (co_await channel.recv()) {}
    after_end = channel.size_approx();  // no suspension in between
  });
  BOOST_TEST(after_end == 0u);
}

BOOST_AUTO_TEST_CASE(a_two_slot_channel_between_cores_moves_every_item_in_order) {
  // A quarter of two slots is one: every item is published and handed
  // back at once, so neither side can sit on the only free slot.
  Channel<std::uint64_t> channel(2);
  std::uint64_t sum = 0, count = 0;
  bool in_order = true;
  run_pair(
      [&]() -> Task<void> {
        for (std::uint64_t i = 0; i < 20000; ++i) {
          co_await channel.send(std::uint64_t{i});
        }
        channel.close();
      },
      [&]() -> Task<void> {
        while (auto v = co_await channel.recv()) {
          in_order = in_order && *v == count;
          sum += *v;
          ++count;
        }
      });
  BOOST_TEST(in_order);
  BOOST_TEST(count == 20000u);
  BOOST_TEST(sum == 20000ULL * 19999ULL / 2);
}

BOOST_AUTO_TEST_CASE(a_channel_of_twice_n_slots_takes_n_items_while_its_consumer_holds_a_batch_unreleased) {
  // The compression pipeline's lanes rely on this: n slots circulate, and
  // the worker's recv() may still hold up to a quarter of the ring of
  // items it has taken (and whose slots came back to the queue already).
  constexpr int n = 32;
  Channel<int> channel(2 * n);  // a quarter: 16
  bool all_taken = true;
  run_on_one_core([&]() -> Task<void> {
    for (int i = 0; i < n; ++i) {
      all_taken = channel.try_send(int{i}) && all_taken;
    }
    for (int i = 0; i < 15; ++i) {
      (void)co_await channel.recv();  // taken, not yet handed back
    }
    for (int i = 0; i < 15; ++i) {
      all_taken = channel.try_send(int{i}) && all_taken;  // the same n in circulation
    }
  });
  BOOST_TEST(all_taken);
}

BOOST_AUTO_TEST_CASE(items_come_out_in_order_whichever_way_and_whichever_task_receives) {
  // recv() pops in place and hands slots back in batches; try_recv,
  // try_recv_batch, a later recv() or a later consumer task go on from
  // where it stopped, and only then does close end recv().
  Channel<int> channel(64);
  std::vector<int> got;
  run_on_one_core([&]() -> Task<void> {
    for (int i = 1; i <= 10; ++i) {
      co_await channel.send(i);
    }
    channel.close();
    auto first_consumer = [&]() -> Task<void> {
      for (int k = 0; k < 3; ++k) {
        got.push_back(*co_await channel.recv());  // 1, 2, 3
      }
    };
    co_await first_consumer();
    std::array<int, 4> some{};
    BOOST_TEST(channel.try_recv_batch(std::span<int>(some)) == 4u);  // 4..7
    got.insert(got.end(), some.begin(), some.end());
    int one = 0;
    BOOST_TEST(channel.try_recv(one));  // 8
    got.push_back(one);
    auto second_consumer = [&]() -> Task<void> {
      while (auto v = co_await channel.recv()) {
        got.push_back(*v);  // 9, 10, then the close
      }
    };
    co_await second_consumer();
  });
  BOOST_TEST(got == (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(items_sent_while_the_producer_keeps_running_are_published_when_it_suspends) {
  Channel<int> channel(64);
  std::size_t visible_while_running = 99, visible_after_suspending = 0;
  run_on_one_core([&]() -> Task<void> {
    for (int i = 0; i < 3; ++i) {
      co_await channel.send(int{i});
    }
    visible_while_running = channel.size_approx();  // pushed, not yet published
    co_await runtime::nop();                        // any suspension publishes
    visible_after_suspending = channel.size_approx();
  });
  BOOST_TEST(visible_while_running == 0u);
  BOOST_TEST(visible_after_suspending == 3u);
}

// The batch is a quarter of the ring, at most 64 items: 16 for a 64-slot
// channel, 64 for a 1024-slot one, 1 for a 2-slot one.
void check_publication_batch(std::size_t capacity, std::size_t batch) {
  Channel<int> channel(capacity);
  std::size_t before_batch = 1, at_batch = 0, after_batch = 0;
  run_on_one_core([&]() -> Task<void> {
    for (std::size_t i = 0; i + 1 < batch; ++i) {
      co_await channel.send(static_cast<int>(i));
    }
    before_batch = channel.size_approx();
    co_await channel.send(static_cast<int>(batch - 1));
    at_batch = channel.size_approx();
    co_await channel.send(static_cast<int>(batch));
    after_batch = channel.size_approx();
  });
  BOOST_TEST(before_batch == 0u);
  BOOST_TEST(at_batch == batch);
  BOOST_TEST(after_batch == batch);
}

BOOST_AUTO_TEST_CASE(send_publishes_every_quarter_ring_of_items_without_waiting_for_the_producer_to_suspend) {
  check_publication_batch(64, 16);
  check_publication_batch(8, 2);
}

BOOST_AUTO_TEST_CASE(send_publishes_at_most_sixty_four_items_at_once_in_a_large_channel) {
  check_publication_batch(1024, 64);
  check_publication_batch(4096, 64);
}

BOOST_AUTO_TEST_CASE(send_on_a_two_slot_channel_publishes_every_item) {
  Channel<int> channel(2);
  std::size_t after_one = 0;
  run_on_one_core([&]() -> Task<void> {
    co_await channel.send(1);
    after_one = channel.size_approx();
  });
  BOOST_TEST(after_one == 1u);
}

BOOST_AUTO_TEST_CASE(try_send_after_send_publishes_everything_in_order) {
  Channel<int> channel(64);
  std::vector<int> got;
  run_on_one_core([&]() -> Task<void> {
    co_await channel.send(1);
    co_await channel.send(2);
    BOOST_TEST(channel.try_send(3));
    BOOST_TEST(channel.size_approx() == 3u);
    int v = 0;
    while (channel.try_recv(v)) {
      got.push_back(v);
    }
  });
  BOOST_TEST(got == (std::vector<int>{1, 2, 3}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_producer_that_waits_for_an_answer_after_sending_has_published_what_it_sent) {
  // If a suspended producer held items back, each side would wait for the
  // other for ever (ctest's timeout would end the test).
  Channel<int> requests(64);
  Channel<int> answers(64);
  int answered = 0;
  run_pair(
      [&]() -> Task<void> {  // answers each burst, core 0
        while (std::optional<int> v = co_await requests.recv()) {
          if (*v % 5 == 4) {
            co_await answers.send(int{*v});
          }
        }
        answers.close();
      },
      [&]() -> Task<void> {  // sends bursts of 5 and waits, core 1
        for (int burst = 0; burst < 200; ++burst) {
          for (int i = 0; i < 5; ++i) {
            co_await requests.send(burst * 5 + i);
          }
          if (std::optional<int> a = co_await answers.recv(); a && *a == burst * 5 + 4) {
            ++answered;
          }
        }
        requests.close();
      });
  BOOST_TEST(answered == 200);
}

BOOST_AUTO_TEST_CASE(a_channel_destroyed_before_its_deferred_publication_leaves_nothing_behind) {
  int after = 0;
  run_on_one_core([&]() -> Task<void> {
    // On the heap, so that the ASan build catches a flush of a freed one.
    auto channel = std::make_unique<Channel<int>>(8);
    co_await channel->send(1);  // publication deferred to the reactor
    channel.reset();
    co_await runtime::nop();  // the reactor's flush list must not hold the channel
    after = 1;
  });
  BOOST_TEST(after == 1);
}

// Both sides' tasks have finished, one of them on another core (its end
// reported by submit_to), so the channel may go. That side's reactor must
// hold nothing of it by then: its deferred publication (producer) or
// release (consumer) was linked on that core's flush list, and a flush of a
// freed channel, or an unlink from the wrong thread, corrupted the list
// (use after free; in release builds a reactor spinning for ever).
BOOST_AUTO_TEST_CASE(a_channel_destroyed_as_soon_as_both_sides_on_two_cores_finished_leaves_neither_reactor_anything) {
  long total = 0;
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
  rt->run([&]() -> Task<void> {
    for (int i = 0; i < 100000; ++i) {
      auto channel = std::make_unique<Channel<int>>(8);
      Channel<int>* ch = channel.get();
      const bool remote_producer = i % 2 == 0;
      auto local_consumer = [&]() -> Task<void> {
        while (std::optional<int> v = co_await ch->recv()) total += *v;
      };
      auto local_producer = [&]() -> Task<void> {
        for (int k = 0; k < 3; ++k) co_await ch->send(int{k});
        ch->close();
      };
      auto far_producer = [&]() -> Task<void> {
        co_await runtime::submit_to(1, [ch]() -> Task<void> {
          co_await ch->send(1);  // published by close(), or deferred to core 1
          ch->close();
        });
      };
      auto far_consumer = [&]() -> Task<void> {
        co_await runtime::submit_to(1, [ch, &total]() -> Task<void> {
          while (std::optional<int> v = co_await ch->recv()) total += *v;
        });
      };
      std::vector<Task<void>> both;
      both.push_back(remote_producer ? local_consumer() : local_producer());
      both.push_back(remote_producer ? far_producer() : far_consumer());
      co_await runtime::when_all(std::move(both));
      channel.reset();
    }
  });
  BOOST_TEST(total == 50000 * 1 + 50000 * 3);
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_channel_test
