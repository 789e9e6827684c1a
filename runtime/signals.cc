#include "coblk/runtime/signals.h"

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "coblk/runtime/io.h"

namespace coblk::runtime {

Result<SignalSet> SignalSet::block(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) {
    if (sigaddset(&set, s) != 0) return Error(EINVAL, "not a signal number: " + std::to_string(s));
  }
  if (const int ret = pthread_sigmask(SIG_BLOCK, &set, nullptr); ret != 0) {
    return Error::from_errno(ret, "cannot block the stop signals");
  }
  // Non-blocking: wait() reads only after poll said a signal is there, and
  // another reader may have taken it meanwhile.
  const int fd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) return Error::from_errno(errno, "cannot create a signalfd");
  return SignalSet(fd);
}

SignalSet::SignalSet(SignalSet&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

SignalSet& SignalSet::operator=(SignalSet&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

SignalSet::~SignalSet() {
  if (fd_ >= 0) ::close(fd_);
}

Task<int> SignalSet::wait(std::stop_token stop) {
  if (fd_ < 0) co_return -EBADF;
  for (;;) {
    const int polled = co_await poll(fd_, POLLIN).with_stop(stop);
    if (polled < 0) {
      if (polled == -EINTR) continue;
      co_return polled;
    }
    // A signalfd read is one small copy and never sleeps (non-blocking).
    signalfd_siginfo info{};
    const ssize_t n = ::read(fd_, &info, sizeof(info));
    if (n == static_cast<ssize_t>(sizeof(info))) co_return static_cast<int>(info.ssi_signo);
    if (n < 0 && errno != EAGAIN && errno != EINTR) co_return -errno;
  }
}

}  // namespace coblk::runtime
