// The zram backing tier on a file or block device: O_DIRECT where the file
// system allows it, io_uring reads and writes on the queue's core.

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "coblk/runtime/io.h"
#include "coblk/ublk/tier_backend.h"

namespace coblk::ublk {

namespace {

constexpr std::uint64_t block_size = 4096;
constexpr std::uint64_t min_backing_blocks = 64;

class FileTier final : public TierBackend {
 public:
  FileTier(int fd, std::uint64_t blocks) noexcept : fd_(fd), blocks_(blocks) {}
  ~FileTier() override { ::close(fd_); }
  FileTier(const FileTier&) = delete;
  FileTier& operator=(const FileTier&) = delete;

  std::uint64_t blocks() const noexcept override { return blocks_; }
  int fd() const noexcept override { return fd_; }
  runtime::Task<int> start_queue(std::uint16_t /*queue*/) override { co_return 0; }
  runtime::Task<int> read(std::uint16_t /*queue*/, std::uint64_t offset, std::byte* out, std::uint32_t bytes) override {
    co_return co_await runtime::read(fd_, out, bytes, offset);
  }
  runtime::Task<int> write(std::uint16_t /*queue*/, std::uint64_t offset, const std::byte* data,
                           std::uint32_t bytes) override {
    co_return co_await runtime::write(fd_, data, bytes, offset);
  }

 private:
  int fd_;
  std::uint64_t blocks_;
};

}  // namespace

bool is_nbd_tier(const std::string& spec) noexcept { return spec.rfind("nbd:", 0) == 0; }

Result<std::unique_ptr<TierBackend>> open_tier_backend(const TierBackendConfig& config) {
  return is_nbd_tier(config.spec) ? open_nbd_tier(config) : open_file_tier(config.spec);
}

Result<std::unique_ptr<TierBackend>> open_file_tier(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return Error::from_errno(err, err == ENOENT ? "backing " + path +
                                                      " does not exist (create the file first, e.g. "
                                                      "with truncate -s)"
                                                : "cannot use backing " + path);
  }
  const bool device = S_ISBLK(st.st_mode);
  if (!device && !S_ISREG(st.st_mode)) {
    return Error(EINVAL, "backing " + path + " is neither a regular file nor a block device");
  }
  // O_DIRECT: written-back pages must leave memory, not sit in the page
  // cache. A file system without it (tmpfs) gets buffered I/O. O_EXCL on
  // a block device: the kernel refuses it while mounted, swapped on or
  // held exclusively by anyone else.
  const int base = O_RDWR | O_CLOEXEC | (device ? O_EXCL : 0);
  int fd = ::open(path.c_str(), base | O_DIRECT);
  if (fd < 0 && errno == EINVAL) {
    fd = ::open(path.c_str(), base);
  }
  if (fd < 0) {
    const int err = errno;
    if (err == EBUSY) {
      return Error(EBUSY, "backing device " + path + " is busy (mounted, used as swap, or held by another program)");
    }
    if (err == EACCES || err == EROFS || err == EPERM) {
      return Error::from_errno(err, "backing " + path + " is not writable");
    }
    return Error::from_errno(err, "cannot open backing " + path);
  }
  auto fail = [&](Error e) -> Result<std::unique_ptr<TierBackend>> {
    ::close(fd);
    return e;
  };
  // One device per backing file: a second coblk device on the same file
  // would overwrite the first one's pages.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    return fail(Error(EBUSY, "backing " + path + " is in use by another coblk device"));
  }
  std::uint64_t bytes = static_cast<std::uint64_t>(st.st_size);
  if (device && ::ioctl(fd, BLKGETSIZE64, &bytes) != 0) {
    return fail(Error::from_errno(errno, "cannot get the size of backing device " + path));
  }
  const std::uint64_t blocks = bytes / block_size;
  if (blocks < min_backing_blocks) {
    return fail(Error(EINVAL, "backing " + path + " holds " + std::to_string(bytes) +
                                  " bytes; at least 256 KiB (64 blocks of 4 KiB) are needed"));
  }
  return std::unique_ptr<TierBackend>(new FileTier(fd, blocks));
}

}  // namespace coblk::ublk
