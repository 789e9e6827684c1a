// cmd/metric_families.h - the exporter's metrics as data, which the Prometheus text and the OTLP push both render.
#pragma once

// `coblk metrics` offers the same figures two ways: scraped as Prometheus
// text (cmd/metrics_exporter.h) and pushed as OTLP/HTTP JSON
// (cmd/otlp_encode.h). Both render the families built here, so a series,
// its help, its labels and its value cannot differ between the two.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "coblk/cmd/device_metrics.h"

namespace coblk::cmd {

/// What kind of figure a family holds.
enum class MetricType {
  counter,   ///< only grows while its process lives (Prometheus counter, OTLP monotonic cumulative sum)
  gauge,     ///< a value now (Prometheus gauge, OTLP gauge)
  histogram  ///< a latency distribution (Prometheus histogram, OTLP explicit-bounds histogram)
};

/// One series of a family: its labels (name, value; in the order they are
/// printed) and its value.
struct MetricSample {
  std::vector<std::pair<std::string, std::string>> labels;  ///< e.g. device, queue, op
  /// A counter's or gauge's value; in nanoseconds when the family is in
  /// seconds (MetricFamily::seconds).
  std::uint64_t value = 0;
  /// A histogram's samples per bucket (not cumulative): counts[i] are the
  /// samples at or above bound i-1 and below bound i
  /// (MetricFamily::bounds_ns), the last those at or above the last bound;
  /// bounds_ns.size() + 1 entries.
  std::vector<std::uint64_t> counts;
  std::uint64_t sum_ns = 0;  ///< a histogram's sum of samples, in nanoseconds
  /// When the process that counts started (CLOCK_REALTIME, ns), where it
  /// is known, else 0: the start of a cumulative series, which tells a
  /// reader that a restarted server's counters began again from 0.
  std::uint64_t start_unix_ns = 0;
};

/// A metric family: a name, a type, a line of help and its series.
struct MetricFamily {
  std::string name;                      ///< the Prometheus name, e.g. coblk_io_requests_total
  MetricType type = MetricType::gauge;   ///< counter, gauge or histogram
  std::string help;                      ///< one line
  bool seconds = false;                  ///< values (and a histogram's sum) are nanoseconds, exported as seconds
  std::vector<std::uint64_t> bounds_ns;  ///< a histogram's bucket upper bounds in nanoseconds, ascending
  std::vector<MetricSample> samples;     ///< possibly none (the family is then not exported)
};

/// Every family `coblk metrics` exports for `devices`, in export order:
/// per device its record (coblk_device_info) and whether it publishes
/// metrics; per queue and operation requests, bytes, errors and latency;
/// per core the reactor counters; the zram statistics. Names and units are
/// listed in docs/cli.md.
std::vector<MetricFamily> metric_families(const std::vector<DeviceMetrics>& devices);

/// `ns` nanoseconds as seconds, exactly, in decimal: 1024 -> "0.000001024".
std::string seconds_text(std::uint64_t ns);

/// When process `pid` started, as CLOCK_REALTIME nanoseconds (its start in
/// clock ticks since boot, /proc/PID/stat field 22, plus the boot time of
/// /proc/stat); 0 when it cannot be read (the process is gone).
std::uint64_t process_start_unix_ns(std::uint64_t pid);

}  // namespace coblk::cmd
