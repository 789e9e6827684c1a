// make_codec: picks the implementation for a spec and checks its level.

#include <cerrno>
#include <string>

#include "coblk/compress/codec.h"
#include "coblk/compress/codec_limits.h"
#include "coblk/compress/lz4_codec.h"
#include "coblk/compress/zstd_codec.h"

namespace coblk::compress {

Result<std::unique_ptr<Codec>> make_codec(const CodecSpec& spec) { return make_codec(spec, {}); }

Result<std::unique_ptr<Codec>> make_codec(const CodecSpec& spec, std::span<const std::byte> zstd_dictionary) {
  switch (spec.algorithm) {
    case Algorithm::lz4:
      if (!detail::lz4_acceleration_valid(spec.level))
        return Error(EINVAL, "codec " + spec.name() + ": LZ4 acceleration out of range");
      if (!zstd_dictionary.empty()) return Error(EINVAL, "codec " + spec.name() + ": LZ4 codecs take no dictionary");
      return detail::make_lz4_codec(spec);
    case Algorithm::zstd:
      if (!detail::zstd_level_valid(spec.level))
        return Error(EINVAL, "codec " + spec.name() + ": ZSTD level out of range");
      return detail::make_zstd_codec(spec, zstd_dictionary);
  }
  return Error(EINVAL, "codec " + spec.name() + ": no such algorithm");
}

std::size_t max_compressed_size(const CodecSpec& spec) noexcept {
  switch (spec.algorithm) {
    case Algorithm::lz4:
      return detail::lz4_max_compressed_size();
    case Algorithm::zstd:
      return detail::zstd_max_compressed_size();
  }
  return 2 * page_size;
}

}  // namespace coblk::compress
