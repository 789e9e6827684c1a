// runtime/polled_ring.h - a core's second io_uring, set up with IORING_SETUP_IOPOLL, and the awaitables that use it.
#pragma once

// Polled I/O (IORING_SETUP_IOPOLL) completes only when someone asks the
// kernel to poll the device's completion queue: no interrupt, no task work,
// no sleep. A ring is either polled or not, and a polled ring takes only
// O_DIRECT reads and writes (and driver commands that poll) on files whose
// driver polls, so a core that wants polled I/O keeps a second ring beside
// its reactor's own: Reactor::enable_polled_ring creates it, the awaitables
// below queue on it, and the reactor polls it on every loop iteration while
// anything is in flight there, spinning instead of sleeping (docs/runtime.md,
// "Polled I/O").

#include <liburing.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "coblk/runtime/io.h"
#include "coblk/runtime/reactor.h"
#include "coblk/runtime/result.h"
#include "coblk/runtime/slot_table.h"

namespace coblk::runtime {

/// One core's IOPOLL io_uring with its own SlotTable (user_data is a slot
/// index and generation, as on the reactor's ring). Used only on its
/// reactor's thread; made by Reactor::enable_polled_ring.
class PolledRing {
 public:
  /// A ring of `entries` SQEs (CQ twice that), IOPOLL and, where the kernel
  /// has it, SINGLE_ISSUER; with `wide`, 128-byte SQEs and 32-byte CQEs
  /// (SQE128 | CQE32), which driver commands (polled_uring_cmd) need. Error:
  /// the kernel's refusal.
  static Result<std::unique_ptr<PolledRing>> create(unsigned entries, bool wide = false);
  ~PolledRing();
  PolledRing(const PolledRing&) = delete;
  PolledRing& operator=(const PolledRing&) = delete;

  /// An SQE; when the submission queue is full, what is queued goes to the
  /// kernel first. Throws std::system_error if that submission fails.
  io_uring_sqe* get_sqe();
  /// Opens a slot for an operation awaited by `waiter`; returns its user_data.
  std::uint64_t open_slot(const Waiter& waiter) { return slots_.open(waiter); }
  /// The result of a completed slot; frees the slot.
  int close_slot(std::uint64_t user_data) noexcept { return slots_.close(user_data); }
  /// True while an operation is queued or in the kernel: the reactor must
  /// then poll, not sleep.
  bool busy() const noexcept { return slots_.in_flight() != 0; }
  /// Operations queued or in the kernel.
  std::uint32_t in_flight() const noexcept { return slots_.in_flight(); }
  /// Whether the ring has 128-byte SQEs and 32-byte CQEs (create's `wide`).
  bool wide() const noexcept { return (ring_.flags & IORING_SETUP_SQE128) != 0; }
  /// Submits what is queued and asks the kernel to poll once (one
  /// io_uring_enter, without waiting), then reaps: each completed
  /// operation's waiter is scheduled on `reactor` (unless it is draining).
  /// Returns the number of completions reaped.
  unsigned poll(Reactor& reactor) noexcept;
  /// Polls until nothing is in flight or `timeout_ns` has passed, resuming
  /// no waiter (shutdown: see Reactor::drain_io). Returns what is left.
  std::uint32_t drain(std::uint64_t timeout_ns) noexcept;

  /// Whether `fd` (opened with O_DIRECT) takes polled I/O: one polled read
  /// of `bytes` (a multiple of its logical block size, at most 64 KiB) at
  /// offset 0, on a ring of its own, on the calling thread. 0, or -errno:
  /// -EOPNOTSUPP when the file's device has no poll queues (or the file
  /// is no O_DIRECT file of a polling driver), -ETIMEDOUT after a second
  /// without a completion.
  static int probe(int fd, std::uint32_t bytes) noexcept;

  /// Whether `fd` takes polled driver commands: one IORING_OP_URING_CMD
  /// `cmd_op` with `len` (at most 80) bytes of `cmd` on a wide polled ring of
  /// its own, on the calling thread. The command's result (the driver's: 0,
  /// a positive driver status, or -errno), -EOPNOTSUPP when the file's driver
  /// cannot poll commands, or -ETIMEDOUT after a second without a completion.
  /// Any buffer `cmd` names must outlive a timed-out command (the kernel
  /// still owns it then).
  static int probe_command(int fd, std::uint32_t cmd_op, const void* cmd, std::size_t len) noexcept;

 private:
  explicit PolledRing(unsigned entries) : slots_(entries * 2) {}
  unsigned reap(Reactor* reactor) noexcept;
  // Submits the one SQE queued on `ring` (a polled ring) and polls for its
  // CQE for up to a second: its result, or -ETIMEDOUT.
  static int submit_and_poll_once(io_uring& ring) noexcept;

  io_uring ring_{};
  bool ring_ready_ = false;
  SlotTable slots_;
};

/// An operation on the calling core's polled ring, prepared by `Prep` (a
/// callable that fills an SQE). Completes with -ENXIO, without submitting,
/// on a core without a polled ring (Reactor::enable_polled_ring), and with
/// -ECANCELED on a draining reactor. Polled operations cannot be cancelled
/// (the kernel completes them promptly anyway).
template <typename Prep>
class [[nodiscard]] PolledOp {
 public:
  /// An operation that `prep` prepares once awaited.
  explicit PolledOp(Prep prep) noexcept : prep_(std::move(prep)) {}
  /// Movable until awaited.
  PolledOp(PolledOp&&) noexcept = default;
  PolledOp& operator=(PolledOp&&) = delete;

  /// Always false: only the CQE completes an operation.
  bool await_ready() const noexcept { return false; }
  /// Queues the SQE on this core's polled ring and suspends until the
  /// reactor's polling finds its completion.
  bool await_suspend(std::coroutine_handle<> awaiter) {
    Reactor* r = Reactor::current();
    PolledRing* ring = r->polled_ring();
    if (r->draining() || ring == nullptr) {
      result_ = ring == nullptr ? -ENXIO : -ECANCELED;
      return false;
    }
    io_uring_sqe* sqe = ring->get_sqe();
    prep_(sqe);
    ring_ = ring;
    user_data_ = ring->open_slot(r->waiter_for(awaiter));
    io_uring_sqe_set_data64(sqe, user_data_);
    return true;
  }
  /// The CQE's result: >= 0 on success, or a negative errno.
  int await_resume() noexcept { return user_data_ == 0 ? result_ : ring_->close_slot(user_data_); }

 private:
  Prep prep_;
  PolledRing* ring_ = nullptr;
  std::uint64_t user_data_ = 0;  // 0 until submitted (slot user_data is never 0)
  int result_ = 0;
};

/// IORING_OP_URING_CMD on the calling core's polled ring: driver command
/// `cmd_op` on `fd` with up to 80 bytes of payload (copied when the
/// operation is created), completed by polling (e.g. an NVMe passthrough
/// command on /dev/ngXnY with the driver's poll queues). The ring must be
/// wide (Reactor::enable_polled_ring with `wide`): on a narrow ring, or with
/// a payload over 80 bytes, the result is -EINVAL without submitting; on a
/// core without a polled ring, -ENXIO. Result as defined by the driver.
class [[nodiscard]] PolledUringCmd {
 public:
  /// Made by polled_uring_cmd().
  PolledUringCmd(PolledOp<detail::UringCmdPrep> op, bool too_long) noexcept : op_(std::move(op)), too_long_(too_long) {}
  /// Always false: only the CQE completes a command.
  bool await_ready() const noexcept { return false; }
  /// Queues the command and suspends; does not suspend when the payload was
  /// too long or the ring is narrow (-EINVAL), or as PolledOp does not.
  bool await_suspend(std::coroutine_handle<> h) {
    const PolledRing* ring = Reactor::current()->polled_ring();
    if (too_long_ || (ring != nullptr && !ring->wide())) {
      invalid_ = true;
      return false;
    }
    return op_.await_suspend(h);
  }
  /// The driver's result, or -EINVAL when the command was not submitted.
  int await_resume() noexcept { return invalid_ ? -EINVAL : op_.await_resume(); }

 private:
  PolledOp<detail::UringCmdPrep> op_;
  bool too_long_;
  bool invalid_ = false;
};

/// See PolledUringCmd.
inline PolledUringCmd polled_uring_cmd(int fd, std::uint32_t cmd_op, const void* cmd, std::size_t len) noexcept {
  return PolledUringCmd(PolledOp(detail::uring_cmd_prep(fd, cmd_op, cmd, len, -1)), len > uring_cmd_area);
}

/// Polled read of up to `len` bytes at `offset` (fd opened with O_DIRECT;
/// buffer, length and offset aligned as O_DIRECT wants). Bytes or -errno.
inline auto polled_read(int fd, void* buf, unsigned len, std::uint64_t offset) noexcept {
  return PolledOp([=](io_uring_sqe* s) noexcept { io_uring_prep_read(s, fd, buf, len, offset); });
}

/// Polled write; as polled_read. Bytes written or -errno.
inline auto polled_write(int fd, const void* buf, unsigned len, std::uint64_t offset) noexcept {
  return PolledOp([=](io_uring_sqe* s) noexcept { io_uring_prep_write(s, fd, buf, len, offset); });
}

}  // namespace coblk::runtime
