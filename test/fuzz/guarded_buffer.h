// test/fuzz/guarded_buffer.h - memory whose ends fault when crossed.
//
// LZ4 and ZSTD come from Debian's static libraries, which are not built
// with ASan: their own loads and stores are not checked. A buffer placed
// against an inaccessible page makes an overrun fault at once (SIGSEGV,
// which libFuzzer reports as a crash), instrumented or not.
#pragma once

#include <cstddef>
#include <span>

namespace coblk::fuzz {

/// `capacity` bytes of page-aligned read-write memory between two
/// PROT_NONE pages. Aborts if the mapping fails.
class GuardedBuffer {
 public:
  explicit GuardedBuffer(size_t capacity);
  ~GuardedBuffer();
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  /// The last `n` bytes (n <= capacity): reading or writing one byte past
  /// the span faults. With n == capacity == a multiple of the page size,
  /// one byte before it faults too.
  std::span<std::byte> tail(size_t n) const;

 private:
  std::byte* map_ = nullptr;
  size_t map_bytes_ = 0;
  std::byte* data_ = nullptr;  // first byte after the leading guard page
  size_t capacity_ = 0;        // rounded up to whole pages
};

}  // namespace coblk::fuzz
