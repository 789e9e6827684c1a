// ublk/nvme_passthrough.h - NVMe read, write and flush commands by io_uring URING_CMD on a namespace's char device.
#pragma once

// The loop target's --passthrough path (docs/architecture.md): instead of
// reads and writes through the block layer, each request becomes NVMe I/O
// commands (struct nvme_uring_cmd, cmd_op NVME_URING_CMD_IO) on the
// namespace's generic char device /dev/ngXnY, issued on the core's ring,
// which must have 128-byte SQEs and 32-byte CQEs
// (runtime::ReactorConfig::sqe128 and cqe32). With --iopoll as well, reads
// and writes go to the core's wide polled ring instead (runtime/polled_ring.h)
// and complete on the driver's poll queues, without interrupts.

#include <cstddef>
#include <cstdint>
#include <string>

#include "coblk/runtime/result.h"
#include "coblk/runtime/task.h"

namespace coblk::ublk {

/// What passthrough needs to know of an NVMe namespace.
struct NvmeNamespace {
  std::uint32_t nsid = 0;          ///< the namespace id (NVME_IOCTL_ID)
  std::uint32_t lba_size = 0;      ///< bytes per logical block (sysfs logical_block_size)
  std::uint64_t size_bytes = 0;    ///< the namespace's size (sysfs size, in 512-byte sectors)
  std::uint32_t max_transfer = 0;  ///< most bytes per command: the controller's and the segment limit, in whole blocks
  /// The namespace's block device, "/dev/nvmeXnY": the same blocks through
  /// the block layer, which the loop target claims (O_EXCL) so that no file
  /// system is mounted on what passthrough writes.
  std::string block_device;
};

/// The facts of the namespace behind `fd`, an open /dev/ngXnY named `path`:
/// the nsid from the driver, the rest from /sys/block/nvmeXnY. Error (one
/// line naming `path`) for anything that is not an NVMe generic char device.
Result<NvmeNamespace> nvme_namespace(int fd, const std::string& path);
/// The same, opening `path` read-only for the question (for the CLI).
Result<NvmeNamespace> nvme_namespace(const std::string& path);

/// Whether the namespace behind `fd` (an open /dev/ngXnY named `path`)
/// takes polled commands: its block device has poll queues (sysfs io_poll;
/// without them the kernel would run a "polled" command on an interrupt
/// queue), and one polled NVMe read of block 0 on a wide IOPOLL ring of its
/// own completes. Error: one line naming `path` and what is missing.
Result<void> nvme_probe_polled(int fd, const std::string& path, const NvmeNamespace& ns);

/// NVMe I/O opcodes used here (NVMe base specification, NVM command set).
enum class NvmeOpcode : std::uint8_t { flush = 0x00, write = 0x01, read = 0x02 };

/// Reads or writes `length` bytes at byte `offset` of the namespace with
/// as many commands as its max_transfer needs, one after the other; `fua`
/// sets Force Unit Access on writes; with `polled` the commands go to the
/// core's polled ring, which must be wide (runtime::Reactor::
/// enable_polled_ring). With `fixed_buffer` >= 0 the data is the first
/// `length` bytes of the reactor's registered buffer of that index, such as
/// a ublk request's pages in zero-copy mode, `data` is ignored, and the
/// commands go to the reactor's ring even with `polled` (the buffer is
/// registered there). `length` bytes, or -EIO for an offset or length not a
/// multiple of the LBA size and for any NVMe error status, or the kernel's
/// -errno.
runtime::Task<int> nvme_read_write(int fd, const NvmeNamespace& ns, NvmeOpcode opcode, std::byte* data,
                                   std::uint64_t offset, std::uint32_t length, bool fua, bool polled = false,
                                   int fixed_buffer = -1);
/// An NVMe Flush of the namespace (its volatile write cache). 0, -EIO for
/// an NVMe error status, or the kernel's -errno.
runtime::Task<int> nvme_flush(int fd, const NvmeNamespace& ns);

}  // namespace coblk::ublk
