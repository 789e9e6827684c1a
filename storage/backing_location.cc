// storage/backing_location.cc - the checksum of written-back objects.

#include "coblk/storage/backing_location.h"

// Inlined, so the hash's code is compiled here with the store's flags and
// libxxhash.so is not needed at run time (its header is the library).
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace coblk::storage {

std::uint32_t backing_checksum(const std::byte* object, std::size_t size) noexcept {
  // XXH3 rather than a CRC: well over 10 GB/s on one core without
  // special instructions, small beside a tier I/O of tens of
  // microseconds (docs/storage.md measures it). Any 28 bits of it are as
  // good as any other.
  return static_cast<std::uint32_t>(XXH3_64bits(object, size)) & BackingLocation::checksum_mask;
}

}  // namespace coblk::storage
