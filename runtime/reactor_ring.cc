// Reactor: its io_uring (setup, the probe of supported operations,
// registered files and buffers, the polled ring, the eventfd read) and the
// slow path of the SQE supply. The loop itself is in reactor.cc.
#include <errno.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <system_error>

#include "coblk/runtime/polled_ring.h"
#include "coblk/runtime/reactor.h"
#include "coblk/runtime/reactor_user_data.h"

namespace coblk::runtime {

void Reactor::setup_ring() {
  unsigned base = IORING_SETUP_CQSIZE;
  if (config_.sqe128) {
    base |= IORING_SETUP_SQE128;
  }
  if (config_.cqe32) {
    base |= IORING_SETUP_CQE32;  // reap() steps over the big CQEs
  }
  if (config_.sqpoll) {
    base |= IORING_SETUP_SQPOLL;
  }
  // Preferred flags first, then drop one at a time when the kernel says
  // EINVAL. DEFER_TASKRUN needs SINGLE_ISSUER and cannot go with SQPOLL.
  // TASKRUN_FLAG (with COOP_TASKRUN or DEFER_TASKRUN) makes the kernel set
  // IORING_SQ_TASKRUN when completions wait to be run, which idle polling
  // reads instead of entering the kernel.
  std::vector<unsigned> candidates;
  const unsigned all = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                       IORING_SETUP_SINGLE_ISSUER | (config_.sqpoll ? 0u : IORING_SETUP_DEFER_TASKRUN);
  candidates.push_back(all);
  candidates.push_back(all & ~IORING_SETUP_DEFER_TASKRUN);
  candidates.push_back(all & ~(IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER));
  candidates.push_back(IORING_SETUP_SUBMIT_ALL);
  candidates.push_back(0);

  int last_error = 0;
  for (unsigned extra : candidates) {
    io_uring_params params{};
    params.flags = base | extra;
    params.cq_entries = config_.ring_entries * 2;
    if (config_.sqpoll) {
      params.sq_thread_idle = config_.sqpoll_idle_ms;
      if (!config_.sqpoll_cpus.empty()) {
        params.flags |= IORING_SETUP_SQ_AFF;
        params.sq_thread_cpu = config_.sqpoll_cpus[core_ % config_.sqpoll_cpus.size()];
      }
    }
    const int ret = io_uring_queue_init_params(config_.ring_entries, &ring_, &params);
    if (ret == 0) {
      ring_flags_ = params.flags;
      sqe_shift_ = (ring_flags_ & IORING_SETUP_SQE128) != 0 ? 1 : 0;
      poll_needs_enter_ = (ring_flags_ & (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN)) != 0 &&
                          (ring_flags_ & IORING_SETUP_TASKRUN_FLAG) == 0;
      return;
    }
    last_error = -ret;
    if (ret != -EINVAL) {
      break;
    }
  }
  throw std::system_error(last_error, std::generic_category(),
                          "runtime: core " + std::to_string(core_) + ": cannot create an io_uring");
}

void Reactor::probe_ops() {
  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  if (probe == nullptr) {
    return;
  }
  for (unsigned op = 0; op < 256 && op <= probe->last_op; ++op) {
    if (io_uring_opcode_supported(probe, static_cast<int>(op))) {
      supported_ops_[op / 64] |= 1ull << (op % 64);
    }
  }
  io_uring_free_probe(probe);
  has_msg_ring_ = supports_op(IORING_OP_MSG_RING);
}

bool Reactor::supports_op(unsigned opcode) const noexcept {
  return opcode < 256 && (supported_ops_[opcode / 64] >> (opcode % 64) & 1u) != 0;
}

int Reactor::register_files(std::span<const int> fds) {
  return io_uring_register_files(&ring_, fds.data(), static_cast<unsigned>(fds.size()));
}

int Reactor::install_file(int fd) {
  if (!file_table_tried_) {
    file_table_tried_ = true;
    const int ret =
        config_.fixed_file_slots == 0 ? -ENFILE : io_uring_register_files_sparse(&ring_, config_.fixed_file_slots);
    file_table_error_ = ret < 0 ? ret : 0;
    if (ret >= 0) file_slot_used_.assign(config_.fixed_file_slots, false);
  }
  if (file_table_error_ < 0) return file_table_error_;
  for (std::size_t i = 0; i < file_slot_used_.size(); ++i) {
    if (file_slot_used_[i]) continue;
    const auto index = static_cast<unsigned>(i);
    const int ret = io_uring_register_files_update(&ring_, index, &fd, 1);
    if (ret < 0) return ret;
    file_slot_used_[i] = true;
    return static_cast<int>(index);
  }
  return -ENFILE;
}

void Reactor::remove_file(int index) noexcept {
  if (index < 0 || static_cast<std::size_t>(index) >= file_slot_used_.size()) return;
  const int empty = -1;  // the kernel's "no file" for a slot
  (void)io_uring_register_files_update(&ring_, static_cast<unsigned>(index), &empty, 1);
  file_slot_used_[static_cast<std::size_t>(index)] = false;
}

int Reactor::register_buffers(std::span<const iovec> buffers) {
  return io_uring_register_buffers(&ring_, buffers.data(), static_cast<unsigned>(buffers.size()));
}

int Reactor::enable_polled_ring(unsigned entries, bool wide) {
  if (polled_ != nullptr) return wide && !polled_->wide() ? -EINVAL : 0;
  Result<std::unique_ptr<PolledRing>> ring = PolledRing::create(entries, wide);
  if (!ring) return -ring.error().code();
  polled_ = std::move(ring).value();
  return 0;
}

void Reactor::spin_polled() {
  polled_->poll(*this);
  // The main ring too, but only when it has something: entering the kernel
  // for it on every spin would double the syscalls.
  if (unsubmitted_ != 0 || poll_needs_enter_ || cq_has_work()) submit_and_reap(false);
}

void Reactor::arm_eventfd_read() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, eventfd_, &eventfd_buffer_, sizeof(eventfd_buffer_), 0);
  io_uring_sqe_set_data64(sqe, reactor_user_data::eventfd);
}

io_uring_sqe* Reactor::get_sqe_slow(unsigned count) {
  for (;;) {
    // Acquire with SQPOLL (the poller advances the head concurrently): the
    // kernel has read the SQEs before we reuse them.
    const unsigned head =
        (ring_flags_ & IORING_SETUP_SQPOLL) != 0 ? io_uring_smp_load_acquire(ring_.sq.khead) : *ring_.sq.khead;
    sq_limit_ = head + ring_.sq.ring_entries;
    if (sq_limit_ - ring_.sq.sqe_tail >= count) break;
    // The submission queue is full: hand what we have to the kernel.
    const int ret = enter(0, false);
    if (ret > 0) {
      unsubmitted_ = 0;
    } else if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
      throw std::system_error(-ret, std::generic_category(), "io_uring_submit");
    }
    reap();
  }
  io_uring_sq& sq = ring_.sq;
  const unsigned tail = sq.sqe_tail;
  sq.sqe_tail = tail + 1;
  ++unsubmitted_;
  return &sq.sqes[(tail & sq.ring_mask) << sqe_shift_];
}

void Reactor::cancel(std::uint64_t user_data) {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_cancel64(sqe, user_data, 0);
  io_uring_sqe_set_data64(sqe, ignored_user_data);
}

}  // namespace coblk::runtime
