#include "coblk/runtime/polled_ring.h"

#include <errno.h>
#include <stdlib.h>

#include <cstring>
#include <system_error>

#include "coblk/runtime/cycle_clock.h"

namespace coblk::runtime {

Result<std::unique_ptr<PolledRing>> PolledRing::create(unsigned entries, bool wide) {
  std::unique_ptr<PolledRing> ring(new PolledRing(entries));
  // SINGLE_ISSUER where the kernel has it (6.0): the ring is only ever
  // used by the reactor thread that made it. No DEFER_TASKRUN/COOP_TASKRUN:
  // polled completions are posted by the polling itself, not by task work.
  const unsigned shape = wide ? IORING_SETUP_SQE128 | IORING_SETUP_CQE32 : 0u;
  int ret = -EINVAL;
  for (const unsigned extra : {unsigned{IORING_SETUP_SINGLE_ISSUER}, 0u}) {
    io_uring_params params{};
    params.flags = IORING_SETUP_IOPOLL | IORING_SETUP_CQSIZE | shape | extra;
    params.cq_entries = entries * 2;
    ret = io_uring_queue_init_params(entries, &ring->ring_, &params);
    if (ret != -EINVAL) break;
  }
  if (ret < 0) return Error::from_errno(-ret, "cannot create a polled io_uring (IORING_SETUP_IOPOLL)");
  ring->ring_ready_ = true;
  return ring;
}

PolledRing::~PolledRing() {
  // The kernel reaps polled requests still in flight when the ring exits.
  if (ring_ready_) io_uring_queue_exit(&ring_);
}

io_uring_sqe* PolledRing::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    // Full: hand the queue to the kernel (which, on a polled ring, also
    // polls); completions are reaped by the reactor's next poll().
    const int ret = io_uring_submit(&ring_);
    if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
      throw std::system_error(-ret, std::generic_category(), "io_uring_submit (polled ring)");
    }
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

unsigned PolledRing::reap(Reactor* reactor) noexcept {
  io_uring_cq& cq = ring_.cq;
  unsigned head = *cq.khead;
  // Acquire pairs with the kernel's release when it posts CQEs.
  const unsigned tail = io_uring_smp_load_acquire(cq.ktail);
  const unsigned seen = tail - head;
  const unsigned shift = wide() ? 1 : 0;  // a 32-byte CQE takes two slots
  for (; head != tail; ++head) {
    const io_uring_cqe* cqe = &cq.cqes[(head & cq.ring_mask) << shift];
    // A CQE that names no operation in flight here is ignored.
    const Waiter* waiter = slots_.complete(cqe->user_data, cqe->res, cqe->flags);
    if (waiter != nullptr && reactor != nullptr) reactor->schedule(*waiter);
  }
  // Release hands the entries back to the kernel after we read them.
  io_uring_smp_store_release(cq.khead, tail);
  return seen;
}

unsigned PolledRing::poll(Reactor& reactor) noexcept {
  // io_uring_submit on a polled ring enters with GETEVENTS, so it polls
  // too; with nothing to submit, get_events polls once (min_complete 0:
  // the kernel looks at the device's completion queue and returns).
  if (io_uring_sq_ready(&ring_) != 0) {
    (void)io_uring_submit(&ring_);
  } else if (io_uring_cq_ready(&ring_) == 0) {
    (void)io_uring_get_events(&ring_);
  }
  // An error of the enter itself (-EINTR, -EAGAIN, -EBUSY) leaves the SQEs
  // queued and the requests in flight: the next loop iteration tries again.
  return reap(reactor.draining() ? nullptr : &reactor);
}

std::uint32_t PolledRing::drain(std::uint64_t timeout_ns) noexcept {
  const std::uint64_t deadline = CycleClock::now() + CycleClock::from_ns(timeout_ns);
  while (slots_.in_flight() != 0 && CycleClock::now() < deadline) {
    if (io_uring_sq_ready(&ring_) != 0) {
      (void)io_uring_submit(&ring_);
    } else {
      (void)io_uring_get_events(&ring_);
    }
    reap(nullptr);
  }
  return slots_.in_flight();
}

int PolledRing::probe(int fd, std::uint32_t bytes) noexcept {
  if (bytes == 0 || bytes > 64 * 1024) return -EINVAL;
  void* buffer = nullptr;
  if (::posix_memalign(&buffer, 4096, bytes) != 0) return -ENOMEM;
  std::memset(buffer, 0, bytes);
  io_uring ring{};
  int ret = io_uring_queue_init(4, &ring, IORING_SETUP_IOPOLL);
  if (ret == 0) {
    io_uring_prep_read(io_uring_get_sqe(&ring), fd, buffer, bytes, 0);
    ret = submit_and_poll_once(ring);
    if (ret > 0) ret = 0;
    io_uring_queue_exit(&ring);
  }
  // A read that timed out may still be in the kernel, whose exit work
  // reaps it later: its buffer is left allocated rather than freed under it.
  if (ret != -ETIMEDOUT) ::free(buffer);
  return ret;
}

int PolledRing::probe_command(int fd, std::uint32_t cmd_op, const void* cmd, std::size_t len) noexcept {
  if (len > uring_cmd_area) return -EINVAL;
  io_uring ring{};
  int ret = io_uring_queue_init(4, &ring, IORING_SETUP_IOPOLL | IORING_SETUP_SQE128 | IORING_SETUP_CQE32);
  if (ret < 0) return ret;
  detail::uring_cmd_prep(fd, cmd_op, cmd, len, -1)(io_uring_get_sqe(&ring));
  ret = submit_and_poll_once(ring);
  io_uring_queue_exit(&ring);
  return ret;
}

int PolledRing::submit_and_poll_once(io_uring& ring) noexcept {
  int ret = io_uring_submit(&ring);
  if (ret != 1) return ret < 0 ? ret : -EIO;  // not taken: cannot happen with room for 4
  // On a polled ring, waiting means polling: each get_events polls the
  // device once; give it a second.
  const std::uint64_t deadline = CycleClock::now() + CycleClock::from_ns(1000000000ull);
  while (CycleClock::now() < deadline) {
    io_uring_cqe* cqe = nullptr;
    if (io_uring_peek_cqe(&ring, &cqe) == 0 && cqe != nullptr) {
      ret = cqe->res;
      io_uring_cqe_seen(&ring, cqe);
      return ret;
    }
    (void)io_uring_get_events(&ring);
  }
  return -ETIMEDOUT;
}

}  // namespace coblk::runtime
