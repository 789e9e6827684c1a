// When the page store compacts: storage::CompactionPolicy and
// PageStore::maybe_compact.
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <vector>

#include "coblk/storage/compaction_policy.h"
#include "coblk/storage/page_store.h"
#include "test/require_ok.h"
#include "test/storage/page_gen.h"

BOOST_AUTO_TEST_SUITE(storage_compaction_policy_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace storage;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::uint64_t ps = 4096;

AllocatorStats spans_of(std::uint64_t span_bytes, std::uint64_t object_bytes) {
  AllocatorStats a;
  a.span_pages = span_bytes / ps;
  a.object_bytes = object_bytes;
  return a;
}

}  // namespace

BOOST_AUTO_TEST_CASE(compaction_runs_only_when_a_quarter_of_span_memory_is_unused) {
  const CompactionPolicy policy;
  constexpr std::uint64_t held = std::uint64_t{256} << 20;
  BOOST_TEST(!policy.should_compact(spans_of(held, held)));
  BOOST_TEST(!policy.should_compact(spans_of(held, held - held / 4)));     // exactly a quarter unused
  BOOST_TEST(policy.should_compact(spans_of(held, held - held / 4 - 1)));  // a byte more
  BOOST_TEST(policy.should_compact(spans_of(held, 0)));
}

BOOST_AUTO_TEST_CASE(a_store_holding_no_more_than_the_minimum_span_memory_is_never_compacted) {
  const CompactionPolicy policy;
  BOOST_TEST(policy.min_span_bytes == std::uint64_t{64} << 20);
  BOOST_TEST(!policy.should_compact(spans_of(policy.min_span_bytes, 0)));
  BOOST_TEST(policy.should_compact(spans_of(policy.min_span_bytes + ps, 0)));
  const CompactionPolicy eager{.min_span_bytes = 0};
  BOOST_TEST(!eager.should_compact(spans_of(0, 0)));
  BOOST_TEST(eager.should_compact(spans_of(ps, 0)));
}

BOOST_AUTO_TEST_CASE(maybe_compact_compacts_a_sparse_store_only_when_the_policy_says_so) {
  constexpr std::uint64_t pages = 2048;
  PageStoreConfig config;
  config.size_bytes = pages * ps;
  const auto store = test::require_ok(PageStore::create(config));
  PageStore& s = *store;
  std::vector<std::byte> page(ps);
  for (std::uint64_t i = 0; i < pages; ++i) {
    storage_test::make_page(page, i);
    BOOST_TEST_REQUIRE(s.write(0, i * ps, page) == 0);
  }
  // Free three pages of every four: spans become sparse.
  for (std::uint64_t i = 0; i < pages; ++i) {
    if (i % 4 != 0) {
      BOOST_TEST_REQUIRE(s.discard(0, i * ps, ps) == 0);
    }
  }
  s.drain_remote_frees(0);
  BOOST_TEST_REQUIRE(CompactionPolicy{.min_span_bytes = 0}.should_compact(s.allocator_stats()));

  // A few MiB of spans are below the default policy's minimum.
  BOOST_TEST(s.maybe_compact(0) == 0u);
  BOOST_TEST(s.mm_stat().pages_compacted == 0u);

  const std::uint64_t freed = s.maybe_compact(0, CompactionPolicy{.min_span_bytes = 0});
  BOOST_TEST(freed > 0u);
  BOOST_TEST(s.mm_stat().pages_compacted == freed);
  for (std::uint64_t i = 0; i < pages; i += 4) {
    std::vector<std::byte> expected(ps), got(ps);
    storage_test::make_page(expected, i);
    BOOST_TEST_REQUIRE(s.read(0, i * ps, got) == 0);
    BOOST_TEST_REQUIRE(got == expected);
  }
}

BOOST_AUTO_TEST_CASE(maybe_compact_step_steps_only_when_the_policy_says_so_or_a_compaction_is_under_way) {
  constexpr std::uint64_t pages = 2048;
  PageStoreConfig config;
  config.size_bytes = pages * ps;
  config.steps = StepLimits{.entries = 64, .moves = 8, .spans = 16, .releases = 2};
  const auto store = test::require_ok(PageStore::create(config));
  PageStore& s = *store;
  std::vector<std::byte> page(ps);
  for (std::uint64_t i = 0; i < pages; ++i) {
    storage_test::make_page(page, i);
    BOOST_TEST_REQUIRE(s.write(0, i * ps, page) == 0);
  }
  for (std::uint64_t i = 0; i < pages; ++i) {
    if (i % 4 != 0) {
      BOOST_TEST_REQUIRE(s.discard(0, i * ps, ps) == 0);
    }
  }
  const CompactionPolicy lazy;
  const CompactionPolicy eager{.min_span_bytes = 0};
  BOOST_TEST(!s.maybe_compact_step(0, lazy));
  BOOST_TEST(!s.compacting(0));
  BOOST_TEST_REQUIRE(s.maybe_compact_step(0, eager));
  BOOST_TEST(s.compacting(0));
  // Once under way, it goes on whatever the policy says, to its end.
  int steps = 1;
  while (s.maybe_compact_step(0, lazy)) {
    ++steps;
  }
  BOOST_TEST(!s.compacting(0));
  BOOST_TEST(steps > 10);
  BOOST_TEST(s.mm_stat().pages_compacted > 0u);
}

BOOST_AUTO_TEST_SUITE_END()  // storage_compaction_policy_test
