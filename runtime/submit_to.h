// runtime/submit_to.h - run work on another core and await its result.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "coblk/runtime/reactor.h"
#include "coblk/runtime/runtime.h"
#include "coblk/runtime/spawn.h"
#include "coblk/runtime/task.h"

namespace coblk::runtime {

namespace detail {

template <typename T>
struct TaskValue {
  using type = T;
};
template <typename T>
struct TaskValue<Task<T>> {
  using type = T;
};

}  // namespace detail

/// Awaitable returned by submit_to(). It lives in the awaiting frame, which
/// stays suspended until the result is back, so the target core can safely
/// read the callable and write the result through a pointer to it. The one
/// exception is shutdown with the awaiter still waiting: every core then
/// destroys its unfinished tasks at the same time (Runtime::run), so the
/// awaiting frame, and the callable in it, may be freed while the target
/// core destroys the task running it. A callable whose Task is still
/// suspended at shutdown must therefore not reach its captures from
/// destructors of that Task's locals.
template <typename F>
class [[nodiscard]] SubmitTo {
  using Returned = std::invoke_result_t<F&>;
  static constexpr bool returns_task = is_task_v<Returned>;
  using Value = typename detail::TaskValue<Returned>::type;
  using Stored = std::conditional_t<std::is_void_v<Value>, char, Value>;

 public:
  /// Made by submit_to(); nothing is sent until it is awaited.
  SubmitTo(unsigned core, F fn, const char* name) : fn_(std::move(fn)), target_(core), name_(name) {}

  /// Always false: the work has not run yet.
  bool await_ready() const noexcept { return false; }

  /// Sends the work to the target core and suspends; on the caller's own
  /// core it runs a plain `fn` inline (returns false: no suspension) or
  /// spawns a Task-returning one. Throws std::out_of_range when the core
  /// does not exist (or the reactor belongs to no Runtime).
  bool await_suspend(std::coroutine_handle<> awaiter) {
    Reactor* here = Reactor::current();
    if (here->runtime() == nullptr || target_ >= here->runtime()->cores()) {
      throw std::out_of_range("submit_to: no such core");
    }
    waiter_ = here->waiter_for(awaiter);
    if (target_ == here->core()) {
      if constexpr (returns_task) {
        spawn(run_task(this), name_);
        return true;
      } else {
        invoke();
        return false;
      }
    }
    here->send(target_, Message{&on_target, this});
    return true;
  }

  /// The value `fn` produced, or rethrows the exception it ended with.
  /// Read without a fence: from another core the reply travels through the
  /// mailbox ring, whose release/acquire pair orders the result's write
  /// before this read; on the caller's own core it is all one thread.
  Value await_resume() {
    if (error_) {
      std::rethrow_exception(error_);
    }
    if constexpr (!std::is_void_v<Value>) {
      return std::move(*value_);
    }
  }

 private:
  void invoke() noexcept {
    try {
      if constexpr (std::is_void_v<Value>) {
        fn_();
      } else {
        value_.emplace(fn_());
      }
    } catch (...) {
      error_ = std::current_exception();
    }
  }

  static Task<void> run_task(SubmitTo* self) {
    try {
      if constexpr (std::is_void_v<Value>) {
        co_await self->fn_();
      } else {
        self->value_.emplace(co_await self->fn_());
      }
    } catch (...) {
      self->error_ = std::current_exception();
    }
    // What the task deferred to this reactor (a Channel's publication or
    // release) runs before its end is reported: the awaiter may then free
    // what it points to at once, while this reactor has not yet got back
    // from resuming the task.
    Reactor::current()->flush_deferred_now();
    // Last touch of *self: after this the awaiter may resume and free it.
    Reactor::wake(self->waiter_);
  }

  // Runs on the target core. The mailbox's release/acquire pair orders the
  // awaiter's writes (fn_, waiter_) before these reads, and the reply
  // message orders our writes of the result before the awaiter reads them.
  static void on_target(void* object) noexcept {
    auto* self = static_cast<SubmitTo*>(object);
    if constexpr (returns_task) {
      try {
        spawn(run_task(self), self->name_);
      } catch (...) {
        self->error_ = std::current_exception();
        Reactor::wake(self->waiter_);
      }
    } else {
      self->invoke();
      Reactor::wake(self->waiter_);
    }
  }

  F fn_;
  unsigned target_;
  const char* name_;
  Waiter waiter_;
  std::optional<Stored> value_;
  std::exception_ptr error_;
};

/// Runs `fn()` on core `core` of the calling reactor's Runtime and resumes
/// the caller, on its own core, with the result. `fn` may return a plain
/// value (it runs inside the target's message handler, so it should be
/// short) or a Task<R> (spawned as a task on the target). Exceptions thrown
/// by `fn` are rethrown in the caller. Throws std::out_of_range for a core
/// that does not exist. `name` names the task a Task-returning `fn` runs as
/// on the target (stall reports, uncaught exceptions); it must outlive it.
template <typename F>
SubmitTo<F> submit_to(unsigned core, F fn, const char* name = "submit_to") {
  return SubmitTo<F>(core, std::move(fn), name);
}

}  // namespace coblk::runtime
