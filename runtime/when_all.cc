// runtime/when_all.cc - the void when_all and its child coroutine.
#include "coblk/runtime/when_all.h"

#include <cstddef>
#include <exception>
#include <utility>
#include <vector>

namespace coblk::runtime {

namespace detail {

WhenAllChild run_void_child(Task<void> task, std::exception_ptr& error) {
  try {
    co_await std::move(task);
  } catch (...) {
    error = std::current_exception();
  }
}

}  // namespace detail

Task<void> when_all(std::vector<Task<void>> tasks) {
  std::vector<std::exception_ptr> errors(tasks.size());
  std::vector<detail::WhenAllChild> children;
  children.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    children.push_back(detail::run_void_child(std::move(tasks[i]), errors[i]));
  }
  co_await detail::WhenAllAwaitable{children, {}};
  for (auto& e : errors) {
    if (e) {
      std::rethrow_exception(e);
    }
  }
}

}  // namespace coblk::runtime
