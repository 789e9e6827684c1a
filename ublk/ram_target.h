// ublk/ram_target.h - the ram target: the device's bytes live in this process's memory.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "coblk/runtime/memory_region.h"
#include "coblk/runtime/result.h"
#include "coblk/ublk/target.h"

namespace coblk::ublk {

/// Keeps the whole device in one mapping (MAP_NORESERVE: pages are
/// allocated on first write; discarded ranges give their pages back):
/// private anonymous memory, or a memfd that a keeper process holds so
/// that the data outlives this server (runtime::MemoryKind::shared).
///
/// Crash consistency needs nothing more: a write is a memcpy into the
/// shared pages, and a request the dead server had taken but not completed
/// is re-sent by the kernel to the next server (UBLK_F_USER_RECOVERY_REISSUE),
/// which writes it again whole.
///
/// Queues on different cores copy in and out of the same mapping. Two
/// requests that overlap in flight are the block layer's business, as on any
/// disk; distinct ranges never share bytes, so no lock is needed.
class RamTarget final : public Target {
 public:
  /// A device of `size_bytes` with `block_size`-byte blocks, its memory
  /// mapped (not yet allocated). Returns the Error of the failed mmap (its
  /// errno, e.g. ENOMEM, and one line naming the size).
  static Result<std::unique_ptr<RamTarget>> create(uint64_t size_bytes, uint32_t block_size,
                                                   runtime::MemoryKind memory = runtime::MemoryKind::anonymous);
  /// A device over the data a dead server left in the memfd `fd` (this
  /// target maps a duplicate; the caller keeps `fd`). Returns Error EINVAL
  /// if the memfd's size is not `size_bytes` (memory of another device).
  static Result<std::unique_ptr<RamTarget>> recover(uint64_t size_bytes, uint32_t block_size, int fd);
  ~RamTarget() override;
  RamTarget(const RamTarget&) = delete;
  RamTarget& operator=(const RamTarget&) = delete;

  TargetGeometry geometry() const override;
  /// The memfd holding the data (shared memory only).
  std::vector<int> memory_fds() const override;
  runtime::Task<int> read(const Request& r) override;
  runtime::Task<int> write(const Request& r) override;
  runtime::Task<int> discard(const Request& r) override;
  runtime::Task<int> write_zeroes(const Request& r) override;

 private:
  RamTarget(uint64_t size_bytes, uint32_t block_size, runtime::MemoryRegion memory);

  // Zeroes [offset, offset+length): whole pages are returned to the kernel
  // with MADV_DONTNEED through io_uring, the ragged ends are memset.
  runtime::Task<int> zero_range(uint64_t offset, uint64_t length);
  bool in_range(const Request& r) const { return r.offset <= size_bytes_ && r.length <= size_bytes_ - r.offset; }

  uint64_t size_bytes_;
  uint32_t block_size_;
  runtime::MemoryRegion region_;
  std::byte* memory_ = nullptr;  // region_.data()
};

}  // namespace coblk::ublk
