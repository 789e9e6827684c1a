#pragma once
// Test pages with controlled content, shared by the storage tests.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>

namespace coblk::storage_test {

/// Fills `page` with content derived from `seed` whose compressibility
/// varies with the seed: runs of a few repeated words mixed with random
/// bytes, so compressed sizes spread over many size classes. Every seed
/// gives a different page.
inline void make_page(std::span<std::byte> page, std::uint64_t seed) {
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ull + 1);
  const unsigned randomness = static_cast<unsigned>(seed % 17);  // 0..16 of 16 parts random
  std::size_t i = 0;
  while (i < page.size()) {
    const std::size_t run = std::min<std::size_t>(page.size() - i, 8 + rng() % 56);
    if (rng() % 16 < randomness) {
      for (std::size_t k = 0; k < run; ++k) {
        page[i + k] = static_cast<std::byte>(rng());
      }
    } else {
      const std::uint64_t word = seed ^ (rng() % 4);
      for (std::size_t k = 0; k < run; ++k) {
        page[i + k] = static_cast<std::byte>(word >> (8 * (k % 8)));
      }
    }
    i += run;
  }
  std::memcpy(page.data(), &seed, std::min<std::size_t>(sizeof seed, page.size()));
}

}  // namespace coblk::storage_test
