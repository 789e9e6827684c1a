// compress/codec.h - page codecs: LZ4 and ZSTD, each owning the state that makes per-page compression cheap.
#pragma once

// See docs/compress.md.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "coblk/compress/page.h"
#include "coblk/runtime/result.h"

namespace coblk::compress {

/// The compression algorithm of a codec. The numeric values are stable so
/// they may be stored in page metadata.
enum class Algorithm : std::uint8_t { lz4 = 0, zstd = 1 };

/// An algorithm and its level: LZ4 acceleration (1 = default, higher =
/// faster/weaker, at most 65537), or ZSTD level (any level ZSTD accepts,
/// negative included; 0 means ZSTD's default, 3).
struct CodecSpec {
  Algorithm algorithm = Algorithm::lz4;  ///< which compressor
  int level = 1;                         ///< LZ4 acceleration or ZSTD level, as above

  /// Canonical text form, accepted back by parse_codec_spec: "lz4" (level 1),
  /// "lz4:8", "zstd" (level 0, ZSTD's default), "zstd:-5".
  std::string name() const;

  /// Two specs are equal when algorithm and level are equal ("zstd" and
  /// "zstd:3" compress identically but are different specs).
  bool operator==(const CodecSpec&) const = default;
};

/// Parses "lz4", "lz4:ACCEL" (1..65537), "zstd", "zstd:LEVEL" (ZSTD_minCLevel()
/// ..ZSTD_maxCLevel(), i.e. -131072..22 with Debian's libzstd 1.5.4).
/// On bad input, e.g. "lz4:0", "lz4:x", "zstd:99" or "gzip", returns
/// Error EINVAL whose one-line message quotes the input and says what is
/// accepted.
Result<CodecSpec> parse_codec_spec(std::string_view text);

/// One page compressor/decompressor. Not thread-safe: keep one per core (it
/// owns reusable state: the LZ4 hash table, or a ZSTD CCtx/DCtx pair).
class Codec {
 public:
  virtual ~Codec() = default;

  /// Compresses one page into dst. Returns the compressed size in
  /// (0, dst.size()], or 0 when the result would not fit in dst (the caller
  /// treats the page as incompressible and stores it raw). Never allocates.
  virtual std::size_t compress(std::span<const std::byte, page_size> page, std::span<std::byte> dst) noexcept = 0;

  /// Decompresses `src` (produced by compress of the same spec and
  /// dictionary) into exactly one page. Returns false if src is corrupt or
  /// does not decode to exactly page_size bytes; `page` may then hold
  /// garbage. Never allocates.
  virtual bool decompress(std::span<const std::byte> src, std::span<std::byte, page_size> page) noexcept = 0;

  /// The spec this codec was made from.
  virtual const CodecSpec& spec() const noexcept = 0;
};

/// Makes a codec for `spec`, allocating all its state up front so that
/// compress/decompress never allocate. Returns Error EINVAL (one line naming
/// the spec) when the algorithm is unknown or the level out of range (see
/// parse_codec_spec), or when ZSTD refuses a parameter; Error EIO if ZSTD's
/// warm-up round trip fails. Throws std::bad_alloc when out of memory.
Result<std::unique_ptr<Codec>> make_codec(const CodecSpec& spec);

/// As make_codec(spec), with a ZSTD dictionary (raw content or one trained by
/// `zstd --train`); the dictionary is copied, so the span need not outlive
/// the call. Pages compressed with a dictionary decompress only with a codec
/// made with the same dictionary. An empty span means no dictionary. LZ4
/// codecs take no dictionary: a non-empty one is Error EINVAL, as is a
/// dictionary ZSTD refuses to load. Other failures as make_codec(spec).
Result<std::unique_ptr<Codec>> make_codec(const CodecSpec& spec, std::span<const std::byte> zstd_dictionary);

/// Upper bound on the compressed size of one page for `spec`: a dst of this
/// size never makes compress return 0.
std::size_t max_compressed_size(const CodecSpec& spec) noexcept;

}  // namespace coblk::compress
