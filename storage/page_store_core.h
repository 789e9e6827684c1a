// storage/page_store_core.h - PageStore's per-core state (internal: included by the store's .cc files only).
#pragma once

#include <cstdlib>
#include <memory>

#include "coblk/compress/codec.h"
#include "coblk/storage/page_store.h"

namespace coblk::storage {

/// Everything one core of a PageStore uses on the I/O path, allocated up
/// front. Touched by its core only (the counters are also read by others).
struct PageStore::CoreState {
  /// Partial I/O: the page being modified or read; recompression's decoded page.
  alignas(runtime::cache_line_size) std::byte page[compress::page_size];
  /// Compression's output; a backing object copied out before decoding.
  alignas(runtime::cache_line_size) std::byte compressed[compress::page_size];
  std::unique_ptr<compress::Codec> codec;      ///< the primary codec (PageStoreConfig::codec)
  std::unique_ptr<compress::Codec> secondary;  ///< PageStoreConfig::recompress, or null
  std::uint64_t recompress_cursor = 0;         ///< next entry recompress_step looks at
  CoreCounters counters;                       ///< this core's statistics (read by any thread)
  /// The phase of the compaction under way on this core.
  enum class Compaction : std::uint8_t {
    idle,       ///< none under way
    selecting,  ///< choosing the sparse spans to empty
    moving,     ///< walking the entries, moving objects out of those spans
    finishing,  ///< putting back the spans that could not be emptied
    releasing,  ///< returning the cached pages to the system
  };
  Compaction compaction = Compaction::idle;  ///< the compaction under way (touched by the core only)
  std::uint64_t next_entry = 0;              ///< moving: the next page entry to visit
  std::uint64_t freed_pages = 0;             ///< releasing: pages of the emptied spans
  std::uint64_t pages_to_release = 0;        ///< releasing: cached pages still to return
  /// One page of the writeback batch in flight (page_store_tier.cc).
  struct WritebackItem {
    std::uint64_t index = 0;     ///< the page's entry
    Handle handle = 0;           ///< its object when prepared
    std::uint64_t location = 0;  ///< BackingLocation::encode() of the copy
    std::uint32_t size = 0;      ///< the object's size
  };
  /// Frees memory from std::aligned_alloc.
  struct AlignedFree {
    /// Frees `p`.
    void operator()(std::byte* p) const noexcept { std::free(p); }
  };
  /// One writeback batch: filled by writeback_prepare, out (being
  /// written) until writeback_commit names it.
  struct WritebackSlot {
    WritebackItem items[writeback_max_pages];  ///< the batch's pages
    std::uint64_t blocks[256];                 ///< the batch's claimed blocks
    std::uint8_t sectors_used[256];            ///< sectors of each batch block taken, from its start
    std::uint32_t pages = 0;                   ///< pages in items; not 0 while the batch is out
    std::uint32_t block_count = 0;             ///< blocks in blocks

    // holds() looks through the items only between these two.
    std::uint64_t lowest = 0;   ///< the lowest entry index among the items (set by writeback_prepare)
    std::uint64_t highest = 0;  ///< the highest entry index among the items (set by writeback_prepare)

    /// Whether page `index` is one of the batch's items.
    bool holds(std::uint64_t index) const noexcept {
      if (pages == 0 || index < lowest || index > highest) return false;
      for (std::uint32_t k = 0; k < pages; ++k) {
        if (items[k].index == index) return true;
      }
      return false;
    }
  };
  /// writeback_slots * writeback_batch blocks, 4096-aligned: slot k's
  /// blocks start at block k * writeback_batch.
  std::unique_ptr<std::byte, AlignedFree> batch_data;
  WritebackSlot batches[writeback_slots];         ///< the batches, each free or out
  std::uint64_t writeback_cursor = 0;             ///< next entry writeback_prepare looks at
  std::unique_ptr<std::byte, AlignedFree> block;  ///< one backing block, for the synchronous read
  /// Per staging slot, the page entry it was staged for (written by stage()
  /// before the slot is handed over; read by install_staged()).
  std::unique_ptr<std::uint64_t[]> staged_index;
};

}  // namespace coblk::storage
