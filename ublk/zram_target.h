// ublk/zram_target.h - a compressed RAM block device (userspace zram).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "coblk/compress/codec.h"
#include "coblk/runtime/result.h"
#include "coblk/storage/page_store.h"
#include "coblk/ublk/compression_pipeline.h"
#include "coblk/ublk/target.h"
#include "coblk/ublk/tier_backend.h"
#include "coblk/ublk/zram_stats.h"

namespace coblk::ublk {

/// Most compression workers (`--compress-cores`) a zram target in shared
/// memory (`--recovery`) may have: its store has a core, and so an arena
/// memfd, per worker, and a keeper holds at most 65 memfds (the page
/// table's and one per core; cmd/keeper.cc).
inline constexpr unsigned max_recoverable_compress_workers = 64;

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

  // ---- The backing tier (docs/storage.md, "Backing tier").
  /// A file or block device that pages are written back to ("" = none).
  /// It must exist, be writable and hold at least 64 blocks of 4 KiB; a
  /// block device is opened exclusively (refused while mounted, used as
  /// swap or held by another program). /dev/zramN here is kernel zram as
  /// a tier: it receives whole blocks and compresses them itself.
  /// `nbd:unix:PATH` or `nbd:tcp:HOST:PORT`: an NBD export is the tier
  /// (ublk/tier_backend.h; writable, at least 64 blocks).
  std::string backing_path;
  /// With an `nbd:unix:PATH` or `nbd:tcp:HOST:PORT` backing_path (the tier
  /// is an NBD export, docs/nbd.md): the export's name ("" = the server's
  /// default export).
  std::string backing_export;
  /// With an NBD tier: how long tier I/O waits for a lost connection to
  /// come back before the tier fails (reads of written-back pages get
  /// -EIO, writeback stops).
  std::chrono::milliseconds backing_reconnect_timeout{30000};
  /// With an NBD tier: a tier request without a reply this long drops its
  /// connection (nbd::ClientConfig::request_timeout; 0: no limit).
  std::chrono::milliseconds backing_request_timeout{30000};
  /// Automatic writeback starts when mem_used_total reaches this share of
  /// mem_limit_bytes (percent, 1..100; needs a memory limit) ...
  unsigned writeback_high_percent = 90;
  /// ... and writes back (raw pages first, then the least recently used)
  /// until the stored objects take less than this share (percent, < high).
  unsigned writeback_low_percent = 70;
  /// Also write back pages not accessed for this long (0 = only under
  /// memory pressure and by command).
  std::chrono::seconds writeback_age{0};
  /// Most bytes writeback may write in the device's life (0 = no limit):
  /// kernel zram's writeback_limit, to spare an SSD's endurance.
  std::uint64_t writeback_limit_bytes = 0;
  /// Re-admission of written-back pages to RAM by reads
  /// (storage::PageStoreConfig::readmit_reads; docs/storage.md,
  /// "Re-admission"): 0 never, 1 at every read from the tier, 2 at the
  /// second read within the window (writeback_age when set, else 64 s).
  /// Only while mem_used_total is below the high watermark. 0..2.
  std::uint32_t readmit_reads = 2;
  /// Blocks per writeback batch, and so per backing write (kernel zram's
  /// writeback_batch_size; storage::PageStoreConfig::writeback_batch),
  /// 1..256.
  std::uint32_t writeback_batch = 32;
  /// A secondary codec (kernel zram's recomp_algorithm): the maintenance
  /// task recompresses raw pages and pages marked idle with it, and, under
  /// memory pressure, any page before writing pages back; a result is kept
  /// only if it is stored in a smaller size class. Unset: no recompression.
  std::optional<compress::CodecSpec> recompress;
  /// Entropy routing (storage::PageStoreConfig::entropy_routing; needs
  /// `recompress`, the strong codec). With a backing tier the pages it
  /// stores raw (high entropy) are also written back at every maintenance
  /// tick, whatever the watermarks: straight to the tier. Unset = off.
  std::optional<storage::PageStoreConfig::EntropyRouting> entropy_routing;

  // ---- Asynchronous compression (ublk/compression_pipeline.h).
  /// Compression workers (0 = compress inline, in each write). With N > 0
  /// a write stages its pages and completes; N compression tasks compress
  /// them: worker w on queue w's core (background group) for w < queues,
  /// else on runtime core w, which must then serve no queue of this
  /// device (the Runtime needs max(queues, N) cores). Needs anonymous
  /// memory (not `memory = shared`).
  unsigned compress_workers = 0;
  /// Staging slots (4 KiB each) per queue and worker, 1..4096.
  std::uint32_t staging_per_lane = 64;
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
  /// Closes the backing tier (a file, or an NBD export's connections).
  ~ZramTarget() override;

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
  /// The compression pipeline (null when compress_workers is 0).
  CompressionPipeline* pipeline() noexcept { return pipeline_.get(); }

 private:
  ZramTarget(const ZramTargetConfig& config, std::unique_ptr<storage::PageStore> store,
             std::unique_ptr<ZramStatsPublisher> publisher);

  runtime::Task<void> maintain(std::uint16_t queue);
  runtime::Task<int> write_after_reclaim(std::uint16_t queue, std::uint64_t offset, std::span<const std::byte> data);
  // The backing tier (zram_tier.cc).
  runtime::Task<int> read_through_tier(const Request& r);
  runtime::Task<int> write_by_writing_back(std::uint16_t queue, std::uint64_t offset, std::span<const std::byte> data);
  // What one writeback batch did: pages moved, page entries looked at
  // (0: this core had storage::writeback_slots batches in flight already).
  struct BatchOutcome {
    std::uint32_t moved = 0;
    std::uint64_t visited = 0;
  };
  runtime::Task<BatchOutcome> write_back_batch(std::uint16_t queue, storage::WritebackKind kind, std::uint32_t min_age,
                                               std::uint32_t max_pages);
  // One sweep of the page table from the queue's cursor, writing back
  // pages of `kind` while `keep_going()` and `*left` (pages) allow.
  template <typename KeepGoing>
  runtime::Task<std::uint64_t> sweep(std::uint16_t queue, storage::WritebackKind kind, std::uint32_t min_age,
                                     std::atomic<std::uint64_t>* left, KeepGoing keep_going);
  // What a sweep's lanes share: the table's pages, the entries looked at
  // and pages moved so far, the lanes holding pages taken from `*left`,
  // and whether `*left` ran out (with no lane holding any).
  struct SweepShared {
    std::uint64_t pages = 0;
    std::uint64_t visited = 0;
    std::uint64_t moved = 0;
    unsigned holding = 0;
    bool spent = false;
  };
  // One of a sweep's storage::writeback_slots lanes: batch after batch, so
  // that one lane walks and copies while the other's write is in flight.
  template <typename KeepGoing>
  runtime::Task<void> sweep_lane(std::uint16_t queue, storage::WritebackKind kind, std::uint32_t min_age,
                                 std::atomic<std::uint64_t>* left, const KeepGoing& keep_going, SweepShared& shared);
  runtime::Task<void> write_back_by_policy(std::uint16_t queue);
  runtime::Task<void> run_command(const ZramCommand& command);
  runtime::Task<void> run_manual(std::uint16_t queue);
  runtime::Task<std::uint64_t> recompress_sweep(std::uint16_t queue, storage::WritebackKind kind, std::uint32_t min_age,
                                                std::atomic<std::uint64_t>* left);
  bool tier_usable() const noexcept;
  TierState tier_state() const noexcept;

  ZramTargetConfig config_;
  // Store cores: one per queue, plus the compression workers beyond them.
  unsigned store_cores_ = std::max(config_.queues, config_.compress_workers);
  std::unique_ptr<storage::PageStore> store_;
  std::unique_ptr<CompressionPipeline> pipeline_;
  std::unique_ptr<ZramStatsPublisher> publisher_;
  /// Per store core (queues, then compression workers beyond them): 1 + the
  /// index of the Runtime core running it, recorded when it starts; 0 until
  /// then. A write at the memory limit on another queue reads it to ask
  /// that core to reclaim memory.
  std::unique_ptr<std::atomic<unsigned>[]> queue_cores_ = std::make_unique<std::atomic<unsigned>[]>(store_cores_);
  std::unique_ptr<TierBackend> tier_;  // null: no backing tier
  // A backing write failed: writeback stops for good (relaxed: a flag that
  // guards no memory; each queue stops at its next batch).
  std::atomic<bool> tier_failed_{false};
  // Pages writeback may still write; UINT64_MAX = unlimited. Queues take
  // from it with fetch_sub (off the I/O path: once per batch).
  std::atomic<std::uint64_t> writeback_budget_{UINT64_MAX};
  // A `coblk writeback` command, run by every queue on its own arena:
  // queue 0 fills kind/age/left, then bumps the generation (release); each
  // queue sees it (acquire), sweeps, adds its pages to manual_moved_ and
  // counts down manual_pending_ (release), which queue 0 waits for.
  std::atomic<std::uint64_t> manual_generation_{0};
  std::atomic<std::uint64_t> manual_kind_{0};
  std::atomic<std::uint64_t> manual_recompress_{0};  // 1: the command is a recompression
  std::atomic<std::uint64_t> manual_left_{0};
  std::atomic<std::uint64_t> manual_moved_{0};
  std::atomic<unsigned> manual_pending_{0};
  std::unique_ptr<std::uint64_t[]> manual_seen_ =
      std::make_unique<std::uint64_t[]>(store_cores_);  // per store core, its core only
};

}  // namespace coblk::ublk
