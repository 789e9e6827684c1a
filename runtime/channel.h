// runtime/channel.h - an async, bounded SPSC channel between two cores.
#pragma once

#include <atomic>
#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

#include "coblk/runtime/cycle_clock.h"
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
/// - A suspended side is parked on its own reactor (ParkedWait), which
///   re-checks the ring on every loop iteration and while idle polling, so
///   it usually resumes without any message. The other side still looks at
///   the parked flag after every push or pop and, if set, wakes the parked
///   side through the reactors' mailboxes (and the peer's io_uring is poked
///   only if that reactor is actually asleep).
/// - Per item the hot path is the ring operation plus one relaxed load of
///   the other side's flag: no fence and no read-modify-write when the
///   kernel offers membarrier (see waker_fence() and
///   Reactor::sleep_until_woken for why no wake-up can be lost).
/// - `co_await send(v)` publishes in batches: an item it pushes becomes
///   visible to the consumer once a batch of a quarter of the ring (at
///   most 64 items) is pushed, when the ring fills, or at the latest when
///   the producer's task suspends (its reactor then publishes, before it
///   runs the next task: Reactor::defer_flush). A producer that computes
///   for long between sends without suspending holds up to 63 items back
///   meanwhile; try_send publishes at once.
///   Only the publication is batched: the index line that both cores read
///   changes once per batch instead of once per item.
/// - `co_await recv()` hands slots back to the producer in batches the
///   same way: after a quarter of the ring (at most 64 items), when it
///   finds the ring empty, or when the consumer's task suspends. Until
///   then the producer sees those slots as taken (a consumer that computes
///   for long between recv()s without suspending holds up to 63 back);
///   try_recv hands back at once.
///
/// Exactly one task may send and one task may receive at a time; the
/// channel must outlive both. Both sides run on reactors of one Runtime,
/// try_send and try_recv included: waking a parked side goes through the
/// calling thread's reactor, which a plain thread does not have.
template <typename T>
class Channel {
 public:
  /// A channel that buffers at least `capacity` items.
  explicit Channel(std::size_t capacity) : ring_(capacity) {
    producer_.ready = &producer_ready;
    producer_.channel = this;
    consumer_.ready = &consumer_ready;
    consumer_.channel = this;
    batch_.flush = &flush_deferred;
    batch_.channel = this;
    batch_.limit = publish_batch_for(ring_.capacity());
    release_.flush = &release_deferred;
    release_.channel = this;
    release_.limit = batch_.limit;
  }
  /// Takes back a publication still deferred to the producer's reactor,
  /// and a release still deferred to the consumer's, when that reactor is
  /// the destroying thread's (a channel destroyed by the task that used
  /// it). A side on another core has unlinked its node by then: a node is
  /// on its reactor's flush list only while that side holds items back
  /// (pending != 0), close() and a recv() that finds the channel drained
  /// leave none held, and submit_to runs a task's deferred flushes before
  /// it reports the task's end, so an owner that awaited both sides finds
  /// both nodes off every list.
  ~Channel() {
    batch_.unlink();
    release_.unlink();
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  /// Producer: pushes `value` if there is room, and publishes it (with
  /// anything send() left unpublished) at once. Never suspends.
  bool try_send(T&& value) noexcept {
    if (!ring_.try_push(std::move(value))) {
      return false;
    }
    published();
    wake(consumer_);
    return true;
  }

  /// Producer: pushes as many items from the front of `values` as fit.
  std::size_t try_send_batch(std::span<T> values) noexcept {
    const std::size_t n = ring_.try_push_batch(values);
    if (n != 0) {
      published();
      wake(consumer_);
    }
    return n;
  }

  /// Consumer: pops one item if there is one, and hands its slot back
  /// (with any recv() left unreleased) at once. Never suspends.
  bool try_recv(T& out) noexcept {
    if (!ring_.try_pop(out)) {
      release();  // found empty: hand back what recv() still holds
      return false;
    }
    released();
    wake(producer_);
    return true;
  }

  /// Consumer: pops up to out.size() items.
  std::size_t try_recv_batch(std::span<T> out) noexcept {
    const std::size_t n = ring_.try_pop_batch(out);
    if (n != 0) {
      released();
      wake(producer_);
    } else {
      release();  // found empty: hand back what recv() still holds
    }
    return n;
  }

  /// Producer: no more items will be sent. The consumer's recv() returns
  /// std::nullopt once it has taken everything sent before.
  void close() noexcept {
    publish();
    // Release: items pushed before closing are visible to a consumer
    // that observes the flag.
    closed_.store(true, std::memory_order_release);
    wake(consumer_);
  }

  /// Awaitable of send().
  class [[nodiscard]] SendAwaitable {
   public:
    /// Holds `value` until it is in the ring; made by Channel::send().
    SendAwaitable(Channel& ch, T&& value) : channel_(ch), value_(std::move(value)) {}
    /// Tries the push first: true (no suspension) when there was room.
    /// The item may stay unpublished for a while (see Channel).
    bool await_ready() noexcept {
      sent_ = channel_.try_send_deferred(std::move(value_));
      return sent_;
    }
    /// Parks the producer until a slot is free. Returns false (resume at
    /// once) if one freed up while parking.
    bool await_suspend(std::coroutine_handle<> h) noexcept { return channel_.park(channel_.producer_, h); }
    /// Pushes the value if await_ready could not: a slot is free now.
    void await_resume() noexcept {
      if (!sent_) {
        // A parked side is resumed only with its condition true (see
        // ParkedWait), and only we push, so the slot is still free.
        [[maybe_unused]] const bool ok = channel_.try_send(std::move(value_));
        assert(ok);
      }
    }

   private:
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
    /// Returns false (resume at once) if either happened while parking.
    bool await_suspend(std::coroutine_handle<> h) noexcept { return channel_.park(channel_.consumer_, h); }
    /// The item, or std::nullopt when the channel is closed and drained.
    /// Resumed only with an item there or the channel closed (see
    /// ParkedWait), so an empty ring here means closed and drained.
    std::optional<T> await_resume() noexcept {
      if (!has_item_ && !take()) {
        return std::nullopt;
      }
      // Built here rather than kept in an optional member: copying a
      // member optional out costs a store-forwarding stall per item (a
      // one-byte store of its flag, then a wider load of the whole).
      return std::optional<T>(std::move(item_));
    }

   private:
    bool take() noexcept {
      has_item_ = channel_.try_recv_deferred(item_);
      return has_item_;
    }
    Channel& channel_;
    T item_{};
    bool has_item_ = false;
  };

  /// Consumer: the next item, suspending while the channel is empty;
  /// std::nullopt once the channel is closed and empty.
  RecvAwaitable recv() { return RecvAwaitable(*this); }

  /// Approximate number of buffered items.
  std::size_t size_approx() const noexcept { return ring_.size_approx(); }

 private:
  friend struct ChannelTestAccess;  // test/runtime/channel_test.cc

  // Most items send() pushes between two publications: a quarter of the
  // ring, at most 64. Per batch the consumer takes one miss on the index
  // line; a quarter of the ring lets it start on a batch while the
  // producer fills the next even in a small channel.
  static constexpr std::uint32_t max_publish_batch = 64;
  static std::uint32_t publish_batch_for(std::size_t capacity) noexcept {
    const std::size_t quarter = capacity / 4 == 0 ? 1 : capacity / 4;
    return static_cast<std::uint32_t>(quarter < max_publish_batch ? quarter : max_publish_batch);
  }

  // Producer-private state of the batched publication, on a line of its
  // own so the consumer never reads a line this writes per item.
  struct alignas(cache_line_size) PublishBatch : DeferredFlush {
    Channel* channel = nullptr;  // set once by the constructor
    std::uint32_t pending = 0;   // pushed by send() and not yet published
    std::uint32_t limit = 1;     // publish_batch_for(capacity), set once
  };

  // The producer's part of send(): push unpublished; publish every
  // batch_.limit items, and otherwise have the reactor publish once the
  // producer's task suspends. When the ring is full, publish what is
  // there (the consumer must see it to make room) and fail.
  bool try_send_deferred(T&& value) noexcept {
    if (!ring_.try_push_unpublished(std::move(value))) {
      publish();
      return false;
    }
    if (++batch_.pending == batch_.limit) {
      publish();
    } else if (batch_.pending == 1) {
      // The first item of a batch: have the producer's reactor publish it
      // once the task suspends. (Looked up here, once per batch, not per
      // item: a thread-local load on every send is measurable.)
      Reactor* reactor = Reactor::current();
      if (reactor == nullptr) [[unlikely]] {
        publish();  // no reactor to publish later
      } else {
        reactor->defer_flush(batch_);
      }
    }
    return true;
  }

  // Producer: publishes what send() pushed, and wakes a parked consumer.
  void publish() noexcept {
    if (batch_.pending != 0) {
      published();
      ring_.publish();
      wake(consumer_);
    }
  }

  // Producer: nothing is held back any more. The deferred publication
  // leaves the reactor's flush list here, on the producer's own thread (the
  // only one that links it), so that the list never outlives the channel
  // (see ~Channel). A branch, not the unlink's four stores, per item.
  void published() noexcept {
    batch_.pending = 0;
    if (batch_.linked()) batch_.unlink();
  }

  static void flush_deferred(DeferredFlush& f) noexcept { static_cast<PublishBatch&>(f).channel->publish(); }

  // Consumer-private state of the batched release, on a line of its own
  // (the producer never reads it).
  struct alignas(cache_line_size) ReleaseBatch : DeferredFlush {
    Channel* channel = nullptr;  // set once by the constructor
    std::uint32_t pending = 0;   // popped by recv() and not yet handed back
    std::uint32_t limit = 1;     // publish_batch_for(capacity), set once
  };

  // The consumer's part of recv(): pop unreleased; hand the slots back
  // every release_.limit items, when the ring is found empty (the producer
  // may be waiting for room: never sit on slots while we wait ourselves),
  // and otherwise once the consumer's task suspends.
  bool try_recv_deferred(T& out) noexcept {
    if (!ring_.try_pop_unreleased(out)) {
      release();
      return false;
    }
    if (++release_.pending == release_.limit) {
      release();
    } else if (release_.pending == 1) {
      // Once per batch, like the producer's lookup (see try_send_deferred).
      Reactor* reactor = Reactor::current();
      if (reactor == nullptr) [[unlikely]] {
        release();  // no reactor to release later
      } else {
        reactor->defer_flush(release_);
      }
    }
    return true;
  }

  // Consumer: hands back what recv() popped, and wakes a parked producer.
  void release() noexcept {
    if (release_.pending != 0) {
      released();
      ring_.release();
      wake(producer_);
    }
  }

  // Consumer: nothing is held back any more; as published(), for the
  // deferred release on the consumer's reactor.
  void released() noexcept {
    release_.pending = 0;
    if (release_.linked()) release_.unlink();
  }

  static void release_deferred(DeferredFlush& f) noexcept { static_cast<ReleaseBatch&>(f).channel->release(); }

  // One side's parking place, on a cache line of its own: the other side
  // reads `waiting` after every item, and the line stays shared in both
  // caches until this side parks.
  struct alignas(cache_line_size) Side : ParkedWait {
    Channel* channel = nullptr;  // set once by the constructor
  };

  // How long an awake reactor may keep a parked producer waiting for more
  // room than one slot (see producer_ready).
  static constexpr std::uint64_t lazy_resume_ns = 20000;

  // The conditions a parked side waits for; run on that side's core.
  //
  // The producer: a free slot. But a reactor that polls while awake
  // resumes it only once a quarter of the ring is free, or after
  // lazy_resume_ns: when the consumer is the slower side, resuming the
  // producer for every freed slot has it park again after one push, and
  // each park rewrites the flag line the consumer reads after every pop
  // (one cache miss every few items). Parking, claims and the check before
  // the reactor sleeps use the bare condition, so the wait is never longer
  // than lazy_resume_ns while the reactor is awake, and never slept on.
  static bool producer_ready(ParkedWait& w, bool polling) noexcept {
    SpscRing<T>& ring = static_cast<Side&>(w).channel->ring_;
    if (!polling) {
      return !ring.full_for_producer();
    }
    const std::size_t room = ring.room_for_producer();
    if (room == 0) {
      return false;
    }
    const std::size_t quarter = ring.capacity() / 4;
    if (room >= quarter) {
      return true;
    }
    static const std::uint64_t lazy_ticks = CycleClock::from_ns(lazy_resume_ns);
    return CycleClock::now() - w.parked_at >= lazy_ticks;
  }
  static bool consumer_ready(ParkedWait& w, bool /*polling*/) noexcept {
    Channel& ch = *static_cast<Side&>(w).channel;
    return !ch.ring_.empty_for_consumer() || ch.closed_.load(std::memory_order_acquire);
  }

  // Suspends the caller in `side` unless its condition holds once it has
  // announced itself. Returns false (do not suspend) if it took back its
  // own wait, true if it is parked: then its reactor's polling, or the
  // other side's claim, resumes it.
  bool park(Side& side, std::coroutine_handle<> h) noexcept {
    Reactor* reactor = Reactor::current();
    side.waiter = reactor->waiter_for(h);
    // Release: the waiter written above is visible to the side whose
    // acquire exchange in wake() claims this flag.
    side.waiting.store(true, std::memory_order_release);
    reactor->park(side);
    // Pairs with waker_fence() when that is a real fence (no membarrier):
    // either the other side sees our flag, or we see its push/pop/close.
    // With membarrier, a miss here is caught by the reactor's polling.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (side.ready(side, false)) {
      // Whoever flips the flag resumes us. If the other side already
      // did, its wake-up is on the way and we must stay suspended (it
      // also takes us off the reactor's list).
      if (side.waiting.exchange(false, std::memory_order_acquire)) {
        side.unlink();
        return false;
      }
    }
    return true;
  }

  // After every push, pop or close: one relaxed load when nobody is parked,
  // and one more (the parked side's reactor's sleeping flag) when it is.
  static void wake(Side& side) noexcept {
    waker_fence();
    if (side.waiting.load(std::memory_order_relaxed)) [[unlikely]] {
      claim(side);
    }
  }

  [[gnu::noinline]] static void claim(Side& side) noexcept {
    assert(Reactor::current() != nullptr && "a Channel side on a thread without a reactor");
    // A parked side on an awake reactor is found by that reactor's polling.
    if (!Reactor::parked_needs_wake(side)) {
      return;
    }
    // Acquire pairs with the release store in park(), so the waiter
    // that wake_parked reads is the one the parked side wrote.
    if (side.waiting.exchange(false, std::memory_order_acquire)) {
      Reactor::wake_parked(side);
    }
  }

  bool is_closed_and_empty() noexcept { return closed_.load(std::memory_order_acquire) && ring_.empty_for_consumer(); }

  SpscRing<T> ring_;
  Side producer_;
  Side consumer_;
  std::atomic<bool> closed_{false};
  PublishBatch batch_;
  ReleaseBatch release_;
};

}  // namespace coblk::runtime
