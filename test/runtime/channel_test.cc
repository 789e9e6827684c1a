// Channel<T>: order, backpressure, batches and close, on one core and
// between two cores.
#define BOOST_TEST_MODULE runtime_channel
#include <boost/test/unit_test.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "coblk/runtime/channel.h"
#include "coblk/runtime/io.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/submit_to.h"
#include "coblk/runtime/when_all.h"
#include "test/require_ok.h"
#include "test/runtime/support.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace std::chrono_literals;
using runtime::Channel;
using runtime::Task;
using runtime_test::run_on_one_core;

namespace {

/// Runs `a` on core 0 and `b` on core 1 of a two-core runtime, concurrently.
template <typename A, typename B>
void run_pair(A a, B b) {
  const auto rt = test::require_ok(runtime::Runtime::create(runtime_test::cores({0, 1})));
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
