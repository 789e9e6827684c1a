#include "coblk/ublk/zram_stats.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace coblk::ublk {

namespace {

constexpr std::uint64_t stats_magic = 0x636f626c6b7a7231ull;  // "coblkzr1"

// The layout in the shared file. Every field is an atomic word so that the
// reader's copy during a concurrent publish is a race on atomics (defined),
// which the sequence number then tells it to discard.
struct SharedLayout {
  std::atomic<std::uint64_t> magic;
  std::atomic<std::uint64_t> sequence;  // odd while a publish is under way
  std::atomic<std::uint64_t> words[24];
  std::atomic<std::uint64_t> algorithm[4];  // up to 31 chars, NUL-terminated
};
static_assert(sizeof(SharedLayout) <= 4096);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "shared mapping needs address-free atomics");

enum Word : unsigned {
  orig_data_size,
  compr_data_size,
  mem_used_total,
  mem_limit,
  mem_used_max,
  same_pages,
  pages_compacted,
  huge_pages,
  huge_pages_since,
  failed_reads,
  failed_writes,
  invalid_io,
  notify_free,
  disksize,
  updated_ns,
};

}  // namespace

Result<std::unique_ptr<ZramStatsPublisher>> ZramStatsPublisher::create(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Error::from_errno(errno, "cannot create " + path);
  }
  if (::ftruncate(fd, 4096) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return Error::from_errno(err, "cannot size " + path);
  }
  void* map = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  ::close(fd);
  if (map == MAP_FAILED) {
    ::unlink(path.c_str());
    return Error::from_errno(err, "cannot map " + path);
  }
  return std::unique_ptr<ZramStatsPublisher>(new ZramStatsPublisher(path, map));
}

ZramStatsPublisher::ZramStatsPublisher(std::string path, void* map) : path_(std::move(path)), map_(map) {
  auto* shared = static_cast<SharedLayout*>(map_);
  shared->sequence.store(0, std::memory_order_relaxed);
  // Release: a reader that sees the magic sees a zeroed, even sequence.
  shared->magic.store(stats_magic, std::memory_order_release);
}

ZramStatsPublisher::~ZramStatsPublisher() {
  if (map_ != nullptr) {
    ::munmap(map_, 4096);
    ::unlink(path_.c_str());
  }
}

void ZramStatsPublisher::publish(const ZramStats& s) noexcept {
  auto* shared = static_cast<SharedLayout*>(map_);
  const std::uint64_t seq = shared->sequence.load(std::memory_order_relaxed);
  shared->sequence.store(seq + 1, std::memory_order_relaxed);
  // Release fence: the odd sequence is visible before any field changes,
  // so a reader that copies a changed field also sees seq+1 (or later).
  std::atomic_thread_fence(std::memory_order_release);
  const std::uint64_t values[] = {
      s.mm.orig_data_size,   s.mm.compr_data_size, s.mm.mem_used_total,  s.mm.mem_limit,
      s.mm.mem_used_max,     s.mm.same_pages,      s.mm.pages_compacted, s.mm.huge_pages,
      s.mm.huge_pages_since, s.io.failed_reads,    s.io.failed_writes,   s.io.invalid_io,
      s.io.notify_free,      s.disksize,           s.updated_ns,
  };
  for (unsigned i = 0; i < sizeof(values) / sizeof(values[0]); ++i) {
    shared->words[i].store(values[i], std::memory_order_relaxed);
  }
  char name[32] = {};
  std::strncpy(name, s.algorithm.c_str(), sizeof(name) - 1);
  for (unsigned i = 0; i < 4; ++i) {
    std::uint64_t w;
    std::memcpy(&w, name + 8 * i, 8);
    shared->algorithm[i].store(w, std::memory_order_relaxed);
  }
  // Release: the fields are visible before the even sequence that says
  // they are complete.
  shared->sequence.store(seq + 2, std::memory_order_release);
}

Result<ZramStats> read_zram_stats(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error::from_errno(errno, path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < 4096) {
    ::close(fd);
    return Error(EINVAL, path + ": not a coblk zram stats file");
  }
  void* map = ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
  const int err = errno;
  ::close(fd);
  if (map == MAP_FAILED) {
    return Error::from_errno(err, path);
  }
  const auto* shared = static_cast<const SharedLayout*>(map);
  if (shared->magic.load(std::memory_order_acquire) != stats_magic) {
    ::munmap(map, 4096);
    return Error(EINVAL, path + ": not a coblk zram stats file");
  }
  std::uint64_t w[24];
  std::uint64_t alg[4];
  for (int attempt = 0;; ++attempt) {
    // Acquire pairs with the publisher's final release store: if we see
    // an even value, the fields of that publish are visible.
    const std::uint64_t before = shared->sequence.load(std::memory_order_acquire);
    for (unsigned i = 0; i < 24; ++i) {
      w[i] = shared->words[i].load(std::memory_order_relaxed);
    }
    for (unsigned i = 0; i < 4; ++i) {
      alg[i] = shared->algorithm[i].load(std::memory_order_relaxed);
    }
    // Acquire fence: the loads above happen before the re-read, so a
    // publish that overlapped them shows up as a changed sequence.
    std::atomic_thread_fence(std::memory_order_acquire);
    const std::uint64_t after = shared->sequence.load(std::memory_order_relaxed);
    if (before == after && (before & 1) == 0) {
      break;
    }
    if (attempt > 1000) {
      ::munmap(map, 4096);
      return Error(EAGAIN, path + ": the stats never settled");
    }
  }
  ::munmap(map, 4096);
  ZramStats s;
  s.mm = storage::MmStat{w[orig_data_size], w[compr_data_size], w[mem_used_total], w[mem_limit],       w[mem_used_max],
                         w[same_pages],     w[pages_compacted], w[huge_pages],     w[huge_pages_since]};
  s.io = storage::IoStat{w[failed_reads], w[failed_writes], w[invalid_io], w[notify_free]};
  s.disksize = w[disksize];
  s.updated_ns = w[updated_ns];
  char name[33] = {};
  std::memcpy(name, alg, 32);
  s.algorithm = name;
  return s;
}

}  // namespace coblk::ublk
