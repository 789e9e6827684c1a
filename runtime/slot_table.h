// runtime/slot_table.h - SlotTable, the in-flight operations of one io_uring, matched to CQEs by user_data.
#pragma once

// Every operation a ring has in flight occupies a slot; its SQE's user_data
// is (generation << 32 | slot index), never a pointer, so a stale or foreign
// CQE can never touch freed memory. The reactor's ring and a core's polled
// ring (polled_ring.h) each keep one table.
//
// A slot's `key` is the user_data of its operation while that is in flight,
// and the same value with `idle_bit` (bit 31, above any index) set once it
// has completed or while the slot is free. Matching a CQE is therefore one
// 64-bit comparison: it fails for a CQE of an older generation, for a second
// CQE of a completed operation and for a free slot alike. The reactor's
// reserved user_data values (wake-ups, its eventfd) all have bit 31 set, so
// they never match a slot either.

#include <cstdint>
#include <memory>

#include "coblk/runtime/waiter.h"

namespace coblk::runtime {

/// The slots of one ring's in-flight operations: a free list threaded
/// through a vector that doubles when full (slots are addressed by index, so
/// growing never invalidates a user_data), and one generation per slot that
/// changes on every reuse. One thread only; no allocation except growth
/// beyond every earlier peak.
class SlotTable {
 public:
  /// A table of `capacity` (at least 1) free slots whose first generation
  /// is `first_generation` (0 is taken as 1: generation 0 never appears, so
  /// slot 0's user_data is never 0, which IoOp reads as "never submitted").
  explicit SlotTable(std::uint32_t capacity, std::uint32_t first_generation = 1);

  /// Takes a free slot for an operation awaited by `waiter` and returns the
  /// user_data its SQE must carry. Grows the table when every slot is in
  /// use; throws std::length_error beyond 2^30 slots (and std::bad_alloc).
  std::uint64_t open(const Waiter& waiter) {
    if (free_ == no_slot) [[unlikely]] {
      grow();
    }
    const std::uint32_t index = free_;
    Slot& slot = slots_[index];
    free_ = slot.next_free;
    slot.key &= ~std::uint64_t{idle_bit};
    slot.waiter = waiter;
    ++in_flight_;
    return slot.key;
  }

  /// Records the CQE (`result`, `cqe_flags`) of the operation with
  /// `user_data` and returns its waiter, to be resumed; nullptr when
  /// `user_data` names no operation in flight here (a value the table never
  /// handed out, an older generation, a second CQE): such a CQE is ignored.
  const Waiter* complete(std::uint64_t user_data, std::int32_t result, std::uint32_t cqe_flags) noexcept {
    const auto index = static_cast<std::uint32_t>(user_data);
    if (index >= capacity_) return nullptr;
    Slot& slot = slots_[index];
    if (slot.key != user_data) return nullptr;
    slot.key = user_data | idle_bit;
    slot.result = result;
    slot.cqe_flags = cqe_flags;
    --in_flight_;
    return &slot.waiter;
  }

  /// The result (and, if `cqe_flags` is not null, the CQE flags) of the
  /// completed operation with `user_data`, which must be one that complete()
  /// returned a waiter for; frees its slot. The slot's new generation makes
  /// any late CQE that still carries `user_data` miss.
  int close(std::uint64_t user_data, std::uint32_t* cqe_flags = nullptr) noexcept {
    const auto index = static_cast<std::uint32_t>(user_data);
    Slot& slot = slots_[index];
    if (cqe_flags != nullptr) *cqe_flags = slot.cqe_flags;
    // Generation 0 is skipped on the wrap (see the constructor).
    slot.key += generation_one;
    if ((slot.key >> 32) == 0) slot.key += generation_one;
    slot.next_free = free_;
    free_ = index;
    return slot.result;
  }

  /// Operations opened and not yet completed.
  std::uint32_t in_flight() const noexcept { return in_flight_; }
  /// Slots in the table, free or not.
  std::uint32_t capacity() const noexcept { return capacity_; }

  /// Calls `f(user_data)` for every operation in flight (shutdown cancels
  /// them this way). `f` may complete operations, but must not open any
  /// (which could grow the table under the loop).
  template <typename F>
  void for_each_in_flight(F&& f) const {
    for (std::uint32_t i = 0; i < capacity_; ++i) {
      if ((slots_[i].key & idle_bit) == 0) f(slots_[i].key);
    }
  }

 private:
  struct Slot {
    std::uint64_t key = 0;  // see the top of the file
    Waiter waiter;
    std::int32_t result = 0;
    std::uint32_t cqe_flags = 0;
    std::uint32_t next_free = 0;
  };
  static constexpr std::uint32_t no_slot = UINT32_MAX;
  static constexpr std::uint32_t idle_bit = 1u << 31;
  static constexpr std::uint64_t generation_one = std::uint64_t{1} << 32;

  // Doubles the table and puts the new slots on the free list.
  void grow();
  // Makes slots [from, to) free, chained in index order, and the free list.
  void add_free(std::uint32_t from, std::uint32_t to) noexcept;

  // An array, not a vector: the bounds check in complete() then reads one
  // field instead of computing a vector's size.
  std::unique_ptr<Slot[]> slots_;
  std::uint32_t capacity_ = 0;
  std::uint32_t free_ = no_slot;
  std::uint32_t in_flight_ = 0;
  std::uint64_t first_generation_;
};

}  // namespace coblk::runtime
