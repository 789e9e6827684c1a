// storage/backing_location.h - where a written-back object lies on the tier, and its checksum.
#pragma once

// See docs/storage.md, "Backing tier".

#include <cstddef>
#include <cstdint>

namespace coblk::storage {

/// Blocks a backing tier may have at most: a page entry's value keeps
/// block * 8 + sector in its low 36 bits (2^33 blocks, 32 TiB), and the
/// object's checksum above them.
inline constexpr std::uint64_t max_backing_blocks = std::uint64_t{1} << 33;

/// The checksum kept for a written-back object: XXH3 of its `size` bytes,
/// cut to 28 bits. A tier that gives back other bytes than were written (a
/// corrupted or rewritten file, a disk or a network server returning
/// another block, stale or zeroed data) fails the check with a probability
/// of 1 - 2^-28, and the read fails with -EIO instead of serving them.
std::uint32_t backing_checksum(const std::byte* object, std::size_t size) noexcept;

/// Where a written-back object lies on the backing tier: a 4 KiB block and
/// the first of its eight 512-byte sectors, with the checksum of the bytes
/// written there. Stored in the page entry's value as
/// checksum << 36 | block * 8 + sector.
struct BackingLocation {
  std::uint64_t block = 0;     ///< block number (byte offset / 4096), below max_backing_blocks
  unsigned sector = 0;         ///< first sector of the object in the block, 0..7
  std::uint32_t checksum = 0;  ///< backing_checksum() of the object's bytes (28 bits)
  /// The encoding kept in a page entry's value.
  std::uint64_t encode() const noexcept {
    return (std::uint64_t{checksum & checksum_mask} << checksum_shift) | (block * 8 + sector);
  }
  /// The location an entry's value names.
  static BackingLocation decode(std::uint64_t value) noexcept {
    const std::uint64_t place = value & ((std::uint64_t{1} << checksum_shift) - 1);
    return {place / 8, static_cast<unsigned>(place % 8), static_cast<std::uint32_t>(value >> checksum_shift)};
  }
  /// True when `object` (its `size` bytes, as read back) has the checksum
  /// recorded at writeback.
  bool holds(const std::byte* object, std::size_t size) const noexcept {
    return backing_checksum(object, size) == checksum;
  }

  /// Bit of the value where the checksum starts.
  static constexpr unsigned checksum_shift = 36;
  /// The checksum's bits, before the shift.
  static constexpr std::uint32_t checksum_mask = (1u << 28) - 1;
};

static_assert(max_backing_blocks * 8 == std::uint64_t{1} << BackingLocation::checksum_shift,
              "every block's location fits below the checksum");

}  // namespace coblk::storage
