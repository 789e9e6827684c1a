// runtime/reactor.h - one core's event loop: its io_uring, run queues and mailboxes.
#pragma once

#include <liburing.h>
#include <sys/uio.h>

#include <array>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <vector>

#include "coblk/runtime/cycle_clock.h"
#include "coblk/runtime/reactor_stats.h"
#include "coblk/runtime/run_queue.h"
#include "coblk/runtime/scheduling_group.h"
#include "coblk/runtime/slot_table.h"
#include "coblk/runtime/spsc_ring.h"
#include "coblk/runtime/waiter.h"

namespace coblk::runtime {

class Runtime;
class PolledRing;

/// Settings of one reactor. Runtime applies the same settings to every core.
struct ReactorConfig {
  /// Submission queue entries; the completion queue gets twice as many.
  unsigned ring_entries = 256;
  /// 128-byte SQEs, needed for URING_CMD commands with an 80-byte payload
  /// (ublk's control commands).
  bool sqe128 = false;
  /// 32-byte CQEs, which some URING_CMD commands complete with (NVMe
  /// passthrough, NVME_URING_CMD_IO, needs the ring to have them).
  bool cqe32 = false;
  /// Kernel-side submission polling. Off by default: it burns a core per
  /// ring, which only pays when a core is otherwise idle (see docs/perf).
  bool sqpoll = false;
  /// SQPOLL thread idle time before it sleeps.
  unsigned sqpoll_idle_ms = 10;
  /// With `sqpoll`: the CPUs the kernel's poller threads are pinned to
  /// (IORING_SETUP_SQ_AFF). Core c's poller runs on sqpoll_cpus[c %
  /// size()], so one entry pins every core's poller to that CPU and one
  /// entry per core gives each its own. Empty: not pinned. Every ring gets
  /// a poller thread of its own (no IORING_SETUP_ATTACH_WQ). The kernel
  /// refuses (EINVAL, reported by Runtime::run) a CPU that is offline or
  /// outside the process's affinity mask.
  std::vector<unsigned> sqpoll_cpus;
  /// Time one scheduling group may run before the reactor looks at I/O
  /// again and other groups get their turn. Checked when the reactor reads
  /// the clock, once per 16 tasks (and after the last), so a slice may run
  /// up to 15 short tasks over.
  std::chrono::microseconds task_quota{500};
  /// A task that runs longer than this without suspending is a stall
  /// (ReactorStats::stalls). Tasks are timed 16 at a time, not one by one
  /// (a clock read per task would cost a third of a NOP): when 16 tasks
  /// together exceed it, the stall is counted under the last one's name,
  /// and for the next second every task is timed on its own, so a task
  /// that stalls again is named exactly.
  std::chrono::microseconds stall_threshold{10000};
  /// Cross-core mailbox capacity per ordered pair of cores.
  unsigned mailbox_capacity = 4096;
  /// Generation of every fresh operation slot (never 0). Only tests change
  /// it, to start close to the 32-bit wrap of slot generations.
  std::uint32_t first_slot_generation = 1;
  /// Idle polling, in microseconds: how long a reactor with nothing to run
  /// keeps checking its completion queue, its mailboxes and the channel
  /// sides its tasks are parked on before it sleeps in io_uring_enter. Work
  /// that arrives within the window is picked up at once instead of paying
  /// a sleep and a wake-up (tens of microseconds on a VM); the price is up
  /// to this much busy CPU after every burst of work, so a core that gets
  /// work more often than every `idle_poll_us` never sleeps (figures and
  /// the choice of the default: docs/performance.md, bench_idle_poll).
  /// 0 sleeps as soon as there is nothing to run.
  unsigned idle_poll_us = 50;
  /// Registers the ring's own fd with the kernel (IORING_REGISTER_RING_FDS,
  /// Linux 5.18), so that each io_uring_enter skips looking the fd up.
  /// Where the kernel refuses, the ring works as before (see
  /// Reactor::ring_fd_registered).
  bool register_ring_fd = true;
  /// Size of the sparse fixed-file table that Reactor::install_file fills
  /// (registered at the first install; 0: no table, installs fail).
  unsigned fixed_file_slots = 64;
};

/// A unit of cross-core work: `handler(object)` runs on the receiving core.
/// Sent by value through an SPSC mailbox; `object` must stay valid until the
/// handler has run (it usually lives in a suspended coroutine frame).
struct Message {
  void (*handler)(void* object) noexcept = nullptr;  ///< runs on the receiving core; must not throw
  void* object = nullptr;                            ///< the handler's argument; valid until the handler has run
};

/// Node of a reactor's list of parked waits (see ParkedWait).
struct ParkLink {
  ParkLink* prev = this;  ///< previous node; itself when on no list
  ParkLink* next = this;  ///< next node; itself when on no list
  /// True while on a list.
  bool linked() const noexcept { return next != this; }
  /// Removes the node from its list; harmless when not on one.
  void unlink() noexcept {
    prev->next = next;
    next->prev = prev;
    prev = next = this;
  }
};

/// A task parked until a condition in shared memory holds, a condition that
/// another core makes true by writing memory rather than by sending a
/// message: a Channel side waiting for an item or for room. The task's own
/// reactor keeps the wait on a list while it is parked and re-checks
/// `ready` on every loop iteration and before it sleeps, so the other side
/// may publish without a fence and still never leave the task parked with
/// its condition true (the argument: Reactor::sleep_until_woken).
///
/// Protocol. The parked side fills `waiter` and `ready`, sets `waiting`
/// (release) and calls Reactor::park(), then re-checks its condition.
/// Whoever turns `waiting` from true to false with an exchange (the
/// "claim") owns the wake-up: the parked side itself (it saw the condition
/// while parking), its reactor (it saw the condition while polling), or the
/// other side after it has published (then Reactor::wake_parked). A claim
/// by the other side can be stale: its publication may be one the parked
/// side already consumed before it parked (the item it pushed was popped,
/// the slot it freed refilled). wake_parked therefore re-checks `ready` on
/// the parked core and parks the task again if it does not hold, so a
/// parked task is only ever resumed with its condition true. Only the
/// parked task itself can make its condition false again (only the
/// consumer pops, only the producer pushes), so it still holds when the
/// task runs.
struct ParkedWait : ParkLink {
  /// Is the condition true now? Called on the parked task's core only.
  /// `polling` is true when the reactor polls while awake (its loop, idle
  /// polling): the wait may then hold out for more than its bare condition
  /// (see Channel's producer), for a bounded time. false when parking, on a
  /// claim and before the reactor sleeps: then exactly the condition, which
  /// is what the wake-up argument (Reactor::sleep_until_woken) relies on.
  bool (*ready)(ParkedWait& self, bool polling) noexcept = nullptr;
  /// When the task parked (CycleClock ticks); parked core only.
  std::uint64_t parked_at = 0;
  /// Set by the parked side; cleared by the claim (see above).
  std::atomic<bool> waiting{false};
  /// The parked task's core (waiter.core), readable by the other side
  /// without racing with the next park's write of `waiter`.
  std::atomic<unsigned> core{0};
  /// The parked task; written before `waiting` is set, read by the claimer.
  Waiter waiter;
};

/// Work a reactor runs as soon as the running task suspends (and, as a
/// safety net, before it submits, polls or sleeps): Channel's batched sends
/// publish through it. A producer task may leave pushed items unpublished
/// while it keeps running, but whenever it suspends its reactor gets
/// control and publishes them, before anything could wait for them.
struct DeferredFlush : ParkLink {
  /// Called on the reactor's thread; the node is already off the list.
  void (*flush)(DeferredFlush& self) noexcept = nullptr;
};

namespace detail {
/// True when wakers may skip their fence (see waker_fence()): set once by
/// Runtime::create when the kernel's membarrier(MEMBARRIER_CMD_PRIVATE_
/// EXPEDITED) is available, which a reactor then issues before it sleeps
/// with parked waits. Read after every channel item, so on a cache line of
/// its own (a neighbour written often would make each read a miss).
alignas(cache_line_size) inline std::atomic<bool> light_wakers{false};
/// Registers this process for expedited private membarriers (once) and
/// sets light_wakers accordingly. Returns light_wakers.
bool enable_light_wakers() noexcept;
/// Tests only, and only while no Runtime is running: forces the fenced
/// (false) or fence-free (true, only if membarrier is available) waker.
/// Returns the mode now in force.
bool set_light_wakers_for_testing(bool light) noexcept;
}  // namespace detail

/// The barrier a waker issues between publishing (pushing, popping,
/// closing) and reading the other side's ParkedWait::waiting. With
/// membarrier available it is a compiler barrier only: the reactor of a
/// parked side makes up for it by issuing membarrier (a full barrier on
/// every other running thread of the process) before its last check and
/// sleep. Without it, a sequentially consistent fence that pairs with the
/// one the parked side issues after setting its flag.
inline void waker_fence() noexcept {
  if (detail::light_wakers.load(std::memory_order_relaxed)) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
}

/// Intrusive list node of a detached root task (see spawn.h). A reactor keeps
/// its live roots on a list so that shutdown can destroy those that never
/// finished, without allocating per spawn.
struct RootLink {
  RootLink* prev = this;           ///< previous node; itself when on no list
  RootLink* next = this;           ///< next node; itself when on no list
  std::coroutine_handle<> handle;  ///< the root task's frame, destroyed at shutdown if it never finished
  /// Removes the node from its list; harmless when not on one.
  void unlink() noexcept {
    prev->next = next;
    next->prev = prev;
    prev = next = this;
  }
};

/// The event loop of one core.
///
/// A Reactor owns one io_uring, created with SINGLE_ISSUER, DEFER_TASKRUN and
/// COOP_TASKRUN where the kernel accepts them (dropping them one at a time
/// when it refuses), one run queue per scheduling group, and the receiving
/// ends of the mailboxes from every other core. Its loop:
///   1. handle cross-core messages;
///   2. run ready tasks of the group with the least weighted run time, up to
///      the task quota;
///   3. submit queued SQEs in one batch and reap CQEs;
///   4. sleep in io_uring_enter only when no task is ready.
///
/// A Reactor is used only from its own thread. Reactors are created only by
/// Runtime (the constructor is private), one per core, each on a thread
/// pinned to its core: SINGLE_ISSUER binds the ring to the thread that
/// creates it, so a reactor cannot be made ahead of Runtime::run.
///
/// Operation identity: every in-flight operation occupies a slot of the
/// reactor's slot table, and its SQE's user_data is (generation << 32 | slot
/// index). A CQE is matched by index and generation, so user_data is never a
/// pointer and a stale or foreign CQE can never touch freed memory.
class Reactor {
 public:
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  /// The reactor of the calling thread, or nullptr outside reactor threads.
  static Reactor* current() noexcept { return current_; }

  /// Index of this reactor's core within its Runtime (0-based).
  unsigned core() const noexcept { return core_; }
  /// The Runtime this reactor belongs to.
  Runtime* runtime() const noexcept { return runtime_; }
  /// The io_uring, for code that prepares its own SQEs.
  io_uring* ring() noexcept { return &ring_; }
  /// The io_uring setup flags the kernel accepted.
  unsigned ring_flags() const noexcept { return ring_flags_; }
  /// True when the kernel supports the given io_uring opcode.
  bool supports_op(unsigned opcode) const noexcept;
  /// Counters for this core.
  const ReactorStats& stats() const noexcept { return stats_; }
  /// The CycleClock time the reactor last read before it resumed the task
  /// now running (read on this reactor's thread): a timestamp a task gets
  /// for free, e.g. about the moment an awaited I/O operation's completion
  /// was handed to it. The reactor reads the clock once per 16 tasks it
  /// resumes, not before each, so this is up to 15 other tasks' run time
  /// earlier than the task's own start.
  std::uint64_t task_started() const noexcept { return task_started_; }
  /// The settings this reactor was created with.
  const ReactorConfig& config() const noexcept { return config_; }

  /// True when the ring's fd is registered (ReactorConfig::register_ring_fd
  /// and a kernel that accepted it).
  bool ring_fd_registered() const noexcept { return ring_fd_registered_; }

  /// Registers files for IOSQE_FIXED_FILE use. Returns 0 or -errno. Not
  /// with install_file on the same reactor (the kernel keeps one table).
  int register_files(std::span<const int> fds);
  /// Puts `fd` into a free slot of this ring's fixed-file table (a sparse
  /// table of ReactorConfig::fixed_file_slots, registered on first use), so
  /// that operations can name it by index with `.fixed_file()` and the
  /// kernel skips the fd lookup and reference count on each. Returns the
  /// index, or a negative errno: -ENFILE when the table is full, or what
  /// the kernel says when it has no sparse tables (-EINVAL before 5.19);
  /// callers then use the plain fd. The ring holds its own reference to
  /// the file until remove_file(index). This thread only.
  int install_file(int fd);
  /// Empties slot `index` of the fixed-file table (made by install_file);
  /// operations already submitted keep their reference. This thread only.
  void remove_file(int index) noexcept;
  /// Registers buffers for read_fixed/write_fixed. Returns 0 or -errno.
  int register_buffers(std::span<const iovec> buffers);

  /// Gives this core a second, polled io_uring (IORING_SETUP_IOPOLL) of
  /// `entries` SQEs, for the awaitables of polled_ring.h; once made, later
  /// calls return 0 and keep it. With `wide` the ring has 128-byte SQEs and
  /// 32-byte CQEs, for polled driver commands (polled_uring_cmd); a later
  /// `wide` call on a core whose ring was made narrow returns -EINVAL (the
  /// ring may have operations in flight, so it is not replaced). While
  /// operations are in flight there the loop polls that ring on every
  /// iteration and never sleeps (it spins). Returns 0 or -errno (the
  /// kernel's refusal). This thread only.
  int enable_polled_ring(unsigned entries, bool wide = false);
  /// The polled ring, or nullptr when enable_polled_ring was not called.
  PolledRing* polled_ring() const noexcept { return polled_.get(); }

  // ---- scheduling (used by awaitables; callable only on this thread) ----

  /// Makes `waiter` ready to run in its group on this core.
  void schedule(const Waiter& waiter) noexcept {
    groups_[waiter.group].queue.push(RunQueue::Entry{waiter.handle, waiter.name});
    ++ready_count_;
  }
  /// A Waiter for `h` in the group and task that are running now.
  Waiter waiter_for(std::coroutine_handle<> h) const noexcept {
    return Waiter{h, current_name_, core_, current_group_};
  }
  /// Resumes `waiter` on its own core: directly if that is this core, else
  /// through the mailbox to that core. Any reactor thread may call it.
  static void wake(const Waiter& waiter) noexcept;
  /// Puts `wait` (waiter, ready and waiting already set by the caller) on
  /// this reactor's list of parked waits; see ParkedWait. This thread only.
  void park(ParkedWait& wait) noexcept {
    wait.parked_at = CycleClock::now();
    wait.core.store(core_, std::memory_order_relaxed);
    link_parked(wait);
  }
  /// Runs `f.flush` once the running task suspends (once, however often
  /// it is deferred before). This thread only; `f` must stay valid
  /// until it has run, or be unlinked by its owner first.
  void defer_flush(DeferredFlush& f) noexcept {
    if (!f.linked()) {
      f.next = &flushes_;
      f.prev = flushes_.prev;
      flushes_.prev->next = &f;
      flushes_.prev = &f;
    }
  }
  /// Runs every deferred flush now, from within the running task: what it
  /// would otherwise run only once the task suspends. submit_to calls it
  /// before it reports a task's end to another core, which may then free
  /// what the flushes point to (a Channel). This thread only.
  void flush_deferred_now() noexcept { run_flushes(); }
  /// For the other side of a parked `wait` that it found `waiting`: false
  /// when the parked task's reactor is awake, on another core. That reactor
  /// re-checks its parked waits on every loop iteration and, after setting
  /// its sleeping flag, once more before it sleeps, so nothing needs to be
  /// sent (see sleep_until_woken). True when it sleeps (claim, then
  /// wake_parked) or is this reactor (claim and resume directly).
  static bool parked_needs_wake(const ParkedWait& wait) noexcept {
    const Reactor* self = current_;
    const unsigned core = wait.core.load(std::memory_order_relaxed);
    return core == self->core_ || self->peers_[core]->sleeping_.load(std::memory_order_relaxed);
  }
  /// For the side that claimed `wait` (turned `waiting` from true to
  /// false): resumes the parked task on its core once `ready` holds there,
  /// and parks it again if it does not (a stale claim). Any reactor thread
  /// may call it; `wait` must stay valid until the parked task resumes.
  static void wake_parked(ParkedWait& wait) noexcept;
  /// The scheduling group running now.
  SchedulingGroup current_group() const noexcept { return SchedulingGroup(current_group_); }
  /// True when the running group has used up its time slice and a
  /// cooperative task should yield (see maybe_yield()).
  /// Reads the clock; when the slice is over, the reactor also ends the
  /// slice as soon as the running task suspends.
  bool need_yield() noexcept;

  // ---- operations (used by the awaitables in io.h) ----

  /// Returns an SQE, flushing the submission queue to the kernel first if
  /// it is full. `count` consecutive SQEs are guaranteed to be available
  /// (for linked pairs).
  io_uring_sqe* get_sqe(unsigned count = 1) {
    io_uring_sq& sq = ring_.sq;
    const unsigned tail = sq.sqe_tail;
    // Fast path: room known from the last look at the kernel's head (see
    // sq_limit_), without re-reading it for every SQE.
    if (count == 1 && static_cast<int>(sq_limit_ - tail) > 0) [[likely]] {
      sq.sqe_tail = tail + 1;
      ++unsubmitted_;
      return &sq.sqes[(tail & sq.ring_mask) << sqe_shift_];
    }
    return get_sqe_slow(count);
  }
  /// Opens a slot for an operation awaited by `waiter`; returns the
  /// user_data to put in the SQE.
  std::uint64_t open_slot(const Waiter& waiter) { return slots_.open(waiter); }
  /// Result and CQE flags of a completed slot; frees the slot.
  int close_slot(std::uint64_t user_data, std::uint32_t* cqe_flags = nullptr) noexcept {
    return slots_.close(user_data, cqe_flags);
  }
  /// Queues an IORING_OP_ASYNC_CANCEL for the operation with `user_data`.
  /// Its own completion is ignored; the target still completes normally
  /// (usually with -ECANCELED).
  void cancel(std::uint64_t user_data);
  /// True once the reactor has started shutting down: new operations then
  /// complete at once with -ECANCELED.
  bool draining() const noexcept { return draining_; }

  /// user_data of CQEs the reactor ignores.
  static constexpr std::uint64_t ignored_user_data = ~0ull;

  // ---- cross-core messaging ----

  /// Sends `message` to core `target` (another core of the same Runtime).
  /// Never blocks: when the mailbox is full the message waits in a local
  /// overflow queue and is forwarded on a later loop iteration.
  void send(unsigned target, Message message);

  // ---- running ----

  /// Makes a detached root frame (see spawn.h) ready in `group`, and
  /// tracks it so shutdown can destroy it if it never finishes. The frame
  /// unlinks itself when it ends.
  void adopt_root(RootLink& link, const char* name, SchedulingGroup group);
  /// Reports an exception that escaped a detached task.
  void report_uncaught(const char* name, std::exception_ptr error) noexcept;

  /// Runs the loop until request_stop(), then cancels and reaps all I/O.
  /// Does not destroy tasks: see destroy_remaining_roots().
  void run();
  /// Asks the loop to stop. Any thread may call it.
  void request_stop() noexcept;
  /// Destroys detached tasks that never finished. Call after run() has
  /// returned on every reactor of the Runtime, so no message in flight can
  /// refer to a destroyed frame. Returns how many were destroyed; frames
  /// with I/O still in the kernel are leaked rather than freed.
  std::size_t destroy_remaining_roots() noexcept;

  /// Connects the mailboxes of a Runtime (called by Runtime before run()).
  void connect(std::vector<SpscRing<Message>*> incoming, std::vector<SpscRing<Message>*> outgoing,
               std::vector<Reactor*> peers);

 private:
  friend class Runtime;
  // Creates the reactor for core `core` on the calling thread. Throws
  // std::system_error (the errno, and a message naming the core) when the
  // kernel refuses the io_uring or the eventfd; Runtime::run reports it.
  Reactor(Runtime* runtime, unsigned core, const ReactorConfig& config);

  struct Group {
    RunQueue queue;
    std::uint64_t vruntime = 0;  // weighted run time, in ticks * 1024 / shares
    unsigned shares = 1;
    std::uint64_t weight_q16 = std::uint64_t{1024} << 16;  // (1024 << 16) / shares
  };

  io_uring_sqe* get_sqe_slow(unsigned count);
  void setup_ring();
  void probe_ops();
  void arm_eventfd_read();
  void run_ready_tasks();
  // Runs ready tasks of group `index` from `start` (a clock reading) until
  // its queue is empty or `slice_end` has passed; returns the clock at the
  // end.
  std::uint64_t run_group(unsigned index, std::uint64_t start, std::uint64_t slice_end);
  void poll_mailboxes() noexcept;
  bool mail_waiting() noexcept;
  void link_parked(ParkedWait& wait) noexcept;
  // Runs and unlinks every DeferredFlush.
  void run_flushes() noexcept;
  // Resumes every parked wait whose condition holds (`polling`: see
  // ParkedWait::ready); true if any was.
  bool poll_parked(bool polling) noexcept;
  // On the parked core: the claimed `wait` resumes if ready, else parks again.
  void resume_claimed(ParkedWait& wait) noexcept;
  static void resume_claimed_here(void* wait) noexcept;
  // Spins for up to idle_poll_us over the CQ, the mailboxes and the parked
  // waits; true as soon as one of them has work.
  bool idle_poll();
  bool cq_has_work() noexcept;
  void flush_overflow() noexcept;
  void submit_and_reap(bool wait);
  // Hands the queued SQEs to the kernel and makes the io_uring_enter system
  // call only when one is needed: to wait for `min_complete` completions,
  // to run deferred completions (`get_events`), to wake a sleeping SQPOLL
  // thread or to flush an overflowed CQ. Every io_uring_enter on the ring
  // goes through here and is counted in ReactorStats::enters. Returns the
  // SQEs handed over (the kernel's count when it was entered) or -errno.
  int enter(unsigned min_complete, bool get_events);
  // Runs deferred completions into the CQ: an io_uring_enter, except with
  // SQPOLL, whose poller thread posts completions itself.
  void get_events();
  void reap() noexcept;
  // A CQE that completes no slot: our own wake-up and eventfd traffic, or
  // an unknown one (counted).
  void reap_other(const io_uring_cqe& cqe) noexcept;
  void sleep_until_woken();
  void notify_peer(Reactor& peer) noexcept;
  // A wake-up that failed, sent again through the peer's eventfd (counted).
  void wake_by_eventfd(Reactor& peer) noexcept;
  // Writes the peer's eventfd, retrying an interrupted write.
  void write_eventfd(Reactor& peer) noexcept;
  void drain_io() noexcept;
  // With polled I/O in flight: poll the polled ring, and take what the
  // main ring has without sleeping.
  void spin_polled();
  // `tasks` ran for `ticks` between two clock reads, longer than the stall
  // threshold: counts and reports a stall.
  void note_stall(std::uint64_t ticks, unsigned tasks) noexcept;
  unsigned pick_group() noexcept;

  static constinit thread_local Reactor* current_;

  Runtime* runtime_;
  unsigned core_;
  ReactorConfig config_;
  io_uring ring_{};
  unsigned ring_flags_ = 0;
  bool ring_fd_registered_ = false;
  // The fixed-file table, registered by the first install_file; an error
  // of that registration is kept and returned by later installs.
  bool file_table_tried_ = false;
  int file_table_error_ = 0;
  std::vector<bool> file_slot_used_;
  bool has_msg_ring_ = false;
  bool has_cancel_any_ = true;
  std::array<std::uint64_t, 4> supported_ops_{};  // bitmap of opcodes

  // The in-flight operations of ring_ (see "Operation identity" above).
  SlotTable slots_;
  // SQEs handed out since the last submission.
  unsigned unsubmitted_ = 0;
  // get_sqe's room: the SQ tail may grow up to here. Set from the kernel's
  // head whenever get_sqe_slow looks at it; the head only moves forward, so
  // the limit can only be too low (then the slow path looks again), never
  // too high, even if other code takes SQEs with io_uring_get_sqe.
  unsigned sq_limit_ = 0;
  // log2 of the SQE size in 64-byte units (1 with sqe128).
  unsigned sqe_shift_ = 0;

  std::array<Group, SchedulingGroup::max_groups> groups_;
  unsigned group_count_ = 2;
  std::size_t ready_count_ = 0;
  std::uint8_t current_group_ = 0;
  const char* current_name_ = "main";
  std::uint64_t task_started_ = 0;
  std::uint64_t slice_end_ = 0;
  std::uint64_t quota_ticks_ = 0;
  std::uint64_t stall_ticks_ = 0;
  // run_group reads the clock after this many tasks (and after the last):
  // sampled_clock_every normally, 1 (every task) for a second after a
  // stall among several tasks that were timed together.
  static constexpr unsigned sampled_clock_every = 16;
  unsigned clock_every_ = sampled_clock_every;
  // Tasks left until run_group reads the clock; need_yield sets it to 1.
  unsigned clock_countdown_ = sampled_clock_every;
  std::uint64_t exact_timing_until_ = 0;
  // The clock at the end of the last run_ready_tasks, and whether the
  // reactor has neither idled nor slept since (see run_ready_tasks).
  std::uint64_t last_clock_ = 0;
  bool clock_fresh_ = false;
  // No idle group's vruntime may be further behind than this when it
  // competes again (see pick_group).
  std::uint64_t vruntime_floor_ = 0;
  // 2^16 / CycleClock::ticks_per_ns(): ticks to ns by multiplication.
  std::uint64_t ns_per_tick_q16_ = 0;
  std::uint64_t idle_poll_ticks_ = 0;
  // The ring cannot tell user space that deferred completions are waiting
  // (no IORING_SETUP_TASKRUN_FLAG), so idle polling enters the kernel to
  // look now and then.
  bool poll_needs_enter_ = false;
  std::uint64_t last_stall_report_ = 0;

  // Mailboxes: incoming_[c] is the ring from core c to this core (null for
  // this core itself); outgoing_[c] the ring from this core to core c.
  std::vector<SpscRing<Message>*> incoming_;
  std::vector<SpscRing<Message>*> outgoing_;
  std::vector<Reactor*> peers_;
  bool has_peers_ = false;                      // more than one core: mailboxes to poll
  std::vector<std::vector<Message>> overflow_;  // per target, rarely used
  bool overflow_pending_ = false;

  // True while this reactor is blocked (or about to block) in
  // io_uring_enter. Peers read it to decide whether to wake us.
  alignas(cache_line_size) std::atomic<bool> sleeping_{false};
  std::atomic<bool> stop_requested_{false};
  int eventfd_ = -1;
  std::uint64_t eventfd_buffer_ = 0;
  bool draining_ = false;

  // poll_mailboxes()'s buffer. A member, not a local: Message has default
  // member initialisers, so a local array is zero-filled (1 KiB, ~160
  // instructions) on every loop iteration.
  std::array<Message, 64> mailbox_batch_;

  // Detached root frames still alive, for shutdown.
  RootLink roots_;
  // Tasks parked on a condition in shared memory (ParkedWait), polled.
  ParkLink parked_;
  // Publications deferred to the end of the loop iteration (DeferredFlush).
  ParkLink flushes_;

  ReactorStats stats_;

  // The polled ring (enable_polled_ring), or null.
  std::unique_ptr<PolledRing> polled_;
};

/// Awaitable that moves the current task to the back of its group's run
/// queue, letting other ready tasks run first.
struct YieldAwaitable {
  /// Always false: yielding means suspending.
  bool await_ready() const noexcept { return false; }
  /// Requeues the task at the back of its group's run queue on this core.
  void await_suspend(std::coroutine_handle<> h) const noexcept {
    Reactor* r = Reactor::current();
    r->schedule(r->waiter_for(h));
  }
  /// Nothing to return: the task simply runs again.
  void await_resume() const noexcept {}
};

/// `co_await yield()` lets every other ready task run before continuing.
inline YieldAwaitable yield() noexcept { return {}; }

/// Awaitable that yields only when the running group's slice is used up.
struct MaybeYieldAwaitable {
  /// True (do not suspend) while the running group's slice lasts.
  bool await_ready() const noexcept { return !Reactor::current()->need_yield(); }
  /// Requeues the task at the back of its group's run queue on this core.
  void await_suspend(std::coroutine_handle<> h) const noexcept {
    Reactor* r = Reactor::current();
    r->schedule(r->waiter_for(h));
  }
  /// Nothing to return: the task simply runs again.
  void await_resume() const noexcept {}
};

/// `co_await maybe_yield()` in long-running background loops (compression,
/// flushing): costs one clock read while the slice lasts, and yields once
/// it has run out so that other groups get their shares.
inline MaybeYieldAwaitable maybe_yield() noexcept { return {}; }

}  // namespace coblk::runtime
