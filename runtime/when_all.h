// runtime/when_all.h - await a set of tasks concurrently.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <vector>

#include "coblk/runtime/frame_allocator.h"
#include "coblk/runtime/task.h"

namespace coblk::runtime {

namespace detail {

/// Counts unfinished children; the last one to finish resumes the parent.
struct WhenAllLatch {
  std::size_t remaining = 0;
  std::coroutine_handle<> parent;
};

/// Runs one child of when_all and signals the latch when it ends.
class WhenAllChild {
 public:
  struct promise_type {
    static void* operator new(std::size_t size) { return allocate_frame(size); }
    static void operator delete(void* p, std::size_t size) noexcept { free_frame(p, size); }

    WhenAllChild get_return_object() noexcept {
      return WhenAllChild{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> self) noexcept {
        WhenAllLatch* shared = self.promise().latch;  // not `latch`: clang's -Wshadow sees the field
        // Single-threaded: all children run on the parent's reactor.
        if (--shared->remaining == 0) {
          return shared->parent;
        }
        return std::noop_coroutine();
      }
      void await_resume() const noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // bodies catch everything

    WhenAllLatch* latch = nullptr;
  };

  explicit WhenAllChild(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  WhenAllChild(WhenAllChild&& o) noexcept : handle_(std::exchange(o.handle_, {})) {}
  WhenAllChild& operator=(WhenAllChild&&) = delete;
  ~WhenAllChild() {
    if (handle_) {
      handle_.destroy();
    }
  }
  void start(WhenAllLatch& latch) noexcept {
    handle_.promise().latch = &latch;
    handle_.resume();
  }

 private:
  std::coroutine_handle<promise_type> handle_;
};

template <typename T>
WhenAllChild run_child(Task<T> task, std::optional<T>& out, std::exception_ptr& error) {
  try {
    out.emplace(co_await std::move(task));
  } catch (...) {
    error = std::current_exception();
  }
}

/// Runs one void child (defined in when_all.cc, like the void when_all: a
/// coroutine defined inline is compiled anew in every file that includes
/// its header, used or not).
WhenAllChild run_void_child(Task<void> task, std::exception_ptr& error);

/// Starts every child, then suspends the parent until the last one ends.
struct WhenAllAwaitable {
  std::vector<WhenAllChild>& children;
  WhenAllLatch latch;

  bool await_ready() const noexcept { return children.empty(); }
  bool await_suspend(std::coroutine_handle<> parent) noexcept {
    latch.parent = parent;
    // One extra count held while starting, so a child that finishes
    // synchronously cannot resume the parent before all have started.
    latch.remaining = children.size() + 1;
    for (WhenAllChild& child : children) {
      child.start(latch);
    }
    return --latch.remaining != 0;
  }
  void await_resume() const noexcept {}
};

}  // namespace detail

/// Runs all `tasks` concurrently on the calling reactor and returns their
/// results in order once every one has finished. If any task throws, the
/// others still run to completion, then the first exception (by position)
/// is rethrown.
template <typename T>
Task<std::vector<T>> when_all(std::vector<Task<T>> tasks) {
  std::vector<std::optional<T>> results(tasks.size());
  std::vector<std::exception_ptr> errors(tasks.size());
  std::vector<detail::WhenAllChild> children;
  children.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    children.push_back(detail::run_child(std::move(tasks[i]), results[i], errors[i]));
  }
  co_await detail::WhenAllAwaitable{children, {}};
  for (auto& e : errors) {
    if (e) {
      std::rethrow_exception(e);
    }
  }
  std::vector<T> out;
  out.reserve(results.size());
  for (auto& r : results) {
    out.push_back(std::move(*r));
  }
  co_return out;
}

/// Runs all `tasks` concurrently and finishes when every one has finished;
/// rethrows the first exception by position.
Task<void> when_all(std::vector<Task<void>> tasks);

}  // namespace coblk::runtime
