#pragma once
// The kernel's zram as a memory-efficiency baseline: write a corpus to
// /dev/zram0 and read its mm_stat.

#include <cstdint>
#include <string>

#include "perf/storage/store_corpus.h"

namespace coblk::storage::bench {

/// mm_stat of /dev/zram0 after writing a corpus, or why it was not measured.
struct KernelZramResult {
  bool measured = false;
  std::string skipped_because;  ///< set when !measured
  std::uint64_t orig_data_size = 0;
  std::uint64_t compr_data_size = 0;
  std::uint64_t mem_used_total = 0;
  std::uint64_t same_pages = 0;
  std::uint64_t huge_pages = 0;
};

/// Resets /dev/zram0, sets `algorithm` and a disk size for the corpus,
/// writes the corpus with O_DIRECT, reads mm_stat, and resets the device
/// again. Refuses (skipped_because) when zram0 is missing, not writable,
/// already in use (non-zero disksize), or lacks the algorithm.
KernelZramResult measure_kernel_zram(const Corpus& corpus, const std::string& algorithm);

}  // namespace coblk::storage::bench
