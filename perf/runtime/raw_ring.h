// perf/runtime/raw_ring.h - a bare io_uring for the raw-liburing baselines.
#pragma once

#include <liburing.h>

#include <cstring>
#include <stdexcept>
#include <string>

namespace coblk::perf {

/// An io_uring set up with exactly the flags a reactor's ring got, so the
/// raw-liburing baselines pay the same kernel costs as the runtime (with
/// DEFER_TASKRUN and SINGLE_ISSUER it must be created, like a reactor's ring,
/// on the thread that uses it).
class RawRing {
 public:
  /// `entries` SQEs and 2 * entries CQEs (as ReactorConfig does); `flags`
  /// is Reactor::ring_flags(). Throws std::runtime_error on failure.
  RawRing(unsigned entries, unsigned flags, unsigned sqpoll_idle_ms = 10) {
    io_uring_params params{};
    params.flags = flags | IORING_SETUP_CQSIZE;
    params.cq_entries = entries * 2;
    params.sq_thread_idle = sqpoll_idle_ms;
    const int ret = io_uring_queue_init_params(entries, &ring_, &params);
    if (ret < 0) {
      throw std::runtime_error(std::string("raw io_uring setup: ") + std::strerror(-ret));
    }
  }
  ~RawRing() { io_uring_queue_exit(&ring_); }
  RawRing(const RawRing&) = delete;
  RawRing& operator=(const RawRing&) = delete;

  io_uring* get() noexcept { return &ring_; }

 private:
  io_uring ring_{};
};

/// Throws when a liburing call returned a negative errno.
inline void check_uring(int ret, const char* what) {
  if (ret < 0) {
    throw std::runtime_error(std::string(what) + ": " + std::strerror(-ret));
  }
}

}  // namespace coblk::perf
