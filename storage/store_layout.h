// storage/store_layout.h - the format of a PageStore's page table in memory that outlives its server.
#pragma once

// See docs/storage.md, "Crash consistency". Everything here holds offsets
// and handles, never pointers: a new server maps it at another address.

#include <atomic>
#include <cstdint>

#include "coblk/storage/handle.h"
#include "coblk/storage/page_entry.h"

namespace coblk::storage::layout {

/// "coblkPT" and a NUL: the first bytes of a page table.
inline constexpr char magic[8] = {'c', 'o', 'b', 'l', 'k', 'P', 'T', '\0'};
/// Bumped whenever anything in this file, PageEntry's bits or the handle
/// encoding changes: a server never reads memory made by another format.
inline constexpr std::uint32_t version = 4;

/// The first page of the table: what the store was made for. Recovery
/// refuses memory whose header does not match its own configuration.
struct Header {
  char magic[8];                 ///< layout::magic, written last at creation
  std::uint32_t version;         ///< layout::version
  std::uint32_t cores;           ///< cores (arenas, journals) of the store
  std::uint64_t page_count;      ///< pages of the device
  std::uint32_t huge_threshold;  ///< compressed size from which pages are stored raw
  std::uint32_t algorithm;       ///< compress::Algorithm of every object
  std::uint64_t max_spans;       ///< span slots of each arena (sizes its memfd)
  std::uint64_t backing_blocks;  ///< blocks of the backing tier written-back entries refer to (0 = none)
  std::uint64_t backing_id;      ///< random id also written in the backing tier's block 0 (BackingHeader)
  std::uint32_t staging_pages;   ///< staging slots per core (the staging area after the entries; 0 = none)
  std::uint32_t reserved;        ///< 0
};

/// "coblkBT" and a NUL: the first bytes of a backing tier's block 0.
inline constexpr char backing_magic[8] = {'c', 'o', 'b', 'l', 'k', 'B', 'T', '\0'};

/// Block 0 of a backing tier: which store's tier it is. Written when the
/// store is created, checked when it is attached, so that a recovered
/// store never reads another file's blocks as its pages.
struct BackingHeader {
  char magic[8];                 ///< backing_magic
  std::uint64_t backing_id;      ///< Header::backing_id of the store
  std::uint64_t backing_blocks;  ///< blocks of the tier
};

/// One core's journal of the entry it is changing. A core holds at most one
/// entry lock at a time, so one record per core is enough.
///
/// Protocol (PageStore::publish): with the entry locked by core c (the lock
/// word names c), c stores the entry's old value, then the entry's index+1
/// (release), then the new value (release), then the new state word, which
/// clears the lock (release), then 0 here (release). Each store is 8 bytes
/// and aligned, so a crash leaves each one done or not; the release order
/// means a later one is never visible without the earlier ones.
///
/// Recovery: an entry still locked by c whose index is in c's journal may
/// hold the new value beside the old word: the value is put back from
/// old_value. An entry locked by c but not in c's journal was not changed
/// yet (c writes the journal before the value). A journal naming an entry
/// that is not locked by c is stale (c unlocked it, or never locked it
/// again after clearing): ignored.
struct alignas(64) Journal {
  std::atomic<std::uint64_t> entry_plus_one;  ///< index+1 of the entry being changed, 0 when none
  std::atomic<std::uint64_t> old_value;       ///< that entry's value before the change
};

/// Byte offset of the journals (after the header's page).
inline constexpr std::uint64_t journals_offset = 4096;
/// Byte offset of the page entries: after a journal for each possible core.
inline constexpr std::uint64_t entries_offset = journals_offset + max_store_cores * sizeof(Journal);
static_assert(entries_offset % 4096 == 0, "the entries start on a page");
static_assert(sizeof(Header) <= journals_offset);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "journal stores must be single instructions");

/// Bytes of the header, journals and entries for `page_count` pages,
/// rounded up to a page: where the staging area starts.
constexpr std::uint64_t table_bytes(std::uint64_t page_count) noexcept {
  return (entries_offset + page_count * sizeof(PageEntry) + 4095) / 4096 * 4096;
}

/// Bytes of the whole region: the table, then the staging area, whose
/// slots (4 KiB each, core-major: core c's slot s is slot c *
/// staging_pages + s) hold pages written but not yet compressed
/// (PageStore::stage). They are in the same memory as the entries that
/// name them, so a server that dies with pages staged leaves them to the
/// next one (PageStore::recover installs them).
constexpr std::uint64_t region_bytes(std::uint64_t page_count, std::uint32_t cores,
                                     std::uint32_t staging_pages) noexcept {
  return table_bytes(page_count) + std::uint64_t{cores} * staging_pages * 4096;
}

}  // namespace coblk::storage::layout
