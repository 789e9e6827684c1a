// storage/backing_io.h - BackingBlockIo, the blocking block I/O a PageStore does on its backing tier itself.
#pragma once

// The store's hot path does no I/O: its caller (the zram target) writes
// writeback batches and reads written-back pages asynchronously. The store
// itself touches the tier only in two rare, blocking places: the tier's
// header block at create and attach (PageStore::init_backing), and a
// partial write or zeroing of a written-back page (never sent by a 4 KiB
// block device). A tier that is not a file descriptor (an NBD export)
// implements this interface; a file or block device needs none
// (PageStoreConfig::backing_fd is read and written with pread/pwrite).

#include <cstddef>
#include <cstdint>

namespace coblk::storage {

/// Blocking reads and writes of whole 4 KiB blocks of a backing tier.
class BackingBlockIo {
 public:
  virtual ~BackingBlockIo() = default;
  /// Reads block `block` (4096 bytes) into `out`. Returns 0, or a negative
  /// errno (-EIO for a tier that cannot do blocking I/O now).
  virtual int read_block(std::uint64_t block, std::byte* out) noexcept = 0;
  /// Writes 4096 bytes from `in` to block `block`. Returns 0, or a
  /// negative errno.
  virtual int write_block(std::uint64_t block, const std::byte* in) noexcept = 0;
};

}  // namespace coblk::storage
