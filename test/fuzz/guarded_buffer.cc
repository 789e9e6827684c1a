#include "test/fuzz/guarded_buffer.h"

#include <sys/mman.h>
#include <unistd.h>

#include "test/fuzz/check.h"

namespace coblk::fuzz {

GuardedBuffer::GuardedBuffer(size_t capacity) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  capacity_ = (capacity + page - 1) / page * page;
  map_bytes_ = capacity_ + 2 * page;
  void* p = ::mmap(nullptr, map_bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail(__FILE__, __LINE__, "cannot map a guarded buffer");
  map_ = static_cast<std::byte*>(p);
  data_ = map_ + page;
  if (::mprotect(data_, capacity_, PROT_READ | PROT_WRITE) != 0) fail(__FILE__, __LINE__, "mprotect failed");
}

GuardedBuffer::~GuardedBuffer() { ::munmap(map_, map_bytes_); }

std::span<std::byte> GuardedBuffer::tail(size_t n) const {
  if (n > capacity_) fail(__FILE__, __LINE__, "a guarded buffer is too small");
  return {data_ + capacity_ - n, n};
}

}  // namespace coblk::fuzz
