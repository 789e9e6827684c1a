#include "coblk/ublk/nvme_passthrough.h"

#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <fstream>

#include "coblk/runtime/io.h"
#include "coblk/runtime/polled_ring.h"

namespace coblk::ublk {

// The command travels in the SQE's 80-byte command area.
static_assert(sizeof(nvme_uring_cmd) == 72, "struct nvme_uring_cmd is 72 bytes (linux/nvme_ioctl.h)");
static_assert(sizeof(nvme_uring_cmd) <= runtime::uring_cmd_area, "an NVMe command fits a 128-byte SQE");

namespace {

// One number from a sysfs file, or false.
bool read_number(const std::string& file, std::uint64_t& out) {
  std::ifstream in(file);
  return static_cast<bool>(in >> out);
}

// "ng0n1" -> "nvme0n1": the block device of the same namespace (with
// native multipath both name the namespace head). Empty if the name is
// not ngXnY.
std::string block_name_of(const std::string& path) {
  const std::string base = path.substr(path.find_last_of('/') + 1);
  if (base.size() < 5 || base.compare(0, 2, "ng") != 0) return {};
  const std::size_t n = base.find('n', 2);
  if (n == std::string::npos || n == 2 || n + 1 == base.size()) return {};
  for (std::size_t i = 2; i < base.size(); ++i) {
    if (i != n && (base[i] < '0' || base[i] > '9')) return {};
  }
  return "nvme" + base.substr(2);
}

// One NVMe command, on the core's polled ring with `polled`, its data in
// registered buffer `fixed_buffer` when that is >= 0 (then on the reactor's
// ring even with `polled`: the buffer is registered there); its CQE's res
// is 0, an NVMe status (> 0), or -errno.
runtime::Task<int> submit(int fd, const nvme_uring_cmd& cmd, bool polled, int fixed_buffer) {
  int ret = 0;
  if (polled && fixed_buffer < 0) {
    ret = co_await runtime::polled_uring_cmd(fd, NVME_URING_CMD_IO, &cmd, sizeof(cmd));
  } else {
    ret = co_await runtime::uring_cmd(fd, NVME_URING_CMD_IO, &cmd, sizeof(cmd), fixed_buffer);
  }
  // Any NVMe status is a failed command: the data is not what was asked.
  co_return ret > 0 ? -EIO : ret;
}

// The command that reads or writes `length` bytes at block `slba` from or
// to `addr` (a user address, or an offset into a registered buffer).
nvme_uring_cmd read_write_command(const NvmeNamespace& ns, NvmeOpcode opcode, std::uint64_t addr, std::uint64_t slba,
                                  std::uint32_t length, bool fua) {
  nvme_uring_cmd cmd{};
  cmd.opcode = static_cast<std::uint8_t>(opcode);
  cmd.nsid = ns.nsid;
  cmd.addr = addr;
  cmd.data_len = length;
  cmd.cdw10 = static_cast<std::uint32_t>(slba);
  cmd.cdw11 = static_cast<std::uint32_t>(slba >> 32);
  // Number of logical blocks, 0-based; bit 30 is FUA.
  cmd.cdw12 = (length / ns.lba_size - 1) | (fua && opcode == NvmeOpcode::write ? 1u << 30 : 0u);
  return cmd;
}

}  // namespace

Result<NvmeNamespace> nvme_namespace(int fd, const std::string& path) {
  struct stat st {};
  const std::string block = block_name_of(path);
  if (::fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode) || block.empty())
    return Error(
        EINVAL,
        "'" + path + "' is not an NVMe namespace's generic char device (/dev/ngXnY), which --passthrough needs");
  const int nsid = ::ioctl(fd, NVME_IOCTL_ID);
  if (nsid <= 0) return Error::from_errno(nsid < 0 ? errno : EINVAL, "'" + path + "' does not answer NVME_IOCTL_ID");
  NvmeNamespace ns;
  ns.nsid = static_cast<std::uint32_t>(nsid);
  const std::string sys = "/sys/block/" + block;
  std::uint64_t lba = 0;
  std::uint64_t sectors = 0;
  std::uint64_t max_kb = 0;
  std::uint64_t segments = 0;
  if (!read_number(sys + "/queue/logical_block_size", lba) || !read_number(sys + "/size", sectors) ||
      !read_number(sys + "/queue/max_hw_sectors_kb", max_kb) || !read_number(sys + "/queue/max_segments", segments))
    return Error(ENOENT, "cannot read the geometry of '" + path + "' from " + sys);
  if (lba < 512 || lba > 4096 || (lba & (lba - 1)) != 0)
    return Error(EINVAL, "'" + path + "' has " + std::to_string(lba) + "-byte blocks; coblk serves 512 to 4096");
  ns.lba_size = static_cast<std::uint32_t>(lba);
  ns.size_bytes = sectors * 512;
  ns.block_device = "/dev/" + block;
  // The kernel maps a command's user buffer into one request: at most
  // max_hw_sectors, and one segment per page (a page-aligned buffer; one
  // segment spare for an unaligned one), in whole blocks.
  std::uint64_t max = std::min<std::uint64_t>(max_kb * 1024, segments > 1 ? (segments - 1) * 4096 : 4096);
  max = std::min<std::uint64_t>(max, 1u << 20);
  ns.max_transfer = static_cast<std::uint32_t>(max - max % lba);
  if (ns.max_transfer == 0) ns.max_transfer = ns.lba_size;
  return ns;
}

Result<NvmeNamespace> nvme_namespace(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::from_errno(errno, "cannot open '" + path + "'");
  Result<NvmeNamespace> ns = nvme_namespace(fd, path);
  ::close(fd);
  return ns;
}

Result<void> nvme_probe_polled(int fd, const std::string& path, const NvmeNamespace& ns) {
  std::uint64_t io_poll = 0;
  if (!read_number("/sys/block/" + block_name_of(path) + "/queue/io_poll", io_poll) || io_poll != 1)
    return Error(EOPNOTSUPP, "'" + path +
                                 "' has no poll queues, which --iopoll needs (for NVMe: the nvme.poll_queues module "
                                 "parameter)");
  void* buffer = nullptr;
  if (::posix_memalign(&buffer, 4096, ns.lba_size) != 0) return Error(ENOMEM, "out of memory");
  const nvme_uring_cmd cmd =
      read_write_command(ns, NvmeOpcode::read, reinterpret_cast<std::uintptr_t>(buffer), 0, ns.lba_size, false);
  int ret = runtime::PolledRing::probe_command(fd, NVME_URING_CMD_IO, &cmd, sizeof(cmd));
  // A command that timed out may still be in the kernel, which owns the
  // buffer until it completes: leave it allocated then.
  if (ret != -ETIMEDOUT) ::free(buffer);
  if (ret > 0) ret = -EIO;  // an NVMe status
  if (ret == -EOPNOTSUPP)
    return Error(EOPNOTSUPP, "this kernel does not poll NVMe passthrough commands on '" + path + "' (--iopoll)");
  if (ret < 0) return Error::from_errno(-ret, "a polled NVMe read of '" + path + "' (--iopoll) failed");
  return ok();
}

runtime::Task<int> nvme_read_write(int fd, const NvmeNamespace& ns, NvmeOpcode opcode, std::byte* data,
                                   std::uint64_t offset, std::uint32_t length, bool fua, bool polled,
                                   int fixed_buffer) {
  // The device advertises the LBA size as its logical block size, so the
  // kernel never sends a request that is not a whole number of blocks.
  if (offset % ns.lba_size != 0 || length % ns.lba_size != 0) co_return -EIO;
  std::uint32_t done = 0;
  while (done < length) {
    const std::uint32_t chunk = std::min(length - done, ns.max_transfer);
    const std::uint64_t slba = (offset + done) / ns.lba_size;
    // In a registered buffer the address is the offset from its start.
    const std::uint64_t addr = fixed_buffer >= 0 ? done : reinterpret_cast<std::uintptr_t>(data + done);
    const nvme_uring_cmd cmd = read_write_command(ns, opcode, addr, slba, chunk, fua);
    const int ret = co_await submit(fd, cmd, polled, fixed_buffer);
    if (ret < 0) co_return ret;
    done += chunk;
  }
  co_return static_cast<int>(done);
}

runtime::Task<int> nvme_flush(int fd, const NvmeNamespace& ns) {
  nvme_uring_cmd cmd{};
  cmd.opcode = static_cast<std::uint8_t>(NvmeOpcode::flush);
  cmd.nsid = ns.nsid;
  // On the interrupt-driven ring even with --iopoll: a flush carries no
  // data, and its latency is the device's cache, not the completion path.
  co_return co_await submit(fd, cmd, false, -1);
}

}  // namespace coblk::ublk
