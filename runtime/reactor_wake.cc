// Reactor: how an idle reactor polls, sleeps and is woken. notify_peer
// (a sender waking a sleeping peer by MSG_RING or its eventfd),
// idle_poll, sleep_until_woken and the light wakers' membarrier, with the
// argument why no wake-up is lost (above sleep_until_woken).
#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "coblk/runtime/cycle_clock.h"
#include "coblk/runtime/fault_injection.h"
#include "coblk/runtime/polled_ring.h"
#include "coblk/runtime/reactor.h"
#include "coblk/runtime/reactor_user_data.h"

namespace coblk::runtime {

namespace {

int membarrier(int command) noexcept { return static_cast<int>(::syscall(__NR_membarrier, command, 0u, 0)); }

// Whether this process is registered for MEMBARRIER_CMD_PRIVATE_EXPEDITED.
bool membarrier_registered() noexcept {
  static const bool registered = [] {
    const int commands = membarrier(MEMBARRIER_CMD_QUERY);
    return commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
           membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
  }();
  return registered;
}

// A pause hint for spin loops.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace

namespace detail {

bool enable_light_wakers() noexcept {
  if (membarrier_registered()) {
    light_wakers.store(true, std::memory_order_relaxed);
  }
  return light_wakers.load(std::memory_order_relaxed);
}

bool set_light_wakers_for_testing(bool light) noexcept {
  light_wakers.store(light && membarrier_registered(), std::memory_order_relaxed);
  return light_wakers.load(std::memory_order_relaxed);
}

}  // namespace detail

void Reactor::notify_peer(Reactor& peer) noexcept {
  // Pairs with the fence in sleep_until_woken(): either the peer sees the
  // message we just pushed before it sleeps, or we see its sleeping flag
  // here. Without a full fence both sides could miss each other.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!peer.sleeping_.load(std::memory_order_relaxed)) {
    return;  // awake: it polls its mailboxes every loop iteration
  }
  // Only one sender wins the exchange, so a sleeping peer gets one wake-up
  // however many messages arrive. Relaxed: the fence above already ordered
  // our push before this point.
  if (!peer.sleeping_.exchange(false, std::memory_order_relaxed)) {
    return;
  }
  stats_.wakeups_sent.add();
  if (has_msg_ring_ && peer.has_msg_ring_) {
    if (fault::fail(fault::Site::wakeup)) {
      // Tests: as if the kernel had refused the MSG_RING.
      wake_by_eventfd(peer);
      return;
    }
    try {
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_msg_ring(sqe, peer.ring_.ring_fd, 0, reactor_user_data::wake, 0);
      io_uring_sqe_set_data64(sqe, reactor_user_data::msg_ring_sent - peer.core_);
    } catch (...) {
      // No SQE to be had (get_sqe can throw): this function must not, and
      // the peer must still wake.
      wake_by_eventfd(peer);
    }
  } else {
    write_eventfd(peer);
  }
}

void Reactor::wake_by_eventfd(Reactor& peer) noexcept {
  stats_.wakeup_retries.add();
  write_eventfd(peer);
}

void Reactor::write_eventfd(Reactor& peer) noexcept {
  const std::uint64_t one = 1;
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (::write(peer.eventfd_, &one, sizeof(one)) == static_cast<ssize_t>(sizeof(one))) return;
    // EINTR: try again. EAGAIN would need 2^64-2 unread wake-ups; the peer
    // reads the counter whenever it wakes, so it is awake anyway.
    if (errno != EINTR) return;
    stats_.wakeup_retries.add();
  }
}

bool Reactor::idle_poll() {
  // Whatever is queued (a MSG_RING for a sleeping peer, new I/O) goes to
  // the kernel now: nothing else would submit it while we spin.
  if (unsubmitted_ != 0) {
    submit_and_reap(false);
    if (ready_count_ != 0) {
      return true;
    }
  }
  stats_.idle_polls.add();
  clock_fresh_ = false;  // idling is nobody's run time
  const std::uint64_t start = CycleClock::now();
  std::uint64_t last_enter = start;
  const std::uint64_t enter_every = CycleClock::from_ns(5000);
  for (;;) {
    // The cheap checks often, the clock now and then.
    for (int i = 0; i < 16; ++i) {
      if (mail_waiting() || overflow_pending_ || stop_requested_.load(std::memory_order_relaxed) ||
          (parked_.linked() && poll_parked(true))) {
        stats_.idle_poll_hits.add();
        return true;
      }
      if (cq_has_work()) {
        // Runs deferred completions (DEFER_TASKRUN / COOP_TASKRUN) into
        // the CQ, then reaps; a re-armed eventfd read is submitted too.
        get_events();
        reap();
        if (unsubmitted_ != 0) {
          submit_and_reap(false);
        }
        if (ready_count_ != 0) {
          stats_.idle_poll_hits.add();
          return true;
        }
      }
      cpu_relax();
    }
    const std::uint64_t now = CycleClock::now();
    if (now - start >= idle_poll_ticks_) {
      return false;
    }
    if (poll_needs_enter_ && slots_.in_flight() != 0 && now - last_enter >= enter_every) {
      // No TASKRUN flag to read: look for deferred completions directly.
      last_enter = now;
      get_events();
      reap();
      if (ready_count_ != 0) {
        stats_.idle_poll_hits.add();
        return true;
      }
    }
  }
}

// Why no wake-up is lost. Two kinds of wakers reach a sleeping reactor R.
//
// 1. Mail (submit_to, Reactor::wake, wake_parked): the sender pushes into
//    R's mailbox, issues a seq_cst fence and reads R's `sleeping_`
//    (notify_peer); R stores `sleeping_ = true`, issues a seq_cst fence and
//    reads its mailboxes (below). The two fences are ordered in the single
//    total order S of seq_cst operations. If R's fence comes first, the
//    sender's load of `sleeping_` reads true or a later value, and later
//    values are only written by a sender that won the exchange (and so
//    wakes R) or by R itself after it woke. If the sender's fence comes
//    first, R's check reads the pushed message and R does not sleep. Only
//    one sender wins the exchange, and its MSG_RING (or eventfd write)
//    completes into R's ring, which ends the io_uring_enter wait or, if R
//    has not entered it yet, makes it return at once.
//
// 2. Parked waits (ParkedWait, Channel): the other side publishes (an item,
//    a free slot, close) and then reads `waiting` with only waker_fence()
//    between, a compiler barrier when light_wakers is on. A parked wait
//    whose flag that side read too early stays on R's list, and R re-checks
//    its condition on every loop iteration, while idle polling, and here
//    before sleeping, after membarrier(PRIVATE_EXPEDITED). membarrier
//    returns only after every other running thread of the process has
//    executed a full memory barrier (and a thread not running has been
//    switched out, which implies one). Take the waker W's barrier point B
//    relative to its publish P and its load L of `waiting` (P before L in
//    program order, and the compiler barrier keeps them so). If B is after
//    P, P is visible to every CPU when membarrier returns, so R's check
//    below sees it. If B is before P, it is before L, and the flag R set
//    (stored, then made visible by R's seq_cst fence before membarrier
//    started) is visible to L: W reads true, claims, and wakes R by mail,
//    as in 1. Without membarrier, light_wakers is off, W issues a seq_cst
//    fence instead and the parked side one after setting its flag, and the
//    argument of 1 applies to the flag and the condition directly.
//
// test/runtime/wakeup_model_test.cc checks both protocols by exploring
// every interleaving, store-buffer delays included (x86-TSO), of a model
// of this code, and shows that each fence (and membarrier) is needed.
void Reactor::sleep_until_woken() {
  clock_fresh_ = false;  // sleeping is nobody's run time
  sleeping_.store(true, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (parked_.linked() && detail::light_wakers.load(std::memory_order_relaxed)) {
    stats_.sleep_barriers.add();
    if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
      // Cannot happen once registered; never sleep without the barrier.
      sleeping_.store(false, std::memory_order_relaxed);
      submit_and_reap(false);
      return;
    }
  }
  // Exact conditions here (polling = false): a parked wait whose condition
  // holds is resumed, never slept on.
  if (stop_requested_.load(std::memory_order_relaxed) || overflow_pending_ || mail_waiting() ||
      (parked_.linked() && poll_parked(false))) {
    sleeping_.store(false, std::memory_order_relaxed);
    submit_and_reap(false);
    return;
  }
  stats_.sleeps.add();
  submit_and_reap(true);
  sleeping_.store(false, std::memory_order_relaxed);
}

}  // namespace coblk::runtime
