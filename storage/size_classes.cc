#include "coblk/storage/size_classes.h"

#include <cerrno>
#include <string>

namespace coblk::storage {

namespace {

// The span length (1..max_span_pages) that wastes the smallest fraction of
// its bytes on a tail too short for one more object. Ties go to the shorter
// span, which needs fewer contiguous free pages and frees sooner.
std::uint32_t best_span_pages(std::uint32_t object_size) {
  std::uint32_t best = 1;
  double best_waste = 2.0;
  for (std::uint32_t pages = 1; pages <= max_span_pages; ++pages) {
    const std::uint32_t bytes = pages * alloc_page_size;
    const double waste = static_cast<double>(bytes % object_size) / bytes;
    if (waste < best_waste - 1e-12) {
      best_waste = waste;
      best = pages;
    }
  }
  return best;
}

}  // namespace

Result<SizeClassTable> SizeClassTable::create(std::uint32_t largest_packed_size) {
  if (largest_packed_size == 0 || largest_packed_size >= alloc_page_size) {
    return Error(EINVAL, "largest packed object size must be in 1..4095, got " + std::to_string(largest_packed_size));
  }
  return SizeClassTable(largest_packed_size);
}

SizeClassTable::SizeClassTable(std::uint32_t largest_packed_size) {
  // Round up so that every size up to largest_packed_size has a class.
  const std::uint32_t top = (largest_packed_size + class_step - 1) / class_step * class_step;
  largest_packed_ = top;
  // From the largest size down: a size joins the class above it when its
  // best span has the same shape.
  const std::uint32_t steps = top / class_step;
  std::vector<SizeClass> descending;
  std::vector<std::uint32_t> rank_of_step(steps + 1);  // position in `descending`
  for (std::uint32_t step = steps; step >= 1; --step) {
    const std::uint32_t size = step * class_step;
    const std::uint32_t pages = best_span_pages(size);
    const SizeClass shape{size, static_cast<std::uint16_t>(pages),
                          static_cast<std::uint16_t>(pages * alloc_page_size / size)};
    if (descending.empty() || descending.back().pages_per_span != shape.pages_per_span ||
        descending.back().objects_per_span != shape.objects_per_span) {
      descending.push_back(shape);
    }
    rank_of_step[step] = static_cast<std::uint32_t>(descending.size() - 1);
  }
  classes_.assign(descending.rbegin(), descending.rend());
  class_of_step_.assign(steps + 1, 0);
  for (std::uint32_t step = 1; step <= steps; ++step) {
    class_of_step_[step] = static_cast<std::uint16_t>(classes_.size() - 1 - rank_of_step[step]);
  }
  classes_.push_back(SizeClass{alloc_page_size, 1, 1});
}

double SizeClassTable::mean_span_tail_waste() const noexcept {
  double sum = 0;
  const std::size_t packed = classes_.size() - 1;
  for (std::size_t i = 0; i < packed; ++i) {
    const double bytes = static_cast<double>(classes_[i].pages_per_span) * alloc_page_size;
    sum += (bytes - static_cast<double>(classes_[i].objects_per_span) * classes_[i].object_size) / bytes;
  }
  return packed ? sum / static_cast<double>(packed) : 0.0;
}

}  // namespace coblk::storage
