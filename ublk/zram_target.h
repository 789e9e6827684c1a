// ublk/zram_target.h - a compressed RAM block device (userspace zram).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "coblk/compress/codec.h"
#include "coblk/runtime/result.h"
#include "coblk/storage/page_store.h"
#include "coblk/ublk/target.h"
#include "coblk/ublk/zram_stats.h"

namespace coblk::ublk {

/// Settings of a zram device.
struct ZramTargetConfig {
  std::uint64_t size_bytes = 0;       ///< multiple of 4096
  compress::CodecSpec codec;          ///< lz4[:ACCEL] or zstd[:LEVEL]
  std::uint64_t mem_limit_bytes = 0;  ///< 0: no limit
  unsigned queues = 1;                ///< one PageStore core per queue
  std::string stats_path;             ///< where to publish stats ("" = nowhere)
  /// How often each queue's background task returns other cores' frees
  /// to its arena and (queue 0) publishes stats.
  std::chrono::milliseconds maintenance_interval{200};
  /// When the maintenance task compacts its queue's arena (the store's
  /// policy; the default is what `coblk add` uses).
  storage::CompactionPolicy compaction;
  /// Where the store lives: `shared` (memfds, see memory_fds()) lets a new
  /// server recover it after this one dies.
  runtime::MemoryKind memory = runtime::MemoryKind::anonymous;
  /// Not empty: recover the store a dead server left in these memfds (its
  /// memory_fds(); the target maps duplicates) instead of starting empty.
  std::vector<int> recover_from;
};

/// The `zram` target: every request is served from a storage::PageStore on
/// the queue's own core (queue q is PageStore core q). Same-filled pages are
/// metadata only; others are compressed with the configured codec; writes
/// beyond --mem-limit fail with -EIO, as in kernel zram, and keep the old
/// data. Before failing, a write at the limit takes back the room other
/// queues' cores hold without using it (frees they have not drained, cached
/// empty spans): it asks each of them, on its own core through
/// runtime::submit_to, to PageStore::reclaim, and tries again.
///
/// Geometry: 4 KiB logical and physical blocks, discard and write-zeroes on
/// (so swap's discards free memory), no volatile cache (a completed write is
/// in the store), not rotational.
///
/// Each queue also runs one task in the background scheduling group: every
/// maintenance_interval it drains the cross-core free rings into its arena,
/// offers the store a moment to compact its arena
/// (PageStore::maybe_compact_step: storage::CompactionPolicy decides), and
/// on queue 0 publishes the stats that `coblk stats` reads. Draining and
/// compaction run in bounded steps with runtime::maybe_yield() between
/// them, so the queue's requests wait for at most one step beyond the
/// group's time slice.
class ZramTarget final : public Target {
 public:
  /// A zram device for `config`, its page store created and, with a
  /// stats_path, its first stats published. Returns Error EINVAL (one line)
  /// on bad settings (no queues, a size that is not a non-zero multiple of
  /// 4096, a bad codec or memory limit), or the Error of PageStore::create
  /// or ZramStatsPublisher::create when memory or the stats file cannot be
  /// had.
  static Result<std::unique_ptr<ZramTarget>> create(const ZramTargetConfig& config);

  TargetGeometry geometry() const override;
  /// Spawns the queue's maintenance task (background group) on the
  /// queue's core; it ends when its sleep is cancelled at shutdown.
  /// Returns 0.
  runtime::Task<int> start_queue(std::uint16_t queue) override;
  runtime::Task<int> read(const Request& r) override;
  runtime::Task<int> write(const Request& r) override;
  runtime::Task<int> discard(const Request& r) override;
  runtime::Task<int> write_zeroes(const Request& r) override;

  /// The page store (for tests and stats).
  storage::PageStore& store() noexcept { return *store_; }
  /// The store's memfds (PageStore::memory_fds()).
  std::vector<int> memory_fds() const override { return store_->memory_fds(); }
  /// A snapshot of the device's statistics.
  ZramStats snapshot() const;

 private:
  ZramTarget(const ZramTargetConfig& config, std::unique_ptr<storage::PageStore> store,
             std::unique_ptr<ZramStatsPublisher> publisher);

  runtime::Task<void> maintain(std::uint16_t queue);
  runtime::Task<int> write_after_reclaim(std::uint16_t queue, std::uint64_t offset, std::span<const std::byte> data);

  ZramTargetConfig config_;
  std::unique_ptr<storage::PageStore> store_;
  std::unique_ptr<ZramStatsPublisher> publisher_;
  /// Per queue: 1 + the index of the Runtime core serving it, recorded by
  /// its start_queue; 0 until then. A write at the memory limit on another
  /// queue reads it to ask that core to reclaim memory.
  std::unique_ptr<std::atomic<unsigned>[]> queue_cores_ = std::make_unique<std::atomic<unsigned>[]>(config_.queues);
};

}  // namespace coblk::ublk
