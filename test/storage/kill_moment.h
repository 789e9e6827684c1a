// The moment a crash test kills its child, counted in the child's work.
//
// A kill timed by the wall clock alone lands after fewer operations when
// the machine is busy (CI runs these tests next to a qemu guest and other
// sanitizer builds), so a test that proves "the kills landed mid-work" by
// counting would pass on a quiet machine and fail on a loaded one. Waiting
// for the child to complete a number of operations first, and only then
// sleeping a short random while, keeps both: the work done per round does
// not depend on load, and the kill still lands anywhere inside an
// operation.
#pragma once

#include <sys/types.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace coblk::storage_test {

/// True while `child` has not exited (it is not reaped here: the caller's
/// waitpid still sees its status).
inline bool child_running(pid_t child) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
}

/// Waits until `counter` (advanced by `child` in shared memory) reaches
/// `target`, the child exits, or `limit` passes, whichever comes first.
/// The limit only bounds a stuck child; the caller's checks then report it.
inline void wait_for_count(pid_t child, const std::atomic<std::uint64_t>& counter, std::uint64_t target,
                           std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  // Acquire pairs with the child's release increments, though only the
  // count itself is read here.
  while (counter.load(std::memory_order_acquire) < target && child_running(child) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace coblk::storage_test
