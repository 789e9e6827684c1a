// LatencyHistogram: the log-linear bucket edges, and percentiles against a
// sorted reference.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "coblk/runtime/latency_histogram.h"

BOOST_AUTO_TEST_SUITE(runtime_latency_histogram_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

using B = runtime::LatencyBuckets;

// The exact q-quantile of `sorted` by the rank the histogram uses: the
// ceil(q * n)-th smallest sample.
std::uint64_t exact_quantile(const std::vector<std::uint64_t>& sorted, double q) {
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void check_against_reference(std::vector<std::uint64_t> values) {
  runtime::LatencyHistogram<> h;
  for (const std::uint64_t v : values) h.record(v);
  std::sort(values.begin(), values.end());
  const auto counts = h.counts();
  BOOST_TEST(counts.count() == values.size());
  std::uint64_t sum = 0;
  for (const std::uint64_t v : values) sum += v;
  BOOST_TEST(counts.sum == sum);
  for (const double q : {0.01, 0.5, 0.9, 0.99, 0.999, 1.0}) {
    const std::uint64_t exact = exact_quantile(values, q);
    const std::uint64_t got = counts.percentile(q);
    // Never below the exact value, and within one bucket width above: less
    // than 1/16 of the value (or exact, for values with a bucket each).
    BOOST_TEST_INFO("q=" << q << " exact=" << exact << " histogram=" << got);
    BOOST_TEST(got >= exact);
    BOOST_TEST(static_cast<double>(got - exact) <= static_cast<double>(exact) / B::sub_count);
    BOOST_TEST(B::bucket_of(got) == B::bucket_of(exact));
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(small_values_have_a_bucket_each) {
  for (unsigned v = 0; v < B::sub_count; ++v) {
    BOOST_TEST(B::bucket_of(v) == v);
    BOOST_TEST(B::lower(v) == v);
    BOOST_TEST(B::upper(v) == v);
  }
  // The first power of two above them is still one value per bucket.
  for (unsigned v = B::sub_count; v < 2 * B::sub_count; ++v) {
    BOOST_TEST(B::bucket_of(v) == v);
    BOOST_TEST(B::upper(v) == v);
  }
}

BOOST_AUTO_TEST_CASE(bucket_edges_tile_the_range_without_gaps) {
  static_assert(B::count == 528);
  BOOST_TEST(B::lower(0) == 0U);
  for (unsigned i = 0; i + 1 < B::count; ++i) {
    BOOST_TEST_INFO("bucket " << i);
    BOOST_TEST(B::lower(i) <= B::upper(i));
    BOOST_TEST(B::upper(i) + 1 == B::lower(i + 1));  // contiguous
    // Both edges, and the values just outside them, land where they should.
    BOOST_TEST(B::bucket_of(B::lower(i)) == i);
    BOOST_TEST(B::bucket_of(B::upper(i)) == i);
    BOOST_TEST(B::bucket_of(B::upper(i) + 1) == i + 1);
    if (B::lower(i) > 0) BOOST_TEST(B::bucket_of(B::lower(i) - 1) == i - 1);
    // Log-linear: never wider than 1/16 of the lower edge past the first 32.
    if (i >= 2 * B::sub_count) {
      BOOST_TEST((B::upper(i) - B::lower(i) + 1) * B::sub_count <= B::lower(i));
    }
  }
  BOOST_TEST(B::upper(B::count - 1) == (std::uint64_t{1} << B::max_bits) - 1);
}

BOOST_AUTO_TEST_CASE(powers_of_two_start_a_bucket) {
  for (unsigned e = B::sub_bits; e < B::max_bits; ++e) {
    const std::uint64_t p = std::uint64_t{1} << e;
    const unsigned i = B::bucket_of(p);
    BOOST_TEST(B::lower(i) == p);
    BOOST_TEST(B::upper(B::bucket_of(p - 1)) == p - 1);
    BOOST_TEST(i == (e - B::sub_bits + 1) * B::sub_count);
  }
}

BOOST_AUTO_TEST_CASE(values_beyond_the_range_share_the_last_bucket) {
  BOOST_TEST(B::bucket_of(std::uint64_t{1} << B::max_bits) == B::count - 1);
  BOOST_TEST(B::bucket_of(UINT64_MAX) == B::count - 1);
  runtime::LatencyHistogram<> h;
  h.record(UINT64_MAX);
  BOOST_TEST(h.bucket(B::count - 1) == 1U);
  BOOST_TEST(h.counts().percentile(0.5) == B::upper(B::count - 1));
}

BOOST_AUTO_TEST_CASE(an_empty_histogram_has_no_percentiles) {
  const runtime::LatencyHistogram<> h;
  BOOST_TEST(h.counts().count() == 0U);
  BOOST_TEST(h.counts().percentile(0.99) == 0U);
}

BOOST_AUTO_TEST_CASE(percentiles_match_a_sorted_reference_uniform) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<std::uint64_t> d(1000, 200000);
  std::vector<std::uint64_t> v(100000);
  for (auto& x : v) x = d(rng);
  check_against_reference(std::move(v));
}

BOOST_AUTO_TEST_CASE(percentiles_match_a_sorted_reference_long_tail) {
  // Log-normal latencies around 20 us with a tail to milliseconds, plus a
  // few outliers of seconds: p99.9 must find the tail.
  std::mt19937_64 rng(2);
  std::lognormal_distribution<double> d(std::log(20000.0), 1.0);
  std::vector<std::uint64_t> v(200000);
  for (auto& x : v) x = static_cast<std::uint64_t>(d(rng));
  for (int i = 0; i < 300; ++i) v[static_cast<size_t>(i) * 600] = 2'000'000'000ULL + static_cast<std::uint64_t>(i);
  check_against_reference(std::move(v));
}

BOOST_AUTO_TEST_CASE(percentiles_of_a_few_samples) {
  check_against_reference({7});
  check_against_reference({5, 500, 50000});
  check_against_reference({0, 0, 0, 1, 1 << 20});
}

BOOST_AUTO_TEST_CASE(merged_counts_add_up) {
  runtime::LatencyHistogram<> a;
  runtime::LatencyHistogram<> b;
  for (std::uint64_t v = 1; v < 5000; v += 7) a.record(v);
  for (std::uint64_t v = 1; v < 5000; v += 11) b.record(v * 1000);
  auto sum = a.counts();
  sum.add(b.counts());
  BOOST_TEST(sum.count() == a.counts().count() + b.counts().count());
  BOOST_TEST(sum.sum == a.sum() + b.sum());
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_latency_histogram_test
