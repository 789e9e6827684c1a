// Sampled order-0 entropy of a page.
//
// H = log2(N) - (1/N) * sum(c * log2(c)) over the byte counts c of an
// N-byte sample. N is fixed, so c * log2(c) comes from a table of N + 1
// entries rather than 256 calls to log2 per page.

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "coblk/compress/entropy.h"

namespace coblk::compress {
namespace {

constexpr std::size_t run_length = entropy_sample_size / entropy_sample_runs;
constexpr std::size_t run_stride = page_size / entropy_sample_runs;
static_assert(entropy_sample_size % entropy_sample_runs == 0 && run_length % 8 == 0,
              "runs are whole numbers of 8-byte words");
static_assert(run_length <= run_stride, "runs must not overlap");
// Four partial histograms, so that runs of one byte value (zeros) do not
// serialise on one counter; each holds at most entropy_sample_size / 4.
constexpr std::size_t partial_histograms = 4;
static_assert(entropy_sample_size <= UINT16_MAX, "uint16_t counters");

// c * log2(c) in fixed point with 16 fractional bits. Integers rather than
// floats because the 256-term sum is then associative: the compiler may
// split it across several accumulators instead of one chain of dependent
// float adds (4 cycles each, which was half the cost of the whole call).
// No overflow: the sum is at most N log2 N = 10240 for N = 1024, times 2^16.
constexpr int fraction_bits = 16;
static_assert(entropy_sample_size * 11 < (std::uint64_t{1} << (32 - fraction_bits)), "fixed-point sum fits 32 bits");

struct CountLogTable {
  std::array<std::uint32_t, entropy_sample_size + 1> c_log2_c;
  CountLogTable() {
    c_log2_c[0] = 0;  // lim c->0 of c log c
    for (std::size_t c = 1; c <= entropy_sample_size; ++c)
      c_log2_c[c] = static_cast<std::uint32_t>(
          std::lround(static_cast<double>(c) * std::log2(static_cast<double>(c)) * (1 << fraction_bits)));
  }
};

}  // namespace

double estimate_entropy(std::span<const std::byte, page_size> page) noexcept {
  static const CountLogTable table;  // built once, read-only afterwards

  std::uint16_t counts[partial_histograms][256] = {};
  for (std::size_t run = 0; run < entropy_sample_runs; ++run) {
    // Centre each run in its stride so the first and last bytes of the
    // page (often headers or padding) are not over-represented.
    const std::byte* p = page.data() + run * run_stride + (run_stride - run_length) / 2;
    for (std::size_t i = 0; i < run_length; i += 8) {
      std::uint64_t word;
      std::memcpy(&word, p + i, sizeof word);
      ++counts[0][word & 0xff];
      ++counts[1][(word >> 8) & 0xff];
      ++counts[2][(word >> 16) & 0xff];
      ++counts[3][(word >> 24) & 0xff];
      ++counts[0][(word >> 32) & 0xff];
      ++counts[1][(word >> 40) & 0xff];
      ++counts[2][(word >> 48) & 0xff];
      ++counts[3][word >> 56];
    }
  }
  // Summing the partial histograms first keeps this loop free of the
  // table lookups, so the compiler turns it into vector adds.
  std::uint16_t totals[256];
  for (std::size_t value = 0; value < 256; ++value)
    totals[value] =
        static_cast<std::uint16_t>(counts[0][value] + counts[1][value] + counts[2][value] + counts[3][value]);
  std::uint32_t sum = 0;
  for (const std::uint16_t c : totals) sum += table.c_log2_c[c];
  const double n = static_cast<double>(entropy_sample_size);
  const double entropy = std::log2(n) - static_cast<double>(sum) / (1 << fraction_bits) / n;
  // Rounding can push a single-valued sample a hair below zero.
  return entropy < 0.0 ? 0.0 : entropy;
}

}  // namespace coblk::compress
