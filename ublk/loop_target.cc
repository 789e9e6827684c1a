#include "coblk/ublk/loop_target.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <string>
#include <thread>

#include "coblk/runtime/io.h"
#include "coblk/runtime/polled_ring.h"
#include "coblk/runtime/reactor.h"
#include "coblk/ublk/abi.h"

namespace coblk::ublk {

namespace {

// How long a busy backing file or disk is asked again (see create): 50
// times 20 ms.
constexpr int busy_retries = 50;
constexpr std::chrono::milliseconds busy_retry_pause{20};

// Calls `attempt` (which answers 0 or an errno) again while it answers
// `busy`, for up to a second; returns its last answer.
template <typename Attempt>
int ask_while_busy(int busy, Attempt attempt) {
  int err = attempt();
  for (int tries = 0; err == busy && tries < busy_retries; ++tries) {
    std::this_thread::sleep_for(busy_retry_pause);
    err = attempt();
  }
  return err;
}

}  // namespace

Result<std::unique_ptr<LoopTarget>> LoopTarget::create(const std::string& path, uint64_t size_bytes,
                                                       uint32_t block_size, bool direct_io, bool group_commit,
                                                       bool iopoll, bool passthrough) {
  if (iopoll && !direct_io && !passthrough)
    return Error(EINVAL, "--iopoll needs --direct-io: the kernel polls only for O_DIRECT I/O");
  if (passthrough && direct_io) return Error(EINVAL, "--passthrough goes around the block layer: not with --direct-io");
  // One device per backing file or disk: a second one on it (another
  // coblk device, a mounted file system) would write over the first one's
  // blocks. O_EXCL on a block device: the kernel refuses it while it is
  // mounted, swapped on, or held exclusively by anyone else. Linux ignores
  // O_EXCL without O_CREAT on anything but a block device, so it is always
  // asked for: no stat before the open that the path could change after.
  //
  // A server killed with -9 gives its claim or lock back as its files are
  // closed at exit (and, where its ring's fixed-file table holds this very
  // file, when the kernel has torn the ring down, asynchronously): a busy
  // answer is asked again for up to a second before it counts.
  const int flags = O_RDWR | O_CLOEXEC | O_EXCL | (direct_io ? O_DIRECT : 0);
  int fd = -1;
  const int open_error = ask_while_busy(EBUSY, [&] {
    fd = ::open(path.c_str(), flags);
    return fd < 0 ? errno : 0;
  });
  if (open_error == EBUSY)
    return Error(EBUSY, "backing device '" + path + "' is busy (mounted, used as swap, or held by another program)");
  if (open_error != 0) return Error::from_errno(open_error, "cannot open backing file '" + path + "'");
  std::unique_ptr<LoopTarget> target(new LoopTarget(fd, size_bytes, block_size, group_commit));
  // A file (or an NVMe char device) has no such claim: an advisory lock
  // that every coblk server takes, released with the last reference to
  // this open file. A file system without locks (ENOLCK, some NFS and FUSE
  // mounts) serves without it, as before there was one.
  if (!target->block_device_ &&
      ask_while_busy(EWOULDBLOCK, [&] { return ::flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno; }) == EWOULDBLOCK)
    return Error(EBUSY, "backing file '" + path + "' is in use by another coblk device");
  if (passthrough) {
    Result<NvmeNamespace> ns = nvme_namespace(fd, path);
    if (!ns) return std::move(ns).error();
    // The char device has no claim of its own, and its namespace's blocks
    // are also the block device's: a file system mounted there, or a loop
    // device on it, would write over what passthrough writes, and read
    // blocks from its cache that passthrough has changed. So the block
    // device is claimed, as a loop device on it would be, and held while
    // the target lives. A plain open (a read with dd) stays possible.
    const int claim_error = ask_while_busy(EBUSY, [&] {
      target->claim_fd_ = ::open(ns->block_device.c_str(), O_RDONLY | O_CLOEXEC | O_EXCL);
      return target->claim_fd_ < 0 ? errno : 0;
    });
    if (claim_error == EBUSY)
      return Error(EBUSY, "the block device " + ns->block_device + " of '" + path +
                              "' is busy (mounted, used as swap, or held by another program): passthrough would "
                              "write under it");
    if (claim_error != 0)
      return Error::from_errno(claim_error, "cannot claim the block device " + ns->block_device + " of '" + path + "'");
    if (block_size % ns->lba_size != 0)
      return Error(EINVAL, "--block-size " + std::to_string(block_size) + " is not a multiple of the " +
                               std::to_string(ns->lba_size) + "-byte blocks of '" + path + "'");
    if (size_bytes > ns->size_bytes)
      return Error(EINVAL, "the device is larger than the namespace '" + path + "' (" + std::to_string(ns->size_bytes) +
                               " bytes)");
    target->nvme_ = *ns;
    target->passthrough_ = true;
    if (iopoll) {
      // Polled commands: ask the driver once now, not on every request.
      if (Result<void> polled = nvme_probe_polled(fd, path, *ns); !polled) return std::move(polled).error();
      target->iopoll_ = true;
    }
  }
  if (iopoll && !passthrough) {
    if (!target->block_device_)
      return Error(EINVAL,
                   "--iopoll needs a block device, and '" + path + "' is not one (polled I/O is the block layer's)");
    // The kernel takes a polled request from a device without poll queues
    // and fails it with EOPNOTSUPP: ask once now, not on every request.
    const int ret = runtime::PolledRing::probe(fd, block_size);
    if (ret == -EOPNOTSUPP)
      return Error(EOPNOTSUPP, "'" + path +
                                   "' has no poll queues, which --iopoll needs (for NVMe: the nvme.poll_queues "
                                   "module parameter)");
    if (ret < 0) return Error::from_errno(-ret, "a polled read of '" + path + "' (--iopoll) failed");
    target->iopoll_ = true;
  }
  return target;
}

LoopTarget::LoopTarget(int fd, uint64_t size_bytes, uint32_t block_size, bool group_commit)
    : fd_(fd), size_bytes_(size_bytes), block_size_(block_size), group_commit_(group_commit) {
  struct stat st {};
  if (::fstat(fd_, &st) == 0) block_device_ = S_ISBLK(st.st_mode);
  // Reactors are pinned one per CPU, so the configured CPUs bound the core
  // indexes in practice; a core beyond them still works (alone).
  const long cpus = ::sysconf(_SC_NPROCESSORS_CONF);
  per_core_.resize(cpus > 0 ? static_cast<size_t>(cpus) : 1);
  for (auto& p : per_core_) p = std::make_unique<PerCore>(this);
}

runtime::Task<int> LoopTarget::start_queue(uint16_t) {
  runtime::Reactor* reactor = runtime::Reactor::current();
  const unsigned core = reactor->core();
  if (core < per_core_.size() && per_core_[core]->queues++ == 0) {
    PerCore& pc = *per_core_[core];
    pc.fd = reopen_backing();
    // A negative result (no table on this kernel, or a full one) leaves
    // fixed_file at -1: the plain fd works the same, a little slower.
    const int index = reactor->install_file(pc.fd >= 0 ? pc.fd : fd_);
    pc.fixed_file = index >= 0 ? index : -1;
  }
  // One polled ring per core, shared with whatever else polls there; kept
  // by the reactor until it ends. Enough SQEs for a full queue of depth 128
  // (a fuller ring submits early, which is only slower).
  // Passthrough commands need a wide one (128-byte SQEs, 32-byte CQEs).
  if (iopoll_) co_return reactor->enable_polled_ring(256, passthrough_);
  co_return 0;
}

void LoopTarget::stop_queue(uint16_t) {
  runtime::Reactor* reactor = runtime::Reactor::current();
  const unsigned core = reactor->core();
  if (core >= per_core_.size() || per_core_[core]->queues == 0) return;
  PerCore& pc = *per_core_[core];
  if (--pc.queues == 0) {
    if (pc.fixed_file >= 0) {
      reactor->remove_file(pc.fixed_file);
      pc.fixed_file = -1;
    }
    if (pc.fd >= 0) {
      ::close(pc.fd);
      pc.fd = -1;
    }
  }
}

int LoopTarget::reopen_backing() const noexcept {
  // The same file with the same access mode and O_DIRECT, but a new open
  // file description (dup() would share the old one, and its error
  // cursor). Not O_EXCL: this process already holds a block device
  // exclusively through fd_. -1 without /proc: fd_ serves, and the sticky
  // sync_failed_ flag still fails every later flush after an error.
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0) return -1;
  const std::string path = "/proc/self/fd/" + std::to_string(fd_);
  return ::open(path.c_str(), (flags & (O_ACCMODE | O_DIRECT)) | O_CLOEXEC);
}

LoopTarget::File LoopTarget::file_here() const noexcept {
  const unsigned core = runtime::Reactor::current()->core();
  if (core < per_core_.size()) {
    const PerCore& pc = *per_core_[core];
    if (pc.fixed_file >= 0) return File{pc.fixed_file, true};
    if (pc.fd >= 0) return File{pc.fd, false};
  }
  return File{fd_, false};
}

int LoopTarget::plain_fd_here() const noexcept {
  const unsigned core = runtime::Reactor::current()->core();
  if (core < per_core_.size() && per_core_[core]->fd >= 0) return per_core_[core]->fd;
  return fd_;
}

LoopTarget::~LoopTarget() {
  for (const auto& pc : per_core_) {
    if (pc->fd >= 0) ::close(pc->fd);  // a queue that never stopped
  }
  if (fd_ >= 0) ::close(fd_);
  if (claim_fd_ >= 0) ::close(claim_fd_);
}

TargetGeometry LoopTarget::geometry() const {
  TargetGeometry g;
  g.size_bytes = size_bytes_;
  g.logical_block_size = block_size_;
  g.physical_block_size = block_size_ < 4096 ? 4096 : block_size_;
  // Writes sit in the page cache (or the device's cache) until fdatasync.
  g.volatile_cache = true;
  // Hole punching is a file system feature (passthrough: no DSM here).
  g.discard = !block_device_ && !passthrough_;
  g.write_zeroes = !block_device_ && !passthrough_;
  g.discard_granularity = 4096;
  return g;
}

runtime::Task<int> LoopTarget::read(const Request& r) {
  if (!in_range(r)) co_return -EIO;
  if (passthrough_) {
    // In zero-copy mode the request's pages are registered buffer
    // r.fixed_buffer, which the commands name (IORING_URING_CMD_FIXED).
    co_return co_await nvme_read_write(plain_fd_here(), nvme_, NvmeOpcode::read, r.data, r.offset, r.length, false,
                                       iopoll_, r.fixed_buffer);
  }
  const File f = file_here();
  uint32_t done = 0;
  // Short reads happen (signals, page cache pressure); continue until all
  // bytes are in. A read of 0 bytes inside the device is a truncated file.
  while (done < r.length) {
    int n = 0;
    if (iopoll_ && r.fixed_buffer < 0) {
      n = co_await runtime::polled_read(plain_fd_here(), r.data + done, r.length - done, r.offset + done);
    } else if (r.fixed_buffer >= 0) {
      n = co_await runtime::read_fixed(f.fd, reinterpret_cast<void*>(uintptr_t{done}), r.length - done, r.offset + done,
                                       r.fixed_buffer)
              .fixed_file(f.fixed);
    } else {
      n = co_await runtime::read(f.fd, r.data + done, r.length - done, r.offset + done).fixed_file(f.fixed);
    }
    if (n < 0) co_return n;
    if (n == 0) co_return -EIO;
    done += static_cast<uint32_t>(n);
  }
  co_return static_cast<int>(done);
}

runtime::Task<int> LoopTarget::write(const Request& r) {
  if (!in_range(r)) co_return -EIO;  // past the device: never grow or touch the file beyond it
  if (passthrough_) {
    // FUA goes with the command itself: the device writes through.
    co_return co_await nvme_read_write(plain_fd_here(), nvme_, NvmeOpcode::write, r.data, r.offset, r.length,
                                       (r.flags & abi::IO_F_FUA) != 0, iopoll_, r.fixed_buffer);
  }
  const File f = file_here();
  uint32_t done = 0;
  while (done < r.length) {
    int n = 0;
    if (iopoll_ && r.fixed_buffer < 0) {
      n = co_await runtime::polled_write(plain_fd_here(), r.data + done, r.length - done, r.offset + done);
    } else if (r.fixed_buffer >= 0) {
      n = co_await runtime::write_fixed(f.fd, reinterpret_cast<const void*>(uintptr_t{done}), r.length - done,
                                        r.offset + done, r.fixed_buffer)
              .fixed_file(f.fixed);
    } else {
      n = co_await runtime::write(f.fd, r.data + done, r.length - done, r.offset + done).fixed_file(f.fixed);
    }
    if (n < 0) co_return n;
    if (n == 0) co_return -EIO;
    done += static_cast<uint32_t>(n);
  }
  if ((r.flags & abi::IO_F_FUA) != 0) {
    // The data is written (above), so the sync make_durable() waits for
    // started after it: the invariant FUA needs.
    const int s = co_await make_durable();
    if (s < 0) co_return s;
  }
  co_return static_cast<int>(done);
}

runtime::Task<int> LoopTarget::flush(const Request&) { co_return co_await make_durable(); }

runtime::Task<int> LoopTarget::make_durable() {
  const unsigned core = runtime::Reactor::current()->core();
  if (group_commit_ && core < per_core_.size()) co_return co_await per_core_[core]->commit.sync();
  co_return co_await sync_file(this);
}

runtime::Task<int> LoopTarget::sync_file(void* self) {
  auto* t = static_cast<LoopTarget*>(self);
  if (t->sync_failed_.load(std::memory_order_relaxed)) co_return -EIO;
  const File f = t->file_here();
  int ret = 0;
  if (t->passthrough_) {
    ret = co_await nvme_flush(t->plain_fd_here(), t->nvme_);
  } else {
    ret = co_await runtime::fdatasync(f.fd).fixed_file(f.fixed);
  }
  if (ret < 0 && ret != -ECANCELED) {
    // -ECANCELED is the runtime shutting down, not the file failing.
    t->sync_failed_.store(true, std::memory_order_relaxed);
    co_return -EIO;
  }
  co_return ret;
}

uint64_t LoopTarget::syncs_on_this_core() const noexcept {
  const unsigned core = runtime::Reactor::current()->core();
  return group_commit_ && core < per_core_.size() ? per_core_[core]->commit.syncs() : 0;
}

runtime::Task<int> LoopTarget::discard(const Request& r) {
  if (!in_range(r) || passthrough_) co_return -EIO;  // passthrough: not advertised
  if (r.length == 0) co_return 0;                    // fallocate refuses a zero length (EINVAL)
  const File f = file_here();
  co_return co_await runtime::fallocate(f.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, r.offset, r.length)
      .fixed_file(f.fixed);
}

runtime::Task<int> LoopTarget::write_zeroes(const Request& r) {
  if (!in_range(r) || passthrough_) co_return -EIO;  // passthrough: not advertised
  if (r.length == 0) co_return 0;
  const int ret = co_await zero_range(r);
  // FUA as for a write: the zeros are in the file, so a sync started now
  // covers them.
  if (ret < 0 || (r.flags & abi::IO_F_FUA) == 0) co_return ret;
  co_return co_await make_durable();
}

runtime::Task<int> LoopTarget::zero_range(const Request& r) {
  // Without NOUNMAP the blocks may go: a hole reads as zeros. With it they
  // must stay allocated (so that later writes cannot fail for want of
  // space), as the kernel's loop driver does: ZERO_RANGE, never a hole.
  const File f = file_here();
  if ((r.flags & abi::IO_F_NOUNMAP) == 0) {
    const int ret = co_await runtime::fallocate(f.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, r.offset, r.length)
                        .fixed_file(f.fixed);
    if (ret != -EOPNOTSUPP) co_return ret;
  }
  const int ret = co_await runtime::fallocate(f.fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, r.offset, r.length)
                      .fixed_file(f.fixed);
  if (ret != -EOPNOTSUPP) co_return ret;
  // A file system without ZERO_RANGE (tmpfs, for one): write the zeros,
  // which allocates the blocks as NOUNMAP asks.
  co_return co_await write_zero_bytes(r.offset, r.length);
}

runtime::Task<int> LoopTarget::write_zero_bytes(uint64_t offset, uint32_t length) {
  // Aligned for O_DIRECT; the length of each write is a multiple of the
  // block size, which --direct-io keeps at or above the file's alignment.
  alignas(4096) static const std::byte zeros[64 * 1024] = {};
  const File f = file_here();
  uint32_t done = 0;
  while (done < length) {
    const uint32_t chunk = length - done < sizeof(zeros) ? length - done : static_cast<uint32_t>(sizeof(zeros));
    const int n = co_await runtime::write(f.fd, zeros, chunk, offset + done).fixed_file(f.fixed);
    if (n < 0) co_return n;
    if (n == 0) co_return -EIO;
    done += static_cast<uint32_t>(n);
  }
  co_return 0;
}

}  // namespace coblk::ublk
