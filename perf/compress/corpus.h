#pragma once
// Page corpora for bench_codec, read from this machine at run time.

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "coblk/compress/page.h"

namespace coblk::compress::bench {

/// One page of bytes.
using Page = std::array<std::byte, page_size>;

/// A named set of pages.
struct Corpus {
  std::string name;
  std::vector<Page> pages;
  std::size_t bytes() const { return pages.size() * page_size; }
};

/// Pages of executables and libraries in /usr/bin and /usr/lib (at most
/// `pages_per_file` from each file), without same-filled pages: storage
/// never hands those to a codec.
Corpus binaries_corpus(std::size_t count, std::size_t pages_per_file = 16);
/// Pages of text files under /usr/share (files whose first page has no NUL
/// byte and is mostly printable), without same-filled pages.
Corpus text_corpus(std::size_t count, std::size_t pages_per_file = 8);
/// Pages of already-compressed files under /usr/share (.gz, .xz, .bz2, .png).
Corpus compressed_files_corpus(std::size_t count, std::size_t pages_per_file = 8);
/// Zero pages.
Corpus zeros_corpus(std::size_t count);
/// Pseudo-random pages.
Corpus random_corpus(std::size_t count);
/// fio-style buffer_compress_percentage=50 pages: every 512-byte chunk is
/// half random bytes, half zeros.
Corpus half_compressible_corpus(std::size_t count);

}  // namespace coblk::compress::bench
