// runtime/io.h - every io_uring operation as a co_await-able awaitable.
#pragma once

// Each function here returns an awaitable; `co_await` submits the operation
// on the calling reactor's ring (batched with the others prepared in the same
// loop iteration) and yields the CQE's result as an int: >= 0 on success, or
// a negative errno. Errors are values, never exceptions.
//
// Lifetime rules, which hold even under cancellation:
//   - the awaitable (which holds the operation's state) lives in the awaiting
//     coroutine's frame, and the frame stays suspended until the operation's
//     CQE has arrived; so buffers owned by the frame outlive the kernel's use;
//   - user_data is a slot number and generation, never a pointer (Reactor).

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stop_token>
#include <utility>

#include "coblk/runtime/fault_injection.h"
#include "coblk/runtime/reactor.h"

namespace coblk::runtime {

namespace detail {

/// Stop-callback body: cancels one operation on its owning reactor.
struct CancelOnStop {
  Reactor* reactor;
  std::uint64_t user_data;
  void operator()() const noexcept;
};

}  // namespace detail

template <typename Prep>
class ControlledIoOp;

/// An io_uring operation, prepared by `Prep` (a callable that fills an SQE).
///
/// Options, chained before co_await:
///   - `.with_stop(token)`: when `token` is stopped, submit
///     IORING_OP_ASYNC_CANCEL for the operation. The awaiter still waits for
///     the operation's own CQE (usually -ECANCELED), so its buffers stay
///     valid. Stop must be requested on a reactor thread of the same Runtime.
///   - `.with_timeout(d)`: link an IORING_OP_LINK_TIMEOUT; the operation
///     completes with -ECANCELED if it takes longer than `d`.
///   - `.fixed_file()`: the fd argument is an index into the reactor's
///     registered files (`.fixed_file(bool)`: only when the bool is true).
/// The first two turn the operation into a ControlledIoOp, so a plain
/// operation carries none of their state (it is on every I/O's hot path).
///
/// An operation awaited after its reactor began shutting down completes at
/// once with -ECANCELED.
template <typename Prep>
class [[nodiscard]] IoOp {
 public:
  /// An operation that `prep` will prepare once it is awaited; nothing is
  /// submitted before.
  explicit IoOp(Prep prep) noexcept : prep_(std::move(prep)) {}
  /// Moves an operation that has not been awaited yet (the option chain
  /// returns it by value).
  IoOp(IoOp&&) noexcept = default;
  IoOp& operator=(IoOp&&) = delete;

  /// Cancels the operation when `token` is stopped.
  ControlledIoOp<Prep> with_stop(std::stop_token token) && noexcept {
    return ControlledIoOp<Prep>(std::move(*this)).with_stop(std::move(token));
  }
  /// Cancels the operation if it has not completed within `timeout`.
  ControlledIoOp<Prep> with_timeout(std::chrono::nanoseconds timeout) && noexcept {
    return ControlledIoOp<Prep>(std::move(*this)).with_timeout(timeout);
  }
  /// Treats the fd as a registered-file index (IOSQE_FIXED_FILE).
  IoOp fixed_file() && noexcept {
    sqe_flags_ |= IOSQE_FIXED_FILE;
    return std::move(*this);
  }
  /// fixed_file() when `fixed`, else the operation unchanged: for callers
  /// that learn at run time whether their file got a table slot.
  IoOp fixed_file(bool fixed) && noexcept {
    if (fixed) sqe_flags_ |= IOSQE_FIXED_FILE;
    return std::move(*this);
  }

  /// Always false: only the CQE completes an operation.
  bool await_ready() const noexcept { return false; }

  /// Queues the SQE on the calling thread's reactor (submitted with the
  /// loop's next batch) and suspends until its CQE. On a draining reactor
  /// it submits nothing and does not suspend; the result is -ECANCELED.
  bool await_suspend(std::coroutine_handle<> awaiter) {
    Reactor* r = Reactor::current();
    if (r->draining()) {
      result_ = -ECANCELED;
      return false;
    }
    submit(r, awaiter, false);
    return true;
  }

  /// The CQE's result: >= 0 on success, or a negative errno. Frees the
  /// operation's slot (whose new generation makes any late CQE miss).
  int await_resume() noexcept {
    if (user_data_ == 0) {
      return result_;  // never submitted
    }
#if defined(COBLK_FAULT_INJECTION)
    return fault::io_result(opcode_, reactor_->close_slot(user_data_, &cqe_flags_));
#else
    return reactor_->close_slot(user_data_, &cqe_flags_);
#endif
  }

  /// The CQE flags of the completed operation (e.g. IORING_CQE_F_MORE).
  std::uint32_t cqe_flags() const noexcept { return cqe_flags_; }

 private:
  friend class ControlledIoOp<Prep>;

  // Queues the SQE; with `linked`, reserves room for a second SQE that
  // the caller links behind it.
  io_uring_sqe* submit(Reactor* r, std::coroutine_handle<> awaiter, bool linked) {
    reactor_ = r;
    io_uring_sqe* sqe = r->get_sqe(linked ? 2 : 1);
    prep_(sqe);
#if defined(COBLK_FAULT_INJECTION)
    opcode_ = sqe->opcode;
#endif
    sqe->flags |= sqe_flags_ | (linked ? IOSQE_IO_LINK : 0);
    user_data_ = r->open_slot(r->waiter_for(awaiter));
    io_uring_sqe_set_data64(sqe, user_data_);
    return sqe;
  }

  Prep prep_;
  Reactor* reactor_ = nullptr;
  std::uint64_t user_data_ = 0;  // 0 until submitted (slot user_data is never 0)
  int result_ = 0;
  std::uint32_t cqe_flags_ = 0;
  std::uint8_t sqe_flags_ = 0;
#if defined(COBLK_FAULT_INJECTION)
  std::uint8_t opcode_ = 0;  // for fault::io_result
#endif
};

/// An IoOp with a stop token and/or a linked timeout (see IoOp).
template <typename Prep>
class [[nodiscard]] ControlledIoOp {
 public:
  /// Wraps `op` (made by IoOp::with_stop or IoOp::with_timeout).
  explicit ControlledIoOp(IoOp<Prep>&& op) noexcept : op_(std::move(op)) {}
  /// Movable until awaited: the stop callback, which points into the
  /// object, is engaged only while the operation is in flight.
  ControlledIoOp(ControlledIoOp&& o) noexcept
      : op_(std::move(o.op_)), stop_(std::move(o.stop_)), timeout_(o.timeout_), has_timeout_(o.has_timeout_) {}
  ControlledIoOp& operator=(ControlledIoOp&&) = delete;

  /// Cancels the operation when `token` is stopped.
  ControlledIoOp with_stop(std::stop_token token) && noexcept {
    stop_ = std::move(token);
    return std::move(*this);
  }
  /// Cancels the operation if it has not completed within `timeout`.
  ControlledIoOp with_timeout(std::chrono::nanoseconds timeout) && noexcept {
    timeout_.tv_sec = timeout.count() / 1000000000;
    timeout_.tv_nsec = timeout.count() % 1000000000;
    has_timeout_ = true;
    return std::move(*this);
  }
  /// Treats the fd as a registered-file index (IOSQE_FIXED_FILE).
  ControlledIoOp fixed_file() && noexcept {
    op_.sqe_flags_ |= IOSQE_FIXED_FILE;
    return std::move(*this);
  }

  /// Always false: only the CQE completes an operation.
  bool await_ready() const noexcept { return false; }

  /// As IoOp::await_suspend, plus, with a timeout, an IORING_OP_LINK_TIMEOUT
  /// SQE linked right behind the operation's and, with a stop token, a stop
  /// callback that queues the cancel. Does not suspend (result -ECANCELED)
  /// when stop was already requested or the reactor is draining.
  bool await_suspend(std::coroutine_handle<> awaiter) {
    Reactor* r = Reactor::current();
    if (r->draining() || stop_.stop_requested()) {
      op_.result_ = -ECANCELED;
      return false;
    }
    op_.submit(r, awaiter, has_timeout_);
    if (has_timeout_) {
      io_uring_sqe* timer = r->get_sqe();  // room was reserved by submit
      io_uring_prep_link_timeout(timer, &timeout_, 0);
      io_uring_sqe_set_data64(timer, Reactor::ignored_user_data);
    }
    if (stop_.stop_possible()) {
      // May run the callback at once if stop was requested meanwhile;
      // the cancel SQE then follows ours in the same batch.
      stop_callback_.emplace(stop_, detail::CancelOnStop{r, op_.user_data_});
    }
    return true;
  }

  /// The operation's result (-ECANCELED when the stop or the timeout
  /// cancelled it). Disengages the stop callback first; its destructor
  /// waits for a callback running on another thread, so no cancel can
  /// name the slot after it is freed.
  int await_resume() noexcept {
    stop_callback_.reset();
    return op_.await_resume();
  }

  /// The CQE flags of the completed operation.
  std::uint32_t cqe_flags() const noexcept { return op_.cqe_flags(); }

 private:
  IoOp<Prep> op_;
  std::stop_token stop_;
  __kernel_timespec timeout_{};  // lives in the awaiting frame until completion
  bool has_timeout_ = false;
  std::optional<std::stop_callback<detail::CancelOnStop>> stop_callback_;
};

/// Completes at once (IORING_OP_NOP). Result 0.
inline auto nop() noexcept {
  return IoOp([](io_uring_sqe* s) noexcept { io_uring_prep_nop(s); });
}

/// Reads up to `len` bytes at `offset` (-1: the file position). Bytes read or -errno.
inline auto read(int fd, void* buf, unsigned len, std::uint64_t offset) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_read(s, fd, buf, len, offset); });
}

/// Writes up to `len` bytes at `offset`. Bytes written or -errno.
inline auto write(int fd, const void* buf, unsigned len, std::uint64_t offset) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_write(s, fd, buf, len, offset); });
}

/// read() into a buffer registered with Reactor::register_buffers.
inline auto read_fixed(int fd, void* buf, unsigned len, std::uint64_t offset, int buf_index) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_read_fixed(s, fd, buf, len, offset, buf_index); });
}

/// write() from a buffer registered with Reactor::register_buffers.
inline auto write_fixed(int fd, const void* buf, unsigned len, std::uint64_t offset, int buf_index) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_write_fixed(s, fd, buf, len, offset, buf_index); });
}

/// Vectored read; the iovec array must stay valid until completion.
inline auto readv(int fd, const iovec* iov, unsigned count, std::uint64_t offset) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_readv(s, fd, iov, count, offset); });
}

/// Vectored write; the iovec array must stay valid until completion.
inline auto writev(int fd, const iovec* iov, unsigned count, std::uint64_t offset) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_writev(s, fd, iov, count, offset); });
}

/// Flushes data and metadata. 0 or -errno.
inline auto fsync(int fd) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_fsync(s, fd, 0); });
}

/// Flushes data (and the metadata needed to read it back). 0 or -errno.
inline auto fdatasync(int fd) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_fsync(s, fd, IORING_FSYNC_DATASYNC); });
}

/// fallocate(2): `mode` as for the syscall (e.g. FALLOC_FL_PUNCH_HOLE |
/// FALLOC_FL_KEEP_SIZE). 0 or -errno.
inline auto fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t length) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_fallocate(s, fd, mode, offset, length); });
}

/// madvise(2) on [addr, addr+length), e.g. MADV_DONTNEED to drop pages of a
/// private anonymous mapping (they then read as zeros). 0 or -errno
/// (-EINVAL for MADV_DONTNEED on locked pages).
inline auto madvise(void* addr, std::uint64_t length, int advice) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_madvise(s, addr, static_cast<off_t>(length), advice); });
}

/// openat(2). The path must stay valid until completion. New fd or -errno.
inline auto openat(int dirfd, const char* path, int flags, mode_t mode = 0) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_openat(s, dirfd, path, flags, mode); });
}

/// close(2). 0 or -errno.
inline auto close(int fd) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_close(s, fd); });
}

/// Waits for `events` (POLLIN, ...) on fd. The ready mask or -errno.
inline auto poll(int fd, unsigned events) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_poll_add(s, fd, events); });
}

/// accept(2); `addr`/`addrlen` may be null. New fd or -errno.
inline auto accept(int fd, sockaddr* addr = nullptr, socklen_t* addrlen = nullptr, int flags = SOCK_CLOEXEC) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_accept(s, fd, addr, addrlen, flags); });
}

/// connect(2); the address must stay valid until completion. 0 or -errno.
inline auto connect(int fd, const sockaddr* addr, socklen_t addrlen) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_connect(s, fd, addr, addrlen); });
}

/// send(2). Bytes sent or -errno.
inline auto send(int fd, const void* buf, std::size_t len, int flags = 0) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_send(s, fd, buf, len, flags); });
}

/// recv(2). Bytes received (0 at end of stream) or -errno.
inline auto recv(int fd, void* buf, std::size_t len, int flags = 0) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_recv(s, fd, buf, len, flags); });
}

/// sendmsg(2); the msghdr, its iovecs and their buffers must stay valid
/// until completion. Bytes sent (possibly fewer than asked) or -errno. Pass
/// MSG_NOSIGNAL for a socket whose peer may go away.
inline auto sendmsg(int fd, const msghdr* msg, unsigned flags = 0) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_sendmsg(s, fd, msg, flags); });
}

/// Posts a CQE with result `res` and `user_data` to another io_uring
/// (IORING_OP_MSG_RING, IORING_MSG_DATA). 0 or -errno (-EOVERFLOW when the
/// target's CQ is full, -EBADFD if `ring_fd` is not a ring).
inline auto msg_ring(int ring_fd, std::uint32_t res, std::uint64_t user_data) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_msg_ring(s, ring_fd, res, user_data, 0); });
}

/// Cancels every pending operation on `fd` of this reactor
/// (IORING_ASYNC_CANCEL_FD | ALL). The number cancelled: with CANCEL_ALL the
/// kernel reports 0, not -ENOENT, when nothing was pending on `fd`.
inline auto cancel_fd(int fd) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_cancel_fd(s, fd, IORING_ASYNC_CANCEL_ALL); });
}

/// Cancels the operation with `user_data` (as seen by Reactor). 0, -ENOENT
/// when it already completed, or -EALREADY when it is running.
inline auto cancel(std::uint64_t user_data) noexcept {
  return IoOp([=](io_uring_sqe* s) noexcept { io_uring_prep_cancel64(s, user_data, 0); });
}

/// Length of the command area of a URING_CMD SQE on a 128-byte-SQE ring.
inline constexpr std::size_t uring_cmd_area = 80;

namespace detail {

/// Prepares an IORING_OP_URING_CMD SQE with a copied 80-byte payload and,
/// when `buf_index` >= 0, the registered buffer the command's data address
/// lies in (IORING_URING_CMD_FIXED).
struct UringCmdPrep {
  int fd;
  std::uint32_t cmd_op;
  std::array<std::byte, uring_cmd_area> payload;
  int buf_index = -1;
  void operator()(io_uring_sqe* s) const noexcept {
    io_uring_prep_rw(IORING_OP_URING_CMD, s, fd, nullptr, 0, 0);
    s->cmd_op = cmd_op;
    if (buf_index >= 0) {
      // liburing 2.3 has no helper for this: the flag and the index are
      // plain SQE fields (uring_cmd_flags shares the rw_flags union).
      s->uring_cmd_flags = IORING_URING_CMD_FIXED;
      s->buf_index = static_cast<std::uint16_t>(buf_index);
    }
    std::memcpy(s->cmd, payload.data(), payload.size());
  }
};

/// The prep of a URING_CMD `cmd_op` on `fd` with the first `len` bytes of
/// `cmd` (at most uring_cmd_area are copied: callers refuse a longer
/// payload themselves) and registered buffer `buf_index` (-1: none).
inline UringCmdPrep uring_cmd_prep(int fd, std::uint32_t cmd_op, const void* cmd, std::size_t len,
                                   int buf_index) noexcept {
  UringCmdPrep prep{fd, cmd_op, {}, buf_index};
  if (len != 0) {  // cmd may be null for an empty payload; memcpy must not see it
    std::memcpy(prep.payload.data(), cmd, len < uring_cmd_area ? len : uring_cmd_area);
  }
  return prep;
}

/// Prepares an IORING_OP_TIMEOUT SQE. The timespec lives in the awaiting
/// frame (inside the operation) until the CQE arrives.
struct SleepPrep {
  __kernel_timespec ts;
  void operator()(io_uring_sqe* s) noexcept { io_uring_prep_timeout(s, &ts, 0, 0); }
};

}  // namespace detail

/// IORING_OP_URING_CMD: driver command `cmd_op` on `fd` with up to 80 bytes
/// of payload (copied when the operation is created). The reactor's ring
/// must use 128-byte SQEs (ReactorConfig::sqe128); on a 64-byte ring, or
/// with a payload over 80 bytes, the result is -EINVAL without submitting.
/// Result as defined by the driver.
template <typename Op>
class [[nodiscard]] BasicUringCmd {
 public:
  /// Made by uring_cmd(); `too_long` records a payload over 80 bytes,
  /// which fails at co_await rather than at construction.
  BasicUringCmd(Op op, bool too_long) noexcept : op_(std::move(op)), too_long_(too_long) {}
  /// Always false: only the CQE completes a command.
  bool await_ready() const noexcept { return false; }
  /// Submits the command and suspends; does not suspend (result -EINVAL)
  /// when the payload was too long or the ring has 64-byte SQEs.
  bool await_suspend(std::coroutine_handle<> h) {
    if (too_long_ || !(Reactor::current()->ring_flags() & IORING_SETUP_SQE128)) {
      invalid_ = true;
      return false;
    }
    return op_.await_suspend(h);
  }
  /// The driver's result, or -EINVAL when the command was not submitted.
  int await_resume() noexcept { return invalid_ ? -EINVAL : op_.await_resume(); }
  /// Cancels the command when `token` is stopped (see IoOp::with_stop).
  auto with_stop(std::stop_token token) && noexcept {
    auto controlled = std::move(op_).with_stop(std::move(token));
    return BasicUringCmd<decltype(controlled)>(std::move(controlled), too_long_);
  }

 private:
  Op op_;
  bool too_long_;
  bool invalid_ = false;
};

/// See BasicUringCmd. With `buf_index` >= 0 the command's data address (in
/// its payload, as the driver defines it) is an offset into this reactor's
/// registered buffer `buf_index` (IORING_URING_CMD_FIXED: for a buffer
/// registered by address, that address; for one a driver registered, such
/// as a ublk request's pages, from 0), which the driver then maps instead
/// of pinning user pages. The driver must support it (NVMe: Linux 6.1).
inline BasicUringCmd<IoOp<detail::UringCmdPrep>> uring_cmd(int fd, std::uint32_t cmd_op, const void* cmd,
                                                           std::size_t len, int buf_index = -1) noexcept {
  return BasicUringCmd<IoOp<detail::UringCmdPrep>>(IoOp(detail::uring_cmd_prep(fd, cmd_op, cmd, len, buf_index)),
                                                   len > uring_cmd_area);
}

/// Awaitable that completes after a duration (IORING_OP_TIMEOUT).
template <typename Op>
class [[nodiscard]] BasicSleepFor {
 public:
  /// Made by sleep_for(); the timespec travels inside `op`.
  explicit BasicSleepFor(Op op) noexcept : op_(std::move(op)) {}
  /// Always false: even a zero duration goes through the ring.
  bool await_ready() const noexcept { return false; }
  /// Submits the timeout and suspends (see IoOp::await_suspend).
  bool await_suspend(std::coroutine_handle<> h) { return op_.await_suspend(h); }
  /// 0 when the time has passed, -ECANCELED when cancelled.
  int await_resume() noexcept {
    const int r = op_.await_resume();
    return r == -ETIME ? 0 : r;
  }
  /// Ends the sleep early (-ECANCELED) when `token` is stopped.
  auto with_stop(std::stop_token token) && noexcept {
    auto controlled = std::move(op_).with_stop(std::move(token));
    return BasicSleepFor<decltype(controlled)>(std::move(controlled));
  }

 private:
  Op op_;
};

/// What sleep_for() returns: the awaitable of a plain timeout operation.
using SleepFor = BasicSleepFor<IoOp<detail::SleepPrep>>;

/// Suspends the calling task for `d` without blocking the reactor.
inline SleepFor sleep_for(std::chrono::nanoseconds d) noexcept {
  return SleepFor(IoOp(detail::SleepPrep{__kernel_timespec{static_cast<long long>(d.count() / 1000000000),
                                                           static_cast<long long>(d.count() % 1000000000)}}));
}

}  // namespace coblk::runtime
