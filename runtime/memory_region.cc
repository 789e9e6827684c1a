#include "coblk/runtime/memory_region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

namespace coblk::runtime {

namespace {

std::string describe(const char* what, std::uint64_t bytes) {
  return std::string(what) + " (" + std::to_string(bytes >> 20) + " MiB)";
}

}  // namespace

Result<MemoryRegion> MemoryRegion::create(MemoryKind kind, std::uint64_t bytes, const char* what) {
  if (kind == MemoryKind::anonymous) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      return Error::from_errno(errno, "cannot reserve address space for the " + describe(what, bytes));
    }
    return MemoryRegion(static_cast<std::byte*>(p), bytes, -1);
  }
  // MFD_CLOEXEC: a server's children (none today) must not pin the memory;
  // the keeper receives its own copy of the fd explicitly.
  const int fd = ::memfd_create((std::string("coblk-") + what).c_str(), MFD_CLOEXEC);
  if (fd < 0) {
    return Error::from_errno(errno, "cannot create shared memory for the " + describe(what, bytes));
  }
  // A sparse file: only pages written later take memory.
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    const int err = errno;
    ::close(fd);
    return Error::from_errno(err, "cannot size the shared memory for the " + describe(what, bytes));
  }
  return map_owned(fd, bytes, what);
}

Result<MemoryRegion> MemoryRegion::attach(int fd, std::uint64_t bytes, const char* what) {
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    return Error::from_errno(errno, std::string("cannot take the saved memory of the ") + what);
  }
  return map_owned(copy, bytes, what);
}

Result<MemoryRegion> MemoryRegion::map_owned(int fd, std::uint64_t bytes, const char* what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Error::from_errno(err, std::string("cannot inspect the saved memory of the ") + what);
  }
  if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) != bytes) {
    ::close(fd);
    return Error(EINVAL, std::string("the saved memory of the ") + what + " has " + std::to_string(st.st_size) +
                             " bytes where this geometry needs " + std::to_string(bytes));
  }
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    ::close(fd);
    return Error::from_errno(err, "cannot map the shared memory of the " + describe(what, bytes));
  }
  return MemoryRegion(static_cast<std::byte*>(p), bytes, fd);
}

MemoryRegion::~MemoryRegion() { reset(); }

MemoryRegion::MemoryRegion(MemoryRegion&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      fd_(std::exchange(other.fd_, -1)) {}

MemoryRegion& MemoryRegion::operator=(MemoryRegion&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

void MemoryRegion::reset() noexcept {
  if (data_ != nullptr) ::munmap(data_, bytes_);
  if (fd_ >= 0) ::close(fd_);
  data_ = nullptr;
  bytes_ = 0;
  fd_ = -1;
}

bool MemoryRegion::release(std::uint64_t offset, std::uint64_t bytes) noexcept {
  if (bytes == 0) return true;
  if (fd_ >= 0) {
    // Truncating part of a shmem file frees the pages whoever maps them,
    // mlocked or not, and later reads see zeros.
    return ::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                       static_cast<off_t>(bytes)) == 0;
  }
  std::byte* start = data_ + offset;
  if (::madvise(start, bytes, MADV_DONTNEED) == 0) return true;
  // A server used as swap locks its memory (mlockall with MCL_ONFAULT), and
  // DONTNEED refuses locked pages with EINVAL: unlock, drop, and lock again
  // on fault so that the range never becomes swappable.
  if (errno != EINVAL || ::munlock(start, bytes) != 0) return false;
  const bool dropped = ::madvise(start, bytes, MADV_DONTNEED) == 0;
  // If relocking fails (RLIMIT_MEMLOCK) the pages are gone all the same and
  // stay unlocked when touched again, which swap_safety reported.
  (void)::mlock2(start, bytes, MLOCK_ONFAULT);
  return dropped;
}

}  // namespace coblk::runtime
