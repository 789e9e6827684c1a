// storage/store_stats.h - the statistics a PageStore reports, and the per-core counters they are summed from.
#pragma once

// The statistics have kernel zram's meanings
// (Documentation/admin-guide/blockdev/zram.rst).

#include <atomic>
#include <cstdint>

#include "coblk/runtime/spsc_ring.h"

namespace coblk::storage {

/// Kernel zram's mm_stat, in bytes unless noted.
struct MmStat {
  std::uint64_t orig_data_size = 0;    ///< uncompressed size of stored pages (same-filled ones included)
  std::uint64_t compr_data_size = 0;   ///< compressed size of stored objects (raw pages count 4096)
  std::uint64_t mem_used_total = 0;    ///< memory the allocator holds, page-exact (metadata excluded, as in zram)
  std::uint64_t mem_limit = 0;         ///< the limit on mem_used_total (0 = none)
  std::uint64_t mem_used_max = 0;      ///< high-water mark of mem_used_total
  std::uint64_t same_pages = 0;        ///< pages stored as a fill word, no object (count)
  std::uint64_t pages_compacted = 0;   ///< pages freed by compaction (count)
  std::uint64_t huge_pages = 0;        ///< pages stored raw now (count)
  std::uint64_t huge_pages_since = 0;  ///< pages stored raw since creation (count)
  /// Pages written and not yet compressed (PageStore::stage; not in
  /// kernel zram's mm_stat). Their 4 KiB each count in mem_used_total.
  std::uint64_t staged_pages = 0;
};

/// Kernel zram's io_stat (counts).
struct IoStat {
  std::uint64_t failed_reads = 0;   ///< reads that returned an error (corrupt object)
  std::uint64_t failed_writes = 0;  ///< writes that returned an error (memory limit)
  std::uint64_t invalid_io = 0;     ///< requests outside the device (or a bad core index)
  std::uint64_t notify_free = 0;    ///< pages freed by discard / write-zeroes
};

/// Kernel zram's bd_stat, in 4 KiB pages: the backing tier.
struct BdStat {
  std::uint64_t bd_count = 0;   ///< blocks on the backing tier holding written-back pages now
  std::uint64_t bd_reads = 0;   ///< pages read back from the backing tier
  std::uint64_t bd_writes = 0;  ///< pages written to the backing tier
};

/// The backing tier beyond bd_stat.
struct TierStat {
  std::uint64_t backing_blocks = 0;      ///< size of the backing tier in 4 KiB blocks (0 = none)
  std::uint64_t written_back_pages = 0;  ///< pages whose data is on the backing tier now
  std::uint64_t read_errors = 0;         ///< backing reads that failed (each gave -EIO)
  std::uint64_t write_errors = 0;        ///< backing writes that failed (writeback then stops)
  std::uint64_t recompressed_pages = 0;  ///< pages recompressed with the secondary codec (event count)
  std::uint64_t readmitted_pages = 0;    ///< written-back pages brought back to RAM by reads (event count)
  /// Backing reads whose bytes did not match the checksum taken at
  /// writeback (each is also a read error, and gave -EIO): the tier gave
  /// back other data than it was given.
  std::uint64_t checksum_errors = 0;
};

/// One core's counters. Each is written by that core alone, so it is
/// updated with a relaxed load and store (no locked instruction, no shared
/// cache line: the struct is cache-line aligned). Readers sum all cores with
/// relaxed loads; the values guard no memory. Gauges (pages stored etc.)
/// are deltas, so one core's value may be negative (a page written by core
/// A and discarded by core B) while the sum is right.
struct alignas(runtime::cache_line_size) CoreCounters {
  std::atomic<std::int64_t> pages_stored{0};        ///< gauge: pages holding data; x 4096 = orig_data_size
  std::atomic<std::int64_t> compr_bytes{0};         ///< gauge: stored object sizes = compr_data_size
  std::atomic<std::int64_t> same_pages{0};          ///< gauge: MmStat::same_pages
  std::atomic<std::int64_t> huge_pages{0};          ///< gauge: MmStat::huge_pages
  std::atomic<std::int64_t> huge_pages_since{0};    ///< event count: MmStat::huge_pages_since
  std::atomic<std::int64_t> pages_compacted{0};     ///< event count: MmStat::pages_compacted
  std::atomic<std::int64_t> failed_reads{0};        ///< event count: IoStat::failed_reads
  std::atomic<std::int64_t> failed_writes{0};       ///< event count: IoStat::failed_writes
  std::atomic<std::int64_t> invalid_io{0};          ///< event count: IoStat::invalid_io
  std::atomic<std::int64_t> notify_free{0};         ///< event count: IoStat::notify_free
  std::atomic<std::int64_t> written_back{0};        ///< gauge: TierStat::written_back_pages
  std::atomic<std::int64_t> bd_reads{0};            ///< event count: BdStat::bd_reads
  std::atomic<std::int64_t> bd_writes{0};           ///< event count: BdStat::bd_writes
  std::atomic<std::int64_t> bd_read_errors{0};      ///< event count: TierStat::read_errors
  std::atomic<std::int64_t> bd_write_errors{0};     ///< event count: TierStat::write_errors
  std::atomic<std::int64_t> recompressed{0};        ///< event count: TierStat::recompressed_pages
  std::atomic<std::int64_t> staged_pages{0};        ///< gauge: MmStat::staged_pages
  std::atomic<std::int64_t> readmitted{0};          ///< event count: TierStat::readmitted_pages
  std::atomic<std::int64_t> bd_checksum_errors{0};  ///< event count: TierStat::checksum_errors

  /// Adds `delta` to one of this struct's counters. Owner core only: a
  /// relaxed load and store, not a fetch_add, is exact only because no other
  /// thread ever writes the counter; readers may see the old or the new
  /// value, either of which is a valid snapshot.
  static void add(std::atomic<std::int64_t>& counter, std::int64_t delta) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
};

}  // namespace coblk::storage
