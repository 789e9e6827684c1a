#include "coblk/cmd/device_content.h"

#include <blkid/blkid.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <vector>

namespace coblk::cmd {

namespace {

// The first 64 KiB of `device` (fewer for a smaller one) are zeros.
Result<bool> starts_with_zeros(const std::string& device) {
  const int fd = ::open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::from_errno(errno, "cannot open " + device);
  std::vector<char> buf(64 * 1024);
  const ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
  const int err = errno;
  ::close(fd);
  if (n < 0) return Error::from_errno(err, "cannot read " + device);
  return std::all_of(buf.begin(), buf.begin() + n, [](char c) { return c == 0; });
}

struct ProbeFree {
  void operator()(blkid_struct_probe* p) const noexcept { blkid_free_probe(p); }
};

}  // namespace

Result<DeviceContent> probe_device_content(const std::string& device) {
  DeviceContent content;
  Result<bool> zeros = starts_with_zeros(device);
  if (!zeros) return std::move(zeros).error();
  content.starts_with_zeros = *zeros;
  errno = 0;
  const std::unique_ptr<blkid_struct_probe, ProbeFree> probe(blkid_new_probe_from_filename(device.c_str()));
  if (!probe) return Error::from_errno(errno != 0 ? errno : EIO, "cannot probe " + device + " for signatures");
  blkid_probe_enable_superblocks(probe.get(), 1);
  blkid_probe_set_superblocks_flags(probe.get(), BLKID_SUBLKS_TYPE);
  blkid_probe_enable_partitions(probe.get(), 1);
  blkid_probe_set_partitions_flags(probe.get(), BLKID_PARTS_MAGIC);
  // 0: found one, 1: none, -2: signatures of several kinds, -1: an error.
  const int rc = blkid_do_safeprobe(probe.get());
  if (rc == -2) return Error(EEXIST, device + " holds signatures of more than one kind (see wipefs -n " + device + ")");
  if (rc < 0) return Error(EIO, "cannot probe " + device + " for signatures");
  if (rc == 0) {
    const char* value = nullptr;
    if (blkid_probe_lookup_value(probe.get(), "TYPE", &value, nullptr) == 0 ||
        blkid_probe_lookup_value(probe.get(), "PTTYPE", &value, nullptr) == 0) {
      content.signature = value;
    } else {
      content.signature = "unknown";  // found, but of no type libblkid names
    }
  }
  return content;
}

}  // namespace coblk::cmd
