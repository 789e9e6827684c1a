// estimate_entropy: range, ordering of page kinds, and the threshold.
#include <boost/test/unit_test.hpp>

#include <cstring>

#include "coblk/compress/entropy.h"
#include "test/compress/page_samples.h"

BOOST_AUTO_TEST_SUITE(compress_entropy_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace compress;  // NOLINT(google-build-using-namespace): a program file, not a library
using compress::testing::Page;

BOOST_AUTO_TEST_CASE(a_page_of_one_byte_value_has_zero_entropy) {
  BOOST_TEST(estimate_entropy(testing::zero_page()) == 0.0, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(estimate_entropy(testing::repeated_text_page("x")) == 0.0, boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(a_page_of_two_equally_common_byte_values_has_one_bit_per_byte) {
  BOOST_TEST(estimate_entropy(testing::repeated_text_page("ab")) == 1.0, boost::test_tools::tolerance(1e-4));
  BOOST_TEST(estimate_entropy(testing::repeated_text_page("abcd")) == 2.0, boost::test_tools::tolerance(1e-4));
}

BOOST_AUTO_TEST_CASE(entropy_orders_random_above_text_above_zeros) {
  const double zeros = estimate_entropy(testing::zero_page());
  for (const Page& text_page : testing::text_pages(16)) {
    const double text = estimate_entropy(text_page);
    BOOST_TEST(text > zeros);
    BOOST_TEST(text < 6.0);
    for (std::uint64_t seed = 0; seed < 4; ++seed) BOOST_TEST(estimate_entropy(testing::random_page(seed)) > text);
  }
}

BOOST_AUTO_TEST_CASE(random_pages_are_above_the_incompressible_threshold_and_text_is_below) {
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    const double random = estimate_entropy(testing::random_page(seed));
    BOOST_TEST(random > incompressible_entropy);
    BOOST_TEST(random <= 8.0);
  }
  for (const Page& page : testing::text_pages(32)) BOOST_TEST(estimate_entropy(page) < incompressible_entropy);
}

BOOST_AUTO_TEST_CASE(every_estimate_is_between_zero_and_eight_bits_per_byte) {
  for (const Page& page : testing::binary_pages(256)) {
    const double entropy = estimate_entropy(page);
    BOOST_TEST_REQUIRE(entropy >= 0.0);
    BOOST_TEST_REQUIRE(entropy <= 8.0);
  }
}

BOOST_AUTO_TEST_CASE(the_estimate_depends_only_on_the_page_contents) {
  const Page page = testing::binary_pages(4)[3];
  const double first = estimate_entropy(page);
  for (int i = 0; i < 10; ++i) BOOST_TEST(estimate_entropy(page) == first);
}

BOOST_AUTO_TEST_SUITE_END()  // compress_entropy_test
