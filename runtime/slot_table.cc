#include "coblk/runtime/slot_table.h"

#include <stdexcept>
#include <utility>

namespace coblk::runtime {

SlotTable::SlotTable(std::uint32_t capacity, std::uint32_t first_generation)
    : first_generation_(first_generation == 0 ? 1 : first_generation) {
  if (capacity == 0) capacity = 1;
  slots_ = std::make_unique<Slot[]>(capacity);
  capacity_ = capacity;
  add_free(0, capacity);
}

void SlotTable::add_free(std::uint32_t from, std::uint32_t to) noexcept {
  for (std::uint32_t i = from; i < to; ++i) {
    slots_[i].key = first_generation_ << 32 | idle_bit | i;
    slots_[i].next_free = i + 1 < to ? i + 1 : no_slot;
  }
  free_ = from;
}

void SlotTable::grow() {
  // More operations in flight than ever before. The limit keeps every
  // index below idle_bit.
  const std::uint32_t old = capacity_;
  if (old >= (1u << 30)) throw std::length_error("too many io_uring operations in flight");
  auto bigger = std::make_unique<Slot[]>(std::size_t{old} * 2);
  for (std::uint32_t i = 0; i < old; ++i) bigger[i] = slots_[i];
  slots_ = std::move(bigger);
  capacity_ = old * 2;
  add_free(old, old * 2);
}

}  // namespace coblk::runtime
