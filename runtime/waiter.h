// runtime/waiter.h - Waiter, a suspended coroutine and where the scheduler must resume it.
#pragma once

#include <coroutine>
#include <cstdint>

namespace coblk::runtime {

/// A suspended coroutine together with what the scheduler needs to resume it
/// on the right core, in the right group.
struct Waiter {
  std::coroutine_handle<> handle;  ///< the suspended coroutine
  const char* name = nullptr;      ///< its task's name; never freed (stall reports keep the pointer)
  unsigned core = 0;               ///< the core it was suspended on, and so must be resumed on
  std::uint8_t group = 0;          ///< index of its SchedulingGroup
};

}  // namespace coblk::runtime
