#include "coblk/cmd/loop_backing.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "coblk/ublk/nvme_passthrough.h"

namespace coblk::cmd {

namespace {

// Resolves the backing file's size; empty string on success.
std::string backing_size(const std::string& file, uint64_t& bytes) {
  struct stat st {};
  if (::stat(file.c_str(), &st) < 0) {
    if (errno == ENOENT) return "backing file '" + file + "' does not exist";
    return "cannot use backing file '" + file + "': " + std::strerror(errno);
  }
  if (S_ISREG(st.st_mode)) {
    bytes = static_cast<uint64_t>(st.st_size);
    return {};
  }
  if (S_ISBLK(st.st_mode)) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "cannot open backing device '" + file + "': " + std::strerror(errno);
    const int ret = ::ioctl(fd, BLKGETSIZE64, &bytes);
    const int err = errno;
    ::close(fd);
    if (ret < 0) return "cannot read the size of '" + file + "': " + std::strerror(err);
    return {};
  }
  return "backing file '" + file + "' is neither a regular file nor a block device";
}

}  // namespace

std::string loop_backing(AddOptions& o, uint64_t& bytes) {
  if (!o.passthrough) return backing_size(o.file, bytes);
  // A char device has no size of its own: the namespace's, in its blocks.
  const Result<ublk::NvmeNamespace> ns = ublk::nvme_namespace(o.file);
  if (!ns) return ns.error().message();
  bytes = ns->size_bytes;
  if (!o.block_size_given) o.block_size = ns->lba_size;
  if (o.block_size % ns->lba_size != 0)
    return "--block-size " + std::to_string(o.block_size) + " is not a multiple of the " +
           std::to_string(ns->lba_size) + "-byte blocks of '" + o.file + "'";
  return {};
}

namespace {

// The identity of the file `st` describes; `fd` (or -1) is it opened, for
// the one fact stat has not: a block device's diskseq.
std::string identity_of(const struct stat& st, int fd) {
  const std::string number = std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
  if (S_ISCHR(st.st_mode)) {
    // An NVMe generic node's number goes to whatever namespace the kernel
    // finds next; the namespace's world-wide id (wwid of its block device,
    // ngXnY -> nvmeXnY, in sysfs) names the medium itself.
    std::string id = "char " + number;
    std::array<char, 4096> link{};
    const ssize_t n = ::readlink(("/sys/dev/char/" + number).c_str(), link.data(), link.size() - 1);
    const std::string target(link.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
    const std::string node = target.substr(target.rfind('/') + 1);
    if (node.rfind("ng", 0) != 0) return id;
    // "unknown" when sysfs has none: never equal to a wwid read later.
    std::string wwid;
    if (!(std::ifstream("/sys/block/nvme" + node.substr(2) + "/wwid") >> wwid)) wwid = "unknown";
    return id + " wwid " + wwid;
  }
  if (S_ISBLK(st.st_mode)) {
    // A device number names whatever disk holds it now: a loop device
    // attached to another file, a disk that came back as the same sdX.
    // The kernel numbers every disk it creates (diskseq, Linux 5.15+).
    // BLKGETDISKSEQ on an open partition answers its disk's. By number,
    // a partition has none of its own: its disk's counts (the directory
    // above the partition's in sysfs). Both give the same number.
    std::uint64_t seq = 0;
    if (fd >= 0 && ::ioctl(fd, BLKGETDISKSEQ, &seq) == 0) return "block " + number + " diskseq " + std::to_string(seq);
    const std::string dir = "/sys/dev/block/" + number;
    const bool partition = ::access((dir + "/partition").c_str(), F_OK) == 0;
    std::ifstream in(dir + (partition ? "/../diskseq" : "/diskseq"));
    return "block " + number + (in >> seq ? " diskseq " + std::to_string(seq) : std::string());
  }
  return "file " + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev)) + " " +
         std::to_string(st.st_ino);
}

}  // namespace

std::string backing_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return identity_of(st, -1);
}

std::string backing_identity_of_fd(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return {};
  return identity_of(st, fd);
}

}  // namespace coblk::cmd
