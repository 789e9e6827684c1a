// ublk/io_metrics_file.h - a device's I/O metrics and reactor counters, shared with `coblk metrics`.
#pragma once

// The same pattern as ublk/zram_stats.h: the serving process maps a small
// file shared (the `coblk` command puts it in its run directory,
// /run/coblk/ID.metrics) and copies its figures into it under a sequence
// lock; readers pread it, so nothing a reader does can stop or slow I/O.
// Here every queue has a slot of its own, with its own sequence, written
// only by the queue's core: queues publish independently, never contending.

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coblk/runtime/latency_histogram.h"
#include "coblk/runtime/reactor_stats.h"
#include "coblk/runtime/result.h"
#include "coblk/ublk/io_metrics.h"

namespace coblk::ublk {

/// Most queues a metrics file describes (a device has at most 64).
inline constexpr unsigned kMaxMetricsQueues = 64;

/// The counters of one reactor (core), as published beside a queue.
struct ReactorSnapshot {
  std::uint64_t busy_ns = 0;            ///< time spent running tasks (all scheduling groups)
  std::uint64_t tasks_run = 0;          ///< task resumptions
  std::uint64_t sqes_submitted = 0;     ///< SQEs the kernel accepted
  std::uint64_t cqes_reaped = 0;        ///< CQEs consumed
  std::uint64_t sleeps = 0;             ///< times the reactor blocked waiting for completions
  std::uint64_t stalls = 0;             ///< task runs longer than the stall threshold
  std::uint64_t max_stall_ns = 0;       ///< the longest of them
  std::uint64_t messages_sent = 0;      ///< cross-core messages sent
  std::uint64_t messages_received = 0;  ///< cross-core messages handled
  std::uint64_t missed_wakeups = 0;     ///< sleeps ended by the safety limit with work waiting
  std::uint64_t enters = 0;             ///< io_uring_enter system calls (0 from a server that predates the count)
};

/// One operation of one queue.
struct OpSnapshot {
  std::uint64_t requests = 0;             ///< OpMetrics::requests
  std::uint64_t bytes = 0;                ///< OpMetrics::bytes
  std::uint64_t errors = 0;               ///< OpMetrics::errors
  runtime::HistogramCounts<> latency_ns;  ///< OpMetrics::latency_ns
};

/// One queue's slot: a consistent copy of what its core last published.
struct QueueSnapshot {
  unsigned core = 0;                       ///< the runtime core that serves the queue
  std::uint64_t updated_ns = 0;            ///< CLOCK_REALTIME of the publish; 0 if the queue never published
  std::uint64_t publishes = 0;             ///< publishes so far
  ReactorSnapshot reactor;                 ///< the counters of the queue's core
  std::array<OpSnapshot, kMetricOps> ops;  ///< indexed by MetricOp
};

/// A whole metrics file.
struct IoMetricsSnapshot {
  std::uint32_t dev_id = 0;           ///< the ublk device id
  std::uint64_t pid = 0;              ///< the publishing process
  std::vector<QueueSnapshot> queues;  ///< one per hardware queue
};

/// The serving process's side. create() makes the file; each queue's core
/// then calls publish() for its own queue (a memory copy, no syscall, so a
/// reactor may call it between requests).
class IoMetricsPublisher {
 public:
  /// Creates a new file under an unpredictable name beside `path` (O_EXCL,
  /// O_NOFOLLOW, mode 0644), sizes and maps it for `queues` queues, and
  /// renames it to `path`: as ZramStatsPublisher::create, a file already
  /// there is replaced, never truncated, and a symbolic link is never
  /// followed. `queues` must be 1..kMaxMetricsQueues. Returns the Error of
  /// the failed step with a line naming the path.
  static Result<std::unique_ptr<IoMetricsPublisher>> create(const std::string& path, std::uint32_t dev_id,
                                                            unsigned queues);
  /// Unmaps the file and removes it, unless another file has taken its
  /// place at the path since.
  ~IoMetricsPublisher();
  IoMetricsPublisher(const IoMetricsPublisher&) = delete;
  IoMetricsPublisher& operator=(const IoMetricsPublisher&) = delete;

  /// Publishes queue `queue`'s metrics and the counters of `reactor`, the
  /// reactor of `core` that serves it. One writer per queue: call it only
  /// on that queue's core (different queues may publish concurrently).
  void publish(unsigned queue, unsigned core, const QueueMetrics& metrics,
               const runtime::ReactorStats& reactor) noexcept;

  /// The path the file was created at.
  const std::string& path() const { return path_; }

 private:
  IoMetricsPublisher(std::string path, void* map, std::size_t bytes, unsigned queues);

  std::string path_;
  void* map_ = nullptr;
  std::size_t bytes_ = 0;
  unsigned queues_ = 0;
  dev_t dev_ = 0;  // the file we created, to recognise it at path_
  ino_t ino_ = 0;
};

/// The reader's side: a consistent copy of every queue's slot of `path`,
/// read with pread under each slot's sequence lock (never mapped, so a
/// file truncated or replaced meanwhile is an error, not a SIGBUS). Error
/// of the failed open (ENOENT: no device publishes there), EINVAL if the
/// file is not (or no longer) a whole coblk metrics file of this layout,
/// or EAGAIN if a slot kept changing for 1000 reads; the message names the
/// path.
Result<IoMetricsSnapshot> read_io_metrics(const std::string& path);

}  // namespace coblk::ublk
