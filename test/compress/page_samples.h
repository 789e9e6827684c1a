#pragma once
// Sample pages for the compress/ tests: zeros, patterns, text, binaries and
// random bytes. Text and binaries are read from this machine at run time
// (Debian always has /usr/bin and /usr/share/common-licenses); when they are
// missing, generated stand-ins are used so the tests still run.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "coblk/compress/page.h"

namespace coblk::compress::testing {

/// One page of bytes, page-aligned enough for any vector load.
using Page = std::array<std::byte, page_size>;

/// A page of zero bytes.
Page zero_page();
/// A page holding `word` repeated (little-endian byte order).
Page repeated_word_page(std::uint64_t word);
/// A page holding `pattern` repeated, cut at the page end.
Page repeated_text_page(const std::string& pattern);
/// A page of pseudo-random bytes (splitmix64, so the same seed gives the same page).
Page random_page(std::uint64_t seed);
/// Up to `count` pages of text files from /usr/share (licences, copyright files).
std::vector<Page> text_pages(std::size_t count);
/// Up to `count` pages of executables: this test program and /usr/bin files.
std::vector<Page> binary_pages(std::size_t count);

}  // namespace coblk::compress::testing
