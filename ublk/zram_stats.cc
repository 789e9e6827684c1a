#include "coblk/ublk/zram_stats.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "coblk/ublk/published_file.h"

namespace coblk::ublk {

namespace {

constexpr std::uint64_t stats_magic = 0x636f626c6b7a7232ull;  // "coblkzr2"

// The layout in the shared file. Every field is an atomic word so that the
// reader's copy during a concurrent publish is a race on atomics (defined),
// which the sequence number then tells it to discard.
struct SharedLayout {
  std::atomic<std::uint64_t> magic;
  std::atomic<std::uint64_t> sequence;  // odd while a publish is under way
  std::atomic<std::uint64_t> words[32];
  std::atomic<std::uint64_t> algorithm[4];  // up to 31 chars, NUL-terminated
};
static_assert(sizeof(SharedLayout) <= 2048);

// The command slot, at command_offset: written by one client at a time
// (flock), read and answered by the server. A client writes the command,
// then request = done + 1 (release); the server sees request != done
// (acquire), runs it, writes the result, then done = request (release).
struct CommandSlot {
  std::atomic<std::uint64_t> request;
  std::atomic<std::uint64_t> kind;
  std::atomic<std::uint64_t> arg;
  std::atomic<std::uint64_t> max_pages;
  std::atomic<std::uint64_t> done;
  std::atomic<std::uint64_t> error;
  std::atomic<std::uint64_t> count;
};
constexpr std::size_t command_offset = 2048;
static_assert(command_offset + sizeof(CommandSlot) <= 4096);
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
  bd_count,
  bd_reads,
  bd_writes,
  backing_blocks,
  written_back_pages,
  bd_read_errors,
  bd_write_errors,
  tier_state,
  writeback_budget,
  recompressed_pages,
  staged_pages,
  readmitted_pages,
  bd_checksum_errors,
};

// Where the sequence word lies in the file: right after the magic.
constexpr off_t sequence_offset = sizeof(std::uint64_t);

}  // namespace

Result<std::unique_ptr<ZramStatsPublisher>> ZramStatsPublisher::create(const std::string& path) {
  // A fresh file, renamed into place once it is ready: a reader that still
  // holds the previous server's file keeps reading that one (never a file
  // truncated under it), and a symbolic link or file planted at `path`
  // is replaced, never followed or written.
  std::string tmp;
  const int fd = create_file_beside(path, tmp);
  if (fd < 0) {
    return Error::from_errno(-fd, "cannot create " + path);
  }
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Error::from_errno(err, std::string(what) + path);
  };
  if (::ftruncate(fd, 4096) != 0) return fail("cannot size ");
  void* map = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return fail("cannot map ");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::munmap(map, 4096);
    errno = err;
    return fail("cannot stat ");
  }
  ::close(fd);
  std::unique_ptr<ZramStatsPublisher> publisher(new ZramStatsPublisher(path, map));
  publisher->dev_ = st.st_dev;
  publisher->ino_ = st.st_ino;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    publisher->path_.clear();  // nothing of ours at `path` to remove
    return Error::from_errno(err, "cannot create " + path);
  }
  return publisher;
}

ZramStatsPublisher::ZramStatsPublisher(std::string path, void* map) : path_(std::move(path)), map_(map) {
  auto* shared = static_cast<SharedLayout*>(map_);
  shared->sequence.store(0, std::memory_order_relaxed);
  // Release: a reader that sees the magic sees a zeroed, even sequence.
  shared->magic.store(stats_magic, std::memory_order_release);
}

ZramStatsPublisher::~ZramStatsPublisher() {
  if (map_ != nullptr) ::munmap(map_, 4096);
  // Only our own file: a newer server of the same device may have put its
  // file at the path since.
  struct stat st {};
  if (!path_.empty() && ::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
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
      s.mm.orig_data_size,
      s.mm.compr_data_size,
      s.mm.mem_used_total,
      s.mm.mem_limit,
      s.mm.mem_used_max,
      s.mm.same_pages,
      s.mm.pages_compacted,
      s.mm.huge_pages,
      s.mm.huge_pages_since,
      s.io.failed_reads,
      s.io.failed_writes,
      s.io.invalid_io,
      s.io.notify_free,
      s.disksize,
      s.updated_ns,
      s.bd.bd_count,
      s.bd.bd_reads,
      s.bd.bd_writes,
      s.tier.backing_blocks,
      s.tier.written_back_pages,
      s.tier.read_errors,
      s.tier.write_errors,
      static_cast<std::uint64_t>(s.tier_state),
      s.writeback_budget,
      s.tier.recompressed_pages,
      s.mm.staged_pages,
      s.tier.readmitted_pages,
      s.tier.checksum_errors,
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
  // Read with pread, never mapped: a mapping faults (SIGBUS) once the file
  // is truncated under it, and another process (a new server, a person)
  // may truncate it at any time. A short read is an error instead.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return Error::from_errno(errno, path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error(EINVAL, path + ": not a coblk zram stats file");
  }
  // The snapshot: the same words as the shared layout, as plain integers.
  struct Copy {
    std::uint64_t magic;
    std::uint64_t sequence;
    std::uint64_t words[32];
    std::uint64_t algorithm[4];
  };
  static_assert(sizeof(Copy) == sizeof(SharedLayout));
  Copy copy{};
  for (int attempt = 0;; ++attempt) {
    // The sequence lock, as over the mapping: the sequence, then the
    // fields, then the sequence again, each its own pread. The acquire
    // fences order this thread's loads, the kernel's copies included, so
    // a publish that overlapped the copy shows up as a changed or odd
    // sequence (the publisher's release fence and store order its side).
    std::uint64_t before = 0;
    std::uint64_t after = 0;
    bool whole = pread_exactly(fd, &before, sizeof(before), sequence_offset);
    std::atomic_thread_fence(std::memory_order_acquire);
    whole = whole && pread_exactly(fd, &copy, sizeof(copy), 0);
    std::atomic_thread_fence(std::memory_order_acquire);
    whole = whole && pread_exactly(fd, &after, sizeof(after), sequence_offset);
    if (!whole || copy.magic != stats_magic) {
      ::close(fd);
      return Error(EINVAL, path + ": not a coblk zram stats file");
    }
    if (before == after && (before & 1) == 0) {
      break;
    }
    if (attempt > 1000) {
      ::close(fd);
      return Error(EAGAIN, path + ": the stats never settled");
    }
  }
  ::close(fd);
  const std::uint64_t* w = copy.words;
  const std::uint64_t* alg = copy.algorithm;
  ZramStats s;
  s.mm = storage::MmStat{w[orig_data_size], w[compr_data_size], w[mem_used_total], w[mem_limit],       w[mem_used_max],
                         w[same_pages],     w[pages_compacted], w[huge_pages],     w[huge_pages_since]};
  s.io = storage::IoStat{w[failed_reads], w[failed_writes], w[invalid_io], w[notify_free]};
  s.bd = storage::BdStat{w[bd_count], w[bd_reads], w[bd_writes]};
  s.tier = storage::TierStat{w[backing_blocks], w[written_back_pages], w[bd_read_errors], w[bd_write_errors],
                             w[recompressed_pages]};
  s.mm.staged_pages = w[staged_pages];
  s.tier.readmitted_pages = w[readmitted_pages];
  s.tier.checksum_errors = w[bd_checksum_errors];
  s.tier_state = w[tier_state] <= 3 ? static_cast<TierState>(w[tier_state]) : TierState::none;
  s.writeback_budget = w[writeback_budget];
  s.disksize = w[disksize];
  s.updated_ns = w[updated_ns];
  char name[33] = {};
  std::memcpy(name, alg, 32);
  s.algorithm = name;
  return s;
}

const char* tier_state_name(TierState s) noexcept {
  switch (s) {
    case TierState::none:
      return "-";
    case TierState::active:
      return "active";
    case TierState::failed:
      return "failed";
    case TierState::limit_spent:
      return "limit";
  }
  return "?";
}

bool ZramStatsPublisher::pending_command(ZramCommand& out) const noexcept {
  const auto* slot = reinterpret_cast<const CommandSlot*>(static_cast<const char*>(map_) + command_offset);
  // Acquire: pairs with the client's release store of request, so the
  // command words it wrote first are visible.
  const std::uint64_t request = slot->request.load(std::memory_order_acquire);
  if (request == slot->done.load(std::memory_order_relaxed)) {
    return false;
  }
  out.kind = static_cast<ZramCommand::Kind>(slot->kind.load(std::memory_order_relaxed));
  out.arg = slot->arg.load(std::memory_order_relaxed);
  out.max_pages = slot->max_pages.load(std::memory_order_relaxed);
  return true;
}

void ZramStatsPublisher::answer_command(const ZramCommandResult& result) noexcept {
  auto* slot = reinterpret_cast<CommandSlot*>(static_cast<char*>(map_) + command_offset);
  slot->error.store(static_cast<std::uint64_t>(result.error), std::memory_order_relaxed);
  slot->count.store(result.count, std::memory_order_relaxed);
  // Release: the result is visible before the client sees done move.
  slot->done.store(slot->request.load(std::memory_order_relaxed), std::memory_order_release);
}

Result<ZramCommandResult> send_zram_command(const std::string& path, const ZramCommand& command, int timeout_ms) {
  const int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return Error::from_errno(errno, path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != 4096) {
    ::close(fd);
    return Error(EINVAL, path + ": not a coblk zram stats file");
  }
  // One client at a time: the slot holds one command.
  while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {}
  void* map = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    const int err = errno;
    ::close(fd);
    return Error::from_errno(err, "cannot map " + path);
  }
  auto* layout = static_cast<SharedLayout*>(map);
  auto* slot = reinterpret_cast<CommandSlot*>(static_cast<char*>(map) + command_offset);
  Result<ZramCommandResult> answer =
      Error(ETIMEDOUT, path + ": the device's server did not answer in " + std::to_string(timeout_ms / 1000) + " s");
  if (layout->magic.load(std::memory_order_acquire) != stats_magic) {
    answer = Error(EINVAL, path + ": not a coblk zram stats file");
  } else {
    const std::uint64_t ticket = slot->done.load(std::memory_order_acquire) + 1;
    slot->kind.store(static_cast<std::uint64_t>(command.kind), std::memory_order_relaxed);
    slot->arg.store(command.arg, std::memory_order_relaxed);
    slot->max_pages.store(command.max_pages, std::memory_order_relaxed);
    // Release: the command is visible before the request that names it.
    slot->request.store(ticket, std::memory_order_release);
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
      // Acquire: pairs with answer_command's release store of done.
      if (slot->done.load(std::memory_order_acquire) == ticket) {
        answer = ZramCommandResult{static_cast<int>(slot->error.load(std::memory_order_relaxed)),
                                   slot->count.load(std::memory_order_relaxed)};
        break;
      }
      ::usleep(20000);
    }
    if (!answer) {
      // Withdraw the request, so that a late server does not run it.
      std::uint64_t expected = ticket;
      slot->request.compare_exchange_strong(expected, ticket - 1, std::memory_order_acq_rel);
    }
  }
  ::munmap(map, 4096);
  ::close(fd);  // drops the flock
  return answer;
}

}  // namespace coblk::ublk
