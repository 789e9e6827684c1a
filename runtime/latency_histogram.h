// runtime/latency_histogram.h - a log-linear (HdrHistogram-like) histogram with one writer, no locks, no allocation.
#pragma once

// The bucket layout is a pure function of the value, so a histogram is a
// fixed array of counters: recording is a count-leading-zeros, two shifts
// and two counter updates. The counters are written by one thread (the
// reactor of the core that owns the histogram) as relaxed load + store, like
// runtime::OwnedCounter, so any other thread may read them untorn; a reader
// that wants a consistent set copies them under a sequence lock of its own
// (ublk/io_metrics_file.h does).

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <limits>

namespace coblk::runtime {

/// HdrHistogram's log-linear bucket layout over unsigned 64-bit values
/// (nanoseconds, for latencies). Each value below 2^sub_bits has a bucket of
/// its own; above, every power of two [2^e, 2^(e+1)) is cut into 2^sub_bits
/// buckets of equal width 2^(e-sub_bits), so a bucket is never wider than
/// 1/2^sub_bits of its lower edge (6.25% for 4 bits). Values of 2^max_bits
/// and more (68.7 s in nanoseconds) all land in the last bucket.
template <unsigned SubBits, unsigned MaxBits>
struct LogLinearBuckets {
  static_assert(SubBits >= 1 && SubBits < MaxBits && MaxBits < 64);
  static constexpr unsigned sub_bits = SubBits;         ///< linear buckets per power of two: 2^sub_bits
  static constexpr unsigned max_bits = MaxBits;         ///< values >= 2^max_bits share the last bucket
  static constexpr unsigned sub_count = 1U << SubBits;  ///< buckets per power of two
  static constexpr unsigned count = sub_count + (MaxBits - SubBits) * sub_count;  ///< number of buckets

  /// The bucket of `v`. Branch-free: with the shift taken as 0 below
  /// 2^(sub_bits+1), the one formula also gives the linear buckets.
  static constexpr unsigned bucket_of(std::uint64_t v) noexcept {
    constexpr std::uint64_t top = (std::uint64_t{1} << MaxBits) - 1;
    v = v < top ? v : top;
    // v in [2^e, 2^(e+1)), e >= sub_bits: its top sub_bits+1 bits, of which
    // the leading one says which power of two, pick the bucket.
    const unsigned shift = static_cast<unsigned>(63 - std::countl_zero(v | sub_count)) - SubBits;
    return (shift << SubBits) + static_cast<unsigned>(v >> shift);
  }
  /// The smallest value of bucket `i`.
  static constexpr std::uint64_t lower(unsigned i) noexcept {
    if (i < sub_count) return i;
    const unsigned shift = i / sub_count - 1;
    return (std::uint64_t{sub_count} + i % sub_count) << shift;
  }
  /// The largest value of bucket `i` (inclusive); the last bucket also
  /// holds every larger value, but reports 2^max_bits - 1.
  static constexpr std::uint64_t upper(unsigned i) noexcept {
    if (i < sub_count) return i;
    const unsigned shift = i / sub_count - 1;
    return lower(i) + (std::uint64_t{1} << shift) - 1;
  }
};

/// The layout of latency histograms in nanoseconds: 16 buckets per power of
/// two (at most 6.25% wide), 528 buckets up to 68.7 s.
using LatencyBuckets = LogLinearBuckets<4, 36>;

/// A copy of a histogram's counters in plain integers, and what is computed
/// from them: total count and percentiles.
template <typename Buckets = LatencyBuckets>
struct HistogramCounts {
  std::array<std::uint64_t, Buckets::count> buckets{};  ///< samples per bucket
  std::uint64_t sum = 0;                                ///< sum of the recorded values (wraps after 2^64)

  /// Samples recorded.
  std::uint64_t count() const noexcept {
    std::uint64_t n = 0;
    for (const std::uint64_t b : buckets) n += b;
    return n;
  }
  /// The q-quantile (0 < q <= 1) as the highest value of the bucket that
  /// holds the sample of rank ceil(q * count) in sorted order (HdrHistogram's
  /// "highest equivalent value"): never below the exact quantile, and above
  /// it by less than one bucket width. 0 when empty.
  std::uint64_t percentile(double q) const noexcept {
    const std::uint64_t n = count();
    if (n == 0) return 0;
    double wanted = q * static_cast<double>(n);
    auto rank = static_cast<std::uint64_t>(wanted);
    if (static_cast<double>(rank) < wanted) ++rank;  // ceil
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    std::uint64_t seen = 0;
    for (unsigned i = 0; i < Buckets::count; ++i) {
      seen += buckets[i];
      if (seen >= rank) return Buckets::upper(i);
    }
    return Buckets::upper(Buckets::count - 1);
  }
  /// Adds `other`'s samples (to merge queues or cores).
  void add(const HistogramCounts& other) noexcept {
    for (unsigned i = 0; i < Buckets::count; ++i) buckets[i] += other.buckets[i];
    sum += other.sum;
  }
};

/// A histogram that one thread records into and any thread may read. No
/// locks, no allocation: a fixed array of counters (4.2 KiB with the
/// default layout). Keep it in memory that only its writer's core writes.
template <typename Buckets = LatencyBuckets>
class LatencyHistogram {
 public:
  /// Records one sample. Writer thread only.
  void record(std::uint64_t value) noexcept {
    bump(buckets_[Buckets::bucket_of(value)], 1);
    bump(sum_, value);
  }
  /// Samples in bucket `i` (any thread).
  std::uint64_t bucket(unsigned i) const noexcept { return buckets_[i].load(std::memory_order_relaxed); }
  /// Sum of the recorded values (any thread).
  std::uint64_t sum() const noexcept { return sum_.load(std::memory_order_relaxed); }
  /// Copies the counters (any thread; not a consistent cut if the writer
  /// is recording meanwhile: each counter is exact, the set may be a few
  /// samples apart).
  HistogramCounts<Buckets> counts() const noexcept {
    HistogramCounts<Buckets> c;
    for (unsigned i = 0; i < Buckets::count; ++i) c.buckets[i] = bucket(i);
    c.sum = sum();
    return c;
  }

 private:
  // One writer: a relaxed load and store, no locked read-modify-write.
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  std::array<std::atomic<std::uint64_t>, Buckets::count> buckets_{};
  std::atomic<std::uint64_t> sum_{0};
};

}  // namespace coblk::runtime
