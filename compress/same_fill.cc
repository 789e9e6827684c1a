// Same-filled page detection: scalar, AVX2 and AVX-512 paths.
//
// The build targets baseline x86-64, so the vector paths are compiled for
// their instruction sets with function target attributes and only called
// after a run-time CPU check. Every path first compares the first and last
// words: most pages that are not same-filled differ there, and it costs two
// loads. The vector scans then fold the XOR of each word with the first word
// into an accumulator per 128- or 256-byte chunk, so there is one branch per
// chunk rather than per word.

#include <cstring>

#include <immintrin.h>

#include "coblk/compress/same_fill.h"

namespace coblk::compress {
namespace {

constexpr std::size_t word_size = sizeof(std::uint64_t);
static_assert(page_size % 256 == 0, "the vector paths scan 128- and 256-byte chunks");

inline std::uint64_t load_word(const std::byte* address) noexcept {
  std::uint64_t word;
  std::memcpy(&word, address, word_size);
  return word;
}

// First and last words are equal: the cheap early rejection every path shares.
inline bool ends_match(const std::byte* page, std::uint64_t& first) noexcept {
  first = load_word(page);
  return first == load_word(page + page_size - word_size);
}

using SameFillPath = bool (*)(std::span<const std::byte, page_size>, std::uint64_t&) noexcept;

SameFillPath choose_path() noexcept {
  if (detail::cpu_has_avx512()) return &detail::is_same_filled_avx512;
  if (detail::cpu_has_avx2()) return &detail::is_same_filled_avx2;
  return &detail::is_same_filled_scalar;
}

}  // namespace

namespace detail {

bool is_same_filled_scalar(std::span<const std::byte, page_size> page, std::uint64_t& fill) noexcept {
  const std::byte* const p = page.data();
  std::uint64_t first;
  if (!ends_match(p, first)) return false;
  // One compare and branch per word: at baseline x86-64 this is as fast as
  // folding chunks (measured), and exits at the first differing word.
  for (std::size_t offset = word_size; offset < page_size - word_size; offset += word_size)
    if (load_word(p + offset) != first) return false;
  fill = first;
  return true;
}

__attribute__((target("avx2"))) bool is_same_filled_avx2(std::span<const std::byte, page_size> page,
                                                         std::uint64_t& fill) noexcept {
  const std::byte* const p = page.data();
  std::uint64_t first;
  if (!ends_match(p, first)) return false;
  const __m256i pattern = _mm256_set1_epi64x(static_cast<long long>(first));
  constexpr std::size_t chunk = 4 * sizeof(__m256i);
  for (std::size_t offset = 0; offset < page_size; offset += chunk) {
    const auto* v = reinterpret_cast<const __m256i*>(p + offset);
    const __m256i a = _mm256_xor_si256(_mm256_loadu_si256(v + 0), pattern);
    const __m256i b = _mm256_xor_si256(_mm256_loadu_si256(v + 1), pattern);
    const __m256i c = _mm256_xor_si256(_mm256_loadu_si256(v + 2), pattern);
    const __m256i d = _mm256_xor_si256(_mm256_loadu_si256(v + 3), pattern);
    const __m256i difference = _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d));
    if (!_mm256_testz_si256(difference, difference)) return false;
  }
  fill = first;
  return true;
}

__attribute__((target("avx512f"))) bool is_same_filled_avx512(std::span<const std::byte, page_size> page,
                                                              std::uint64_t& fill) noexcept {
  const std::byte* const p = page.data();
  std::uint64_t first;
  if (!ends_match(p, first)) return false;
  const __m512i pattern = _mm512_set1_epi64(static_cast<long long>(first));
  constexpr std::size_t chunk = 4 * sizeof(__m512i);
  for (std::size_t offset = 0; offset < page_size; offset += chunk) {
    const std::byte* const q = p + offset;
    const __m512i a = _mm512_xor_si512(_mm512_loadu_si512(q + 0 * sizeof(__m512i)), pattern);
    const __m512i b = _mm512_xor_si512(_mm512_loadu_si512(q + 1 * sizeof(__m512i)), pattern);
    const __m512i c = _mm512_xor_si512(_mm512_loadu_si512(q + 2 * sizeof(__m512i)), pattern);
    const __m512i d = _mm512_xor_si512(_mm512_loadu_si512(q + 3 * sizeof(__m512i)), pattern);
    const __m512i difference = _mm512_or_si512(_mm512_or_si512(a, b), _mm512_or_si512(c, d));
    if (_mm512_test_epi64_mask(difference, difference) != 0) return false;
  }
  fill = first;
  return true;
}

// __builtin_cpu_supports also checks that the OS saves the wider register
// state (XCR0), so a true answer means the instructions are usable.
bool cpu_has_avx2() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}

bool cpu_has_avx512() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
}

const char* same_fill_path() noexcept {
  const SameFillPath path = choose_path();
  if (path == &is_same_filled_avx512) return "avx512";
  if (path == &is_same_filled_avx2) return "avx2";
  return "scalar";
}

}  // namespace detail

bool is_same_filled(std::span<const std::byte, page_size> page, std::uint64_t& fill) noexcept {
  // Chosen once; the CPU does not change under a running process. A
  // function-local static (rather than a namespace-scope one) is safe to
  // use from other static initialisers.
  static const SameFillPath path = choose_path();
  return path(page, fill);
}

void fill_page(std::span<std::byte, page_size> page, std::uint64_t fill) noexcept {
  // A plain loop of word stores: the compiler vectorises it at baseline
  // SSE2, and a 4 KiB store is bound by the cache, not by instruction width.
  for (std::size_t offset = 0; offset < page_size; offset += word_size)
    std::memcpy(page.data() + offset, &fill, word_size);
}

}  // namespace coblk::compress
