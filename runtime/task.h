// runtime/task.h - Task<T>, the lazy coroutine type every coblk layer is written in.
#pragma once

#include <cassert>
#include <coroutine>
#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

#include "coblk/runtime/frame_allocator.h"

namespace coblk::runtime {

template <typename T = void>
class Task;

namespace detail {

/// State shared by every Task promise: who to resume when the task ends.
class TaskPromiseBase {
 public:
  /// Frames come from the per-thread heap (see frame_allocator.h).
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept { free_frame(p, size); }

  /// Tasks are lazy: nothing runs until the task is awaited.
  std::suspend_always initial_suspend() noexcept { return {}; }

  /// On completion, transfer control straight to the awaiter. Returning the
  /// awaiter's handle from await_suspend is a tail call (symmetric
  /// transfer), so a chain of N nested awaits unwinds in constant stack.
  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <typename Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      std::coroutine_handle<> next = self.promise().continuation_;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  void set_continuation(std::coroutine_handle<> c) noexcept { continuation_ = c; }

 private:
  std::coroutine_handle<> continuation_;
};

template <typename T>
class TaskPromise final : public TaskPromiseBase {
 public:
  Task<T> get_return_object() noexcept;

  template <typename U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    result_.template emplace<1>(std::forward<U>(value));
  }
  void unhandled_exception() noexcept { result_.template emplace<2>(std::current_exception()); }

  /// Returns the value, or rethrows the exception the body ended with.
  T take_result() {
    if (result_.index() == 2) {
      std::rethrow_exception(std::get<2>(result_));
    }
    assert(result_.index() == 1 && "task resumed its awaiter without a result");
    return std::move(std::get<1>(result_));
  }

 private:
  std::variant<std::monostate, T, std::exception_ptr> result_;
};

template <>
class TaskPromise<void> final : public TaskPromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }
  void take_result() {
    if (exception_) {
      std::rethrow_exception(exception_);
    }
  }

 private:
  std::exception_ptr exception_;
};

}  // namespace detail

/// A lazily started coroutine that produces a T (or nothing, for Task<void>).
///
/// - The body does not run until the task is awaited (`co_await task`).
/// - When the body finishes, control passes straight back to the awaiter by
///   symmetric transfer, so deep chains of awaits do not grow the stack.
/// - An exception that escapes the body is rethrown in the awaiter.
/// - A Task owns its coroutine frame; it is move-only, and destroying a Task
///   destroys the frame. A Task must not be destroyed while its body is
///   suspended on an I/O operation that is still in flight (the runtime
///   guarantees this for the tasks it owns; see Reactor shutdown).
///
/// Tasks run on the reactor of the thread that awaits them and never migrate
/// between cores on their own; use submit_to() to run work elsewhere.
template <typename T>
class [[nodiscard]] Task {
 public:
  /// What the compiler looks up to make a coroutine returning Task<T>.
  using promise_type = detail::TaskPromise<T>;
  /// The type `co_await task` yields.
  using value_type = T;

  /// An empty task (holds no coroutine).
  Task() noexcept = default;
  /// Takes ownership of the frame `h` (the promise's get_return_object).
  explicit Task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  /// Takes over `other`'s frame; `other` becomes empty.
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  /// Destroys the frame this task holds, if any, and takes over `other`'s.
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  /// True when the task holds a coroutine.
  explicit operator bool() const noexcept { return static_cast<bool>(handle_); }

  /// True when the body has run to completion.
  bool done() const noexcept { return !handle_ || handle_.done(); }

  /// Awaiting a task starts it and suspends the awaiter until it finishes.
  /// The result is moved out; a task can be awaited once.
  auto operator co_await() && noexcept {
    struct Awaiter {
      std::coroutine_handle<promise_type> handle;
      bool await_ready() const noexcept { return !handle || handle.done(); }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
        handle.promise().set_continuation(awaiter);
        return handle;  // start the body by symmetric transfer
      }
      T await_resume() {
        assert(handle && "awaiting an empty Task");
        return handle.promise().take_result();
      }
    };
    return Awaiter{handle_};
  }
  /// Awaiting a named task works the same; the task keeps its frame, but its
  /// result has been moved out, so it too can be awaited once.
  auto operator co_await() & noexcept { return std::move(*this).operator co_await(); }

  /// Releases ownership of the frame (used by spawn and when_all).
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(handle_, {}); }

 private:
  void reset() noexcept {
    if (handle_) {
      handle_.destroy();
      handle_ = {};
    }
  }

  std::coroutine_handle<promise_type> handle_;
};

namespace detail {

template <typename T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>{std::coroutine_handle<TaskPromise<T>>::from_promise(*this)};
}

inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>{std::coroutine_handle<TaskPromise<void>>::from_promise(*this)};
}

}  // namespace detail

/// True for Task<T> types.
template <typename T>
inline constexpr bool is_task_v = false;
/// The specialization that makes is_task_v true for every Task<T>.
template <typename T>
inline constexpr bool is_task_v<Task<T>> = true;

}  // namespace coblk::runtime
