#include <boost/test/unit_test.hpp>

#include "coblk/storage/size_classes.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(storage_size_classes_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace storage;  // NOLINT(google-build-using-namespace): a program file, not a library

BOOST_AUTO_TEST_CASE(classes_step_by_sixteen_bytes_up_to_the_largest_packed_size_then_one_raw_page_class) {
  const SizeClassTable t = test::require_ok(SizeClassTable::create(3631));
  BOOST_TEST(t[0].object_size == 16u);
  BOOST_TEST(t[1].object_size == 32u);
  BOOST_TEST(t[t.raw_class_index() - 1].object_size == 3632u);
  BOOST_TEST(t[t.raw_class_index()].object_size == 4096u);
  BOOST_TEST(t[t.raw_class_index()].pages_per_span == 1u);
  for (std::size_t i = 1; i < t.count(); ++i) {
    BOOST_TEST_REQUIRE(t[i].object_size % 16 == 0u);
    BOOST_TEST_REQUIRE(t[i].object_size > t[i - 1].object_size);
  }
  BOOST_TEST_MESSAGE(t.count() << " classes");
}

BOOST_AUTO_TEST_CASE(sizes_whose_spans_have_the_same_shape_share_one_class) {
  const SizeClassTable t = test::require_ok(SizeClassTable::create(3631));
  // Fewer classes than 16-byte steps, and no two neighbours with one shape.
  BOOST_TEST(t.count() < 3632u / 16 + 1);
  for (std::size_t i = 1; i + 1 < t.count(); ++i) {
    BOOST_TEST_REQUIRE(
        (t[i].pages_per_span != t[i - 1].pages_per_span || t[i].objects_per_span != t[i - 1].objects_per_span));
  }
  // Merging costs no memory: the size below a class (if it is in the same
  // class) would give a span of the same shape.
  for (std::uint32_t size = 16; size <= 3632; size += 16) {
    const SizeClass& c = t[t.index_for(size)];
    BOOST_TEST_REQUIRE(c.pages_per_span * alloc_page_size / size >= c.objects_per_span);
  }
}

BOOST_AUTO_TEST_CASE(every_size_maps_to_the_smallest_class_that_holds_it) {
  const SizeClassTable t = test::require_ok(SizeClassTable::create(3631));
  for (std::uint32_t size = 1; size <= 4096; ++size) {
    const std::uint32_t i = t.index_for(size);
    BOOST_TEST_REQUIRE(t[i].object_size >= size);
    if (i > 0 && i != t.raw_class_index()) {
      BOOST_TEST_REQUIRE(t[i - 1].object_size < size);
    }
  }
  BOOST_TEST(t.index_for(3633) == t.raw_class_index());
}

BOOST_AUTO_TEST_CASE(spans_are_sized_so_the_unusable_tail_is_small) {
  const SizeClassTable t = test::require_ok(SizeClassTable::create(3631));
  for (std::size_t i = 0; i < t.count(); ++i) {
    const SizeClass& c = t[i];
    BOOST_TEST_REQUIRE(c.pages_per_span >= 1u);
    BOOST_TEST_REQUIRE(c.pages_per_span <= max_span_pages);
    const std::uint32_t bytes = c.pages_per_span * alloc_page_size;
    BOOST_TEST_REQUIRE(c.objects_per_span == bytes / c.object_size);
    // The worst class of the table wastes 5.5 % of its span.
    BOOST_TEST_REQUIRE(bytes - c.objects_per_span * c.object_size <= bytes * 6 / 100);
  }
  BOOST_TEST(t.mean_span_tail_waste() < 0.015);
}

BOOST_AUTO_TEST_CASE(a_bad_largest_packed_size_is_rejected) {
  BOOST_TEST(test::require_error(SizeClassTable::create(0), EINVAL) ==
             "largest packed object size must be in 1..4095, got 0");
  BOOST_TEST(test::require_error(SizeClassTable::create(4096), EINVAL) ==
             "largest packed object size must be in 1..4095, got 4096");
}

BOOST_AUTO_TEST_SUITE_END()  // storage_size_classes_test
