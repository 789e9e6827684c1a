// storage/page_store.h - PageStore, the compressed page store behind the zram target, modelled on kernel zram.
#pragma once

// See docs/storage.md.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "coblk/compress/codec.h"
#include "coblk/runtime/memory_region.h"
#include "coblk/runtime/result.h"
#include "coblk/storage/backing_io.h"
#include "coblk/storage/backing_slots.h"
#include "coblk/storage/compaction_policy.h"
#include "coblk/storage/handle.h"
#include "coblk/storage/memory_budget.h"
#include "coblk/storage/object_arena.h"
#include "coblk/storage/page_entry.h"
#include "coblk/storage/remote_frees.h"
#include "coblk/storage/size_classes.h"
#include "coblk/storage/store_stats.h"

namespace coblk::storage {

/// Bounds on one step of the store's background work (compaction, trimming
/// the span cache) and of one reclaim(). That work runs on a queue's core
/// between its requests, so each step must be short; the caller yields to
/// the core's other tasks between steps. With the defaults a step took
/// 7 us median, 59 us at the 99th percentile of a 4 GiB compaction on the
/// project's machine (docs/performance.md, bench_compact).
struct StepLimits {
  std::uint64_t entries = 4096;  ///< page entries one compaction step walks
  std::uint64_t moves = 64;      ///< objects one compaction step moves
  std::uint64_t spans = 4096;    ///< span records one selection or finishing step looks at
  /// Cached empty spans returned to the system (one madvise each) by one
  /// step of compaction or drain_remote_frees, or by one reclaim().
  std::uint64_t releases = 2;
};

/// What one compaction step did (PageStore::compact_step).
struct CompactionStep {
  bool done = false;                  ///< the compaction is over: no step is pending
  std::uint64_t pages_freed = 0;      ///< when done: pages of the spans it emptied (added to pages_compacted)
  std::uint64_t spans_scanned = 0;    ///< span records looked at (selecting sources, finishing)
  std::uint64_t entries_visited = 0;  ///< page table entries walked (looking for objects in source spans)
  std::uint64_t objects_moved = 0;    ///< objects copied out of source spans into denser ones
  std::uint64_t pages_released = 0;   ///< cached pages returned to the system
};

/// Configuration of a PageStore.
struct PageStoreConfig {
  std::uint64_t size_bytes = 0;       ///< device size: a non-zero multiple of 4096
  compress::CodecSpec codec;          ///< algorithm and level of every core's codec
  std::uint64_t mem_limit_bytes = 0;  ///< limit on mem_used_total; 0 = none (rounded down to pages)
  unsigned cores = 1;                 ///< number of cores (callers) 1..256
  /// A page whose compressed size is at least this is stored raw (kernel
  /// zram's huge_class_size for 4 KiB pages is 3632). 64..4096.
  std::uint32_t huge_threshold = 3632;
  /// Skip compressing pages whose sampled entropy says they cannot reach
  /// huge_threshold (compress::incompressible_entropy); they are stored
  /// raw at memcpy cost. Unset = automatic: on for zstd (compressing
  /// random data costs it ~5x a memcpy-and-estimate), off for lz4 (which
  /// gives up on random data quickly, so the ~0.5 us estimate would cost
  /// ~10 % on compressible pages: measured with bench_store).
  std::optional<bool> skip_incompressible;
  /// Capacity of each cross-core free ring (frees beyond it overflow into a
  /// list, see RemoteFrees).
  std::size_t remote_free_ring_capacity = 1024;
  /// Pages of empty spans drain_remote_frees keeps cached for reuse
  /// instead of returning them to the system.
  std::uint64_t cached_pages_kept = 64;
  /// Bounds on each step of background work, and on one reclaim().
  StepLimits steps;
  /// Where the page table and the objects live. `shared` puts them in
  /// memfds (memory_fds()) that a keeper process holds, so that attach()
  /// in a new server finds every stored page after this one died.
  runtime::MemoryKind memory = runtime::MemoryKind::anonymous;
  /// Size of the backing tier in 4 KiB blocks; 0 = no backing tier. Pages
  /// written back (writeback_prepare / writeback_commit) live there.
  std::uint64_t backing_blocks = 0;
  /// The backing tier's file or device, for the one synchronous read the
  /// store itself makes: a partial write or zeroing of a written-back page
  /// (never sent by a 4 KiB-block ublk device; see read_resident for the
  /// asynchronous path), and for the tier's header block at create and
  /// attach. -1 = none (such a read then fails with -EIO).
  int backing_fd = -1;
  /// Instead of backing_fd (which is then ignored): the blocking block I/O
  /// of a tier that is not a file descriptor, e.g. an NBD export. Not
  /// owned; it must outlive the store.
  BackingBlockIo* backing_io = nullptr;
  /// Most backing blocks one writeback batch fills, and so most blocks one
  /// backing write carries (kernel zram's writeback_batch_size, whose
  /// pages are written one to a block). Compressed objects pack several to
  /// a block, so a batch may hold more pages (up to writeback_max_pages).
  /// 1..256.
  std::uint32_t writeback_batch = 32;
  /// A secondary codec for recompress_step (kernel zram's
  /// recomp_algorithm), usually a stronger one (zstd at a high level).
  /// Objects it made are read with it, so a store must be attached with the
  /// same one.
  std::optional<compress::CodecSpec> recompress;
  /// Entropy routing: each page's sampled entropy
  /// (compress::estimate_entropy, bits per byte) picks its codec. Below
  /// `low` the primary (fast) codec; from `low` to below `high` the
  /// secondary (strong) one, `recompress`, which must be set; from `high`
  /// up no codec (stored raw, as huge: writeback takes such pages first).
  /// Unset: every page tries the primary codec (see skip_incompressible).
  struct EntropyRouting {
    double low = 1.0;   ///< bits per byte; see docs/storage.md for the measurement behind the default
    double high = 7.0;  ///< bits per byte
  };
  /// Entropy routing; unset = off.
  std::optional<EntropyRouting> entropy_routing;
  /// Staging slots per core for asynchronous compression (stage() /
  /// install_staged()); 0 = none. Each slot is 4 KiB, reserved up front
  /// in the page table's memory (layout::region_bytes) and counted in
  /// mem_used_total only while it holds a page. In shared memory a staged
  /// page outlives its server like any stored page: attach() installs it.
  /// 0..65536.
  std::uint32_t staging_pages = 0;
  /// Re-admission of written-back pages to RAM by reads (docs/storage.md,
  /// "Re-admission"): 0 never; 1 at every read from the backing tier; 2 at
  /// a read of a page that was read from the tier before, less than
  /// readmit_window_s ago. The object read back is installed as it is (no
  /// recompression) and its sectors on the tier are freed. With entropy
  /// routing, raw (high-entropy) pages are not re-admitted: they belong
  /// on the tier, and writeback would take them again at once. 0..2.
  std::uint32_t readmit_reads = 0;
  /// With readmit_reads 2: how recent the previous read must be (seconds
  /// of the store's clock, set_clock). At least 1.
  std::uint32_t readmit_window_s = 64;
  /// Re-admit only while mem_used_total is below this many bytes (the
  /// zram target passes its writeback high watermark, so that re-admission
  /// never feeds the next writeback); 0 = up to the memory limit. Either
  /// way an object that does not fit under the limit is not re-admitted.
  std::uint64_t readmit_below_bytes = 0;
};

/// Where a staged page's bytes are: a slot of one core's staging area.
struct StagedRef {
  std::uint32_t core = 0;  ///< the core whose staging area holds the slot
  std::uint32_t slot = 0;  ///< the slot, 0..staging_pages-1
  /// The entry value of a page staged in this slot.
  constexpr std::uint64_t encode() const noexcept { return (std::uint64_t{core} << 32) | slot; }
  /// The slot an entry value names.
  static constexpr StagedRef decode(std::uint64_t v) noexcept {
    return StagedRef{static_cast<std::uint32_t>(v >> 32), static_cast<std::uint32_t>(v)};
  }
};

/// What one recompress_step did.
struct RecompressStep {
  std::uint32_t recompressed = 0;     ///< pages now stored smaller with the secondary codec
  std::uint32_t tried = 0;            ///< pages recompressed or tried (kept as they were: no smaller size class)
  std::uint64_t entries_visited = 0;  ///< page entries looked at
  bool wrapped = false;               ///< the walk passed the end of the table
  bool no_memory = false;             ///< stopped: no room for a new object (memory limit)
};

/// Which pages a writeback takes (writeback_prepare).
enum class WritebackKind : std::uint8_t {
  idle,  ///< pages marked idle (mark_idle) and not accessed since
  huge,  ///< pages stored raw because they did not compress (kernel zram's "huge" and "incompressible")
  aged,  ///< pages not accessed for at least the given age (idle ones included)
};

/// A batch of pages writeback_prepare copied out, packed into whole 4 KiB
/// blocks, for the caller to write to the backing tier.
struct WritebackBatch {
  std::uint32_t pages = 0;                ///< pages in the batch (0: nothing to write back now)
  std::uint32_t block_count = 0;          ///< blocks to write
  const std::uint64_t* blocks = nullptr;  ///< block number of each; block i's bytes are data + 4096 * i
  const std::byte* data = nullptr;        ///< block_count * 4096 bytes, 4096-aligned (fit for O_DIRECT)
  std::uint64_t entries_visited = 0;      ///< page entries looked at
  bool wrapped = false;                   ///< the scan passed the end of the table and started again
  std::uint32_t slot = 0;                 ///< which of the core's writeback_slots holds it (writeback_commit)
};

/// Most pages one writeback batch holds (writeback_prepare's max_pages
/// beyond it is cut to it).
inline constexpr std::uint32_t writeback_max_pages = 256;

/// Writeback batches a core may have out at once (writeback_prepare): two,
/// so that the next batch is walked and copied while the last one's write
/// is in flight.
inline constexpr unsigned writeback_slots = 2;

/// A written-back page a read found (read_resident): the caller reads block
/// `where.block` of the backing tier and passes it to finish_backing_read.
struct BackingRead {
  std::uint64_t word = 0;    ///< the entry's state word (size, algorithm, huge)
  BackingLocation where;     ///< where the object lies
  std::byte* out = nullptr;  ///< the 4 KiB of the caller's buffer it decodes into
  std::uint64_t index = 0;   ///< the page (entry index)
  /// The read is the one that re-admits the page (PageStoreConfig::
  /// readmit_reads): finish_backing_read installs it in RAM again.
  bool readmit = false;
};

/// Allocator figures summed over all arenas (fragmentation report).
struct AllocatorStats {
  std::uint64_t live_objects = 0;          ///< objects allocated and not freed
  std::uint64_t object_bytes = 0;          ///< class sizes of live objects
  std::uint64_t spans = 0;                 ///< spans in use (holding at least one live object)
  std::uint64_t span_pages = 0;            ///< pages held by spans
  std::uint64_t cached_pages = 0;          ///< pages of empty spans not yet returned
  std::uint64_t pending_remote_frees = 0;  ///< frees queued to their owner core, not yet drained
};

/// A RAM block device's contents, stored compressed.
///
/// Every 4 KiB page has a 16-byte PageEntry: never written / discarded (reads
/// zeros), same-filled (the fill word, no memory), or an object in a core's
/// ObjectArena (compressed, or raw if it would not compress below
/// huge_threshold).
///
/// Threading: core c (0..cores-1) is one thread at a time, and passes c to
/// every call. Any core may read or write any page, concurrently with the
/// others, the same page included: each page's entry has a lock bit, taken
/// for one page at a time. A core compresses on its own thread into its own
/// scratch buffers and allocates only from its own arena; frees of other
/// cores' objects go back to them through RemoteFrees. No mutex, no heap
/// allocation and no syscall on the read/write/discard path (except a
/// write at the memory limit, which returns cached pages with madvise
/// before it gives up: see reclaim()).
class PageStore {
 public:
  /// A store for `config`, with all its memory reserved. Returns Error
  /// EINVAL (one line naming the bad field and value) on a bad config or
  /// codec spec, Error ENOMEM when the page table cannot be allocated, or
  /// the Error of the failed mmap when an arena's address range cannot be
  /// reserved. Throws only std::bad_alloc (for its small allocations).
  static Result<std::unique_ptr<PageStore>> create(const PageStoreConfig& config);

  /// Recovers the store a dead server left in shared memory: `fds` are the
  /// memory_fds() it had (the page table, then one arena per core; this
  /// store maps duplicates, the caller keeps its fds). `config` must
  /// describe the same geometry (size, cores, huge threshold, algorithm;
  /// the level and the step limits may differ).
  ///
  /// The page table is the source of truth. Recovery validates its header
  /// and every entry (flags, sizes, handle bounds, no object owned twice),
  /// undoes the one change each core may have left half done (see
  /// layout::Journal), clears lock bits, and rebuilds each arena's spans,
  /// free lists and page count, the memory budget and the page statistics
  /// from the live entries. Pages still staged (written, not yet
  /// compressed) are then compressed from their slots and installed. Counters of events (failed I/O, notify_free,
  /// huge_pages_since, pages_compacted) start from zero. Returns Error
  /// EINVAL if the memory was made for another geometry or format, EIO
  /// (one line naming the page or handle) if it is corrupt, ENOSPC if the
  /// stored data exceeds config.mem_limit_bytes: never a store that could
  /// serve wrong data.
  static Result<std::unique_ptr<PageStore>> attach(const PageStoreConfig& config, std::span<const int> fds);

  /// The memfds that hold this store (the page table, then each core's
  /// arena) for a keeper to hold; empty for anonymous memory. The store
  /// keeps ownership; dup() what you keep.
  std::vector<int> memory_fds() const;

  ~PageStore();
  PageStore(const PageStore&) = delete;
  PageStore& operator=(const PageStore&) = delete;

  /// Writes `data` at byte `offset` (any alignment and length within the
  /// device; partial pages are read-modify-written under the page's lock).
  /// Returns 0, -EIO (outside the device, bad core, or a corrupt page
  /// under a partial write) or -ENOSPC (memory limit reached; the page keeps
  /// its old contents). Pages before a failing one are written.
  int write(unsigned core, std::uint64_t offset, std::span<const std::byte> data) noexcept;

  /// As write(), except that a -ENOSPC is not counted in failed_writes:
  /// for a caller that, at the memory limit, asks the other cores to
  /// reclaim() and tries again (the zram target), and calls
  /// count_failed_write() if it gives up.
  int try_write(unsigned core, std::uint64_t offset, std::span<const std::byte> data) noexcept;

  /// Counts one failed write of `core` in failed_writes (see try_write()).
  void count_failed_write(unsigned core) noexcept;

  /// Gives back memory that `core` holds without using it, for a write
  /// that found the memory limit reached: frees into core's arena the
  /// objects other cores have released to it, pushes core's own
  /// overflowing remote frees to their owners, and returns the pages of
  /// up to `steps.releases` cached empty spans to the system (one madvise
  /// each). Must run on `core`. A write does this for its own core before
  /// it fails with -ENOSPC; the room other cores hold needs each of them
  /// to call it (the zram target asks them through the runtime). Returns
  /// objects freed plus pages returned: 0 when `core` had nothing to give.
  std::uint64_t reclaim(unsigned core) noexcept;

  /// Reads into `out` from byte `offset`. Never-written pages read as
  /// zeros. Returns 0 or -EIO.
  int read(unsigned core, std::uint64_t offset, std::span<std::byte> out) noexcept;

  /// Discards [offset, offset+length): whole pages are freed (they read as
  /// zeros, like never-written pages, and count in notify_free); the parts
  /// of partial pages at the edges are overwritten with zeros, so a discard
  /// always reads back as zeros. Returns 0, -EIO or -ENOSPC (an edge page
  /// could not be stored).
  int discard(unsigned core, std::uint64_t offset, std::uint64_t length) noexcept;

  /// Zeroes [offset, offset+length). Identical to discard (as in kernel
  /// zram, whole pages are freed rather than stored as zero pages).
  int write_zeroes(unsigned core, std::uint64_t offset, std::uint64_t length) noexcept;

  /// Frees into `core`'s arena the objects other cores have released,
  /// pushes `core`'s own overflowing remote frees to their owners, and
  /// returns cached pages beyond cached_pages_kept to the system, at most
  /// `steps.releases` spans per call. Call on `core` when it is idle, again
  /// while it returns false (more pages to return); allocation also drains
  /// (but does not trim) on its own.
  bool drain_remote_frees(unsigned core) noexcept;

  /// One bounded step (see StepLimits) of compacting `core`'s arena,
  /// starting a compaction if none is under way. Compaction moves objects
  /// out of sparse spans into fuller spans of the same class and returns
  /// the freed pages to the system; its steps select the sparse spans,
  /// walk the page entries moving their objects (until every selected
  /// span is empty, or the whole table), put back spans that could not be
  /// emptied, and return the cached pages. Must run on `core` (it mutates
  /// core's arena); I/O on any core, this one included, may run between
  /// steps and, on other cores, during them.
  CompactionStep compact_step(unsigned core);

  /// True while a compaction of `core`'s arena is under way (between the
  /// first step and the one that says done). Call on `core`.
  bool compacting(unsigned core) const noexcept;

  /// Compacts `core`'s arena in one go: compact_step until done (finishing
  /// the compaction under way, if any). Same threading rule. Returns the
  /// pages freed (added to pages_compacted).
  std::uint64_t compact(unsigned core);

  /// Compacts `core`'s arena as compact() does if a compaction is under
  /// way or `policy` says the store's spans (allocator_stats(), all arenas)
  /// are sparse enough to be worth it (see CompactionPolicy); otherwise
  /// does nothing. Same threading rule. Returns the pages freed, 0 when
  /// compaction did not run.
  std::uint64_t maybe_compact(unsigned core, const CompactionPolicy& policy = {});

  /// One step of maybe_compact: a compact_step if a compaction is under
  /// way or `policy` calls for one, else nothing. Returns true while more
  /// steps are to come. The zram target's maintenance task calls it,
  /// yielding between steps, until it returns false.
  bool maybe_compact_step(unsigned core, const CompactionPolicy& policy);

  // ---- Asynchronous compression (page_store_staging.cc; docs/storage.md, "Staging").
  /// Stages the whole page at `offset` (4096-aligned; `page` is 4096
  /// bytes): copies it into slot `slot` of `core`'s staging area, which
  /// the caller owns (it is free), and points the page's entry at it. The
  /// page then reads back from the slot until install_staged compresses it.
  /// A same-filled page is stored at once instead (no slot used). Returns
  /// 0 staged (hand the slot to install_staged), 1 stored (the slot is
  /// still free), -ENOSPC (no room for another staged page under the
  /// memory limit: write the page with try_write instead), or -EIO (bad
  /// offset, core or slot; no staging area).
  int stage(unsigned core, std::uint32_t slot, std::uint64_t offset, std::span<const std::byte> page) noexcept;
  /// Compresses the page staged in `ref` on `core` (its codec, its arena:
  /// any core, on its own thread) and installs the object if the page's
  /// entry still names `ref`; a page overwritten or discarded meanwhile
  /// keeps its new contents and the work is dropped. Returns 0: the slot is
  /// free again (give it back to its owner); or -ENOSPC: no room for the
  /// object under the memory limit, the page stays staged and readable in
  /// its slot, call again later.
  int install_staged(unsigned core, StagedRef ref) noexcept;
  /// The staging slots per core (PageStoreConfig::staging_pages).
  std::uint32_t staging_pages() const noexcept { return config_.staging_pages; }

  // ---- The backing tier (page_store_tier.cc; docs/storage.md, "Backing tier").

  /// Sets the store's clock, in seconds (any origin; it must not go
  /// back). Every read and write stamps the page's entry with it; idle and
  /// aged writeback compare against it. Any thread.
  void set_clock(std::uint32_t seconds) noexcept { clock_s_.store(seconds, std::memory_order_relaxed); }
  /// The store's clock.
  std::uint32_t clock() const noexcept { return clock_s_.load(std::memory_order_relaxed); }

  /// Marks idle the stored pages (in RAM or written back) whose last access
  /// is at least `min_age_s` old, looking at up to steps.entries entries
  /// from `*next` (advanced; 0 = start). Returns pages marked. Any access
  /// clears a page's mark. Any core.
  std::uint64_t mark_idle_step(unsigned core, std::uint32_t min_age_s, std::uint64_t& next) noexcept;

  /// Starts a writeback on `core`: walks the page table from the core's
  /// cursor (at most steps.entries entries, wrapping once) for up to
  /// min(max_pages, writeback_max_pages) pages of `kind` whose objects live
  /// in `core`'s arena (`min_age_s` for kind aged), as many as fit in
  /// writeback_batch blocks; copies their objects into a free batch slot
  /// of the core, packed into claimed backing blocks, and marks
  /// their entries writeback_pending. The caller writes the blocks, then
  /// calls writeback_commit with the batch. Up to writeback_slots batches
  /// per core may be out at once, in any order of completion; a prepare
  /// with that many out returns an empty one. Without a backing tier, or
  /// when it is full, the batch is empty.
  WritebackBatch writeback_prepare(unsigned core, WritebackKind kind, std::uint32_t min_age_s,
                                   std::uint32_t max_pages) noexcept;

  /// Ends `batch`, a non-empty batch writeback_prepare returned on `core`
  /// and not yet committed. `written`: its blocks are on the
  /// backing tier. Then every page still unchanged since prepare (its
  /// pending mark intact) becomes written back and its object is freed;
  /// pages changed meanwhile keep their new contents and their blocks'
  /// sectors are freed. If not written, every page stays in RAM, the
  /// sectors are freed and a write error is counted. Returns the pages
  /// written back.
  std::uint32_t writeback_commit(unsigned core, const WritebackBatch& batch, bool written) noexcept;

  /// Reads like read(), except that a whole page found on the backing tier
  /// is not read here: its block is pinned and a BackingRead is appended
  /// to `misses` (`missed` counts them) for the caller to read
  /// asynchronously and pass to finish_backing_read. Returns 0, or -EIO
  /// (also when `misses` is too small: the caller sizes it to the request's
  /// pages). On -EIO every pin taken is already released.
  int read_resident(unsigned core, std::uint64_t offset, std::span<std::byte> out, std::span<BackingRead> misses,
                    std::size_t& missed) noexcept;

  /// Decodes a page read back from the backing tier into miss.out and
  /// unpins its block. `block` is the 4096 bytes of miss.where.block, or
  /// empty if the read failed (counted; returns -EIO). Returns 0, -EIO,
  /// or -EBADMSG when the object's bytes in `block` are not the ones
  /// written back (their checksum, BackingLocation::checksum, differs):
  /// they are not decoded, miss.out holds nothing to serve, and the read
  /// is counted as a read error and a checksum error.
  /// With miss.readmit, a page decoded without error is also re-admitted:
  /// its object goes back into `core`'s arena, if the page is still the
  /// one read (no write or discard since) and memory allows (see
  /// PageStoreConfig::readmit_reads); readmitted_pages counts it.
  int finish_backing_read(unsigned core, const BackingRead& miss, std::span<const std::byte> block) noexcept;

  /// Recompresses, with the secondary codec (PageStoreConfig::recompress),
  /// pages of `kind` (huge, idle, or aged `min_age_s`) whose objects live
  /// in `core`'s arena and that were not recompressed or tried before:
  /// walks at most steps.entries entries from the core's cursor and
  /// recompresses at most `max_pages`. As kernel zram does, a result is
  /// kept only if it lands in a smaller size class than the object it
  /// replaces; otherwise the page is marked tried and stays as it was.
  /// Each page is recompressed under its entry's lock. Must run on
  /// `core`. Without a secondary codec, does nothing.
  RecompressStep recompress_step(unsigned core, WritebackKind kind, std::uint32_t min_age_s,
                                 std::uint32_t max_pages) noexcept;

  /// Kernel zram's bd_stat (any thread).
  BdStat bd_stat() const noexcept;
  /// The backing tier's figures (any thread).
  TierStat tier_stat() const noexcept;

  /// Memory statistics (any thread; each figure is a relaxed sum).
  MmStat mm_stat() const noexcept;
  /// I/O statistics (any thread).
  IoStat io_stat() const noexcept;
  /// Allocator figures (any thread).
  AllocatorStats allocator_stats() const noexcept;

  /// Device size in bytes.
  std::uint64_t size_bytes() const noexcept { return page_count_ * compress::page_size; }
  /// Number of cores.
  unsigned cores() const noexcept { return static_cast<unsigned>(cores_.size()); }
  /// Where the store's memory lives.
  runtime::MemoryKind memory_kind() const noexcept { return table_.kind(); }
  /// The size classes in use.
  const SizeClassTable& size_classes() const noexcept { return classes_; }

 private:
  struct CoreState;
  // Fields only; create() adds the arenas, codecs and rings.
  PageStore(const PageStoreConfig& config, SizeClassTable classes, runtime::MemoryRegion table);
  // What create() and attach() share: validation, the size classes, the
  // table's memory and the arenas' (fresh, or attached when `fds` is not
  // empty), codecs and rings.
  static Result<std::unique_ptr<PageStore>> build(const PageStoreConfig& config, std::span<const int> fds);
  // Recovery, on a store built over attached memory (page_store_recovery.cc).
  Result<void> recover();
  // Sets the page statistics recovery counted in the entries.
  void seed_page_counters(std::int64_t stored, std::int64_t same, std::int64_t huge, std::int64_t compr,
                          std::int64_t written_back) noexcept;
  // Changes entry `index` (locked by `core`, holding `old_value`) to
  // (`word`, `value`) and unlocks it, crash-consistently (layout::Journal).
  void publish(unsigned core, std::uint64_t index, PageEntry& e, std::uint64_t old_value, std::uint64_t word,
               std::uint64_t value) noexcept;
  // A page prepared for installation: its entry word (without lock) and value.
  struct Prepared {
    std::uint64_t word = 0;
    std::uint64_t value = 0;
  };
  using PageSpan = std::span<std::byte, compress::page_size>;
  using ConstPageSpan = std::span<const std::byte, compress::page_size>;

  bool in_range(unsigned core, std::uint64_t offset, std::uint64_t length) noexcept;
  // Stores `page` in a new object of `core`'s arena: same-filled as
  // metadata, else compressed, or as it is when it does not compress or
  // its compressed class has no room at the limit. -ENOSPC at the limit.
  int prepare(unsigned core, ConstPageSpan page, Prepared& out) noexcept;
  int write_whole_page(unsigned core, std::uint64_t index, ConstPageSpan page) noexcept;
  int write_part(unsigned core, std::uint64_t index, std::uint32_t in_page, std::span<const std::byte> data,
                 bool zeroing = false) noexcept;
  int read_page(unsigned core, std::uint64_t index, PageSpan out) noexcept;
  int load_locked(unsigned core, std::uint64_t word, std::uint64_t value, PageSpan out) noexcept;
  void free_page(unsigned core, std::uint64_t index) noexcept;
  int zero_range(unsigned core, std::uint64_t offset, std::uint64_t length) noexcept;
  void account(unsigned core, std::uint64_t word, std::int64_t sign) noexcept;
  void release(unsigned core, std::uint64_t word, std::uint64_t value) noexcept;
  int load_written_back(unsigned core, std::uint64_t word, std::uint64_t value, PageSpan out) noexcept;
  // Re-admission (page_store_readmit.cc): whether a read of a written-back
  // page whose word (before this read) is `word` re-admits it; and, with
  // entry `index` locked by `core` holding (`word`, `value`), the install
  // of `object` (the bytes read back) in place of the written-back copy.
  // readmit_locked unlocks the entry either way.
  bool readmit_due(std::uint64_t word) const noexcept;
  void readmit_locked(unsigned core, std::uint64_t index, PageEntry& e, std::uint64_t word, std::uint64_t value,
                      const std::byte* object) noexcept;
  int decode_object(unsigned core, std::uint64_t word, const std::byte* src, PageSpan out) noexcept;
  // The 4 KiB of a staging slot (page_store_staging.cc).
  std::byte* staging_slot(StagedRef ref) const noexcept;
  // Writes (new store) or checks (attached store) the backing tier's
  // header block against the page table's header (page_store_tier.cc).
  Result<void> init_backing(bool attaching);
  // Recovery of written-back entries: marks their sectors (page_store_tier.cc).
  Result<void> recover_written_back(std::uint64_t index, std::uint64_t word, std::uint64_t value) noexcept;

  const PageStoreConfig config_;
  const std::uint64_t page_count_;
  const bool skip_incompressible_;
  SizeClassTable classes_;
  MemoryBudget budget_;
  runtime::MemoryRegion table_;   // header, journals, entries, staging area (store_layout.h)
  PageEntry* entries_ = nullptr;  // in table_
  void* journals_ = nullptr;      // layout::Journal[cores], in table_
  std::vector<std::unique_ptr<ObjectArena>> arenas_;
  std::unique_ptr<RemoteFrees> remote_frees_;
  std::vector<std::unique_ptr<CoreState>> cores_;
  std::atomic<std::uint64_t> bad_core_calls_{0};
  std::unique_ptr<BackingSlots> slots_;  // null without a backing tier
  std::atomic<std::uint32_t> clock_s_{0};
};

}  // namespace coblk::storage
