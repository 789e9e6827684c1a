// runtime/spsc_ring.h - a bounded, lock-free single-producer/single-consumer ring.
#pragma once

// SpscRing<T> is the one primitive by which coblk's cores talk to each other.
// It is a plain data structure with no knowledge of reactors or coroutines:
// Channel<T> adds suspension and wake-ups on top of it, and the reactor's
// cross-core mailboxes are built from it.

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

namespace coblk::runtime {

/// Size of a cache line on the machines coblk targets (x86-64, arm64).
/// std::hardware_destructive_interference_size is not stable across
/// compilation units in g++ 12 (it warns), so the value is fixed here.
inline constexpr std::size_t cache_line_size = 64;

/// A bounded lock-free ring between exactly one producer thread and exactly
/// one consumer thread.
///
/// The capacity is rounded up to a power of two. The producer's index and the
/// consumer's index live on separate cache lines, and each side keeps a cached
/// copy of the other side's index on its own line, so in the steady state a
/// push or pop touches no cache line the other side writes: the shared index
/// is re-read only when the cached copy says the ring looks full (producer)
/// or empty (consumer).
///
/// A producer may also push without publishing (try_push_unpublished) and
/// publish several items with one index store (publish()): the consumer's
/// copy of the index line is then invalidated once per batch, not per item.
/// The consumer has the mirror image: it may pop without releasing the
/// slots (try_pop_unreleased) and hand several back with one store
/// (release()).
///
/// Items are constructed in place on push and destroyed on pop. T must be
/// nothrow-move-constructible so that a push can never leave a half-written
/// slot behind.
template <typename T>
class SpscRing {
  static_assert(std::is_nothrow_move_constructible_v<T>, "SpscRing items must be nothrow-move-constructible");

 public:
  /// Creates a ring that holds at least `min_capacity` items (at least 2).
  explicit SpscRing(std::size_t min_capacity) {
    std::size_t cap = 2;
    while (cap < min_capacity) {
      cap <<= 1;
    }
    mask_ = cap - 1;
    slots_ = std::allocator<Slot>{}.allocate(cap);
  }

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  /// Destroys the items still in the ring. Neither side may be using the
  /// ring any more.
  ~SpscRing() {
    std::size_t head = consumer_.next;        // items popped unreleased are gone
    const std::size_t tail = producer_.next;  // unpublished items too
    for (; head != tail; ++head) {
      item(head)->~T();
    }
    std::allocator<Slot>{}.deallocate(slots_, mask_ + 1);
  }

  /// Number of items the ring can hold.
  std::size_t capacity() const noexcept { return mask_ + 1; }

  /// Producer only. Moves `value` into the ring; returns false (and leaves
  /// `value` untouched) when the ring is full.
  bool try_push(T&& value) noexcept {
    if (!try_push_unpublished(std::move(value))) {
      return false;
    }
    publish();
    return true;
  }

  /// Producer only. Moves `value` into the ring like try_push, but does not
  /// publish it: the consumer sees it only after the next publish() (or
  /// any publishing push). Items stay in order. Returns false (and leaves
  /// `value` untouched) when the ring, counting unpublished items, is full.
  bool try_push_unpublished(T&& value) noexcept {
    const std::size_t next = producer_.next;
    if (next - producer_.cached_head > mask_) {
      // Acquire pairs with the consumer's release store of head: once we
      // see a slot as freed, the consumer's destruction of the item that
      // lived there happened-before our construction of a new one.
      producer_.cached_head = consumer_.head.load(std::memory_order_acquire);
      if (next - producer_.cached_head > mask_) {
        return false;
      }
    }
    if (next % items_per_line == 0) {
      // Inline here, not in a helper: g++ 12 takes a member function
      // whose only effect is a prefetch for pure and drops the call.
      const std::size_t ahead = next + prefetch_lines * items_per_line;
      if (ahead - producer_.cached_head <= mask_) {
        prefetch_for_write(&slots_[ahead & mask_]);
      }
    }
    ::new (static_cast<void*>(item(next))) T(std::move(value));
    producer_.next = next + 1;
    return true;
  }

  /// Producer only. Makes every item pushed so far visible to the consumer.
  void publish() noexcept {
    // Release publishes the constructed items to the consumer's acquire
    // load of tail.
    producer_.tail.store(producer_.next, std::memory_order_release);
  }

  /// Producer only. Number of items pushed but not yet published.
  std::size_t unpublished() const noexcept { return producer_.next - producer_.tail.load(std::memory_order_relaxed); }

  /// Producer only. Moves as many items from the front of `values` as fit;
  /// returns how many were pushed. One release store publishes the batch.
  std::size_t try_push_batch(std::span<T> values) noexcept {
    const std::size_t tail = producer_.next;
    std::size_t room = capacity() - (tail - producer_.cached_head);
    if (room < values.size()) {
      producer_.cached_head = consumer_.head.load(std::memory_order_acquire);
      room = capacity() - (tail - producer_.cached_head);
    }
    const std::size_t n = room < values.size() ? room : values.size();
    // At most two contiguous runs (before and after the wrap), so the
    // compiler can vectorise the copy instead of masking every index.
    const std::size_t first = std::min(n, capacity() - (tail & mask_));
    std::uninitialized_move_n(values.data(), first, item(tail));
    std::uninitialized_move_n(values.data() + first, n - first, item(0));
    if (n != 0) {
      producer_.next = tail + n;
      // Also publishes the items pushed unpublished before these.
      publish();
    }
    return n;
  }

  /// Consumer only. Moves the oldest item into `out`; returns false when
  /// the ring is empty.
  bool try_pop(T& out) noexcept {
    if (!try_pop_unreleased(out)) {
      return false;
    }
    release();
    return true;
  }

  /// Consumer only. Moves the oldest item into `out` like try_pop, but does
  /// not hand its slot back: the producer sees the slot free only after the
  /// next release() (or any releasing pop). Returns false when the ring is
  /// empty.
  bool try_pop_unreleased(T& out) noexcept {
    const std::size_t next = consumer_.next;
    if (next == consumer_.cached_tail) {
      // Acquire pairs with the producer's release store of tail, so the
      // item's construction is visible before we read it.
      consumer_.cached_tail = producer_.tail.load(std::memory_order_acquire);
      if (next == consumer_.cached_tail) {
        return false;
      }
    }
    T* p = item(next);
    out = std::move(*p);
    p->~T();
    consumer_.next = next + 1;
    return true;
  }

  /// Consumer only. Hands back to the producer every slot popped so far.
  void release() noexcept {
    // Release: our reads and destruction of the items happen-before the
    // producer reuses their slots (its acquire load of head).
    consumer_.head.store(consumer_.next, std::memory_order_release);
  }

  /// Consumer only. Number of items popped whose slots are not yet
  /// handed back.
  std::size_t unreleased() const noexcept { return consumer_.next - consumer_.head.load(std::memory_order_relaxed); }

  /// Consumer only. Pops up to `out.size()` items into `out`; returns how
  /// many were popped. One release store frees the whole batch.
  std::size_t try_pop_batch(std::span<T> out) noexcept {
    const std::size_t head = consumer_.next;
    std::size_t avail = consumer_.cached_tail - head;
    if (avail < out.size()) {
      consumer_.cached_tail = producer_.tail.load(std::memory_order_acquire);
      avail = consumer_.cached_tail - head;
    }
    const std::size_t n = avail < out.size() ? avail : out.size();
    // Two contiguous runs at most, as in try_push_batch.
    const std::size_t first = std::min(n, capacity() - (head & mask_));
    std::move(item(head), item(head) + first, out.data());
    std::destroy_n(item(head), first);
    std::move(item(0), item(0) + (n - first), out.data() + first);
    std::destroy_n(item(0), n - first);
    if (n != 0) {
      consumer_.next = head + n;
      // Also releases the slots of items popped unreleased before these.
      release();
    }
    return n;
  }

  /// Consumer only. True when the consumer can see no item. Refreshes the
  /// cached tail, so it is exact at the moment of the load.
  bool empty_for_consumer() noexcept {
    const std::size_t head = consumer_.next;
    if (head != consumer_.cached_tail) {
      return false;
    }
    consumer_.cached_tail = producer_.tail.load(std::memory_order_acquire);
    return head == consumer_.cached_tail;
  }

  /// Producer only. True when the producer sees no free slot. Refreshes the
  /// cached head.
  bool full_for_producer() noexcept {
    const std::size_t tail = producer_.next;
    if (tail - producer_.cached_head <= mask_) {
      return false;
    }
    producer_.cached_head = consumer_.head.load(std::memory_order_acquire);
    return tail - producer_.cached_head > mask_;
  }

  /// Producer only. Number of free slots the producer can see. Refreshes
  /// the cached head, so it is exact at the moment of the load.
  std::size_t room_for_producer() noexcept {
    const std::size_t tail = producer_.next;
    producer_.cached_head = consumer_.head.load(std::memory_order_acquire);
    return capacity() - (tail - producer_.cached_head);
  }

  /// Either side, or an observer: an approximate item count: published
  /// items whose slots the consumer has not handed back (so items popped
  /// unreleased still count). Relaxed loads suffice because the result is
  /// advisory (stats, tests).
  std::size_t size_approx() const noexcept {
    const std::size_t tail = producer_.tail.load(std::memory_order_relaxed);
    const std::size_t head = consumer_.head.load(std::memory_order_relaxed);
    return tail - head;
  }

 private:
  struct Slot {
    alignas(T) unsigned char bytes[sizeof(T)];
  };

  T* item(std::size_t index) noexcept { return std::launder(reinterpret_cast<T*>(slots_[index & mask_].bytes)); }

  // Items that share one cache line (1 when an item fills a line or more).
  static constexpr std::size_t items_per_line = sizeof(Slot) < cache_line_size ? cache_line_size / sizeof(Slot) : 1;
  // How far ahead of a push the producer asks for its slot's line.
  static constexpr std::size_t prefetch_lines = 4;

  // Why the producer prefetches: the slot lines it writes were last read
  // by the consumer, so each first store to a line waits for that line to
  // come back from the consumer's cache (an ownership request, a cross-core
  // round trip). Stores retire in order, so these waits add up: one per
  // line of items. Asking for the line a few lines ahead, with intent to
  // write, overlaps those round trips with the pushes in between. Only
  // lines the producer already knows to be free (by its cached head) are
  // asked for: taking a line the consumer has yet to read would only move
  // it back and forth. A prefetch changes no data and cannot fault.
  static void prefetch_for_write(const void* p) noexcept {
#if defined(__x86_64__)
    // PREFETCHW asks for the line in the exclusive state. g++ emits it
    // for __builtin_prefetch only with -mprfchw, which a generic x86-64
    // build lacks; every x86-64 CPU coblk runs on decodes it (a no-op
    // where unsupported).
    asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#else
    __builtin_prefetch(p, 1, 3);
#endif
  }

  // Each side's state is split in two cache lines: the index the other
  // side reads (`tail`, `head`), written once per publication or release,
  // and the side's private state (`next`, `cached_head`, `cached_tail`),
  // written per item. Were they on one line, every time the other side read the
  // index, the owner's next per-item write would have to take the line
  // back from the other core's cache (a miss per publication on each side
  // for nothing: false sharing).
  //
  // `tail` is the published end, the producer's `next` the end including
  // unpublished items (tail <= next). `head` is the released start, the
  // consumer's `next` the start past items popped unreleased (head <=
  // next).
  struct alignas(cache_line_size) ProducerSide {
    std::atomic<std::size_t> tail{0};
    alignas(cache_line_size) std::size_t next = 0;
    std::size_t cached_head = 0;
  };
  struct alignas(cache_line_size) ConsumerSide {
    std::atomic<std::size_t> head{0};
    alignas(cache_line_size) std::size_t next = 0;
    std::size_t cached_tail = 0;
  };

  ProducerSide producer_;
  ConsumerSide consumer_;
  // Read-only after construction, on a line of its own so it never shares a
  // line with an index that is being written.
  alignas(cache_line_size) Slot* slots_ = nullptr;
  std::size_t mask_ = 0;
};

}  // namespace coblk::runtime
