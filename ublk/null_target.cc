#include "coblk/ublk/null_target.h"

#include <fcntl.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "coblk/runtime/io.h"

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

namespace {

// /dev/zero, opened once per process: the source of zeros for reads whose
// buffer is not in user space (zero copy).
int zero_fd() {
  static const int fd = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  return fd;
}

}  // namespace

// A null device reads zeros. Returning success without filling the buffer
// would hand the reader whatever the buffer held: in the copy and user-copy
// paths the tag buffer's previous request, often another user's written
// data; in the zero-copy path, pages the kernel did not clear.
runtime::Task<int> NullTarget::read(const Request& r) {
  if (r.data != nullptr) {
    std::memset(r.data, 0, r.length);
    co_return static_cast<int>(r.length);
  }
  const int fd = zero_fd();
  if (fd < 0) co_return -EIO;
  uint32_t done = 0;
  while (done < r.length) {
    // The request's pages are fixed buffer r.fixed_buffer at address 0.
    const int n =
        co_await runtime::read_fixed(fd, reinterpret_cast<void*>(uintptr_t{done}), r.length - done, 0, r.fixed_buffer);
    if (n <= 0) co_return n < 0 ? n : -EIO;
    done += static_cast<uint32_t>(n);
  }
  co_return static_cast<int>(r.length);
}
runtime::Task<int> NullTarget::write(const Request& r) { co_return static_cast<int>(r.length); }
runtime::Task<int> NullTarget::discard(const Request&) { co_return 0; }
runtime::Task<int> NullTarget::write_zeroes(const Request&) { co_return 0; }

}  // namespace coblk::ublk
