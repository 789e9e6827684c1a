// ublk/loop_target.h - the loop target: the device is a window on a file or block device.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "coblk/runtime/result.h"
#include "coblk/ublk/group_commit.h"
#include "coblk/ublk/nvme_passthrough.h"
#include "coblk/ublk/target.h"

namespace coblk::ublk {

/// Serves the device from a backing file with io_uring reads and writes on
/// the queue's own ring. In zero-copy mode the I/O goes straight between the
/// file and the request's pages (read_fixed/write_fixed on the registered
/// request buffer). Discard punches holes. Write-zeroes punches a hole too,
/// unless the request has IO_F_NOUNMAP: then the blocks stay allocated
/// (FALLOC_FL_ZERO_RANGE, or zeros written where the file system has no
/// ZERO_RANGE); a file system that cannot punch holes gets the same.
/// The device is the file's first `size_bytes`: a request reaching past
/// them fails with -EIO and touches nothing, even where the file goes on.
///
/// FLUSH and FUA: with group commit (the default) the requests of one core
/// that arrive while an fdatasync is in flight share the next one (see
/// GroupCommit). Once an fdatasync has failed, every later FLUSH and FUA
/// write fails with -EIO: Linux reports a writeback error to an open file
/// only once and may have dropped the pages, so a later fdatasync returning
/// 0 would not prove that earlier writes are on disk.
///
/// On each queue's core the file is installed in the ring's fixed-file
/// table at start_queue (where the reactor has one), so the kernel skips
/// the fd lookup on every read, write and sync.
///
/// Polled I/O (`iopoll`): on a block device opened with O_DIRECT whose
/// driver has poll queues (NVMe with nvme.poll_queues), reads and writes
/// go to each core's polled ring (runtime/polled_ring.h), whose
/// completions the reactor finds by polling instead of an interrupt.
/// FLUSH, and requests on registered buffers (zero copy), stay on the
/// reactor's own ring.
///
/// NVMe passthrough (`passthrough`): the file is a namespace's generic char
/// device /dev/ngXnY, and reads, writes (FUA as the command's FUA bit) and
/// flushes are NVMe commands by URING_CMD (ublk/nvme_passthrough.h) on the
/// core's ring, which must have 128-byte SQEs and 32-byte CQEs. Discard and
/// write-zeroes are not offered. With `iopoll` too, the read and write
/// commands go to each core's wide polled ring and complete on the driver's
/// poll queues; flushes stay on the reactor's ring. A request whose data is
/// a registered buffer (zero copy) names it in its commands
/// (IORING_URING_CMD_FIXED), on the reactor's ring.
class LoopTarget final : public Target {
 public:
  /// A device of `size_bytes` with `block_size`-byte blocks on the file or
  /// block device `path`, opened read-write (with O_DIRECT if `direct_io`).
  /// Returns the Error of the failed open (its errno, e.g. ENOENT or EACCES,
  /// and one line naming the path). A block device is opened exclusively
  /// (O_EXCL) and a file is locked (flock), so that no second device writes
  /// to them: EBUSY in one line for a busy disk (mounted, swap, held) or a
  /// file another coblk device serves. Without `group_commit` every FLUSH and
  /// FUA write issues an fdatasync of its own. With `iopoll` (which needs
  /// `direct_io` and a block device, or `passthrough`) it probes the device
  /// with one polled read of a block and refuses, in one line, a file that
  /// is not a block device or a device without poll queues. With
  /// `passthrough` (not with `direct_io`) `path` must be an NVMe generic
  /// char device, `block_size` a multiple of its LBA size and `size_bytes`
  /// within it; its namespace's block device (/dev/nvmeXnY) is then claimed
  /// as a busy disk would be, and refused likewise (EBUSY) while mounted.
  static Result<std::unique_ptr<LoopTarget>> create(const std::string& path, uint64_t size_bytes, uint32_t block_size,
                                                    bool direct_io, bool group_commit = true, bool iopoll = false,
                                                    bool passthrough = false);
  ~LoopTarget() override;
  LoopTarget(const LoopTarget&) = delete;
  LoopTarget& operator=(const LoopTarget&) = delete;

  TargetGeometry geometry() const override;
  bool supports_zero_copy() const override { return true; }
  runtime::Task<int> read(const Request& r) override;
  runtime::Task<int> write(const Request& r) override;
  runtime::Task<int> flush(const Request& r) override;
  runtime::Task<int> discard(const Request& r) override;
  runtime::Task<int> write_zeroes(const Request& r) override;
  /// Installs the file in this core's fixed-file table (once per core);
  /// with polled I/O, also gives the core its polled ring.
  runtime::Task<int> start_queue(uint16_t queue) override;
  /// Removes it again after the core's last queue has stopped.
  void stop_queue(uint16_t queue) override;

  /// fdatasync calls issued so far by the calling core's group commit (0
  /// without group commit): for tests and benchmarks.
  uint64_t syncs_on_this_core() const noexcept;

  /// The backing file this target opened and serves, owned by the target:
  /// for checks of its identity (fstat), not for I/O.
  int backing_fd() const noexcept { return fd_; }

 private:
  // One core's state, on a cache line of its own; touched only there.
  struct alignas(64) PerCore {
    explicit PerCore(LoopTarget* t) noexcept : commit(&LoopTarget::sync_file, t) {}
    GroupCommit commit;
    int fixed_file = -1;  // index in the core's fixed-file table, or -1: use fd
    // This core's own open file description of the backing file (reopened
    // through /proc/self/fd), or -1: use fd_. Own, so that fdatasync here
    // reports every writeback error of the file: the kernel reports an
    // error once per open file description, and with one shared by all
    // cores a sync on one core could consume the error another core's
    // concurrent sync needed, which would then succeed for lost writes.
    int fd = -1;
    unsigned queues = 0;  // started queues of this core
  };
  // The file as this core's operations name it.
  struct File {
    int fd;      // fd_, or an index in the ring's fixed-file table
    bool fixed;  // IOSQE_FIXED_FILE
  };
  File file_here() const noexcept;
  // The file as a plain fd on this core (the polled ring has no fixed files).
  int plain_fd_here() const noexcept;
  // A new open file description of the backing file, or -1 (see PerCore::fd).
  int reopen_backing() const noexcept;

  LoopTarget(int fd, uint64_t size_bytes, uint32_t block_size, bool group_commit);  // takes over the open file
  // FLUSH, and FUA after the data: through the core's group commit if any.
  runtime::Task<int> make_durable();
  // One fdatasync, -EIO for good once one has failed. `self`: the target.
  static runtime::Task<int> sync_file(void* self);
  // WRITE_ZEROES without its FUA: punches a hole or zeroes the range
  // (NOUNMAP: allocated); 0 or -errno.
  runtime::Task<int> zero_range(const Request& r);
  // Writes `length` zero bytes at `offset`; 0 or -errno.
  runtime::Task<int> write_zero_bytes(uint64_t offset, uint32_t length);
  bool in_range(const Request& r) const { return r.offset <= size_bytes_ && r.length <= size_bytes_ - r.offset; }

  int fd_ = -1;
  // With passthrough: the namespace's block device, opened with O_EXCL and
  // held only as that claim (see create); else -1.
  int claim_fd_ = -1;
  bool block_device_ = false;
  bool iopoll_ = false;       // reads and writes (or read and write commands) on the core's polled ring
  bool passthrough_ = false;  // NVMe commands on a char device (nvme_)
  NvmeNamespace nvme_;
  uint64_t size_bytes_;
  uint32_t block_size_;
  // Indexed by core. A core beyond it (more reactors than the CPUs
  // configured at creation) syncs alone and uses the plain fd.
  std::vector<std::unique_ptr<PerCore>> per_core_;
  bool group_commit_;
  // Set by the first failed fdatasync on any core, never cleared. Relaxed:
  // it carries no data, and a flush racing with the failure on another core
  // is not ordered after it anyway.
  std::atomic<bool> sync_failed_{false};
};

}  // namespace coblk::ublk
