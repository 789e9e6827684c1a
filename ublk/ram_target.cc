#include "coblk/ublk/ram_target.h"

#include <fcntl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "coblk/runtime/io.h"

namespace coblk::ublk {
namespace {

constexpr uint64_t kPage = 4096;

}  // namespace

Result<std::unique_ptr<RamTarget>> RamTarget::create(uint64_t size_bytes, uint32_t block_size,
                                                     runtime::MemoryKind memory) {
  Result<runtime::MemoryRegion> region = runtime::MemoryRegion::create(memory, size_bytes, "ram device");
  if (!region) return std::move(region).error();
  return std::unique_ptr<RamTarget>(new RamTarget(size_bytes, block_size, std::move(region).value()));
}

Result<std::unique_ptr<RamTarget>> RamTarget::recover(uint64_t size_bytes, uint32_t block_size, int fd) {
  Result<runtime::MemoryRegion> region = runtime::MemoryRegion::attach(fd, size_bytes, "ram device");
  if (!region) return std::move(region).error();
  return std::unique_ptr<RamTarget>(new RamTarget(size_bytes, block_size, std::move(region).value()));
}

RamTarget::RamTarget(uint64_t size_bytes, uint32_t block_size, runtime::MemoryRegion memory)
    : size_bytes_(size_bytes), block_size_(block_size), region_(std::move(memory)), memory_(region_.data()) {}

RamTarget::~RamTarget() = default;

std::vector<int> RamTarget::memory_fds() const {
  if (region_.fd() < 0) return {};
  return {region_.fd()};
}

TargetGeometry RamTarget::geometry() const {
  TargetGeometry g;
  g.size_bytes = size_bytes_;
  g.logical_block_size = block_size_;
  g.physical_block_size = kPage;
  g.discard = true;
  g.write_zeroes = true;
  g.discard_granularity = kPage;
  return g;
}

runtime::Task<int> RamTarget::read(const Request& r) {
  if (!in_range(r) || r.data == nullptr) co_return -EIO;
  std::memcpy(r.data, memory_ + r.offset, r.length);
  co_return static_cast<int>(r.length);
}

runtime::Task<int> RamTarget::write(const Request& r) {
  if (!in_range(r) || r.data == nullptr) co_return -EIO;
  std::memcpy(memory_ + r.offset, r.data, r.length);
  co_return static_cast<int>(r.length);
}

runtime::Task<int> RamTarget::discard(const Request& r) {
  if (!in_range(r)) co_return -EIO;
  co_return co_await zero_range(r.offset, r.length);
}

runtime::Task<int> RamTarget::write_zeroes(const Request& r) {
  if (!in_range(r)) co_return -EIO;
  co_return co_await zero_range(r.offset, r.length);
}

runtime::Task<int> RamTarget::zero_range(uint64_t offset, uint64_t length) {
  const uint64_t end = offset + length;
  const uint64_t first_page = (offset + kPage - 1) / kPage * kPage;
  const uint64_t last_page = end / kPage * kPage;
  if (first_page >= last_page) {
    std::memset(memory_ + offset, 0, length);
    co_return 0;
  }
  std::memset(memory_ + offset, 0, first_page - offset);
  std::memset(memory_ + last_page, 0, end - last_page);
  // Whole pages are given back to the system: a private anonymous page
  // dropped with MADV_DONTNEED, or a hole punched in the memfd, reads back
  // as zeros. Zeroing them in place instead would fault in (and, in a
  // server that locks its memory, lock) every page of the range: mkfs's
  // discard of a 4 GiB device took 4 GiB. Large ranges go in steps,
  // letting the queue's other requests run.
  constexpr uint64_t kStep = 64ULL << 20;
  for (uint64_t at = first_page; at < last_page; at += kStep) {
    const uint64_t len = std::min(kStep, last_page - at);
    int ret = 0;
    if (region_.fd() >= 0) {
      ret = co_await runtime::fallocate(region_.fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, len);
    } else {
      ret = co_await runtime::madvise(memory_ + at, len, MADV_DONTNEED);
    }
    // EINVAL: private pages the server locked (swap safety), which
    // DONTNEED refuses; MemoryRegion::release unlocks, drops and relocks
    // them with plain system calls (io_uring has no munlock; discards of
    // locked memory are rare).
    if (ret == -EINVAL && !region_.release(at, len)) co_return -EIO;
    if (ret < 0 && ret != -EINVAL) co_return ret;
    if (at + len < last_page) co_await runtime::yield();
  }
  co_return 0;
}

}  // namespace coblk::ublk
