// Fuzzes the page codecs of compress/codec.h (make_codec), built once per
// algorithm: COBLK_FUZZ_ALGORITHM is lz4 (fuzz_codec_lz4) or zstd
// (fuzz_codec_zstd).
//
// The first byte picks the codec (several levels; for ZSTD also one with a
// dictionary) and the mode:
//   - even: the rest is compressed input. decompress into a 4096-byte page
//     must return false or fill the page, never touch memory outside src or
//     the page (both sit against inaccessible pages, guarded_buffer.h); a
//     page it accepts must round-trip.
//   - odd: the rest describes a page (its bytes, and how to fill the rest:
//     zeros, repetition, runs or noise), a smaller output capacity and some
//     corruptions. The page must compress into max_compressed_size bytes and
//     decompress equal; into the smaller capacity it compresses to 0 (does
//     not fit) or to at most that many bytes that decompress equal, and not
//     to 0 if the full-size result would have fitted; the compressed bytes,
//     truncated and with bytes flipped, must decompress to false or a full
//     page, again within bounds.
// ZSTD codecs must not allocate after make_codec, corrupt input included.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "coblk/compress/codec.h"
#include "coblk/compress/zstd_codec.h"
#include "test/fuzz/check.h"
#include "test/fuzz/guarded_buffer.h"

using coblk::compress::Codec;
using coblk::compress::page_size;
using coblk::fuzz::GuardedBuffer;

#define COBLK_FUZZ_STRINGIFY2(x) #x
#define COBLK_FUZZ_STRINGIFY(x) COBLK_FUZZ_STRINGIFY2(x)

namespace {

constexpr std::string_view kAlgorithm = COBLK_FUZZ_STRINGIFY(COBLK_FUZZ_ALGORITHM);

struct Variant {
  const char* spec;
  bool dictionary;
};
constexpr std::array<Variant, 3> kLz4{{{"lz4", false}, {"lz4:8", false}, {"lz4:65537", false}}};
constexpr std::array<Variant, 4> kZstd{{{"zstd:1", false}, {"zstd", false}, {"zstd:-5", false}, {"zstd:3", true}}};

// Raw-content dictionary: text the round-trip pages often resemble.
std::vector<std::byte> dictionary() {
  const std::string text =
      "coblk ublk zram page store lz4 zstd /dev/ublkb0 the quick brown fox jumps over the lazy dog "
      "0123456789abcdef {\"dev_id\":0,\"target\":\"zram\",\"size_bytes\":8589934592}";
  std::vector<std::byte> out;
  for (int i = 0; i < 8; ++i) {
    for (const char c : text) out.push_back(static_cast<std::byte>(c));
  }
  return out;
}

struct Codecs {
  std::vector<std::unique_ptr<Codec>> all;
  Codecs() {
    const auto make = [&](const Variant& v) {
      const auto spec = coblk::compress::parse_codec_spec(v.spec);
      if (!spec) coblk::fuzz::fail(__FILE__, __LINE__, spec.error().message());
      const auto dict = v.dictionary ? dictionary() : std::vector<std::byte>{};
      auto codec = coblk::compress::make_codec(spec.value(), dict);
      if (!codec) coblk::fuzz::fail(__FILE__, __LINE__, codec.error().message());
      all.push_back(std::move(codec).value());
    };
    if (kAlgorithm == "lz4") {
      for (const auto& v : kLz4) make(v);
    } else {
      for (const auto& v : kZstd) make(v);
    }
  }
};

Codec& codec_for(uint8_t selector) {
  static Codecs codecs;
  return *codecs.all[selector % codecs.all.size()];
}

// The buffers every input reuses: a page and a source/destination area,
// each against a guard page.
const GuardedBuffer& page_buffer() {
  static const GuardedBuffer b(page_size);
  return b;
}
const GuardedBuffer& io_buffer() {
  static const GuardedBuffer b(64 * 1024);
  return b;
}

std::span<std::byte, page_size> guarded_page() {
  return std::span<std::byte, page_size>(page_buffer().tail(page_size));
}

std::string name(const Codec& c) { return c.spec().name(); }

// Decompresses `src` (copied against the guard page) into the guarded page.
bool decompress_guarded(Codec& codec, std::span<const std::byte> src) {
  const auto in = io_buffer().tail(src.size());
  std::copy(src.begin(), src.end(), in.begin());
  const auto page = guarded_page();
  std::fill(page.begin(), page.end(), std::byte{0xa5});
  return codec.decompress(in, page);
}

void check_round_trip(Codec& codec, const std::array<std::byte, page_size>& page) {
  const size_t bound = coblk::compress::max_compressed_size(codec.spec());
  std::vector<std::byte> compressed(bound);
  const size_t n = codec.compress(page, compressed);
  COBLK_FUZZ_CHECK(n > 0 && n <= bound, name(codec) + ": compress into max_compressed_size returned " +
                                            std::to_string(n) + " of " + std::to_string(bound));
  COBLK_FUZZ_CHECK(decompress_guarded(codec, std::span(compressed.data(), n)),
                   name(codec) + ": its own output does not decompress");
  const auto out = guarded_page();
  COBLK_FUZZ_CHECK(std::equal(out.begin(), out.end(), page.begin()), name(codec) + ": round trip changed the page");
}

void fill_page(FuzzedDataProvider& in, std::array<std::byte, page_size>& page) {
  const uint8_t style = in.ConsumeIntegral<uint8_t>() & 3;
  const std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(page_size);
  std::fill(page.begin(), page.end(), std::byte{0});
  switch (style) {
    case 0:  // the bytes, then zeros
      std::transform(bytes.begin(), bytes.end(), page.begin(), [](uint8_t b) { return std::byte{b}; });
      break;
    case 1:  // the bytes, repeated
      for (size_t i = 0; !bytes.empty() && i < page_size; ++i) page[i] = std::byte{bytes[i % bytes.size()]};
      break;
    case 2: {  // runs: (length, byte) pairs
      size_t at = 0;
      for (size_t i = 0; i + 1 < bytes.size() && at < page_size; i += 2) {
        const size_t run = std::min<size_t>(size_t{bytes[i]} * 16 + 1, page_size - at);
        std::fill_n(page.begin() + static_cast<std::ptrdiff_t>(at), run, std::byte{bytes[i + 1]});
        at += run;
      }
      break;
    }
    default: {  // the bytes, then noise seeded by them
      uint64_t x = 0x9e3779b97f4a7c15u;
      for (const uint8_t b : bytes) x = (x ^ b) * 0x100000001b3u;
      for (size_t i = 0; i < page_size; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        page[i] = i < bytes.size() ? std::byte{bytes[i]} : static_cast<std::byte>(x);
      }
    }
  }
}

void decode_mode(Codec& codec, std::span<const std::byte> src) {
  if (src.size() > 64 * 1024) src = src.first(64 * 1024);
  if (!decompress_guarded(codec, src)) return;
  // Accepted: a full page, which must survive a round trip of its own.
  std::array<std::byte, page_size> page;
  const auto out = guarded_page();
  std::copy(out.begin(), out.end(), page.begin());
  check_round_trip(codec, page);
}

void round_trip_mode(Codec& codec, FuzzedDataProvider& in) {
  const size_t bound = coblk::compress::max_compressed_size(codec.spec());
  const size_t capacity = in.ConsumeIntegralInRange<size_t>(1, bound);
  const uint64_t truncate = in.ConsumeIntegral<uint64_t>();
  std::array<std::pair<uint16_t, uint8_t>, 4> flips{};
  for (auto& f : flips) f = {in.ConsumeIntegral<uint16_t>(), in.ConsumeIntegral<uint8_t>()};
  std::array<std::byte, page_size> page;
  fill_page(in, page);

  check_round_trip(codec, page);
  std::vector<std::byte> full(bound);
  const size_t n = codec.compress(page, full);

  // Into a smaller destination, itself against a guard page.
  const auto dst = io_buffer().tail(capacity);
  const size_t m = codec.compress(page, dst);
  COBLK_FUZZ_CHECK(m <= capacity, name(codec) + ": compress returned more than the capacity");
  COBLK_FUZZ_CHECK(m != 0 || capacity < n, name(codec) + ": compress gave up although " + std::to_string(n) +
                                               " bytes fit in " + std::to_string(capacity));
  if (m != 0) {
    const std::vector<std::byte> tight(dst.begin(), dst.begin() + static_cast<std::ptrdiff_t>(m));
    COBLK_FUZZ_CHECK(decompress_guarded(codec, tight), name(codec) + ": a tight compression does not decompress");
    const auto out = guarded_page();
    COBLK_FUZZ_CHECK(std::equal(out.begin(), out.end(), page.begin()), name(codec) + ": tight round trip differs");
  }

  // Corrupted: truncated (or not), some bytes flipped.
  std::vector<std::byte> bad(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
  bad.resize(std::max<size_t>(1, n - truncate % (n + 1)));  // drop 0..n bytes, keep at least one
  for (const auto& [at, mask] : flips) bad[at % bad.size()] ^= std::byte{mask};
  (void)decompress_guarded(codec, bad);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Codec& codec = codec_for(static_cast<uint8_t>(data[0] >> 1));
  const std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  if ((data[0] & 1) == 0) {
    decode_mode(codec, rest);
  } else {
    FuzzedDataProvider in(data + 1, size - 1);
    round_trip_mode(codec, in);
  }
  COBLK_FUZZ_CHECK(coblk::compress::detail::zstd_allocations_after_setup(codec) == 0,
                   name(codec) + ": allocated after make_codec");
  return 0;
}
