#include "coblk/ublk/request_from_desc.h"

#include <cerrno>
#include <cstdint>

namespace coblk::ublk {

int request_from_desc(const abi::ublksrv_io_desc& desc, uint16_t queue, uint16_t tag, uint32_t max_io_bytes,
                      Request& out) noexcept {
  out.op = abi::get_op(desc);
  out.flags = desc.op_flags;
  out.queue = queue;
  out.tag = tag;
  // A FLUSH carries no range: the block layer's flush request keeps its
  // initial sector, (sector_t)-1, which the kernel passes on unchanged.
  if (out.op == abi::IO_OP_FLUSH) {
    out.offset = 0;
    out.length = 0;
    return 0;
  }
  // A sector range that bytes cannot express is refused, not wrapped: the
  // shifts below would silently turn it into another, valid-looking range.
  if (desc.start_sector > UINT64_MAX >> 9 || desc.nr_sectors > UINT32_MAX >> 9) return -EIO;
  out.offset = desc.start_sector << 9;
  out.length = desc.nr_sectors << 9;
  if (out.length > UINT64_MAX - out.offset) return -EIO;  // the range would end beyond 2^64
  out.queue = queue;
  out.tag = tag;
  const bool moves_data = out.op == abi::IO_OP_READ || out.op == abi::IO_OP_WRITE;
  if (moves_data && out.length > max_io_bytes) return -EIO;  // never overrun a tag buffer
  return 0;
}

int result_for_kernel(const Request& r, int done) noexcept {
  if (done < 0) return done;
  const bool moves_data = r.op == abi::IO_OP_READ || r.op == abi::IO_OP_WRITE;
  if (moves_data && static_cast<uint32_t>(done) != r.length) return -EIO;
  return done;
}

}  // namespace coblk::ublk
