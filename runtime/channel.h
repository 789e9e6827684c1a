// runtime/channel.h - an async, bounded SPSC channel between two cores.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <optional>
#include <span>
#include <utility>

#include "coblk/runtime/reactor.h"
#include "coblk/runtime/spsc_ring.h"

namespace coblk::runtime {

/// A bounded, lock-free channel from one producer task to one consumer task,
/// usually on two different cores.
///
/// - `co_await send(v)` suspends the producer while the ring is full
///   (backpressure); `co_await recv()` suspends the consumer while it is
///   empty and returns std::nullopt once the channel is closed and drained.
/// - try_send / try_recv and their batch forms never suspend.
/// - A suspended side is woken by the other side through the reactors'
///   mailboxes (and the peer's io_uring is poked with MSG_RING or an eventfd
///   only if that reactor is actually asleep).
///
/// Exactly one task may send and one task may receive at a time; the
/// channel must outlive both.
template <typename T>
class Channel {
 public:
  /// A channel that buffers at least `capacity` items.
  explicit Channel(std::size_t capacity) : ring_(capacity) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  /// Producer: pushes `value` if there is room. Never suspends.
  bool try_send(T&& value) noexcept {
    if (!ring_.try_push(std::move(value))) {
      return false;
    }
    wake_consumer();
    return true;
  }

  /// Producer: pushes as many items from the front of `values` as fit.
  std::size_t try_send_batch(std::span<T> values) noexcept {
    const std::size_t n = ring_.try_push_batch(values);
    if (n != 0) {
      wake_consumer();
    }
    return n;
  }

  /// Consumer: pops one item if there is one. Never suspends.
  bool try_recv(T& out) noexcept {
    if (!ring_.try_pop(out)) {
      return false;
    }
    wake_producer();
    return true;
  }

  /// Consumer: pops up to out.size() items.
  std::size_t try_recv_batch(std::span<T> out) noexcept {
    const std::size_t n = ring_.try_pop_batch(out);
    if (n != 0) {
      wake_producer();
    }
    return n;
  }

  /// Producer: no more items will be sent. The consumer's recv() returns
  /// std::nullopt once it has taken everything sent before.
  void close() noexcept {
    // Release: items pushed before closing are visible to a consumer
    // that observes the flag.
    closed_.store(true, std::memory_order_release);
    wake_consumer();
  }

  /// Awaitable of send().
  class [[nodiscard]] SendAwaitable {
   public:
    /// Holds `value` until it is in the ring; made by Channel::send().
    SendAwaitable(Channel& ch, T&& value) : channel_(ch), value_(std::move(value)) {}
    /// Tries the push first: true (no suspension) when there was room.
    bool await_ready() noexcept {
      sent_ = channel_.try_send(std::move(value_));
      return sent_;
    }
    /// Parks the producer until the consumer frees a slot. Returns false
    /// (resume at once) if a slot freed up while parking: the flag is set
    /// and fenced before the ring is re-read, so a pop that the re-read
    /// misses sees the flag and wakes us instead.
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      return channel_.park(channel_.producer_, h, [this] { return !channel_.ring_.full_for_producer(); });
    }
    /// Pushes the value if await_ready could not: a slot is free now.
    void await_resume() noexcept {
      if (!sent_) {
        // Woken because the consumer freed a slot, or we saw one
        // ourselves; only we push, so the slot is still free.
        [[maybe_unused]] const bool ok = channel_.try_send(std::move(value_));
      }
    }

   private:
    friend class Channel;
    Channel& channel_;
    T value_;
    bool sent_ = false;
  };

  /// Producer: sends `value`, suspending while the channel is full.
  SendAwaitable send(T value) { return SendAwaitable(*this, std::move(value)); }

  /// Awaitable of recv().
  class [[nodiscard]] RecvAwaitable {
   public:
    /// Made by Channel::recv().
    explicit RecvAwaitable(Channel& ch) : channel_(ch) {}
    /// Tries the pop first: true (no suspension) when an item was there or
    /// the channel is closed and drained.
    bool await_ready() noexcept { return take() || channel_.is_closed_and_empty(); }
    /// Parks the consumer until an item arrives or the channel closes.
    /// Returns false (resume at once) if either happened while parking;
    /// the same flag-fence-recheck as SendAwaitable::await_suspend makes a
    /// lost wake-up impossible.
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      return channel_.park(channel_.consumer_, h, [this] {
        return !channel_.ring_.empty_for_consumer() || channel_.closed_.load(std::memory_order_acquire);
      });
    }
    /// The item, or std::nullopt when the channel is closed and drained.
    std::optional<T> await_resume() noexcept {
      if (!item_) {
        take();
      }
      return std::move(item_);
    }

   private:
    bool take() noexcept {
      T v;
      if (channel_.try_recv(v)) {
        item_.emplace(std::move(v));
        return true;
      }
      return false;
    }
    Channel& channel_;
    std::optional<T> item_;
  };

  /// Consumer: the next item, suspending while the channel is empty;
  /// std::nullopt once the channel is closed and empty.
  RecvAwaitable recv() { return RecvAwaitable(*this); }

  /// Approximate number of buffered items.
  std::size_t size_approx() const noexcept { return ring_.size_approx(); }

 private:
  // One side's parking place. `waiting` is set by that side just before it
  // suspends and cleared by whoever claims the right to resume it.
  struct alignas(cache_line_size) Parking {
    std::atomic<bool> waiting{false};
    Waiter waiter;
  };

  // Suspends the caller in `side` unless `ready()` turns true after it has
  // announced itself. Returns false (do not suspend) if it took back its
  // own wait, true if it is parked and the other side will wake it.
  template <typename Ready>
  bool park(Parking& side, std::coroutine_handle<> h, Ready ready) noexcept {
    side.waiter = Reactor::current()->waiter_for(h);
    // Release: the waiter written above is visible to the side whose
    // acquire exchange in wake() takes this flag.
    side.waiting.store(true, std::memory_order_release);
    // Pairs with the fence in wake(): either the other side sees our
    // flag, or we see its push/pop (or close) in ready().
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ready()) {
      // Whoever flips the flag resumes us. If the other side already
      // did, its wake-up is on the way and we must stay suspended.
      return !side.waiting.exchange(false, std::memory_order_acquire);
    }
    return true;
  }

  void wake(Parking& side) noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // Acquire pairs with the release store in park(), so the waiter we
    // read next is the one the parked side wrote.
    if (side.waiting.load(std::memory_order_relaxed) && side.waiting.exchange(false, std::memory_order_acquire)) {
      Reactor::wake(side.waiter);
    }
  }

  void wake_consumer() noexcept { wake(consumer_); }
  void wake_producer() noexcept { wake(producer_); }

  bool is_closed_and_empty() noexcept { return closed_.load(std::memory_order_acquire) && ring_.empty_for_consumer(); }

  SpscRing<T> ring_;
  Parking producer_;
  Parking consumer_;
  std::atomic<bool> closed_{false};
};

}  // namespace coblk::runtime
