#include "coblk/runtime/cycle_clock.h"

#include <time.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace coblk::runtime {

namespace {

bool cpu_has_invariant_tsc() noexcept {
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  // unsigned in g++'s <cpuid.h>, int in clang's.
  if (static_cast<unsigned>(__get_cpuid_max(0x80000000u, nullptr)) < 0x80000007u) {
    return false;
  }
  __cpuid(0x80000007u, a, b, c, d);
  return (d & (1u << 8)) != 0;  // "invariant TSC": constant rate, never stops
#else
  return false;
#endif
}

std::uint64_t read_monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Both values are computed once, by whichever thread first asks; C++ static
// initialisation is thread-safe, and they are read-only afterwards.
bool tsc_usable() noexcept {
  static const bool usable = cpu_has_invariant_tsc();
  return usable;
}

double measure_ticks_per_ns() noexcept {
  if (!tsc_usable()) {
    return 1.0;
  }
#if defined(__x86_64__)
  // Calibrate over ~5 ms of wall time; good to well under 1%.
  const std::uint64_t t0 = read_monotonic_ns();
  const std::uint64_t c0 = __rdtsc();
  std::uint64_t t1 = t0;
  while (t1 - t0 < 5000000ull) {
    t1 = read_monotonic_ns();
  }
  const std::uint64_t c1 = __rdtsc();
  return static_cast<double>(c1 - c0) / static_cast<double>(t1 - t0);
#else
  return 1.0;
#endif
}

}  // namespace

bool CycleClock::detect_tsc() noexcept { return tsc_usable(); }

std::uint64_t CycleClock::monotonic_ns() noexcept { return read_monotonic_ns(); }

double CycleClock::ticks_per_ns() noexcept {
  static const double value = measure_ticks_per_ns();
  return value;
}

}  // namespace coblk::runtime
