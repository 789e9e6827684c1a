// runtime/fault_injection.h - make chosen runtime operations fail, for tests.
#pragma once

// Compiled in only with the CMake option COBLK_FAULT_INJECTION (the ASan
// build of scripts/test-all turns it on; release builds never have it).
// Without it every hook below is an inline no-op that the compiler removes,
// and arm() reports that injection is unavailable.
//
// A test arms rules before (or while) the code under test runs; the hooks,
// called by the runtime on reactor threads, consult them. A rule fires on
// the (skip+1)-th matching event and on the `count` events after it; every
// rule counts every event it matches, and when two fire at once the one
// armed first decides.

#include <cstdint>
#include <string>
#include <string_view>

namespace coblk::runtime::fault {

/// Where a fault can be injected.
enum class Site : std::uint8_t {
  /// The result of an io_uring operation, as its awaitable returns it.
  /// `result` < 0 replaces it with that negative errno; `result` > 0 caps a
  /// positive result at that many bytes (a short read or write).
  io_result,
  /// A coroutine frame allocation: it throws std::bad_alloc.
  frame_alloc,
  /// A cross-core MSG_RING wake-up is lost as if the kernel had refused
  /// it; the reactor must notice and wake the peer another way.
  wakeup,
  /// A page store object allocation fails as if memory were exhausted.
  store_alloc,
  /// The process dies (SIGKILL to itself) while publishing a page entry:
  /// each publication passes this site twice, after storing the new value
  /// (before the unlock) and after the unlock (before the journal is
  /// cleared): the two moments a crash-consistency argument must cover.
  store_publish,
  /// A ublk queue fails to start on its core, as if its target's
  /// start_queue had failed (ublk/queue.cc): before any FETCH is queued.
  queue_start,
};

/// One fault to inject.
struct Rule {
  Site site = Site::io_result;  ///< where
  int opcode = -1;              ///< io_result only: the IORING_OP_* to match, -1 for any
  std::uint64_t skip = 0;       ///< matching events to let through first
  std::uint64_t count = 1;      ///< matching events to fail after those
  int result = -5;              ///< io_result only: see Site::io_result (default -EIO)
};

/// True when this build has fault injection compiled in.
bool available() noexcept;
/// Parses one rule written as `SITE[,KEY=VALUE]...`: SITE is io_result,
/// frame_alloc, wakeup, store_alloc, store_publish or queue_start; the keys are opcode,
/// skip, count and result (Rule's fields, decimal). Returns false with
/// `error` set for anything else. Compiled in every build, so that a
/// program can refuse a malformed spec even where it cannot arm it.
bool parse_rule(std::string_view spec, Rule& rule, std::string& error);
/// Arms every rule of `specs`, rules separated by ';' (the format a test
/// gives a program in its environment, see cmd/main.cc's COBLK_FAULTS).
/// False with `error` set if this build has no fault injection, a rule
/// does not parse, or more than 8 would be armed; rules before the bad one
/// stay armed.
bool arm_from_spec(std::string_view specs, std::string& error);
/// Adds a rule (at most 8 at a time). False if unavailable or full.
bool arm(const Rule& rule) noexcept;
/// Removes every rule and resets the counters.
void clear() noexcept;
/// How many faults were injected at `site` since the last clear().
std::uint64_t fired(Site site) noexcept;

#if defined(COBLK_FAULT_INJECTION)
namespace detail {
int io_result(std::uint8_t opcode, int result) noexcept;
bool fail(Site site) noexcept;
}  // namespace detail
/// Hook: the result an operation with `opcode` returns to its awaiter.
inline int io_result(std::uint8_t opcode, int result) noexcept { return detail::io_result(opcode, result); }
/// Hook: true when the event at `site` must fail now.
inline bool fail(Site site) noexcept { return detail::fail(site); }
#else
/// Hook: the result an operation with `opcode` returns to its awaiter.
inline int io_result(std::uint8_t /*opcode*/, int result) noexcept { return result; }
/// Hook: true when the event at `site` must fail now.
inline bool fail(Site /*site*/) noexcept { return false; }
#endif

}  // namespace coblk::runtime::fault
