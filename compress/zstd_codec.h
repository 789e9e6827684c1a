// compress/zstd_codec.h - the ZSTD page codec (internal to compress/: use make_codec).
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "coblk/compress/codec.h"

namespace coblk::compress::detail {

/// How much of the standard ZSTD frame header a codec writes.
enum class ZstdFraming {
  /// Magic number, content size, dictionary ID: what ZSTD_compressCCtx
  /// writes. Only for measurements (perf/compress/bench_codec).
  standard,
  /// No magic number (ZSTD_f_zstd1_magicless), no content size (every page
  /// is page_size bytes), no dictionary ID, no checksum: saves 4-9 bytes
  /// per page. What make_codec uses.
  trimmed,
};

/// Makes a ZSTD codec; spec.level is valid (checked by the caller). An empty
/// dictionary means none. Returns Error EINVAL when ZSTD refuses a parameter
/// or the dictionary, Error EIO when the warm-up round trip fails; throws
/// std::bad_alloc when out of memory.
Result<std::unique_ptr<Codec>> make_zstd_codec(const CodecSpec& spec, std::span<const std::byte> dictionary,
                                               ZstdFraming framing = ZstdFraming::trimmed);

/// Worst-case compressed size of one page (ZSTD_COMPRESSBOUND(page_size)).
std::size_t zstd_max_compressed_size() noexcept;

/// Heap allocations ZSTD made through a ZSTD codec since make_codec returned
/// (0 for other codecs). Tests use it to check "never allocates".
std::size_t zstd_allocations_after_setup(const Codec& codec) noexcept;

}  // namespace coblk::compress::detail
