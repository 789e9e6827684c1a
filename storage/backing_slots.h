// storage/backing_slots.h - the allocator of a backing tier's blocks: 512-byte sectors packed into 4 KiB blocks.
#pragma once

// See docs/storage.md, "Backing tier".

#include <atomic>
#include <cstdint>
#include <memory>

#include "coblk/runtime/spsc_ring.h"
#include "coblk/storage/backing_location.h"

namespace coblk::storage {

/// Sectors (bytes / 512, rounded up) an object of `size` bytes occupies.
constexpr unsigned backing_sectors(std::uint32_t size) noexcept { return (size + 511) / 512; }

/// The sector mask of an object of `size` bytes starting at `sector`
/// (bit i = sector i of the block). The object must fit in the block.
constexpr std::uint8_t backing_sector_mask(unsigned sector, std::uint32_t size) noexcept {
  return static_cast<std::uint8_t>(((1u << backing_sectors(size)) - 1) << sector);
}

/// Which sectors of each backing block hold live objects, and which blocks
/// a reader is reading.
///
/// Objects never cross a block boundary, so reading one object is one
/// aligned 4 KiB read. A block is handed out (claim) only when it is wholly
/// free and no reader has it pinned; the writer that claimed it packs
/// objects into it and gives back the sectors it did not use. Frees clear
/// sectors one object at a time, from any core. Partly used blocks are not
/// refilled: a block is reused once every object in it is gone (the
/// backing tier trades some space for never moving data on the device).
///
/// Thread safety: every operation is lock-free and may run on any core.
/// Why a reader never reads a block that was reused under it: it pins the
/// block while it holds the lock of a page entry that names the block, so
/// the block's mask is not zero when the pin is taken; the page's sectors
/// are freed only by whoever changes that entry next, after taking the same
/// lock, so the pin happens-before the free, which happens-before any
/// claim that sees the mask at zero (acquire) and then checks the pins.
class BackingSlots {
 public:
  /// What claim() returns when no block is free.
  static constexpr std::uint64_t no_block = ~std::uint64_t{0};

  /// Slots for `blocks` blocks (at least 1), scanned from a cursor per core
  /// (`cores` at least 1), all free but block 0, which holds the tier's
  /// header and is never handed out. Throws std::bad_alloc.
  BackingSlots(std::uint64_t blocks, unsigned cores);

  /// Number of blocks.
  std::uint64_t blocks() const noexcept { return blocks_; }

  /// Takes a wholly free, unpinned block for `core` and marks all of its
  /// sectors used; looks at no more than `max_scan` blocks from the core's
  /// cursor. Returns its number, or no_block.
  std::uint64_t claim(unsigned core, std::uint64_t max_scan = 65536) noexcept;

  /// Frees the sectors `mask` of `block` (set by claim or mark).
  void release(std::uint64_t block, std::uint8_t mask) noexcept;

  /// Recovery: marks the sectors `mask` of `block` used. Returns false (and
  /// changes nothing) if the block is out of range or one of the sectors
  /// is already used: two objects claim the same bytes.
  bool mark(std::uint64_t block, std::uint8_t mask) noexcept;

  /// Pins `block` against reuse while a reader reads it (see the class
  /// comment for when that is safe). Call under the entry lock.
  void pin(std::uint64_t block) noexcept;
  /// Ends a pin().
  void unpin(std::uint64_t block) noexcept;

  /// Blocks holding at least one live object (kernel zram's bd_count).
  std::uint64_t used_blocks() const noexcept { return used_.load(std::memory_order_relaxed); }

  /// The sector mask of `block` (tests).
  std::uint8_t mask_of(std::uint64_t block) const noexcept { return masks_[block].load(std::memory_order_relaxed); }

 private:
  struct alignas(runtime::cache_line_size) Cursor {
    std::uint64_t next = 0;  // touched by its core only
  };

  std::uint64_t blocks_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> masks_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> pins_;
  std::unique_ptr<Cursor[]> cursors_;
  unsigned cores_;
  std::atomic<std::uint64_t> used_{0};
};

}  // namespace coblk::storage
