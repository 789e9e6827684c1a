// ublk/loop_target.h - the loop target: the device is a window on a file or block device.
#pragma once

#include <memory>
#include <string>

#include "coblk/runtime/result.h"
#include "coblk/ublk/target.h"

namespace coblk::ublk {

/// Serves the device from a backing file with io_uring reads and writes on
/// the queue's own ring. In zero-copy mode the I/O goes straight between the
/// file and the request's pages (read_fixed/write_fixed on the registered
/// request buffer). Discard punches holes. Write-zeroes punches a hole too,
/// unless the request has IO_F_NOUNMAP: then the blocks stay allocated
/// (FALLOC_FL_ZERO_RANGE, or zeros written where the file system has no
/// ZERO_RANGE); a file system that cannot punch holes gets the same.
/// The device is the file's first `size_bytes`: a request reaching past
/// them fails with -EIO and touches nothing, even where the file goes on.
class LoopTarget final : public Target {
 public:
  /// A device of `size_bytes` with `block_size`-byte blocks on the file or
  /// block device `path`, opened read-write (with O_DIRECT if `direct_io`).
  /// Returns the Error of the failed open (its errno, e.g. ENOENT or EACCES,
  /// and one line naming the path).
  static Result<std::unique_ptr<LoopTarget>> create(const std::string& path, uint64_t size_bytes, uint32_t block_size,
                                                    bool direct_io);
  ~LoopTarget() override;
  LoopTarget(const LoopTarget&) = delete;
  LoopTarget& operator=(const LoopTarget&) = delete;

  TargetGeometry geometry() const override;
  bool supports_zero_copy() const override { return true; }
  runtime::Task<int> read(const Request& r) override;
  runtime::Task<int> write(const Request& r) override;
  runtime::Task<int> flush(const Request& r) override;
  runtime::Task<int> discard(const Request& r) override;
  runtime::Task<int> write_zeroes(const Request& r) override;

 private:
  LoopTarget(int fd, uint64_t size_bytes, uint32_t block_size);  // takes over the open file
  // Writes `length` zero bytes at `offset`; 0 or -errno.
  runtime::Task<int> write_zero_bytes(uint64_t offset, uint32_t length);
  bool in_range(const Request& r) const { return r.offset <= size_bytes_ && r.length <= size_bytes_ - r.offset; }

  int fd_ = -1;
  bool block_device_ = false;
  uint64_t size_bytes_;
  uint32_t block_size_;
};

}  // namespace coblk::ublk
