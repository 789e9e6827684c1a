#include "coblk/ublk/ram_target.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "coblk/runtime/io.h"

namespace coblk::ublk {
namespace {

constexpr uint64_t kPage = 4096;

}  // namespace

Result<std::unique_ptr<RamTarget>> RamTarget::create(uint64_t size_bytes, uint32_t block_size) {
  void* p = ::mmap(nullptr, size_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return Error::from_errno(errno, "cannot reserve " + std::to_string(size_bytes) + " bytes for the ram device");
  }
  return std::unique_ptr<RamTarget>(new RamTarget(size_bytes, block_size, static_cast<std::byte*>(p)));
}

RamTarget::RamTarget(uint64_t size_bytes, uint32_t block_size, std::byte* memory)
    : size_bytes_(size_bytes), block_size_(block_size), memory_(memory) {}

RamTarget::~RamTarget() {
  if (memory_ != nullptr) ::munmap(memory_, size_bytes_);
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
  // A private anonymous page dropped with MADV_DONTNEED reads back as zeros.
  // The server locks its memory (swap safety), and the kernel refuses
  // DONTNEED on locked pages: then the range is zeroed in place instead.
  const int ret = co_await runtime::madvise(memory_ + first_page, last_page - first_page, MADV_DONTNEED);
  if (ret < 0) std::memset(memory_ + first_page, 0, last_page - first_page);
  co_return 0;
}

}  // namespace coblk::ublk
