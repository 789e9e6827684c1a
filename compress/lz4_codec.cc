// The LZ4 page codec: one LZ4 state per codec (so per core), reset cheaply.
//
// LZ4_compress_default initialises its 16 KiB hash table on every call;
// LZ4_compress_fast_extState_fastReset instead reuses a table that is already
// valid and only advances its base offset, so stale entries point outside
// the current input and are ignored. Measured 0.82 vs 0.60 GB/s per core on
// this machine's binaries and text (see perf/compress/bench_codec). That call
// is in LZ4's static-only API, which Debian's liblz4.so does not export, so
// coblk_compress links liblz4.a (see compress/CMakeLists.txt).

#define LZ4_STATIC_LINKING_ONLY
#include <lz4.h>

#include <climits>

#include "coblk/compress/lz4_codec.h"

namespace coblk::compress::detail {
namespace {

class Lz4Codec final : public Codec {
 public:
  explicit Lz4Codec(const CodecSpec& spec) : spec_(spec) {
    // A fully initialised state is the precondition of every later
    // fast-reset call; nothing else ever writes to state_ but LZ4.
    LZ4_initStream(&state_, sizeof state_);
  }

  std::size_t compress(std::span<const std::byte, page_size> page, std::span<std::byte> dst) noexcept override {
    // LZ4 takes an int capacity; a larger dst cannot matter for a 4 KiB page.
    const int capacity = dst.size() > INT_MAX ? INT_MAX : static_cast<int>(dst.size());
    // Returns 0 when the output would exceed capacity (LZ4's limitedOutput
    // mode never writes past dst); the hash table stays valid either way.
    const int size = LZ4_compress_fast_extState_fastReset(&state_, reinterpret_cast<const char*>(page.data()),
                                                          reinterpret_cast<char*>(dst.data()),
                                                          static_cast<int>(page_size), capacity, spec_.level);
    return size > 0 ? static_cast<std::size_t>(size) : 0;
  }

  bool decompress(std::span<const std::byte> src, std::span<std::byte, page_size> page) noexcept override {
    if (src.empty() || src.size() > INT_MAX) return false;
    // LZ4_decompress_safe never reads past src nor writes past the page,
    // whatever src holds; a valid page decodes to exactly page_size bytes.
    const int size =
        LZ4_decompress_safe(reinterpret_cast<const char*>(src.data()), reinterpret_cast<char*>(page.data()),
                            static_cast<int>(src.size()), static_cast<int>(page_size));
    return size == static_cast<int>(page_size);
  }

  const CodecSpec& spec() const noexcept override { return spec_; }

 private:
  CodecSpec spec_;
  alignas(64) LZ4_stream_t state_;  // cache-line aligned: the hash table is the hot data
};

}  // namespace

std::unique_ptr<Codec> make_lz4_codec(const CodecSpec& spec) { return std::make_unique<Lz4Codec>(spec); }

std::size_t lz4_max_compressed_size() noexcept { return static_cast<std::size_t>(LZ4_COMPRESSBOUND(page_size)); }

}  // namespace coblk::compress::detail
