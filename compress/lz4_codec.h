// compress/lz4_codec.h - the LZ4 page codec (internal to compress/: use make_codec).
#pragma once

#include <cstddef>
#include <memory>

#include "coblk/compress/codec.h"

namespace coblk::compress::detail {

/// Makes an LZ4 codec; spec.level is a valid acceleration (checked by the caller).
std::unique_ptr<Codec> make_lz4_codec(const CodecSpec& spec);

/// LZ4_compressBound(page_size).
std::size_t lz4_max_compressed_size() noexcept;

}  // namespace coblk::compress::detail
