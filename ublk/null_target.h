// ublk/null_target.h - the null target: accepts every write, reads leave the buffer as it is.
#pragma once

#include "coblk/ublk/target.h"

namespace coblk::ublk {

/// Completes every request at once without touching data, like null_blk:
/// for measuring the ublk and runtime overhead alone. Reads return whatever
/// the request buffer held.
class NullTarget final : public Target {
 public:
  /// A device of `size_bytes` with `block_size`-byte blocks.
  NullTarget(uint64_t size_bytes, uint32_t block_size);
  TargetGeometry geometry() const override;
  bool supports_zero_copy() const override { return true; }
  runtime::Task<int> read(const Request& r) override;
  runtime::Task<int> write(const Request& r) override;
  runtime::Task<int> discard(const Request& r) override;
  runtime::Task<int> write_zeroes(const Request& r) override;

 private:
  uint64_t size_bytes_;
  uint32_t block_size_;
};

}  // namespace coblk::ublk
