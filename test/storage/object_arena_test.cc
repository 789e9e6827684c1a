#include <boost/test/unit_test.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "coblk/storage/object_arena.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(storage_object_arena_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace storage;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

struct Fixture {
  SizeClassTable classes = test::require_ok(SizeClassTable::create(3631));
  MemoryBudget budget{0};
  std::unique_ptr<ObjectArena> owned_arena = test::require_ok(ObjectArena::create(0, classes, 4096, budget));
  ObjectArena& arena = *owned_arena;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(objects_of_one_class_are_packed_into_shared_pages, Fixture) {
  // 1000 objects of 100 bytes (class 112) need about 28 pages, not 1000.
  std::vector<Handle> handles;
  for (int i = 0; i < 1000; ++i) {
    const Handle h = arena.allocate(100);
    BOOST_TEST_REQUIRE(h != null_handle);
    std::memset(arena.address(h), i & 0xff, 100);
    handles.push_back(h);
  }
  const ArenaStats s = arena.stats();
  BOOST_TEST(s.live_objects == 1000u);
  BOOST_TEST(s.object_bytes == 1000u * 112);
  BOOST_TEST(s.span_pages * alloc_page_size >= s.object_bytes);
  BOOST_TEST(s.span_pages <= 1000u * 112 / alloc_page_size + 8);
  BOOST_TEST(budget.used_pages() == s.span_pages);
  for (int i = 0; i < 1000; ++i) {
    const auto* p = reinterpret_cast<const unsigned char*>(arena.address(handles[i]));
    BOOST_TEST_REQUIRE(p[0] == (i & 0xff));
    BOOST_TEST_REQUIRE(p[99] == (i & 0xff));
  }
}

BOOST_FIXTURE_TEST_CASE(objects_never_overlap, Fixture) {
  std::mt19937 rng(7);
  std::vector<std::pair<Handle, std::uint32_t>> live;
  for (int i = 0; i < 5000; ++i) {
    if (!live.empty() && rng() % 3 == 0) {
      const std::size_t k = rng() % live.size();
      arena.free(live[k].first);
      live[k] = live.back();
      live.pop_back();
      continue;
    }
    const std::uint32_t size = 1 + rng() % 4096;
    const Handle h = arena.allocate(size);
    BOOST_TEST_REQUIRE(h != null_handle);
    live.emplace_back(h, size);
  }
  std::vector<std::pair<const std::byte*, const std::byte*>> ranges;
  for (const auto& [h, size] : live) {
    BOOST_TEST_REQUIRE(arena.object_size(h) >= size);
    ranges.emplace_back(arena.address(h), arena.address(h) + size);
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    BOOST_TEST_REQUIRE(ranges[i - 1].second <= ranges[i].first);
  }
}

BOOST_FIXTURE_TEST_CASE(freeing_every_object_empties_every_span_and_caches_its_pages, Fixture) {
  std::vector<Handle> handles;
  handles.reserve(300);
  for (int i = 0; i < 300; ++i) {
    handles.push_back(arena.allocate(static_cast<std::uint32_t>(40 + i * 11)));
  }
  for (const Handle h : handles) {
    arena.free(h);
  }
  ArenaStats s = arena.stats();
  BOOST_TEST(s.live_objects == 0u);
  BOOST_TEST(s.object_bytes == 0u);
  BOOST_TEST(s.spans == 0u);
  BOOST_TEST(s.span_pages == 0u);
  BOOST_TEST(s.cached_pages == budget.used_pages());
  BOOST_TEST(arena.release_cached_pages(0) == s.cached_pages);
  BOOST_TEST(budget.used_pages() == 0u);
}

BOOST_FIXTURE_TEST_CASE(cached_pages_are_reused_before_new_memory_is_taken, Fixture) {
  const Handle a = arena.allocate(4096);
  arena.free(a);
  const std::uint64_t used = budget.used_pages();
  const Handle b = arena.allocate(4096);
  BOOST_TEST(budget.used_pages() == used);
  BOOST_TEST(arena.stats().cached_pages == 0u);
  arena.free(b);
}

BOOST_AUTO_TEST_CASE(allocation_fails_cleanly_at_the_memory_limit) {
  const SizeClassTable classes = test::require_ok(SizeClassTable::create(3631));
  MemoryBudget budget(10);
  const auto owned_arena = test::require_ok(ObjectArena::create(0, classes, 4096, budget));
  ObjectArena& arena = *owned_arena;
  int stored = 0;
  while (arena.allocate(4096) != null_handle) {
    ++stored;
  }
  BOOST_TEST(stored == 10);
  BOOST_TEST(budget.used_pages() == 10u);
  BOOST_TEST(budget.max_used_pages() == 10u);
}

BOOST_FIXTURE_TEST_CASE(compaction_moves_objects_out_of_sparse_spans_and_frees_their_pages, Fixture) {
  // Fill many spans of one class, then free most objects of each span.
  std::vector<Handle> handles;
  for (int i = 0; i < 4000; ++i) {
    const Handle h = arena.allocate(200);
    std::memcpy(arena.address(h), &i, sizeof i);
    handles.push_back(h);
  }
  std::vector<std::pair<Handle, int>> kept;
  for (int i = 0; i < 4000; ++i) {
    if (i % 5 == 0) {
      kept.emplace_back(handles[i], i);
    } else {
      arena.free(handles[i]);
    }
  }
  const std::uint64_t pages_before = arena.stats().span_pages;
  BOOST_TEST_REQUIRE(arena.begin_compaction() > 0u);
  for (auto& [h, value] : kept) {
    if (arena.is_evacuating(h)) {
      const Handle moved = arena.relocate(h);
      BOOST_TEST_REQUIRE(moved != null_handle);
      h = moved;
    }
  }
  const std::uint64_t freed = arena.end_compaction();
  const ArenaStats after = arena.stats();
  BOOST_TEST(freed > 0u);
  BOOST_TEST(after.span_pages == pages_before - freed);
  // 800 objects of 208 bytes: about 41 pages when packed.
  BOOST_TEST(after.span_pages <= 800u * 208 / alloc_page_size + 2 * 13);
  for (const auto& [h, value] : kept) {
    int v;
    std::memcpy(&v, arena.address(h), sizeof v);
    BOOST_TEST_REQUIRE(v == value);
    BOOST_TEST_REQUIRE(!arena.is_evacuating(h));
  }
  BOOST_TEST(arena.release_cached_pages(0) >= freed);
}

BOOST_AUTO_TEST_SUITE_END()  // storage_object_arena_test
