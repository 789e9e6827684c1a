// compress/entropy.h - a cheap guess at how compressible a page is.
#pragma once

// Used to skip compressing pages that will not compress (already-compressed
// or encrypted data).

#include <cstddef>
#include <span>

#include "coblk/compress/page.h"

namespace coblk::compress {

/// Sampled Shannon entropy estimate of a page in bits per byte (0..8), about
/// 0.5 µs per page. It is the order-0 entropy of a byte histogram over a
/// fixed sample of entropy_sample_size bytes (entropy_sample_runs evenly
/// spaced contiguous runs, so short-range structure such as 4-byte integers
/// is seen whole). Because the sample is finite the estimate of uniformly
/// random bytes is about 7.6, not 8.
double estimate_entropy(std::span<const std::byte, page_size> page) noexcept;

/// Threshold guidance: a page whose estimate is above this is very unlikely
/// to compress below the raw-store threshold (3/4 of a page). Measured by
/// perf/compress/bench_codec (entropy_threshold lines) on this machine's
/// binaries, text, compressed files, random and fio-style pages: no page
/// above any threshold in 6.5..7.7 compressed to 3/4 page with LZ4, and
/// thresholds up to 7.4 caught every random/compressed-file page; 7.2 sits
/// in the middle of that safe band. See docs/compress.md.
inline constexpr double incompressible_entropy = 7.2;  // tune it from measurements and document

/// Number of bytes estimate_entropy samples from a page.
inline constexpr std::size_t entropy_sample_size = 512;
/// Number of evenly spaced contiguous runs the sample is taken in.
inline constexpr std::size_t entropy_sample_runs = 8;

}  // namespace coblk::compress
