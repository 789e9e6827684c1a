// swap_check: fills more anonymous memory than the machine has, then reads
// every page back and checks it. Used by the VM test that runs coblk's zram
// device as the only swap: if a swapped-out page comes back wrong, or the
// server deadlocks, this program says so (or never finishes, and the test's
// timeout says so).
//
// Usage: swap_check MIB [PASSES]
// Each 4 KiB page gets content derived from its index: a random-looking
// half and a repeated half, so zram really compresses it, plus every 16th
// page all zeros and every 16th+1 page one repeated word (same-filled). A
// 64-bit checksum per page is kept in a separate, small array.
// Exit 0 and "swap_check: OK ..." when every page matches; 1 otherwise.
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

constexpr std::size_t page = 4096;

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

void fill(std::uint64_t* words, std::size_t index, unsigned pass) {
  const std::size_t n = page / 8;
  const std::uint64_t seed = mix(index * 2654435761u + pass);
  if (index % 16 == 0) {
    std::memset(words, 0, page);
  } else if (index % 16 == 1) {
    for (std::size_t i = 0; i < n; ++i) {
      words[i] = seed;
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      words[i] = i < n / 2 ? mix(seed + i) : (seed & 0xffff);
    }
  }
}

std::uint64_t checksum(const std::uint64_t* words) {
  std::uint64_t h = 0x9e3779b97f4a7c15ull;
  for (std::size_t i = 0; i < page / 8; ++i) {
    h = mix(h ^ words[i]);
  }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: swap_check MIB [PASSES]\n");
    return 2;
  }
  char* end = nullptr;
  const unsigned long mib = std::strtoul(argv[1], &end, 10);
  const unsigned passes = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 1;
  if (end == argv[1] || *end != '\0' || mib == 0 || passes == 0) {
    std::fprintf(stderr, "swap_check: MIB must be a positive number\n");
    return 2;
  }
  const std::size_t pages = mib * 256;
  auto* memory = static_cast<std::uint64_t*>(
      mmap(nullptr, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (memory == MAP_FAILED) {
    std::fprintf(stderr, "swap_check: cannot map %lu MiB: %s\n", mib, std::strerror(errno));
    return 1;
  }
  std::vector<std::uint64_t> sums(pages);
  std::size_t bad = 0;
  for (unsigned pass = 0; pass < passes; ++pass) {
    for (std::size_t p = 0; p < pages; ++p) {
      std::uint64_t* words = memory + p * (page / 8);
      fill(words, p, pass);
      sums[p] = checksum(words);
    }
    std::printf("swap_check: pass %u: wrote %lu MiB\n", pass, mib);
    std::fflush(stdout);
    // Read back in a scattered order so swap-in is random, not sequential.
    const std::size_t stride = 7919;  // prime, coprime with any page count we use
    for (std::size_t i = 0, p = 0; i < pages; ++i, p = (p + stride) % pages) {
      if (checksum(memory + p * (page / 8)) != sums[p]) {
        if (bad < 10) {
          std::fprintf(stderr, "swap_check: page %zu (pass %u) came back wrong\n", p, pass);
        }
        ++bad;
      }
    }
  }
  if (bad != 0) {
    std::printf("swap_check: FAILED: %zu of %zu pages wrong\n", bad, pages * passes);
    return 1;
  }
  std::printf("swap_check: OK: %zu pages verified over %u pass(es)\n", pages, passes);
  return 0;
}
