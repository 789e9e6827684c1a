// ublk/examples/mirror_target.h - an example ublk backend: a device mirrored onto two files (RAID 1).
#pragma once

// docs/writing-a-backend.md walks through it section by section.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coblk/runtime/result.h"
#include "coblk/runtime/task.h"
#include "coblk/ublk/target.h"

namespace coblk::ublk::examples {

/// What one queue has done; every field is written only by the queue's own
/// core, so none of them needs to be atomic. Read them after the device has
/// stopped (or from the queue's core).
struct MirrorQueueCounters {
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t flushes = 0;
  uint64_t discards = 0;
  /// Reads the primary failed and the secondary answered instead.
  uint64_t reads_from_secondary = 0;
  /// Requests that completed with an error.
  uint64_t errors = 0;
};

/// Mirrors a block device onto two regular files of (at least) the same
/// size: a write goes to both files concurrently and completes when both
/// have it; a read comes from the primary file, and from the secondary one
/// if the primary fails; flush is fdatasync on both; discard punches a hole
/// in both.
///
/// Per queue, start_queue() registers the two files with the queue core's
/// io_uring (IOSQE_FIXED_FILE saves a file-table lookup per operation), so
/// every I/O refers to the files by index in its own core's table.
class MirrorTarget final : public Target {
 public:
  /// Opens both files read-write; the device is as large as the smaller of
  /// the two, rounded down to 4096 bytes. `queues` is the device's queue
  /// count (one state slot per queue). Fails with one line naming the file
  /// that cannot be used, and why.
  static Result<std::unique_ptr<MirrorTarget>> create(const std::string& primary, const std::string& secondary,
                                                      unsigned queues);
  ~MirrorTarget() override;
  MirrorTarget(const MirrorTarget&) = delete;
  MirrorTarget& operator=(const MirrorTarget&) = delete;

  TargetGeometry geometry() const override;
  runtime::Task<int> start_queue(uint16_t queue) override;
  runtime::Task<int> read(const Request& r) override;
  runtime::Task<int> write(const Request& r) override;
  runtime::Task<int> flush(const Request& r) override;
  runtime::Task<int> discard(const Request& r) override;

  /// The counters of `queue` (see MirrorQueueCounters for when to read them).
  const MirrorQueueCounters& counters(uint16_t queue) const { return queues_.at(queue).counters; }

 private:
  explicit MirrorTarget(unsigned queues);
  // Indices of the two files in each queue core's registered-file table.
  static constexpr int kPrimary = 0;
  static constexpr int kSecondary = 1;

  // One queue's state. Cache-line aligned so two cores' counters never
  // share a line.
  struct alignas(64) QueueState {
    bool started = false;  // start_queue() registered the files on this core
    MirrorQueueCounters counters;
  };

  // Writes all of r's bytes to file `file` (an index), then fdatasync if the
  // request carries FUA. Returns r.length or -errno.
  runtime::Task<int> write_one(int file, const Request& r);
  // Reads all of r's bytes from file `file`. Returns r.length or -errno.
  runtime::Task<int> read_one(int file, const Request& r);
  // The request's queue state, or null if the request is malformed (a queue
  // that was never started, or a range outside the device).
  QueueState* checked(const Request& r);

  int fds_[2] = {-1, -1};
  uint64_t size_bytes_ = 0;
  std::vector<QueueState> queues_;
};

}  // namespace coblk::ublk::examples
