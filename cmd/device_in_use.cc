#include "coblk/cmd/device_in_use.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace coblk::cmd {

Result<void> check_not_in_use(const std::string& device) {
  // O_EXCL on a block device asks for a claim, and the kernel refuses it
  // (EBUSY) while a mount, swapon, a holder (partition, dm, md) or another
  // exclusive opener has one. Read-only: the open and close write nothing.
  const int fd = ::open(device.c_str(), O_RDONLY | O_CLOEXEC | O_EXCL);
  if (fd >= 0) {
    ::close(fd);
    return {};
  }
  if (errno == EBUSY)
    return Error(EBUSY, device +
                            " is in use (mounted in some mount namespace, active swap, a partition, device "
                            "mapper or another program holds it)");
  if (errno == ENOENT || errno == ENXIO) return {};
  return Error::from_errno(errno, "cannot tell whether " + device + " is in use: open");
}

}  // namespace coblk::cmd
