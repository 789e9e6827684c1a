// cmd/device_metrics.h - what every device publishes, collected from the run directory and rendered as text.
#pragma once

// The data side of `coblk metrics` and `coblk top`, apart from the HTTP
// server of metrics_exporter.h: the files the device servers publish in the
// run directory, read with pread and no lock they hold, and the Prometheus
// exposition and human table made from them. No Boost.Asio here, so the
// files that only read or render metrics do not parse it.

#include <optional>
#include <string>
#include <vector>

#include "coblk/cmd/device_record.h"
#include "coblk/ublk/io_metrics_file.h"
#if COBLK_HAVE_ZRAM
#include "coblk/ublk/zram_stats.h"
#endif

namespace coblk::cmd {

/// One device as the exporter sees it: its record, and what its server
/// publishes (absent when it publishes nothing, e.g. --no-metrics).
struct DeviceMetrics {
  DeviceRecord record;                        ///< from the run directory
  std::optional<ublk::IoMetricsSnapshot> io;  ///< <id>.metrics
  std::string io_error;                       ///< why `io` is absent, if the file exists but is unreadable
#if COBLK_HAVE_ZRAM
  std::optional<ublk::ZramStats> zram;  ///< <id>.zram-stats, zram devices only
#endif
};

/// Every device recorded in the run directory, sorted by id, with what it
/// publishes.
std::vector<DeviceMetrics> collect_device_metrics();

/// The Prometheus text exposition (format 0.0.4) of `devices`: # HELP and
/// # TYPE for each family, histograms as _bucket/_sum/_count, labels
/// device, queue, op (and core for reactor counters). Names and units are
/// listed in docs/cli.md.
std::string render_prometheus(const std::vector<DeviceMetrics>& devices);

/// A human table of `devices`: per queue and operation, requests, bytes,
/// errors and the latency percentiles p50, p99 and p99.9.
std::string render_summary(const std::vector<DeviceMetrics>& devices);

}  // namespace coblk::cmd
