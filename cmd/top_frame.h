// cmd/top_frame.h - `coblk top`'s frame: rates between two snapshots of every device, fitted to a terminal.
#pragma once

// Pure functions of what the device servers published (collected by
// collect_device_metrics, the exporter's reader) and of the terminal's
// size: no terminal, no clock, no files, so every figure and every cut is
// unit-tested. cmd/top_command.cc draws the lines and reads the keys.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "coblk/cmd/device_metrics.h"
#include "coblk/ublk/io_metrics_file.h"

namespace coblk::cmd {

/// Every device's published figures at one moment.
struct TopSnapshot {
  std::uint64_t taken_ns = 0;          ///< when it was taken (a monotonic clock, only differences matter)
  std::vector<DeviceMetrics> devices;  ///< as collect_device_metrics returns them, sorted by id
};

/// What one queue (or a whole device, summed) did between two snapshots.
struct QueueRates {
  double read_iops = 0;                 ///< read requests per second
  double write_iops = 0;                ///< write requests per second
  double read_mbps = 0;                 ///< bytes read per second, in MB (10^6)
  double write_mbps = 0;                ///< bytes written per second, in MB
  std::uint64_t requests = 0;           ///< requests of every operation completed in the interval
  std::optional<std::uint64_t> p99_ns;  ///< the interval's p99 service time over every operation; none without requests
  std::optional<double> busy_pct;       ///< the serving core's busy time as a share of the interval; none if unknown
};

/// The rates of one queue between `before` and `now`, `seconds` apart: the
/// counters' differences over the time, and the p99 of the samples the
/// histograms gained. nullopt when they cannot be compared: `seconds` not
/// positive, the queue had not published in `now`, or a counter went back
/// (a new server since `before`).
std::optional<QueueRates> rates_between(const ublk::QueueSnapshot& before, const ublk::QueueSnapshot& now,
                                        double seconds);

/// A count per second for a narrow column: "0", "950", "12.3k", "1.25M".
std::string format_rate(double per_second);
/// A duration in nanoseconds with its unit: "850ns", "12.5us", "1.20ms", "3.40s".
std::string format_latency(std::uint64_t ns);

/// The terminal a frame is fitted to.
struct TopLayout {
  unsigned width = 0;   ///< columns; 0: no limit (a pipe)
  unsigned height = 0;  ///< lines; 0: no limit
};

/// The lines of one frame (no escape codes, no newlines): a title, a
/// header, then per device a row of its totals, a row per queue ("  q0",
/// with the core that serves it), and for a
/// zram device a line of its store (compression ratio, memory used against
/// the limit, written-back pages). Rates need `before` (the previous
/// snapshot; absent on the first frame, when every rate shows "-"). Columns
/// that do not fit `layout.width` are dropped, least useful first, and any
/// line still too long is cut; rows that do not fit `layout.height` are
/// cut, the last line saying how many. `title` is the first line. With no
/// device at all, the frame is the title and "no coblk devices".
std::vector<std::string> render_top_frame(const TopSnapshot* before, const TopSnapshot& now, const TopLayout& layout,
                                          const std::string& title);

}  // namespace coblk::cmd
