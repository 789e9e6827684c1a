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
/// request buffer). Discard punches holes; write-zeroes uses
/// FALLOC_FL_ZERO_RANGE (or punches a hole unless IO_F_NOUNMAP is set).
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

  int fd_ = -1;
  bool block_device_ = false;
  uint64_t size_bytes_;
  uint32_t block_size_;
};

}  // namespace coblk::ublk
