#include "coblk/storage/backing_slots.h"

namespace coblk::storage {

BackingSlots::BackingSlots(std::uint64_t blocks, unsigned cores)
    : blocks_(blocks == 0 ? 1 : blocks),
      masks_(new std::atomic<std::uint8_t>[blocks_]),
      pins_(new std::atomic<std::uint32_t>[blocks_]),
      cursors_(new Cursor[cores == 0 ? 1 : cores]),
      cores_(cores == 0 ? 1 : cores) {
  for (std::uint64_t b = 0; b < blocks_; ++b) {
    masks_[b].store(0, std::memory_order_relaxed);
    pins_[b].store(0, std::memory_order_relaxed);
  }
  // Block 0 holds the tier's header (layout::BackingHeader): never handed
  // out, never counted, and a recovered entry naming it is refused.
  masks_[0].store(0xff, std::memory_order_relaxed);
  // Cores start their scans at different places, so that two writers do
  // not race for the same free blocks.
  for (unsigned c = 0; c < cores_; ++c) {
    cursors_[c].next = blocks_ / cores_ * c;
  }
}

std::uint64_t BackingSlots::claim(unsigned core, std::uint64_t max_scan) noexcept {
  Cursor& cursor = cursors_[core % cores_];
  const std::uint64_t scan = max_scan < blocks_ ? max_scan : blocks_;
  for (std::uint64_t i = 0; i < scan; ++i) {
    const std::uint64_t b = cursor.next;
    cursor.next = b + 1 == blocks_ ? 0 : b + 1;
    // Acquire: pairs with the release in release(), so a reader's pin
    // taken before the free that emptied the block is visible below.
    if (masks_[b].load(std::memory_order_acquire) != 0 || pins_[b].load(std::memory_order_acquire) != 0) {
      continue;
    }
    std::uint8_t expected = 0;
    // Acq_rel: the claim is ordered after the pin check; no new pin can
    // appear while the mask is zero (a pin needs an entry naming the block).
    if (masks_[b].compare_exchange_strong(expected, 0xff, std::memory_order_acq_rel, std::memory_order_relaxed)) {
      // Relaxed: a statistic.
      used_.fetch_add(1, std::memory_order_relaxed);
      return b;
    }
  }
  return no_block;
}

void BackingSlots::release(std::uint64_t block, std::uint8_t mask) noexcept {
  if (block >= blocks_ || mask == 0) {
    return;
  }
  // Release: pairs with claim()'s acquire load (see the class comment).
  const std::uint8_t before = masks_[block].fetch_and(static_cast<std::uint8_t>(~mask), std::memory_order_acq_rel);
  if (before != 0 && (before & static_cast<std::uint8_t>(~mask)) == 0) {
    used_.fetch_sub(1, std::memory_order_relaxed);
  }
}

bool BackingSlots::mark(std::uint64_t block, std::uint8_t mask) noexcept {
  if (block >= blocks_ || mask == 0) {
    return false;
  }
  std::uint8_t before = masks_[block].load(std::memory_order_relaxed);
  do {
    if ((before & mask) != 0) {
      return false;
    }
  } while (!masks_[block].compare_exchange_weak(before, static_cast<std::uint8_t>(before | mask),
                                                std::memory_order_acq_rel, std::memory_order_relaxed));
  if (before == 0) {
    used_.fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

void BackingSlots::pin(std::uint64_t block) noexcept {
  if (block < blocks_) {
    // Relaxed is enough for the count itself: the entry lock's release
    // (unlock after pinning) carries it to whoever frees the block's
    // sectors next, and from them to claim() (class comment).
    pins_[block].fetch_add(1, std::memory_order_relaxed);
  }
}

void BackingSlots::unpin(std::uint64_t block) noexcept {
  if (block < blocks_) {
    // Release: the reader's reads of the block are done before a claim
    // that sees the pin gone (acquire) lets a writer overwrite it.
    pins_[block].fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace coblk::storage
