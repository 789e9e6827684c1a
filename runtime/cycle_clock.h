// runtime/cycle_clock.h - a cheap monotonic clock for quotas and stall detection.
#pragma once

#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace coblk::runtime {

/// A monotonic tick counter read once per task run. On x86-64 it is the
/// invariant TSC (about 20 cycles to read, against ~25 ns for clock_gettime);
/// elsewhere it falls back to CLOCK_MONOTONIC nanoseconds.
class CycleClock {
 public:
  /// Current tick count.
  static std::uint64_t now() noexcept {
#if defined(__x86_64__)
    if (use_tsc()) {
      return __rdtsc();
    }
#endif
    return monotonic_ns();
  }

  /// Ticks per nanosecond, measured once per process.
  static double ticks_per_ns() noexcept;

  /// Converts nanoseconds to ticks.
  static std::uint64_t from_ns(std::uint64_t ns) noexcept {
    return static_cast<std::uint64_t>(static_cast<double>(ns) * ticks_per_ns());
  }
  /// Converts ticks to nanoseconds.
  static std::uint64_t to_ns(std::uint64_t ticks) noexcept {
    return static_cast<std::uint64_t>(static_cast<double>(ticks) / ticks_per_ns());
  }

 private:
  static bool detect_tsc() noexcept;
  static bool use_tsc() noexcept { return tsc_; }
  static inline const bool tsc_ = detect_tsc();
  static std::uint64_t monotonic_ns() noexcept;
};

}  // namespace coblk::runtime
