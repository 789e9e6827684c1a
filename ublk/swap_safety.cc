#include "coblk/ublk/swap_safety.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

namespace coblk::ublk {

namespace {

// CAP_IPC_LOCK is in the effective set (bit 14 of CapEff in /proc/self/status).
bool may_lock_unlimited() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_MEMLOCK, &limit) == 0 && limit.rlim_cur == RLIM_INFINITY) {
    return true;
  }
  const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return ::geteuid() == 0;
  }
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) {
    return ::geteuid() == 0;
  }
  buf[n] = '\0';
  const char* cap = std::strstr(buf, "CapEff:");
  if (cap == nullptr) {
    return ::geteuid() == 0;
  }
  const unsigned long long eff = std::strtoull(cap + 7, nullptr, 16);
  return (eff >> 14 & 1) != 0;
}

}  // namespace

std::vector<std::string> protect_server_process() {
  std::vector<std::string> problems;
  if (!may_lock_unlimited()) {
    problems.emplace_back(
        "memory not locked: no CAP_IPC_LOCK and RLIMIT_MEMLOCK is limited; do not use this device as swap");
  } else if (::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0) {
    problems.push_back(std::string("memory not locked: mlockall: ") + std::strerror(errno) +
                       "; do not use this device as swap");
  }
  const int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::write(fd, "-1000", 5) != 5) {
    problems.push_back(std::string("oom_score_adj not set: ") + std::strerror(errno));
  }
  if (fd >= 0) {
    ::close(fd);
  }
  return problems;
}

int mark_io_flusher_thread() { return ::prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == 0 ? 0 : -errno; }

}  // namespace coblk::ublk
