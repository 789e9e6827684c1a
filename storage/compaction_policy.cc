#include "coblk/storage/compaction_policy.h"

#include "coblk/compress/page.h"
#include "coblk/storage/page_store.h"

namespace coblk::storage {

bool CompactionPolicy::should_compact(const AllocatorStats& stats) const noexcept {
  const std::uint64_t held = stats.span_pages * compress::page_size;
  return held > min_span_bytes && stats.object_bytes < held - held / 4;
}

}  // namespace coblk::storage
