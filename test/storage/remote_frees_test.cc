#include <boost/test/unit_test.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "coblk/storage/object_arena.h"
#include "coblk/storage/remote_frees.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(storage_remote_frees_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace storage;  // NOLINT(google-build-using-namespace): a program file, not a library

BOOST_AUTO_TEST_CASE(frees_beyond_the_ring_capacity_overflow_and_all_reach_the_owner) {
  const SizeClassTable classes = test::require_ok(SizeClassTable::create(3631));
  MemoryBudget budget(0);
  const auto owned0 = test::require_ok(ObjectArena::create(0, classes, 4096, budget));
  const auto owned1 = test::require_ok(ObjectArena::create(1, classes, 4096, budget));
  ObjectArena& a0 = *owned0;
  ObjectArena* arenas[] = {owned0.get(), owned1.get()};
  RemoteFrees frees(arenas, 4);  // tiny rings
  std::vector<Handle> handles;
  handles.reserve(100);
  for (int i = 0; i < 100; ++i) {
    handles.push_back(a0.allocate(64));
  }
  for (const Handle h : handles) {
    frees.send(1, h);  // core 1 drops core 0's objects
  }
  BOOST_TEST(frees.pending_towards(0) == 100u);
  BOOST_TEST(a0.stats().live_objects == 100u);
  std::size_t received = 0;
  for (int round = 0; round < 100 && received < 100; ++round) {
    received += frees.receive(0);
    frees.flush_overflow(1);
  }
  BOOST_TEST(received == 100u);
  BOOST_TEST(frees.pending_towards(0) == 0u);
  BOOST_TEST(a0.stats().live_objects == 0u);
}

BOOST_AUTO_TEST_CASE(concurrent_senders_and_owner_lose_no_free) {
  const SizeClassTable classes = test::require_ok(SizeClassTable::create(3631));
  MemoryBudget budget(0);
  const auto owned0 = test::require_ok(ObjectArena::create(0, classes, 1 << 16, budget));
  const auto owned1 = test::require_ok(ObjectArena::create(1, classes, 1 << 16, budget));
  ObjectArena& a0 = *owned0;
  ObjectArena* arenas[] = {owned0.get(), owned1.get()};
  RemoteFrees frees(arenas, 8);
  // Core 0 allocates and hands handles to core 1 over a plain ring; core 1
  // frees them back remotely. Core 0 keeps allocating (and receiving).
  runtime::SpscRing<Handle> to_core1(1 << 16);
  constexpr int total = 20000;
  std::atomic<bool> done{false};
  std::thread core1([&] {
    int got = 0;
    Handle h;
    while (got < total) {
      if (to_core1.try_pop(h)) {
        frees.send(1, h);
        ++got;
      }
    }
    while (frees.pending_towards(0) != 0) {
      frees.flush_overflow(1);
    }
    done.store(true, std::memory_order_release);
  });
  for (int i = 0; i < total; ++i) {
    frees.receive(0);
    Handle h = a0.allocate(48 + (i % 50) * 16);
    BOOST_REQUIRE(h != null_handle);
    while (!to_core1.try_push(Handle{h})) {
      frees.receive(0);
    }
  }
  while (!done.load(std::memory_order_acquire)) {
    frees.receive(0);
  }
  core1.join();
  frees.receive(0);
  BOOST_TEST(a0.stats().live_objects == 0u);
}

BOOST_AUTO_TEST_SUITE_END()  // storage_remote_frees_test
