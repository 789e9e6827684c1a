// runtime/run_queue.h - a reactor's FIFO of ready coroutines.
#pragma once

#include <coroutine>
#include <cstddef>
#include <memory>

namespace coblk::runtime {

/// A FIFO of ready coroutines, owned by one reactor thread.
///
/// A power-of-two circular buffer that doubles when full. It starts large
/// enough (1024 entries) that a steady-state reactor never grows it, so
/// pushing and popping do not allocate.
class RunQueue {
 public:
  /// A ready coroutine and the name of the task it belongs to.
  struct Entry {
    std::coroutine_handle<> handle;  ///< resumed when the entry is popped
    const char* name;                ///< the task's name, current while it runs (stall reports)
  };

  RunQueue() : entries_(std::make_unique<Entry[]>(1024)), mask_(1023) {}

  /// Appends an entry (grows the buffer when full).
  void push(Entry e) {
    if (tail_ - head_ > mask_) {
      grow();
    }
    entries_[tail_++ & mask_] = e;
  }
  /// Removes and returns the oldest entry. The queue must not be empty.
  Entry pop() noexcept { return entries_[head_++ & mask_]; }
  /// True when no coroutine is ready.
  bool empty() const noexcept { return head_ == tail_; }
  /// Number of ready coroutines queued.
  std::size_t size() const noexcept { return tail_ - head_; }

 private:
  void grow() {
    const std::size_t cap = mask_ + 1;
    auto bigger = std::make_unique<Entry[]>(cap * 2);
    for (std::size_t i = 0; i < cap; ++i) {
      bigger[i] = entries_[(head_ + i) & mask_];
    }
    entries_ = std::move(bigger);
    head_ = 0;
    tail_ = cap;
    mask_ = cap * 2 - 1;
  }

  std::unique_ptr<Entry[]> entries_;
  std::size_t mask_;
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

}  // namespace coblk::runtime
