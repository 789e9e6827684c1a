#include "coblk/runtime/reactor.h"

#include "coblk/runtime/fault_injection.h"
#include "coblk/runtime/polled_ring.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

#include "coblk/runtime/cycle_clock.h"
#include "coblk/runtime/reactor_user_data.h"

namespace coblk::runtime {

constinit thread_local Reactor* Reactor::current_ = nullptr;

namespace {

// drain_io's longest wait. Static: with SQPOLL the poller thread reads a
// timeout SQE's timespec whenever it takes the SQE, which may be after the
// call that queued it has returned. The kernel only reads it.
__kernel_timespec drain_wait{0, 10 * 1000 * 1000};

void resume_waiter_on_this_core(void* object) noexcept {
  Reactor::current()->schedule(*static_cast<const Waiter*>(object));
}

}  // namespace

Reactor::Reactor(Runtime* runtime, unsigned core, const ReactorConfig& config)
    : runtime_(runtime), core_(core), config_(config), slots_(config.ring_entries * 2, config.first_slot_generation) {
  if (current_ != nullptr) {
    throw std::logic_error("a thread can host only one Reactor");
  }
  setup_ring();
  if (config_.register_ring_fd) {
    // Returns the number registered (1) or -errno (-EINVAL before 5.18):
    // then io_uring_enter keeps taking the plain fd, as it always did.
    ring_fd_registered_ = io_uring_register_ring_fd(&ring_) == 1;
  }
  probe_ops();

  eventfd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (eventfd_ < 0) {
    const int err = errno;
    io_uring_queue_exit(&ring_);
    throw std::system_error(err, std::generic_category(),
                            "runtime: core " + std::to_string(core_) + ": cannot create an eventfd");
  }

  group_count_ = scheduling_group_count();
  for (unsigned g = 0; g < group_count_; ++g) {
    groups_[g].shares = SchedulingGroup(g).shares();
    groups_[g].weight_q16 = (std::uint64_t{1024} << 16) / groups_[g].shares;
  }
  quota_ticks_ = CycleClock::from_ns(static_cast<std::uint64_t>(config_.task_quota.count()) * 1000);
  stall_ticks_ = CycleClock::from_ns(static_cast<std::uint64_t>(config_.stall_threshold.count()) * 1000);
  idle_poll_ticks_ = CycleClock::from_ns(static_cast<std::uint64_t>(config_.idle_poll_us) * 1000);
  ns_per_tick_q16_ = static_cast<std::uint64_t>(65536.0 / CycleClock::ticks_per_ns());
  current_ = this;
  arm_eventfd_read();
}

Reactor::~Reactor() {
  polled_.reset();
  io_uring_queue_exit(&ring_);
  if (eventfd_ >= 0) {
    ::close(eventfd_);
  }
  if (current_ == this) {
    current_ = nullptr;
  }
}

bool Reactor::need_yield() noexcept {
  if (CycleClock::now() < slice_end_) return false;
  // The slice is over: run_group reads the clock after this task instead
  // of up to 15 tasks later, and ends the slice there.
  clock_countdown_ = 1;
  return true;
}

void Reactor::wake(const Waiter& waiter) noexcept {
  Reactor* self = current_;
  if (waiter.core == self->core_) {
    self->schedule(waiter);
  } else {
    // The Waiter lives in the waiting frame, which stays suspended (and
    // so alive) until this message has been handled on its core.
    self->send(waiter.core, Message{&resume_waiter_on_this_core, const_cast<Waiter*>(&waiter)});
  }
}

void Reactor::link_parked(ParkedWait& wait) noexcept {
  if (!wait.linked()) {
    wait.next = &parked_;
    wait.prev = parked_.prev;
    parked_.prev->next = &wait;
    parked_.prev = &wait;
  }
}

void Reactor::run_flushes() noexcept {
  while (flushes_.linked()) {
    auto& f = static_cast<DeferredFlush&>(*flushes_.next);
    f.unlink();  // first: the flush may end its node's life
    f.flush(f);
  }
}

void Reactor::wake_parked(ParkedWait& wait) noexcept {
  Reactor* self = current_;
  if (wait.waiter.core == self->core_) {
    self->resume_claimed(wait);
  } else {
    // `wait` lives in the channel, which outlives the parked task; the
    // task stays parked until this message has been handled on its core.
    self->send(wait.waiter.core, Message{&Reactor::resume_claimed_here, &wait});
  }
}

void Reactor::resume_claimed_here(void* wait) noexcept { current_->resume_claimed(*static_cast<ParkedWait*>(wait)); }

void Reactor::resume_claimed(ParkedWait& wait) noexcept {
  wait.unlink();
  if (wait.ready(wait, false)) {
    schedule(wait.waiter);
    return;
  }
  // A stale claim (see ParkedWait): park again, exactly as the parked side
  // does, flag first, then the check.
  wait.waiting.store(true, std::memory_order_release);
  link_parked(wait);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (wait.ready(wait, false) && wait.waiting.exchange(false, std::memory_order_acquire)) {
    wait.unlink();
    schedule(wait.waiter);
  }
}

bool Reactor::poll_parked(bool polling) noexcept {
  bool resumed = false;
  for (ParkLink* link = parked_.next; link != &parked_;) {
    auto& wait = static_cast<ParkedWait&>(*link);
    link = link->next;  // before `wait` may leave the list
    // A wait whose flag is already false was claimed by the other side;
    // its wake_parked message will unlink and resume it.
    if (wait.waiting.load(std::memory_order_relaxed) && wait.ready(wait, polling) &&
        wait.waiting.exchange(false, std::memory_order_acquire)) {
      wait.unlink();
      schedule(wait.waiter);
      stats_.parked_polled.add();
      resumed = true;
    }
  }
  return resumed;
}

void Reactor::adopt_root(RootLink& link, const char* name, SchedulingGroup group) {
  link.next = roots_.next;
  link.prev = &roots_;
  roots_.next->prev = &link;
  roots_.next = &link;
  schedule(Waiter{link.handle, name, core_, static_cast<std::uint8_t>(group.index())});
}

void Reactor::report_uncaught(const char* name, std::exception_ptr error) noexcept {
  stats_.uncaught_exceptions.add();
  const char* what = "unknown exception";
  std::string text;
  try {
    std::rethrow_exception(std::move(error));
  } catch (const std::exception& e) {
    text = e.what();
    what = text.c_str();
  } catch (...) {}
  std::fprintf(stderr, "coblk: task '%s' on core %u ended with an exception: %s\n", name ? name : "?", core_, what);
}

void Reactor::connect(std::vector<SpscRing<Message>*> incoming, std::vector<SpscRing<Message>*> outgoing,
                      std::vector<Reactor*> peers) {
  incoming_ = std::move(incoming);
  outgoing_ = std::move(outgoing);
  peers_ = std::move(peers);
  has_peers_ = peers_.size() > 1;
  overflow_.assign(peers_.size(), {});
}

void Reactor::send(unsigned target, Message message) {
  stats_.messages_sent.add();
  if (overflow_[target].empty() && outgoing_[target]->try_push(Message{message})) {
    notify_peer(*peers_[target]);
    return;
  }
  // The mailbox is full. Keep FIFO order by queueing behind earlier
  // overflow; run() forwards it as the peer drains its mailbox.
  overflow_[target].push_back(message);
  overflow_pending_ = true;
  notify_peer(*peers_[target]);
}

void Reactor::flush_overflow() noexcept {
  bool pending = false;
  for (std::size_t c = 0; c < overflow_.size(); ++c) {
    auto& queue = overflow_[c];
    if (queue.empty()) {
      continue;
    }
    const std::size_t n = outgoing_[c]->try_push_batch(std::span<Message>(queue));
    queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(n));
    if (n != 0) {
      notify_peer(*peers_[c]);
    }
    pending = pending || !queue.empty();
  }
  overflow_pending_ = pending;
}

void Reactor::poll_mailboxes() noexcept {
  if (!has_peers_) return;
  std::array<Message, 64>& batch = mailbox_batch_;
  for (SpscRing<Message>* inbox : incoming_) {
    if (inbox == nullptr) {
      continue;
    }
    std::size_t n;
    while ((n = inbox->try_pop_batch(std::span<Message>(batch.data(), batch.size()))) != 0) {
      stats_.messages_received.add(n);
      for (std::size_t i = 0; i < n; ++i) {
        batch[i].handler(batch[i].object);
      }
    }
  }
}

bool Reactor::mail_waiting() noexcept {
  for (SpscRing<Message>* inbox : incoming_) {
    if (inbox != nullptr && !inbox->empty_for_consumer()) {
      return true;
    }
  }
  return false;
}

unsigned Reactor::pick_group() noexcept {
  // Fast path: every ready task is in the group that ran last.
  Group& last = groups_[current_group_];
  if (last.queue.size() == ready_count_) {
    if (last.vruntime < vruntime_floor_) last.vruntime = vruntime_floor_;
    if (last.vruntime > vruntime_floor_ + quota_ticks_) vruntime_floor_ = last.vruntime - quota_ticks_;
    return current_group_;
  }
  // The group with the least weighted run time among those with ready
  // tasks. A group that was idle keeps its old, low vruntime; it may not
  // be further than one quota behind any group picked while it was idle,
  // so that waking up does not let it run unopposed for long. That floor
  // is applied here, when the group competes again, rather than to every
  // idle group at every pick: the result is the same (a group's vruntime
  // only grows, so the floor from a pick that chose it or passed it over
  // is already below it), and a pick costs one pass over the groups.
  unsigned best = 0;
  std::uint64_t best_vruntime = UINT64_MAX;
  for (unsigned g = 0; g < group_count_; ++g) {
    Group& group = groups_[g];
    if (group.queue.empty()) continue;
    if (group.vruntime < vruntime_floor_) group.vruntime = vruntime_floor_;
    if (group.vruntime < best_vruntime) {
      best = g;
      best_vruntime = group.vruntime;
    }
  }
  if (best_vruntime > vruntime_floor_ + quota_ticks_) vruntime_floor_ = best_vruntime - quota_ticks_;
  return best;
}

void Reactor::run_ready_tasks() {
  // Called with ready_count_ != 0, so pick_group finds a group. The clock
  // read at the end of the last run serves as this one's start when the
  // reactor has not idled or slept since: what it did in between (submit,
  // reap, mailboxes) is short, and is charged to this run.
  const std::uint64_t start = clock_fresh_ ? last_clock_ : CycleClock::now();
  std::uint64_t now = start;
  do {
    now = run_group(pick_group(), now, now + quota_ticks_);
  } while (ready_count_ != 0 && now - start < quota_ticks_);
  last_clock_ = now;
  clock_fresh_ = true;
}

std::uint64_t Reactor::run_group(unsigned index, std::uint64_t start, std::uint64_t slice_end) {
  Group& group = groups_[index];
  current_group_ = static_cast<std::uint8_t>(index);
  slice_end_ = slice_end;
  task_started_ = start;
  // The clock is read after every clock_every_ tasks and after the last
  // one, not after each: a TSC read costs about 20 ns on this project's
  // machines, a third of a raw io_uring NOP (docs/performance.md, bench_nop).
  std::uint64_t checked = start;  // the last clock read
  unsigned since = 0;             // tasks run since then
  std::uint64_t ran = 0;
  clock_countdown_ = clock_every_;
  do {
    const RunQueue::Entry entry = group.queue.pop();
    --ready_count_;
    current_name_ = entry.name;
    entry.handle.resume();
    ++since;
    if (flushes_.linked()) {
      // The task has suspended: publish what it pushed unpublished
      // (Channel::send), so a suspended producer never holds items back.
      run_flushes();
    }
    if (--clock_countdown_ == 0) {
      const std::uint64_t now = CycleClock::now();
      if (now - checked > stall_ticks_) note_stall(now - checked, since);
      ran += since;
      since = 0;
      checked = now;
      task_started_ = now;
      clock_countdown_ = clock_every_;
      if (now >= slice_end) break;
    }
  } while (!group.queue.empty());
  if (since != 0) {
    const std::uint64_t now = CycleClock::now();
    if (now - checked > stall_ticks_) note_stall(now - checked, since);
    ran += since;
    checked = now;
  }
  if (clock_every_ == 1 && checked >= exact_timing_until_) clock_every_ = sampled_clock_every;
  const std::uint64_t used = checked - start;
  // used * 1024 / shares, by a 16.16 multiply below 2^32 ticks (as below).
  group.vruntime += used < (std::uint64_t{1} << 32) ? (used * group.weight_q16) >> 16 : used * 1024 / group.shares;
  stats_.tasks_run.add(ran);
  stats_.groups[index].tasks_run.add(ran);
  // Ticks to ns by a 16.16 fixed-point multiply (to_ns() divides in
  // double), exact to 1/2^16 of a tick; a run of 2^32 ticks or more
  // (about a second) could overflow it and takes the division.
  stats_.groups[index].runtime_ns.add(used < (std::uint64_t{1} << 32) ? (used * ns_per_tick_q16_) >> 16
                                                                      : CycleClock::to_ns(used));
  return checked;
}

void Reactor::note_stall(std::uint64_t ticks, unsigned tasks) noexcept {
  const std::uint64_t ns = CycleClock::to_ns(ticks);
  stats_.stalls.add();
  stats_.max_stall_ns.raise_to(ns);
  // Release so a reader that sees the name also sees the counters above.
  stats_.last_stall_task.store(current_name_, std::memory_order_release);
  const std::uint64_t now = CycleClock::now();
  if (tasks > 1) {
    // Not timed one by one: which of them stalled is unknown. Time every
    // task for the next second, so that a task that stalls again is named.
    clock_every_ = 1;
    exact_timing_until_ = now + CycleClock::from_ns(1000000000ull);
  }
  if (tasks > 1) {
    // At most once a second too: the next second times tasks one by one.
    std::fprintf(stderr,
                 "coblk: core %u: %u tasks, the last '%s', ran %.3f ms without yielding; timing each task for "
                 "a second to name the one that stalls\n",
                 core_, tasks, current_name_ ? current_name_ : "?", static_cast<double>(ns) / 1e6);
    return;
  }
  // At most one report per second per core: a stalling task must not also
  // flood the log.
  if (now - last_stall_report_ > CycleClock::from_ns(1000000000ull) || last_stall_report_ == 0) {
    last_stall_report_ = now;
    std::fprintf(stderr, "coblk: core %u: task '%s' ran %.3f ms without yielding\n", core_,
                 current_name_ ? current_name_ : "?", static_cast<double>(ns) / 1e6);
  }
}

void Reactor::reap() noexcept {
  // One acquire load of the kernel's tail for the whole batch (pairs with
  // the kernel's release when it posts CQEs), instead of one per CQE.
  io_uring_cq& cq = ring_.cq;
  unsigned head = *cq.khead;
  unsigned tail = io_uring_smp_load_acquire(cq.ktail);
  if (head == tail) {
    return;
  }
  unsigned seen = 0;
  const unsigned shift = (ring_flags_ & IORING_SETUP_CQE32) ? 1 : 0;
  const bool draining = draining_;  // constant while we reap
  while (head != tail) {
    const io_uring_cqe* cqe = &cq.cqes[(head & cq.ring_mask) << shift];
    ++head;
    ++seen;
    if (const Waiter* waiter = slots_.complete(cqe->user_data, cqe->res, cqe->flags)) [[likely]] {
      // Draining: the waiter is not resumed (see drain_io).
      if (!draining) [[likely]]
        schedule(*waiter);
      continue;
    }
    // reap_other may reap again: re-arming the eventfd read needs an SQE,
    // and with the submission queue full get_sqe_slow submits and reaps.
    // So hand back what this loop has read first (the nested reap starts
    // after it, and never sees a CQE twice), and go on from wherever the
    // nested reap left the queue (never putting the head back).
    const io_uring_cqe other = *cqe;
    io_uring_smp_store_release(cq.khead, head);
    reap_other(other);
    head = *cq.khead;
    tail = io_uring_smp_load_acquire(cq.ktail);
  }
  // Release hands the CQ entries back to the kernel after we read them.
  io_uring_smp_store_release(cq.khead, head);
  stats_.cqes_reaped.add(seen);
}

void Reactor::reap_other(const io_uring_cqe& cqe) noexcept {
  const std::uint64_t ud = cqe.user_data;
  if (ud == reactor_user_data::eventfd) {
    if (!draining_) {
      arm_eventfd_read();
    }
  } else if (ud <= reactor_user_data::msg_ring_sent && ud > reactor_user_data::msg_ring_sent_last) {
    // Our MSG_RING to a peer; a refused one is sent again by eventfd.
    const std::uint64_t peer = reactor_user_data::msg_ring_sent - ud;
    if (cqe.res < 0 && peer < peers_.size() && peers_[peer] != nullptr) wake_by_eventfd(*peers_[peer]);
  } else if (ud != ignored_user_data && ud != reactor_user_data::wake) {
    // Wake-ups and ignored completions need nothing (mailboxes are polled
    // every iteration); anything else, a slot's old generation included,
    // names no operation of ours.
    stats_.unknown_cqes.add();
  }
}

int Reactor::enter(unsigned min_complete, bool get_events) {
  // The SQ flush and the decision to enter follow liburing 2.3's
  // io_uring_submit* (queue.c), whose calls this replaces so that a
  // syscall is counted where, and only where, it is made.
  io_uring_sq& sq = ring_.sq;
  const bool sqpoll = (ring_flags_ & IORING_SETUP_SQPOLL) != 0;
  const unsigned tail = sq.sqe_tail;
  const unsigned published = tail - sq.sqe_head;
  if (published != 0) {
    sq.sqe_head = tail;
    // Release: the SQEs' contents are visible before the new tail, to the
    // SQPOLL thread that may read it at any moment (without SQPOLL the
    // kernel reads it only inside our io_uring_enter).
    io_uring_smp_store_release(sq.ktail, tail);
  }
  // SQEs the kernel has not consumed yet. Acquire with SQPOLL: the poller
  // thread advances the head concurrently.
  const unsigned pending = tail - (sqpoll ? io_uring_smp_load_acquire(sq.khead) : *sq.khead);
  unsigned flags = 0;
  bool needed = min_complete != 0 || get_events;
  if (pending != 0) {
    if (!sqpoll) {
      needed = true;
    } else {
      // Full barrier: our tail store is visible before we read the flag.
      // Pairs with the poller's barrier between setting NEED_WAKEUP and
      // re-reading the tail before it sleeps: either it sees our SQEs, or
      // we see the flag and wake it.
      io_uring_smp_mb();
      if ((IO_URING_READ_ONCE(*sq.kflags) & IORING_SQ_NEED_WAKEUP) != 0) {
        flags |= IORING_ENTER_SQ_WAKEUP;
        needed = true;
      }
    }
  }
  // Completions the kernel holds back (overflow) or deferred task work it
  // flagged need a GETEVENTS enter to reach the CQ.
  if ((IO_URING_READ_ONCE(*sq.kflags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) != 0) {
    needed = true;
    get_events = true;
  }
  if (!needed) {
    stats_.sqes_submitted.add(published);
    return static_cast<int>(published);
  }
  if (min_complete != 0 || get_events) flags |= IORING_ENTER_GETEVENTS;
  unsigned fd = static_cast<unsigned>(ring_.ring_fd);
  if (ring_fd_registered_) {
    fd = static_cast<unsigned>(ring_.enter_ring_fd);
    flags |= IORING_ENTER_REGISTERED_RING;
  }
  stats_.enters.add();
  const int ret = io_uring_enter(fd, pending, min_complete, flags, nullptr);
  // With SQPOLL the kernel answers `pending` (the poller submits); count
  // what we published this time, as without it the kernel's own count.
  if (ret > 0) stats_.sqes_submitted.add(sqpoll ? published : static_cast<std::uint64_t>(ret));
  return ret;
}

void Reactor::get_events() {
  if ((ring_flags_ & IORING_SETUP_SQPOLL) != 0) {
    // The poller thread runs completions itself; enter only for an
    // overflowed CQ (enter() checks) or to wake the poller for queued SQEs.
    enter(0, false);
  } else {
    enter(0, true);
  }
}

void Reactor::submit_and_reap(bool wait) {
  int ret;
  if (wait) {
    // Sleep until a CQE arrives (a completion, a peer's MSG_RING, our
    // eventfd read). No time limit: sleep_until_woken explains why no
    // wake-up can be lost.
    ret = enter(1, true);
  } else if (unsubmitted_ == 0 && !(ring_flags_ & IORING_SETUP_DEFER_TASKRUN)) {  // NOLINT(bugprone-branch-clone)
    ret = 0;  // completions are posted without our help: just look
  } else if (unsubmitted_ == 0 && slots_.in_flight() == 0) {
    ret = 0;  // nothing to send, nothing to wait for
  } else {
    // One syscall submits the batch and, with DEFER_TASKRUN, runs the
    // deferred completions so they appear in the CQ. With SQPOLL the
    // poller takes the batch without a syscall while it is awake.
    ret = enter(0, (ring_flags_ & IORING_SETUP_SQPOLL) == 0);
  }
  if (ret >= 0 || ret == -ETIME) {
    // With SQPOLL what is published is the poller's to take: nothing of
    // it needs another call from us (enter() woke the poller if it slept).
    unsubmitted_ = (ring_flags_ & IORING_SETUP_SQPOLL) != 0 ? 0 : io_uring_sq_ready(&ring_);
  }
  reap();
}

bool Reactor::cq_has_work() noexcept {
  return io_uring_cq_ready(&ring_) != 0 || (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN) != 0;
}

void Reactor::run() {
  current_ = this;
  // Acquire pairs with the release in request_stop(): whatever the stopper
  // wrote before asking is visible once we see the request.
  while (!stop_requested_.load(std::memory_order_acquire)) {
    poll_mailboxes();
    if (parked_.linked()) {
      poll_parked(true);
    }
    if (overflow_pending_) {
      flush_overflow();
    }
    if (ready_count_ != 0) {
      run_ready_tasks();
    }
    if (flushes_.linked()) {
      // For a task resumed outside run_group: before the submit, the idle
      // poll or the sleep below, whatever was pushed unpublished
      // (Channel::send) becomes visible.
      run_flushes();
    }
    if (polled_ != nullptr && polled_->busy()) {
      // Polled I/O completes only when someone polls: look every
      // iteration, and never sleep while any is in flight.
      spin_polled();
    } else if (ready_count_ != 0 || overflow_pending_) {
      submit_and_reap(false);
    } else if (idle_poll_ticks_ == 0 || !idle_poll()) {
      sleep_until_woken();
    }
  }
  drain_io();
}

void Reactor::request_stop() noexcept {
  stop_requested_.store(true, std::memory_order_release);
  // A write to the eventfd ends a sleep in io_uring_enter from any thread.
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(eventfd_, &one, sizeof(one));
}

void Reactor::drain_io() noexcept {
  draining_ = true;
  // Cancel everything still in the kernel. Their CQEs are reaped but their
  // waiters are not resumed: shutdown then destroys the frames, and only
  // after every CQE is in, so no buffer is freed under the kernel.
  try {
    slots_.for_each_in_flight([this](std::uint64_t user_data) { cancel(user_data); });
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, reactor_user_data::eventfd, 0);
    io_uring_sqe_set_data64(sqe, ignored_user_data);
  } catch (...) {
    // Out of SQEs while cancelling: the wait below still reaps what it can.
  }
  // Polled requests cannot be cancelled, but complete promptly: poll them
  // in (their waiters are not resumed).
  if (polled_ != nullptr && polled_->drain(2000000000ull) != 0) {
    std::fprintf(stderr, "coblk: core %u: %u polled I/O operations did not finish at shutdown\n", core_,
                 polled_->in_flight());
  }
  const std::uint64_t deadline = CycleClock::now() + CycleClock::from_ns(2000000000ull);
  while (slots_.in_flight() != 0 && CycleClock::now() < deadline) {
    // Waits at most 10 ms: a timeout that also ends as soon as one other
    // completion arrives (count 1), so none is left behind to pile up.
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe != nullptr) {
      io_uring_prep_timeout(sqe, &drain_wait, 1, 0);
      io_uring_sqe_set_data64(sqe, ignored_user_data);
    }
    // No SQE for the timeout (the SQ is full): look without waiting.
    enter(sqe != nullptr ? 1 : 0, true);
    reap();
  }
  if (slots_.in_flight() != 0) {
    std::fprintf(stderr, "coblk: core %u: %u I/O operations did not finish at shutdown; their tasks are leaked\n",
                 core_, slots_.in_flight());
  }
}

std::size_t Reactor::destroy_remaining_roots() noexcept {
  if (slots_.in_flight() != 0) {
    return 0;  // a frame may still own a buffer the kernel writes to
  }
  std::size_t destroyed = 0;
  while (roots_.next != &roots_) {
    RootLink* link = roots_.next;
    link->unlink();
    link->handle.destroy();
    ++destroyed;
  }
  return destroyed;
}

}  // namespace coblk::runtime
