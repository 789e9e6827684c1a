// runtime/spawn.h - detached tasks.
#pragma once

#include <coroutine>
#include <exception>

#include "coblk/runtime/frame_allocator.h"
#include "coblk/runtime/reactor.h"
#include "coblk/runtime/task.h"

namespace coblk::runtime {

namespace detail {

/// The root coroutine of a detached task. It owns the Task it runs, reports
/// an exception that escapes it, and frees itself when done.
class DetachedTask {
 public:
  struct promise_type {
    static void* operator new(std::size_t size) { return allocate_frame(size); }
    static void operator delete(void* p, std::size_t size) noexcept { free_frame(p, size); }

    DetachedTask get_return_object() noexcept {
      return DetachedTask{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    // The frame destroys itself after the body ends; the destructor of
    // the promise takes it off the reactor's list of live roots.
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // the body catches everything
    ~promise_type() { link.unlink(); }

    RootLink link;
  };

  std::coroutine_handle<promise_type> handle;
};

/// The coroutine that runs `task` as a detached root (defined in spawn.cc:
/// a coroutine defined inline is compiled anew in every file that includes
/// its header, used or not).
DetachedTask run_detached(Task<void> task, const char* name);

}  // namespace detail

/// Starts `task` as a detached task on the calling reactor, in `group`.
///
/// The task is queued to run, not run inline. Nobody awaits it: an exception
/// that escapes it is reported on stderr with `name` and counted in
/// ReactorStats::uncaught_exceptions, never lost silently. `name` must
/// outlive the task (a string literal is the usual choice); it also names
/// the task in stall reports. If the Runtime stops before the task ends, the
/// task's frame is destroyed at shutdown (after its I/O has been cancelled
/// and reaped).
///
/// Must be called on a reactor thread.
inline void spawn(Task<void> task, const char* name, SchedulingGroup group) {
  Reactor* reactor = Reactor::current();
  auto root = detail::run_detached(std::move(task), name).handle;
  root.promise().link.handle = root;
  reactor->adopt_root(root.promise().link, name, group);
}

/// Starts `task` as a detached task in the group of the calling task.
inline void spawn(Task<void> task, const char* name = "task") {
  spawn(std::move(task), name, Reactor::current()->current_group());
}

}  // namespace coblk::runtime
