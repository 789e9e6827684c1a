// storage/compaction_policy.h - when to compact: the page store's policy.
#pragma once

// A user of PageStore (the zram target's maintenance task) only says "now is
// a quiet moment"; storage/ decides whether compaction is worth it.

#include <cstdint>

namespace coblk::storage {

struct AllocatorStats;

/// Compaction walks every page entry and copies the objects of sparse spans,
/// so it is worth running only when much span memory holds no live object.
/// The trigger: the store's spans hold more than min_span_bytes, and more
/// than a quarter of that memory is unused (live objects' class sizes are
/// under three quarters of it). Cached empty spans do not count: trimming
/// returns them without compaction.
struct CompactionPolicy {
  /// Span memory at or below which compaction never runs.
  std::uint64_t min_span_bytes = std::uint64_t{64} << 20;

  /// True when the allocator figures `stats` (PageStore::allocator_stats())
  /// call for compaction.
  bool should_compact(const AllocatorStats& stats) const noexcept;
};

}  // namespace coblk::storage
