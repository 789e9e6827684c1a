// ublk/queue.h - one ublk hardware queue, served by coroutines on one core's reactor.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stop_token>
#include <string>
#include <vector>

#include "coblk/runtime/task.h"
#include "coblk/ublk/abi.h"
#include "coblk/ublk/io_metrics.h"
#include "coblk/ublk/target.h"

namespace coblk::ublk {

class IoMetricsPublisher;

/// How request data moves between the kernel and the server.
enum class DataPath {
  copy,       ///< the kernel copies to/from a per-tag buffer given with FETCH
  user_copy,  ///< the server preads/pwrites /dev/ublkcN at the tag's offset (F_USER_COPY)
  zero_copy,  ///< the request's pages are auto-registered as fixed buffer `tag` (F_AUTO_BUF_REG)
};

/// Everything a Queue needs to know about its device.
struct QueueConfig {
  int char_fd = -1;                     ///< /dev/ublkcN, opened by the Device
  uint16_t queue_id = 0;                ///< the hardware queue this Queue serves, 0..nr_hw_queues-1
  uint16_t depth = 0;                   ///< tags of the queue: requests in flight at most, one coroutine each
  uint32_t max_io_bytes = 0;            ///< the device's max_io_buf_bytes
  DataPath data_path = DataPath::copy;  ///< must match the flags the device was added with
  bool ioctl_encoded = true;            ///< use U_IO_* opcodes (else the legacy ones)
  /// Fault the tag buffers in when they are mapped (MAP_POPULATE), so that
  /// serving a request never allocates memory: for devices that may be
  /// swap, whose requests arrive when memory is short. Costs depth ×
  /// max_io_bytes of resident (and, with mlockall, locked) memory.
  bool prefault_buffers = false;
  /// Record every request in the queue's QueueMetrics (two clock reads and
  /// a few counter updates on the queue's core; see ublk/io_metrics.h).
  bool metrics = true;
  /// Called once, on the queue's core, when a tag's I/O command fails
  /// unexpectedly (the tag then holds no request the kernel can complete):
  /// the device must stop now, not when every other tag has ended. May be
  /// empty.
  std::function<void()> on_failure;
};

/// Serves one hardware queue: per tag, a coroutine loops FETCH_REQ ->
/// handle the request through the Target -> COMMIT_AND_FETCH_REQ, all on
/// the reactor of the core that runs serve(). The kernel requires a tag's
/// FETCH and COMMIT to come from the same task, which holds because a
/// task never leaves its core.
///
/// Memory: the queue's descriptor array (read-only mmap of /dev/ublkcN) and,
/// for the copy and user-copy paths, one max_io_bytes buffer per tag,
/// allocated once by map(); nothing is allocated per request except the
/// target's coroutine frames.
class Queue {
 public:
  /// A queue for `config`, served by `target`, which must outlive it.
  /// Touches nothing yet: map() does the work that can fail.
  Queue(const QueueConfig& config, Target& target);
  ~Queue();
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  /// Maps the descriptor array and allocates the tag buffers. Must run in
  /// the process that serves the device (the kernel binds the device to
  /// the first mm that maps it). Returns 0 or -errno, with `error` set.
  int map(std::string& error);

  /// Serves until the kernel aborts the queue's commands (device stopped or
  /// deleted). Must run on the queue's core; returns when every tag loop
  /// has ended. The first failure other than the abort is kept in
  /// last_error().
  runtime::Task<void> serve();

  /// Unmaps the descriptor array and frees the tag buffers, keeping the
  /// counters. After serve() ended; map() may be called again.
  void unmap();

  /// 0, or the first unexpected negative result of an I/O command.
  int last_error() const { return last_error_; }
  /// Requests completed so far (read on the queue's core, or after serve()).
  uint64_t completed() const { return completed_; }
  /// Per-operation requests, bytes, errors and latencies (when
  /// QueueConfig::metrics is on). Written on the queue's core; any thread
  /// may read each counter.
  const QueueMetrics& metrics() const { return metrics_; }
  /// While serve() runs, publish metrics() (and the counters of the
  /// queue's reactor) to `publisher` every `interval`, and once more when
  /// serve() ends. Call before serve(); `publisher` must outlive it. Null
  /// stops publishing.
  void publish_metrics_to(IoMetricsPublisher* publisher, std::chrono::nanoseconds interval) {
    publisher_ = publisher;
    publish_interval_ = interval;
  }

 private:
  runtime::Task<void> serve_tag(uint16_t tag);
  // Awaits every tag's loop, then stops the publishing loop.
  static runtime::Task<void> serve_tags(std::vector<runtime::Task<void>> tags, std::stop_source& done);
  runtime::Task<void> publish_loop(std::stop_token done);
  runtime::Task<int> handle(uint16_t tag, const abi::ublksrv_io_desc& desc);
  // The target's coroutine for `request` (not started: the caller awaits it).
  // Not a coroutine itself, so it costs no frame. `request` must outlive it.
  runtime::Task<int> start_operation(const Request& request);
  static runtime::Task<int> unsupported();
  std::byte* tag_buffer(uint16_t tag) const { return buffers_ + size_t{tag} * config_.max_io_bytes; }

  QueueConfig config_;
  Target& target_;
  const abi::ublksrv_io_desc* descs_ = nullptr;
  size_t descs_bytes_ = 0;
  std::byte* buffers_ = nullptr;
  size_t buffers_bytes_ = 0;
  int last_error_ = 0;
  // /dev/ublkcN as the fd the queue's I/O commands name: its index in the
  // ring's fixed-file table (char_fixed_) or, where the reactor has no
  // table, config_.char_fd. Set on the queue's core by serve().
  int char_file_ = -1;
  bool char_fixed_ = false;
  uint64_t completed_ = 0;
  // A target answered a READ or WRITE with other than its length or an
  // errno once already; the queue's one log line about it was written.
  bool reported_bad_result_ = false;
  IoMetricsPublisher* publisher_ = nullptr;
  std::chrono::nanoseconds publish_interval_{std::chrono::seconds(1)};
  QueueMetrics metrics_;
};

}  // namespace coblk::ublk
