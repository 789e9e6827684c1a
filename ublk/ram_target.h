// ublk/ram_target.h - the ram target: the device's bytes live in this process's memory.
#pragma once

#include <cstddef>
#include <memory>

#include "coblk/runtime/result.h"
#include "coblk/ublk/target.h"

namespace coblk::ublk {

/// Keeps the whole device in one anonymous mapping (MAP_NORESERVE: pages are
/// allocated on first write; discarded ranges give their pages back).
///
/// Queues on different cores copy in and out of the same mapping. Two
/// requests that overlap in flight are the block layer's business, as on any
/// disk; distinct ranges never share bytes, so no lock is needed.
class RamTarget final : public Target {
 public:
  /// A device of `size_bytes` with `block_size`-byte blocks, its memory
  /// mapped (not yet allocated). Returns the Error of the failed mmap (its
  /// errno, e.g. ENOMEM, and one line naming the size).
  static Result<std::unique_ptr<RamTarget>> create(uint64_t size_bytes, uint32_t block_size);
  ~RamTarget() override;
  RamTarget(const RamTarget&) = delete;
  RamTarget& operator=(const RamTarget&) = delete;

  TargetGeometry geometry() const override;
  runtime::Task<int> read(const Request& r) override;
  runtime::Task<int> write(const Request& r) override;
  runtime::Task<int> discard(const Request& r) override;
  runtime::Task<int> write_zeroes(const Request& r) override;

 private:
  RamTarget(uint64_t size_bytes, uint32_t block_size, std::byte* memory);  // takes over the mapping

  // Zeroes [offset, offset+length): whole pages are returned to the kernel
  // with MADV_DONTNEED through io_uring, the ragged ends are memset.
  runtime::Task<int> zero_range(uint64_t offset, uint64_t length);
  // Drops the pages of a locked range (MADV_DONTNEED refuses locked pages):
  // unlock, drop, lock again on fault. False if the kernel refused.
  static bool release_locked(std::byte* start, uint64_t bytes);
  bool in_range(const Request& r) const { return r.offset <= size_bytes_ && r.length <= size_bytes_ - r.offset; }

  uint64_t size_bytes_;
  uint32_t block_size_;
  std::byte* memory_ = nullptr;
};

}  // namespace coblk::ublk
