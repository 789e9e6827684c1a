// storage/handle.h - the location of one compressed object, as stored in a page entry.
#pragma once

#include <cstdint>

namespace coblk::storage {

/// Location of an object: the owning core's arena, the span slot in that
/// arena's address range, and the byte offset in the slot. The encoding is
/// direct (no handle table): compaction, which moves objects, rewrites the
/// handle in the page entry under the entry's lock instead (see
/// docs/storage.md). Slot 0 is never used, so 0 is never a valid handle.
using Handle = std::uint64_t;

/// The handle that refers to nothing.
inline constexpr Handle null_handle = 0;

/// Most cores a store can have (the core field of a handle is 8 bits).
inline constexpr unsigned max_store_cores = 256;

/// Builds a handle from its parts (core < 256, slot < 2^40, offset < 2^16).
constexpr Handle make_handle(unsigned core, std::uint64_t slot, std::uint32_t offset) noexcept {
  return (static_cast<Handle>(core) << 56) | (slot << 16) | offset;
}

/// The core whose arena owns the object.
constexpr unsigned handle_core(Handle h) noexcept { return static_cast<unsigned>(h >> 56); }

/// The span slot of the object within its arena.
constexpr std::uint64_t handle_slot(Handle h) noexcept { return (h >> 16) & ((std::uint64_t{1} << 40) - 1); }

/// Byte offset of the object within its span slot.
constexpr std::uint32_t handle_offset(Handle h) noexcept { return static_cast<std::uint32_t>(h & 0xffff); }

}  // namespace coblk::storage
