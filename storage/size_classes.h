// storage/size_classes.h - the size classes of the compressed-object allocator.
#pragma once

// Which object sizes exist, and how many pages a span of each class spans.
// See docs/storage.md.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "coblk/runtime/result.h"

namespace coblk::storage {

/// Size in bytes of one allocator page (the unit memory is accounted in).
inline constexpr std::uint32_t alloc_page_size = 4096;

/// Object sizes of consecutive classes differ by this many bytes, as in
/// zsmalloc on 4 KiB pages (ZS_SIZE_CLASS_DELTA).
inline constexpr std::uint32_t class_step = 16;

/// Largest span, in pages. A span is a run of contiguous pages holding
/// objects of one class, packed back to back (an object may straddle a page
/// boundary). Allowing up to 8 pages per span keeps the unusable tail of a
/// span at 1.1 % on average over all classes (worst class 5.5 %); with 4
/// pages it would be 4.5 % (worst 20 %). Measured by the class table below.
inline constexpr std::uint32_t max_span_pages = 8;

/// One size class.
struct SizeClass {
  std::uint32_t object_size = 0;       ///< bytes per object (a multiple of class_step, or a page)
  std::uint16_t pages_per_span = 0;    ///< pages of one span of this class
  std::uint16_t objects_per_span = 0;  ///< objects that fit in one span
};

/// The table of size classes for one store: packed classes in steps of 16
/// bytes up to the largest size that is still stored compressed, then one
/// "raw" class of a whole page (one object per one-page span) for pages
/// stored uncompressed. Immutable after creation, so any thread may read
/// it.
///
/// As in zsmalloc, consecutive sizes whose best span holds the same number
/// of objects in the same number of pages are merged into one class of the
/// largest of those sizes: that costs no memory (a span of either size
/// would hold exactly as many objects), and each class removed is one
/// partly filled span less. Above ~1.5 KiB this merges most sizes.
class SizeClassTable {
 public:
  /// The table in which `largest_packed_size` is the largest object size
  /// that is packed (1..alloc_page_size-1); larger requests go to the raw
  /// class. Returns Error EINVAL (one line) for a size outside that range.
  static Result<SizeClassTable> create(std::uint32_t largest_packed_size);

  /// Number of classes, the raw class included.
  std::size_t count() const noexcept { return classes_.size(); }

  /// The class with index `index` (< count()).
  const SizeClass& operator[](std::size_t index) const noexcept { return classes_[index]; }

  /// Index of the smallest class that holds `size` bytes (1..alloc_page_size).
  std::uint32_t index_for(std::uint32_t size) const noexcept {
    return size > largest_packed_ ? raw_class_index() : class_of_step_[(size + class_step - 1) / class_step];
  }

  /// Index of the one-page raw class.
  std::uint32_t raw_class_index() const noexcept { return static_cast<std::uint32_t>(classes_.size() - 1); }

  /// Mean over the packed classes of the fraction of a span no object can
  /// use (the tail after the last whole object). For documentation and the
  /// fragmentation report.
  double mean_span_tail_waste() const noexcept;

 private:
  explicit SizeClassTable(std::uint32_t largest_packed_size);  // a valid size

  std::uint32_t largest_packed_;
  std::vector<SizeClass> classes_;
  std::vector<std::uint16_t> class_of_step_;  // [ceil(size / class_step)] -> class index
};

}  // namespace coblk::storage
