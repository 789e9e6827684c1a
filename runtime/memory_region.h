// runtime/memory_region.h - a reserved range of memory: private to this process, or a memfd that outlives it.
#pragma once

// See docs/architecture.md, "Memory that outlives its server".

#include <cstddef>
#include <cstdint>

#include "coblk/runtime/result.h"

namespace coblk::runtime {

/// Where a store or a ram device keeps its bytes.
enum class MemoryKind : std::uint8_t {
  /// Private anonymous memory: gone with the process (the default, and the
  /// baseline the shared kind is measured against).
  anonymous,
  /// A memfd mapped MAP_SHARED: another process holding the fd (the keeper,
  /// see docs/architecture.md) keeps the bytes after this process dies, and
  /// a new server maps them again.
  shared,
};

/// A contiguous range of address space reserved up front (MAP_NORESERVE:
/// a page costs memory only once touched), either private or backed by a
/// memfd. Move-only; unmaps (and closes its fd) when destroyed, which
/// frees a shared region's memory only if no other process holds the fd.
///
/// Reserving once keeps mmap off the I/O path; release() is the one call
/// that gives pages back, and it is a syscall, so callers make it off the
/// I/O path or through io_uring.
class MemoryRegion {
 public:
  /// An empty region (no memory).
  MemoryRegion() = default;
  /// `bytes` of fresh memory of `kind`, reading as zeros. `what` names the
  /// region in the memfd's name and in the error. Returns the Error of the
  /// failed memfd_create, ftruncate or mmap (its errno, and one line
  /// naming the region and its size).
  static Result<MemoryRegion> create(MemoryKind kind, std::uint64_t bytes, const char* what);
  /// Maps the memfd `fd` as a shared region of `bytes`. The region holds
  /// a duplicate of `fd`; the caller keeps its own. Returns Error EINVAL if
  /// the fd is not a memfd of exactly that size (memory made for another
  /// geometry), or the errno of the failed dup, fstat or mmap.
  static Result<MemoryRegion> attach(int fd, std::uint64_t bytes, const char* what);
  ~MemoryRegion();
  /// Takes over `other`'s mapping and fd; `other` becomes empty.
  MemoryRegion(MemoryRegion&& other) noexcept;
  /// Releases this region's memory, then takes over `other`'s.
  MemoryRegion& operator=(MemoryRegion&& other) noexcept;
  MemoryRegion(const MemoryRegion&) = delete;
  MemoryRegion& operator=(const MemoryRegion&) = delete;

  /// First byte of the range.
  std::byte* data() const noexcept { return data_; }
  /// Size of the range in bytes.
  std::uint64_t size() const noexcept { return bytes_; }
  /// The memfd of a shared region, -1 for an anonymous one. The region
  /// keeps ownership; dup() it to hand it on.
  int fd() const noexcept { return fd_; }
  /// Which kind of memory this is.
  MemoryKind kind() const noexcept { return fd_ >= 0 ? MemoryKind::shared : MemoryKind::anonymous; }

  /// Gives the pages of [offset, offset+bytes) (page-aligned) back to the
  /// system; they read as zeros afterwards. A shared region punches a hole
  /// in its memfd (which frees the memory for every process mapping it,
  /// locked or not); an anonymous one drops the pages with MADV_DONTNEED,
  /// unlocking and relocking them around it when the server locked its
  /// memory (the kernel refuses DONTNEED on locked pages). Returns false if
  /// the kernel refused: the pages then keep their contents.
  bool release(std::uint64_t offset, std::uint64_t bytes) noexcept;

 private:
  MemoryRegion(std::byte* data, std::uint64_t bytes, int fd) noexcept : data_(data), bytes_(bytes), fd_(fd) {}
  // Maps `fd`, which the region owns from now on (closed on failure too).
  static Result<MemoryRegion> map_owned(int fd, std::uint64_t bytes, const char* what);
  void reset() noexcept;

  std::byte* data_ = nullptr;
  std::uint64_t bytes_ = 0;
  int fd_ = -1;
};

}  // namespace coblk::runtime
