// The ZSTD page codec: one CCtx and one DCtx per codec (so per core), with
// parameters set once.
//
// ZSTD_compress2 keeps the parameters set on the CCtx across calls and only
// resets the session, and passes the source size (one page) to ZSTD so that
// it picks window and table sizes for 4 KiB inputs. The CCtx workspace is
// sized on the first call and reused while later calls need no more, which
// they never do because every call has the same parameters and source size;
// so the constructor makes one warm-up call and compress() then never
// allocates. A counting allocator (ZSTD_customMem) lets tests check that.
//
// The frame parameters ZSTD_c_format (magicless), ZSTD_c_contentSizeFlag and
// ZSTD_c_dictIDFlag are in ZSTD's static-only API, so coblk_compress links
// libzstd.a, whose ABI is the one these headers describe.

#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "coblk/compress/codec_limits.h"
#include "coblk/compress/zstd_codec.h"

namespace coblk::compress::detail {

bool zstd_level_valid(int level) { return level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel(); }

namespace {

class ZstdCodec final : public Codec {
 public:
  // Creates the contexts; configure() must succeed before the codec is used.
  explicit ZstdCodec(const CodecSpec& spec) : spec_(spec) {
    const ZSTD_customMem memory{&allocate, &release, this};
    cctx_ = ZSTD_createCCtx_advanced(memory);
    dctx_ = ZSTD_createDCtx_advanced(memory);
    if (cctx_ == nullptr || dctx_ == nullptr) {
      free_contexts();
      throw std::bad_alloc();
    }
  }

  // Sets the parameters, loads the dictionary and warms up. Error EINVAL
  // when ZSTD refuses a parameter or the dictionary, EIO when the warm-up
  // round trip fails.
  Result<void> configure(std::span<const std::byte> dictionary, ZstdFraming framing) {
    Result<void> r = check(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, spec_.level), "compression level");
    if (r) r = check(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 0), "checksum flag");
    if (r && framing == ZstdFraming::trimmed) {
      r = check(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_contentSizeFlag, 0), "content size flag");
      if (r) r = check(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_dictIDFlag, 0), "dictionary ID flag");
      if (r) r = check(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_format, ZSTD_f_zstd1_magicless), "format");
      if (r) r = check(ZSTD_DCtx_setParameter(dctx_, ZSTD_d_format, ZSTD_f_zstd1_magicless), "format");
      format_ = ZSTD_f_zstd1_magicless;
    }
    if (r && !dictionary.empty()) {
      // By copy: the caller's buffer need not outlive the codec.
      r = check(ZSTD_CCtx_loadDictionary(cctx_, dictionary.data(), dictionary.size()), "dictionary");
      if (r) r = check(ZSTD_DCtx_loadDictionary(dctx_, dictionary.data(), dictionary.size()), "dictionary");
    }
    if (r) r = warm_up();
    // From here on every allocation ZSTD makes breaks the contract.
    ready_ = r.ok();
    return r;
  }

  ~ZstdCodec() override { free_contexts(); }
  ZstdCodec(const ZstdCodec&) = delete;
  ZstdCodec& operator=(const ZstdCodec&) = delete;

  std::size_t compress(std::span<const std::byte, page_size> page, std::span<std::byte> dst) noexcept override {
    // ZSTD's entropy coders need slack beyond the final size, so with a
    // dst smaller than the worst case ZSTD can fail on a page whose
    // result would have fit exactly. Compressing into the worst-case
    // sized scratch_ and copying keeps the contract exact ("0 only when
    // the result does not fit") at the price of one copy of at most a
    // page, small next to ZSTD's own work.
    if (dst.size() >= scratch_.size()) {
      const std::size_t size = ZSTD_compress2(cctx_, dst.data(), dst.size(), page.data(), page.size());
      return ZSTD_isError(size) ? 0 : size;
    }
    const std::size_t size = ZSTD_compress2(cctx_, scratch_.data(), scratch_.size(), page.data(), page.size());
    // Any error here also means "store it raw", which is always safe.
    if (ZSTD_isError(size) || size > dst.size()) return 0;
    std::memcpy(dst.data(), scratch_.data(), size);
    return size;
  }

  bool decompress(std::span<const std::byte> src, std::span<std::byte, page_size> page) noexcept override {
    // Exactly one frame, or ZSTD is not called: libzstd 1.5.4 (Debian 12)
    // decodes frame after frame, and before each one loads a 4-byte magic
    // number even in the magicless format, reading past the end of src
    // when 1..3 bytes are left (a 2-byte src, or a page followed by 2 bytes
    // of junk). test/fuzz found both; newer ZSTD checks the size first.
    if (frame_size(src) != src.size()) return false;
    // Bounded by the page: a frame that would decode to more fails with
    // dstSize_tooSmall, one that decodes to less is caught by the size check.
    const std::size_t size = ZSTD_decompressDCtx(dctx_, page.data(), page.size(), src.data(), src.size());
    return !ZSTD_isError(size) && size == page_size;
  }

  const CodecSpec& spec() const noexcept override { return spec_; }

  std::size_t allocations_after_setup() const noexcept { return allocations_after_setup_; }

 private:
  // The size of the frame at the start of src, from its header and block
  // headers (RFC 8878, 3.1.1: a 3-byte little-endian block header holds
  // Last_Block in bit 0, Block_Type in bits 1-2, Block_Size in bits 3-23;
  // an RLE block's content is 1 byte, a reserved type is corrupt). 0 when
  // src does not hold a whole frame. Reads only inside src.
  std::size_t frame_size(std::span<const std::byte> src) const noexcept {
    ZSTD_frameHeader header;
    if (ZSTD_getFrameHeader_advanced(&header, src.data(), src.size(), format_) != 0) return 0;
    if (header.frameType != ZSTD_frame) return 0;
    constexpr std::size_t block_header_bytes = 3;
    constexpr unsigned rle_block = 1;
    constexpr unsigned reserved_block = 3;
    std::size_t at = header.headerSize;
    for (bool last = false; !last;) {
      if (src.size() - at < block_header_bytes) return 0;
      const auto byte = [&](std::size_t i) { return static_cast<std::uint32_t>(src[at + i]); };
      const std::uint32_t block = byte(0) | byte(1) << 8 | byte(2) << 16;
      at += block_header_bytes;
      last = (block & 1) != 0;
      const unsigned type = (block >> 1) & 3;
      if (type == reserved_block) return 0;
      const std::size_t content = type == rle_block ? 1 : block >> 3;
      if (src.size() - at < content) return 0;
      at += content;
    }
    constexpr std::size_t checksum_bytes = 4;
    if (header.checksumFlag != 0) {
      if (src.size() - at < checksum_bytes) return 0;
      at += checksum_bytes;
    }
    return at;
  }

  static void* allocate(void* opaque, std::size_t size) {
    auto* self = static_cast<ZstdCodec*>(opaque);
    if (self->ready_) ++self->allocations_after_setup_;
    return std::malloc(size);
  }
  static void release(void*, void* address) { std::free(address); }

  Result<void> check(std::size_t result, const char* what) const {
    if (ZSTD_isError(result))
      return Error(EINVAL, "codec " + spec_.name() + ": ZSTD rejected " + what + ": " + ZSTD_getErrorName(result));
    return ok();
  }

  // One compression and decompression, so ZSTD sizes the CCtx workspace
  // (and builds the CDict from a loaded dictionary) now rather than on the
  // first real page. The page mixes a repeated pattern with pseudo-random
  // bytes so both compressed and raw blocks and literals are produced.
  Result<void> warm_up() {
    std::array<std::byte, page_size> page{};
    std::uint64_t x = 0x9e3779b97f4a7c15u;
    for (std::size_t i = 0; i < page_size; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      page[i] = static_cast<std::byte>(i < page_size / 2 ? "warm up "[i % 8] : static_cast<char>(x));
    }
    std::array<std::byte, ZSTD_COMPRESSBOUND(page_size)> compressed;
    const std::size_t size = ZSTD_compress2(cctx_, compressed.data(), compressed.size(), page.data(), page.size());
    if (Result<void> r = check(size, "warm-up compression"); !r) return r;
    std::array<std::byte, page_size> decoded;
    if (!decompress(std::span<const std::byte>(compressed.data(), size), decoded) || decoded != page)
      return Error(EIO, "codec " + spec_.name() + ": ZSTD warm-up round trip failed");
    return ok();
  }

  void free_contexts() noexcept {
    ZSTD_freeCCtx(cctx_);
    ZSTD_freeDCtx(dctx_);
    cctx_ = nullptr;
    dctx_ = nullptr;
  }

  CodecSpec spec_;
  ZSTD_CCtx* cctx_ = nullptr;
  ZSTD_DCtx* dctx_ = nullptr;
  bool ready_ = false;
  ZSTD_format_e format_ = ZSTD_f_zstd1;  // the frames' format, as set on both contexts
  std::array<std::byte, ZSTD_COMPRESSBOUND(page_size)> scratch_;
  std::size_t allocations_after_setup_ = 0;
};

}  // namespace

Result<std::unique_ptr<Codec>> make_zstd_codec(const CodecSpec& spec, std::span<const std::byte> dictionary,
                                               ZstdFraming framing) {
  auto codec = std::make_unique<ZstdCodec>(spec);
  if (Result<void> r = codec->configure(dictionary, framing); !r) return std::move(r).error();
  return std::unique_ptr<Codec>(std::move(codec));
}

std::size_t zstd_max_compressed_size() noexcept { return ZSTD_COMPRESSBOUND(page_size); }

std::size_t zstd_allocations_after_setup(const Codec& codec) noexcept {
  const auto* zstd = dynamic_cast<const ZstdCodec*>(&codec);
  return zstd != nullptr ? zstd->allocations_after_setup() : 0;
}

}  // namespace coblk::compress::detail
