// compress/same_fill.h - same-filled pages, stored as their 8-byte fill word alone.
#pragma once

// A page that is one 8-byte word repeated (zram's "same" pages) is never
// compressed.

#include <cstddef>
#include <cstdint>
#include <span>

#include "coblk/compress/page.h"

namespace coblk::compress {

/// True when the page is one 8-byte word repeated; stores that word (in
/// memory byte order, i.e. as loaded from the page on this little-endian
/// machine) in `fill`. `fill` is left unchanged when the page is not
/// same-filled. Checks the first and last words first, then scans; the AVX2 /
/// AVX-512 path is chosen once at run time (__builtin_cpu_supports), with a
/// scalar fallback.
bool is_same_filled(std::span<const std::byte, page_size> page, std::uint64_t& fill) noexcept;

/// Fills a page with the 8-byte word (for reads of same-filled pages), so
/// that is_same_filled(page, w) afterwards yields w == fill.
void fill_page(std::span<std::byte, page_size> page, std::uint64_t fill) noexcept;

namespace detail {

/// The same-fill paths, exposed so tests and benchmarks can force each one.
/// Each has is_same_filled's contract. Calling the AVX2 or AVX-512 variant on
/// a CPU that lacks the instructions is undefined (SIGILL): check
/// cpu_has_avx2 / cpu_has_avx512 first.
bool is_same_filled_scalar(std::span<const std::byte, page_size> page, std::uint64_t& fill) noexcept;
bool is_same_filled_avx2(std::span<const std::byte, page_size> page, std::uint64_t& fill) noexcept;
bool is_same_filled_avx512(std::span<const std::byte, page_size> page, std::uint64_t& fill) noexcept;

/// True when this CPU (and OS, for the register state) supports AVX2.
bool cpu_has_avx2() noexcept;
/// True when this CPU (and OS) supports AVX-512F.
bool cpu_has_avx512() noexcept;
/// Name of the path is_same_filled dispatches to: "avx512", "avx2" or "scalar".
const char* same_fill_path() noexcept;

}  // namespace detail
}  // namespace coblk::compress
