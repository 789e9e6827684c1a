#include "coblk/ublk/null_target.h"

namespace coblk::ublk {

NullTarget::NullTarget(uint64_t size_bytes, uint32_t block_size) : size_bytes_(size_bytes), block_size_(block_size) {}

TargetGeometry NullTarget::geometry() const {
  TargetGeometry g;
  g.size_bytes = size_bytes_;
  g.logical_block_size = block_size_;
  g.physical_block_size = block_size_;
  g.discard = true;
  g.write_zeroes = true;
  g.discard_granularity = block_size_;
  return g;
}

runtime::Task<int> NullTarget::read(const Request& r) { co_return static_cast<int>(r.length); }
runtime::Task<int> NullTarget::write(const Request& r) { co_return static_cast<int>(r.length); }
runtime::Task<int> NullTarget::discard(const Request&) { co_return 0; }
runtime::Task<int> NullTarget::write_zeroes(const Request&) { co_return 0; }

}  // namespace coblk::ublk
