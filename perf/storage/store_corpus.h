#pragma once
// Page corpora for bench_store, made at run time from this machine's data.
// Unlike the codec corpora, same-filled pages are kept: a store sees them.

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "coblk/compress/page.h"

namespace coblk::storage::bench {

/// One page of bytes.
using Page = std::array<std::byte, compress::page_size>;

/// A named sequence of pages (written to consecutive device pages).
struct Corpus {
  std::string name;
  std::vector<Page> pages;
  std::size_t bytes() const { return pages.size() * compress::page_size; }
};

/// Consecutive pages of executables and libraries under /usr/bin and
/// /usr/lib, as a filesystem image of them would hold.
Corpus binaries_corpus(std::size_t count);
/// Anonymous and heap memory of a process with real data, read through
/// /proc/PID/mem: what zram holds when used as swap. The process is a
/// spawned python3 that imports a few dozen standard modules and builds
/// some ordinary data structures; without python3, this process itself.
Corpus process_memory_corpus(std::size_t count);
/// Zero pages.
Corpus zeros_corpus(std::size_t count);
/// Pseudo-random pages.
Corpus random_corpus(std::size_t count);
/// fio buffer_compress_percentage=50 style: each 512-byte chunk half random,
/// half zeros.
Corpus half_compressible_corpus(std::size_t count);

}  // namespace coblk::storage::bench
