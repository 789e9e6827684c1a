// ublk/compression_pipeline.h - asynchronous compression: staged pages handed to compression tasks.
#pragma once

// The zram target's write path with --compress-cores (docs/storage.md,
// "Staging", and docs/architecture.md). A write copies each page into a
// staging slot of its queue's core (storage::PageStore::stage) and is
// complete; compression tasks take the slots over runtime::Channels,
// compress and install the pages (PageStore::install_staged) and send the
// slots back over a second channel. Reads and overwrites of a staged page
// go through the page's entry, which names the slot, so they see the
// staged copy.

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "coblk/runtime/channel.h"
#include "coblk/runtime/result.h"
#include "coblk/runtime/task.h"
#include "coblk/storage/page_store.h"

namespace coblk::ublk {

/// Settings of a CompressionPipeline.
struct CompressionPipelineConfig {
  /// Queues that write (queue q is store core q and stages into its
  /// staging area).
  unsigned queues = 1;
  /// Compression workers, 1..256. Worker w runs on the core of queue w when
  /// w < queues, else on runtime core w, which then must serve no queue of
  /// the device; it compresses with store core w's codec into its arena (so
  /// the store needs max(queues, workers) cores).
  unsigned workers = 1;
  /// Staging slots per (queue, worker) lane. The store's staging_pages must
  /// be workers * slots_per_lane.
  std::uint32_t slots_per_lane = 64;
};

/// The channels and compression tasks between a PageStore's queues and its
/// compression workers.
///
/// One lane per (queue, worker): a channel of staged slots from the queue
/// to the worker, a channel of free slots back, and the queue's stack of
/// the lane's free slots. Each channel has exactly one producer and one
/// consumer core, as runtime::Channel requires.
///
/// Lane order, per page: the lane to the worker on the queue's own core,
/// but (when other workers exist) only while that worker has no page in
/// hand; then the lanes to workers on other cores, round robin. Staging
/// for one's own core under load buys nothing: the same core compresses
/// the page later, plus the copy and the hand-over, so under load a queue
/// compresses inline what other cores have no room for. At low depth the
/// own lane is always idle and a write completes after the copy, without
/// waking another core.
///
/// Backpressure: a write that finds no free slot in any lane it may use
/// (every worker is behind) compresses the page itself, inline, as without
/// a pipeline: the request waits for that work and is never failed for it,
/// and the queue's core adds its own compression to the workers'.
class CompressionPipeline {
 public:
  /// A pipeline over `store` (which must outlive it and have
  /// staging_pages == workers * slots_per_lane and at least
  /// max(queues, workers) cores). Returns Error EINVAL (one line) when the
  /// settings or the store do not fit.
  static Result<std::unique_ptr<CompressionPipeline>> create(storage::PageStore& store,
                                                             const CompressionPipelineConfig& config);
  ~CompressionPipeline();
  CompressionPipeline(const CompressionPipeline&) = delete;
  CompressionPipeline& operator=(const CompressionPipeline&) = delete;

  /// Writes `data` at `offset` from queue `queue`, on that queue's core:
  /// whole, aligned pages are staged (or stored, if same-filled), anything
  /// else, and every page no lane has room for, is written inline with
  /// PageStore::try_write. Returns 0, or what try_write returned for the
  /// first page that failed (-ENOSPC at the memory limit, -EIO); pages
  /// before it are written.
  int write(unsigned queue, std::uint64_t offset, std::span<const std::byte> data) noexcept;

  /// Starts worker `worker`'s compression tasks (one per queue) on the
  /// calling reactor, which must be the worker's core (see
  /// CompressionPipelineConfig::workers). On a queue's core they run in the
  /// background scheduling group, so the queue's requests come first;
  /// elsewhere in the caller's group. They end when the runtime stops.
  void start_worker(unsigned worker);

  /// The number of workers.
  unsigned workers() const noexcept { return config_.workers; }
  /// Pages compressed inline because every lane was full (any thread;
  /// relaxed sum of per-queue counts).
  std::uint64_t inline_pages() const noexcept;

 private:
  struct Lane;
  struct QueueState;
  CompressionPipeline(storage::PageStore& store, const CompressionPipelineConfig& config);
  runtime::Task<void> compress_lane(unsigned queue, unsigned worker);
  // Stages one page in lane (queue, worker): 1 staged (or stored
  // same-filled), 0 the lane is full, else stage()'s error.
  int stage_in(unsigned queue, unsigned worker, std::uint64_t offset, std::span<const std::byte> page) noexcept;
  // Whether the lane to the worker on `queue`'s own core holds no page.
  bool own_lane_idle(unsigned queue) noexcept;
  Lane& lane(unsigned queue, unsigned worker) noexcept;

  storage::PageStore& store_;
  const CompressionPipelineConfig config_;
  std::vector<std::unique_ptr<Lane>> lanes_;         // queue-major: lanes_[queue * workers + worker]
  std::vector<std::unique_ptr<QueueState>> queues_;  // per queue, its core only (counter read by any)
};

}  // namespace coblk::ublk
