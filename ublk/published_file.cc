#include "coblk/ublk/published_file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace coblk::ublk {

int create_file_beside(const std::string& path, std::string& name) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    unsigned long long random = 0;
    if (::getrandom(&random, sizeof(random), 0) != static_cast<ssize_t>(sizeof(random))) return -EIO;
    char suffix[24];
    std::snprintf(suffix, sizeof(suffix), ".%016llx", random);
    name = path + suffix;
    const int fd = ::open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) {
      if (::fchmod(fd, 0644) == 0) return fd;
      const int err = errno;
      ::close(fd);
      ::unlink(name.c_str());
      return -err;
    }
    if (errno != EEXIST) return -errno;
  }
  return -EEXIST;
}

bool pread_exactly(int fd, void* buf, std::size_t n, off_t offset) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd, static_cast<char*>(buf) + done, n - done, offset + static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    done += static_cast<std::size_t>(got);
  }
  return true;
}

}  // namespace coblk::ublk
