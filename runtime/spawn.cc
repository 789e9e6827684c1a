// runtime/spawn.cc - the root coroutine of detached tasks.
#include "coblk/runtime/spawn.h"

#include <exception>
#include <utility>

namespace coblk::runtime::detail {

DetachedTask run_detached(Task<void> task, const char* name) {
  try {
    co_await std::move(task);
  } catch (...) {
    Reactor::current()->report_uncaught(name, std::current_exception());
  }
}

}  // namespace coblk::runtime::detail
