// ublk/io_metrics.h - per-queue I/O metrics: requests, bytes, errors and a latency histogram per operation.
#pragma once

// A Queue records every request it completes here, on its own core: no
// locks, no allocation, two clock reads and a handful of counter updates per
// request. ublk/io_metrics_file.h publishes them for other processes.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "coblk/runtime/cycle_clock.h"
#include "coblk/runtime/latency_histogram.h"
#include "coblk/runtime/reactor_stats.h"
#include "coblk/ublk/abi.h"

namespace coblk::ublk {

/// The operations the metrics count, in the order of QueueMetrics::op().
enum class MetricOp : std::uint8_t { read, write, flush, discard, write_zeroes };
/// How many MetricOps there are.
inline constexpr unsigned kMetricOps = 5;

/// "read", "write", "flush", "discard", "write_zeroes" (the `op` label of
/// the exported metrics); "unknown" for any other index.
constexpr const char* metric_op_name(unsigned op) noexcept {
  constexpr const char* names[kMetricOps] = {"read", "write", "flush", "discard", "write_zeroes"};
  return op < kMetricOps ? names[op] : "unknown";
}

/// The MetricOp index of a ublk operation (abi::IO_OP_*), or kMetricOps
/// for one the metrics do not count (zone operations, unknown codes).
constexpr unsigned metric_op_of(std::uint8_t ublk_op) noexcept {
  switch (ublk_op) {
    case abi::IO_OP_READ:
      return 0;
    case abi::IO_OP_WRITE:
      return 1;
    case abi::IO_OP_FLUSH:
      return 2;
    case abi::IO_OP_DISCARD:
      return 3;
    case abi::IO_OP_WRITE_ZEROES:
      return 4;
    default:
      return kMetricOps;
  }
}

/// The counters of one operation on one queue. Written only by the queue's
/// core; any thread may read them (each counter untorn).
struct OpMetrics {
  runtime::OwnedCounter requests;  ///< requests completed, failed ones included
  runtime::OwnedCounter bytes;     ///< bytes of the requests completed without error (a discard's range counts)
  runtime::OwnedCounter errors;    ///< requests completed with a negative result
  /// Service time in nanoseconds: from the moment the queue's task takes
  /// the request (its fetch completed) to the moment it commits the result.
  runtime::LatencyHistogram<> latency_ns;
};

/// One queue's metrics: an OpMetrics per MetricOp. Lives with the Queue,
/// on its own cache lines.
class alignas(64) QueueMetrics {
 public:
  /// Empty counters, converting ticks at this process's CycleClock rate.
  QueueMetrics() noexcept
      : ns_per_tick_q24_(static_cast<std::uint64_t>(
            std::llround(static_cast<double>(1U << 24) / runtime::CycleClock::ticks_per_ns()))),
        max_ticks_(UINT64_MAX / (ns_per_tick_q24_ == 0 ? 1 : ns_per_tick_q24_)) {}

  /// Records one completed request: its ublk operation, its length in
  /// 512-byte sectors (as in the descriptor; a flush carries none), the
  /// result committed to the kernel, and the runtime::CycleClock ticks it
  /// took. Operations the metrics do not count are ignored. Queue's core only.
  void record(std::uint8_t ublk_op, std::uint32_t sectors, int result, std::uint64_t ticks) noexcept {
    const unsigned i = metric_op_of(ublk_op);
    if (i >= kMetricOps) return;
    OpMetrics& m = ops_[i];
    m.requests.add();
    if (result < 0) {
      m.errors.add();
    } else if (ublk_op != abi::IO_OP_FLUSH) {
      m.bytes.add(std::uint64_t{sectors} << 9);
    }
    // Ticks to nanoseconds in fixed point (24 fraction bits): a multiply
    // and a shift, no floating point; past ~18 minutes the value saturates.
    m.latency_ns.record((std::min(ticks, max_ticks_) * ns_per_tick_q24_) >> 24);
  }

  /// The counters of MetricOp `i` (0..kMetricOps-1).
  const OpMetrics& op(unsigned i) const noexcept { return ops_[i]; }

 private:
  std::uint64_t ns_per_tick_q24_;  // nanoseconds per tick, times 2^24
  std::uint64_t max_ticks_;        // the most ticks whose product does not overflow
  std::array<OpMetrics, kMetricOps> ops_{};
};

}  // namespace coblk::ublk
