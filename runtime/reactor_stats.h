// runtime/reactor_stats.h - per-core counters readable from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "coblk/runtime/scheduling_group.h"

namespace coblk::runtime {

/// A counter written by exactly one thread (its reactor) and read by any.
///
/// The owner updates it with a relaxed load and a relaxed store rather than a
/// locked read-modify-write: there is no other writer to race with, and a
/// reader on another core only needs an untorn value (aligned 64-bit loads
/// and stores are atomic), not ordering with other memory.
class OwnedCounter {
 public:
  /// Owner thread only.
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  /// Owner thread only: keeps the maximum of the current value and `v`.
  void raise_to(std::uint64_t v) noexcept {
    if (v > value_.load(std::memory_order_relaxed)) {
      value_.store(v, std::memory_order_relaxed);
    }
  }
  /// Any thread.
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// Per scheduling group counters of one reactor.
struct GroupStats {
  OwnedCounter tasks_run;   ///< task resumptions in this group
  OwnedCounter runtime_ns;  ///< time spent running this group's tasks
};

/// Counters of one reactor (one core). Read them with Reactor::stats() or
/// Runtime::stats(core) from any thread.
struct ReactorStats {
  OwnedCounter tasks_run;       ///< coroutine resumptions from the run queues
  OwnedCounter sqes_submitted;  ///< SQEs the kernel accepted
  OwnedCounter cqes_reaped;     ///< CQEs consumed
  OwnedCounter sleeps;          ///< times the reactor blocked in io_uring_enter
  /// io_uring_enter system calls on the reactor's ring, sleeps included:
  /// each submission without SQPOLL, and with SQPOLL only those that wake
  /// its poller thread, wait or flush an overflowed completion queue.
  OwnedCounter enters;
  OwnedCounter messages_sent;      ///< cross-core messages sent
  OwnedCounter messages_received;  ///< cross-core messages handled
  OwnedCounter wakeups_sent;       ///< sleeping peers woken (MSG_RING or eventfd)
  /// Wake-ups that failed (a refused MSG_RING, no SQE for one, a failed
  /// eventfd write) and were sent again another way.
  OwnedCounter wakeup_retries;
  OwnedCounter stalls;               ///< task runs longer than the stall threshold (see ReactorConfig::stall_threshold)
  OwnedCounter max_stall_ns;         ///< longest task run seen above the threshold
  OwnedCounter uncaught_exceptions;  ///< detached tasks that ended with an exception
  OwnedCounter unknown_cqes;         ///< CQEs whose user_data matched no open operation
  /// Always 0 since sleeps have no time limit any more. It counted sleeps
  /// that ended by a 250 ms safety limit with mail waiting; the hang that
  /// limit guarded against was a Channel bug (a stale wake-up made recv()
  /// report a closed channel), fixed; the sleep/wake protocol is checked by
  /// test/runtime/wakeup_model_test.cc. Kept so that readers still build.
  OwnedCounter missed_wakeups;
  /// Times the reactor started idle polling (ReactorConfig::idle_poll_us).
  OwnedCounter idle_polls;
  /// Idle polls that found work before their time was up (the rest slept).
  OwnedCounter idle_poll_hits;
  /// Parked tasks (ParkedWait) resumed by their own reactor's polling
  /// rather than by a message from the other side.
  OwnedCounter parked_polled;
  /// membarrier calls made before sleeping with parked waits.
  OwnedCounter sleep_barriers;
  /// Name of the task of the most recent stall (a string literal or a name
  /// given to spawn; never freed while the process runs). The reactor
  /// stores it with release, so a reader that loads it with acquire also
  /// sees the characters of a name that was built at run time.
  std::atomic<const char*> last_stall_task{nullptr};
  /// Per scheduling group, indexed by SchedulingGroup::index().
  std::array<GroupStats, SchedulingGroup::max_groups> groups;
};

}  // namespace coblk::runtime
