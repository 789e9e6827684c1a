// test/cmd/published_devices.h - a run directory holding the files device servers publish, for the exporters' tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "coblk/cmd/device_record.h"
#include "coblk/ublk/io_metrics_file.h"
#if COBLK_HAVE_ZRAM
#include "coblk/ublk/zram_stats.h"
#endif

namespace coblk::test {

/// A run directory of the test's own, made under /tmp with `prefix` and
/// set as COBLK_RUN_DIR; removed, and the variable unset, on destruction.
class RunDir {
 public:
  /// Makes /tmp/<prefix>-XXXXXX and points COBLK_RUN_DIR at it.
  explicit RunDir(const std::string& prefix);
  ~RunDir();
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;

  /// The directory's path.
  const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};

/// The record a device server saves for device `id`: `target` with
/// `queues` queues, 1 GiB, depth 128, copy data path, this process's pid.
cmd::DeviceRecord device_record(std::uint32_t id, const char* target, unsigned queues);

/// What the exporters' tests vary in the published snapshot.
struct SnapshotShape {
  /// Read i of device 0's queue 0 (of 1000) took read_ns_base + i *
  /// read_ns_step ns: a narrow step keeps them in few latency buckets, a
  /// wide one spreads them over many.
  std::uint64_t read_ns_base = 5000;
  std::uint64_t read_ns_step = 37;  ///< see read_ns_base
  /// Busy time of core 0's first scheduling group, in ns.
  std::uint64_t busy_ns = 1'500'000'000;
};

/// A known snapshot, as device servers would leave it in the current run
/// directory (a RunDir made first): device 0 (null, 2 queues, I/O of every
/// kind: 1000 reads, 10 writes of which one failed, a flush, a discard and
/// a write-zeroes of a minute, past every latency bound), device 1 (ram,
/// one queue) and, with the zram target built, device 2's zram statistics
/// (1 GiB disksize, 10 pages stored, 7 freed by notify, lz4). Keeps the
/// publishers, so the files stay until destruction.
struct PublishedDevices {
  /// Saves the records and publishes the files; a failure stops the test.
  explicit PublishedDevices(const SnapshotShape& shape = {});

  std::unique_ptr<ublk::IoMetricsPublisher> publisher;  ///< device 0's metrics file
  std::unique_ptr<ublk::QueueMetrics> q0;               ///< device 0's queue 0 as published
  std::unique_ptr<ublk::QueueMetrics> q1;               ///< device 0's queue 1 as published
#if COBLK_HAVE_ZRAM
  std::unique_ptr<ublk::ZramStatsPublisher> zram;  ///< device 2's zram statistics
#endif
};

}  // namespace coblk::test
