// bench_codec: compress/ against the plain library calls it replaces.
//
//   bench_codec [--rounds N] [--pages N] [--quick] [--only NAME_PART]
//
// Prints one JSON line per result. Throughputs are of uncompressed page
// bytes on one core (the benchmark is single-threaded); "compression_*" is
// input bytes / stored bytes, a page that does not fit in one page counted
// as stored raw. "ratio" is the median of per-round ratios, > 1 when ours is
// better (ours/baseline for GB/s, baseline/ours for ns/page); "spread" is
// half the range of the per-round ratios (perf/ab_report.h).

#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "coblk/compress/codec.h"
#include "coblk/compress/entropy.h"
#include "coblk/compress/same_fill.h"
#include "perf/compress/ab_measure.h"
#include "perf/compress/corpus.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace compress;         // NOLINT(google-build-using-namespace): a program file, not a library
using namespace compress::bench;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

struct Options {
  std::string only;  // run only the results whose name contains this
  int rounds = 9;
  std::size_t pages = 1024;
  bool quick = false;
};

const Options* running_options = nullptr;

bool wanted(const std::string& bench) { return bench.find(running_options->only) != std::string::npos; }

double gigabytes_per_second(const Corpus& corpus, double seconds) {
  return static_cast<double>(corpus.bytes()) / seconds / 1e9;
}

std::string number(const char* key, double value) {
  char text[64];
  std::snprintf(text, sizeof text, ",\"%s\":%.4g", key, value);
  return text;
}

// The codec for a spec the benchmark knows to be valid; exits on failure.
std::unique_ptr<Codec> codec_for(const CodecSpec& spec) {
  auto codec = make_codec(spec);
  if (!codec) {
    std::fprintf(stderr, "bench_codec: %s\n", codec.error().message().c_str());
    std::exit(1);
  }
  return std::move(codec).value();
}

// Stored size of a page compressed to `size` bytes (0 = did not fit).
std::size_t stored(std::size_t size) { return size == 0 || size >= page_size ? page_size : size; }

double compression_of(const Corpus& corpus, std::size_t stored_bytes) {
  return static_cast<double>(corpus.bytes()) / static_cast<double>(stored_bytes);
}

std::vector<std::byte> dst_buffer(std::size_t size = page_size) { return std::vector<std::byte>(size); }

// ---- LZ4 ----------------------------------------------------------------

void bench_lz4_compress(const Corpus& corpus, int acceleration, const Options& options) {
  const std::string name =
      acceleration == 1 ? "lz4_compress_vs_LZ4_compress_default/" + corpus.name
                        : "lz4:" + std::to_string(acceleration) + "_compress_vs_LZ4_compress_fast/" + corpus.name;
  if (!wanted(name)) return;
  auto codec = codec_for(CodecSpec{Algorithm::lz4, acceleration});
  auto dst = dst_buffer();
  std::size_t ours_bytes = 0, baseline_bytes = 0;
  auto ours = [&] {
    std::size_t total = 0;
    for (const Page& page : corpus.pages) total += stored(codec->compress(page, dst));
    ours_bytes = total;
    return total;
  };
  auto baseline = [&] {
    std::size_t total = 0;
    for (const Page& page : corpus.pages) {
      const auto* src = reinterpret_cast<const char*>(page.data());
      auto* out = reinterpret_cast<char*>(dst.data());
      const int size = acceleration == 1 ? LZ4_compress_default(src, out, int{page_size}, int{page_size})
                                         : LZ4_compress_fast(src, out, int{page_size}, int{page_size}, acceleration);
      total += stored(static_cast<std::size_t>(size));
    }
    baseline_bytes = total;
    return total;
  };
  const AbResult result =
      measure_ab(ours, baseline, options.rounds, [&](double s) { return gigabytes_per_second(corpus, s); });
  print_result(name, result, "GB/s",
               number("compression_ours", compression_of(corpus, ours_bytes)) +
                   number("compression_baseline", compression_of(corpus, baseline_bytes)));
}

void bench_lz4_decompress(const Corpus& corpus, const Options& options) {
  if (!wanted("lz4_decompress_vs_LZ4_decompress_safe/" + corpus.name)) return;
  auto codec = codec_for(CodecSpec{Algorithm::lz4, 1});
  // Only pages that compressed: the others are stored raw and never decoded.
  std::vector<std::vector<std::byte>> compressed;
  for (const Page& page : corpus.pages) {
    auto dst = dst_buffer();
    dst.resize(codec->compress(page, dst));
    if (!dst.empty()) compressed.push_back(std::move(dst));
  }
  if (compressed.empty()) return;
  Page out;
  auto ours = [&] {
    std::size_t ok = 0;
    for (const auto& src : compressed) ok += codec->decompress(src, out);
    return ok;
  };
  auto baseline = [&] {
    std::size_t ok = 0;
    for (const auto& src : compressed)
      ok += LZ4_decompress_safe(reinterpret_cast<const char*>(src.data()), reinterpret_cast<char*>(out.data()),
                                static_cast<int>(src.size()), int{page_size}) == int{page_size};
    return ok;
  };
  const double bytes = static_cast<double>(compressed.size() * page_size);
  print_result("lz4_decompress_vs_LZ4_decompress_safe/" + corpus.name,
               measure_ab(ours, baseline, options.rounds, [&](double s) { return bytes / s / 1e9; }), "GB/s");
}

// ---- ZSTD ---------------------------------------------------------------

void bench_zstd_compress(const Corpus& corpus, int level, const Options& options) {
  if (!wanted("zstd:" + std::to_string(level) + "_compress_vs_ZSTD_compressCCtx/" + corpus.name)) return;
  auto codec = codec_for(CodecSpec{Algorithm::zstd, level});
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  auto dst = dst_buffer();
  std::size_t ours_bytes = 0, baseline_bytes = 0;
  auto ours = [&] {
    std::size_t total = 0;
    for (const Page& page : corpus.pages) total += stored(codec->compress(page, dst));
    ours_bytes = total;
    return total;
  };
  // The usual way: a reused CCtx, the level passed per call, standard frame.
  auto baseline = [&] {
    std::size_t total = 0;
    for (const Page& page : corpus.pages) {
      const std::size_t size = ZSTD_compressCCtx(cctx, dst.data(), dst.size(), page.data(), page_size, level);
      total += stored(ZSTD_isError(size) ? 0 : size);
    }
    baseline_bytes = total;
    return total;
  };
  const AbResult result =
      measure_ab(ours, baseline, options.rounds, [&](double s) { return gigabytes_per_second(corpus, s); });
  ZSTD_freeCCtx(cctx);
  print_result(
      "zstd:" + std::to_string(level) + "_compress_vs_ZSTD_compressCCtx/" + corpus.name, result, "GB/s",
      number("compression_ours", compression_of(corpus, ours_bytes)) +
          number("compression_baseline", compression_of(corpus, baseline_bytes)) +
          number("bytes_saved_per_page", (static_cast<double>(baseline_bytes) - static_cast<double>(ours_bytes)) /
                                             static_cast<double>(corpus.pages.size())));
}

void bench_zstd_decompress(const Corpus& corpus, int level, const Options& options) {
  if (!wanted("zstd:" + std::to_string(level) + "_decompress_vs_ZSTD_decompressDCtx/" + corpus.name)) return;
  auto codec = codec_for(CodecSpec{Algorithm::zstd, level});
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  std::vector<std::vector<std::byte>> ours_frames, standard_frames;
  for (const Page& page : corpus.pages) {
    auto dst = dst_buffer();
    dst.resize(codec->compress(page, dst));
    if (dst.empty()) continue;
    ours_frames.push_back(std::move(dst));
    std::vector<std::byte> standard(ZSTD_compressBound(page_size));
    standard.resize(ZSTD_compressCCtx(cctx, standard.data(), standard.size(), page.data(), page_size, level));
    standard_frames.push_back(std::move(standard));
  }
  if (!ours_frames.empty()) {
    Page out;
    auto ours = [&] {
      std::size_t ok = 0;
      for (const auto& src : ours_frames) ok += codec->decompress(src, out);
      return ok;
    };
    auto baseline = [&] {
      std::size_t ok = 0;
      for (const auto& src : standard_frames)
        ok += ZSTD_decompressDCtx(dctx, out.data(), page_size, src.data(), src.size()) == page_size;
      return ok;
    };
    const double bytes = static_cast<double>(ours_frames.size() * page_size);
    print_result("zstd:" + std::to_string(level) + "_decompress_vs_ZSTD_decompressDCtx/" + corpus.name,
                 measure_ab(ours, baseline, options.rounds, [&](double s) { return bytes / s / 1e9; }), "GB/s");
  }
  ZSTD_freeDCtx(dctx);
  ZSTD_freeCCtx(cctx);
}

// ---- same fill and entropy ----------------------------------------------

// zram's approach: compare every word with the first, one at a time.
bool same_filled_word_loop(const Page& page, std::uint64_t& fill) {
  std::uint64_t first, word;
  std::memcpy(&first, page.data(), 8);
  for (std::size_t offset = 8; offset < page_size; offset += 8) {
    std::memcpy(&word, page.data() + offset, 8);
    if (word != first) return false;
  }
  fill = first;
  return true;
}

using SameFillPath = bool (*)(std::span<const std::byte, page_size>, std::uint64_t&) noexcept;

void bench_same_fill(const Corpus& corpus, const char* path_name, SameFillPath path, const Options& options) {
  if (!wanted(std::string("same_fill_") + path_name + "_vs_word_loop/" + corpus.name)) return;
  auto ours = [&] {
    std::size_t same = 0;
    std::uint64_t fill = 0;
    for (const Page& page : corpus.pages) same += path(page, fill);
    return same + fill;
  };
  auto baseline = [&] {
    std::size_t same = 0;
    std::uint64_t fill = 0;
    for (const Page& page : corpus.pages) same += same_filled_word_loop(page, fill);
    return same + fill;
  };
  const double pages = static_cast<double>(corpus.pages.size());
  print_result(std::string("same_fill_") + path_name + "_vs_word_loop/" + corpus.name,
               measure_ab(
                   ours, baseline, options.rounds, [&](double s) { return s / pages * 1e9; }, perf::Better::lower),
               "ns/page");
}

// The straightforward estimate: every byte of the page, log2 per bin.
double full_page_entropy(const Page& page) {
  std::uint32_t counts[256] = {};
  for (const std::byte b : page) ++counts[static_cast<unsigned char>(b)];
  double entropy = 0;
  for (const std::uint32_t c : counts) {
    if (c == 0) continue;
    const double p = static_cast<double>(c) / page_size;
    entropy -= p * std::log2(p);
  }
  return entropy;
}

void bench_entropy(const Corpus& corpus, const Options& options) {
  if (!wanted("entropy_sampled_vs_full_page/" + corpus.name)) return;
  auto ours = [&] {
    double total = 0;
    for (const Page& page : corpus.pages) total += estimate_entropy(page);
    return static_cast<std::uint64_t>(total);
  };
  auto baseline = [&] {
    double total = 0;
    for (const Page& page : corpus.pages) total += full_page_entropy(page);
    return static_cast<std::uint64_t>(total);
  };
  const double pages = static_cast<double>(corpus.pages.size());
  double largest_error = 0;
  for (const Page& page : corpus.pages)
    largest_error = std::max(largest_error, std::abs(estimate_entropy(page) - full_page_entropy(page)));
  print_result("entropy_sampled_vs_full_page/" + corpus.name,
               measure_ab(
                   ours, baseline, options.rounds, [&](double s) { return s / pages * 1e9; }, perf::Better::lower),
               "ns/page", number("largest_difference_bits", largest_error));
}

// For each threshold: of the pages whose estimate is above it (those
// storage would store raw without trying), how many LZ4 would in fact have
// compressed to at most 3/4 of a page, and how many incompressible pages
// it catches. No timing: these are counts.
void calibrate_entropy_threshold(const std::vector<const Corpus*>& corpora) {
  if (!wanted("entropy_threshold")) return;
  auto codec = codec_for(CodecSpec{Algorithm::lz4, 1});
  auto dst = dst_buffer();
  struct Sample {
    double entropy;
    bool compressible;
  };
  std::vector<Sample> samples;
  for (const Corpus* corpus : corpora)
    for (const Page& page : corpus->pages) {
      const std::size_t size = codec->compress(page, dst);
      samples.push_back({estimate_entropy(page), size != 0 && size <= page_size * 3 / 4});
    }
  std::size_t incompressible = 0;
  for (const Sample& s : samples) incompressible += !s.compressible;
  for (const double threshold : {6.0, 6.5, 7.0, 7.2, 7.4, 7.5, 7.6, 7.7}) {
    std::size_t above = 0, compressible_above = 0, incompressible_above = 0;
    for (const Sample& s : samples) {
      if (s.entropy <= threshold) continue;
      ++above;
      compressible_above += s.compressible;
      incompressible_above += !s.compressible;
    }
    std::printf(
        "{\"bench\":\"entropy_threshold\",\"threshold\":%.1f,\"pages\":%zu,\"pages_above\":%zu,"
        "\"compressible_above\":%zu,\"incompressible\":%zu,\"incompressible_above\":%zu}\n",
        threshold, samples.size(), above, compressible_above, incompressible, incompressible_above);
  }
  std::fflush(stdout);
}

// Entropy routing (storage's PageStoreConfig::entropy_routing): for pages
// in each band of sampled entropy, what the strong codec (zstd:3) saves
// over the fast one (lz4) and what it costs in time. The band where the
// saving becomes worth its time is the default low threshold; pages above
// incompressible_entropy are stored raw anyway.
void calibrate_entropy_routing(const std::vector<const Corpus*>& corpora) {
  if (!wanted("entropy_routing")) return;
  auto fast = codec_for(CodecSpec{Algorithm::lz4, 1});
  auto strong = codec_for(CodecSpec{Algorithm::zstd, 3});
  auto dst = dst_buffer();
  struct Band {
    std::size_t pages = 0;
    double fast_bytes = 0, strong_bytes = 0, fast_ns = 0, strong_ns = 0;
  };
  std::vector<Band> bands(16);  // half a bit per byte each: [0, 0.5), ... [7.5, 8]
  for (const Corpus* corpus : corpora)
    for (const Page& page : corpus->pages) {
      std::uint64_t fill = 0;
      if (is_same_filled(page, fill)) continue;  // metadata only: no codec runs
      const double e = estimate_entropy(page);
      Band& b = bands[std::min<std::size_t>(15, static_cast<std::size_t>(e * 2))];
      auto t0 = std::chrono::steady_clock::now();
      const std::size_t f = fast->compress(page, dst);
      auto t1 = std::chrono::steady_clock::now();
      const std::size_t z = strong->compress(page, dst);
      auto t2 = std::chrono::steady_clock::now();
      ++b.pages;
      b.fast_bytes += static_cast<double>(f == 0 ? page_size : f);
      b.strong_bytes += static_cast<double>(z == 0 ? page_size : z);
      b.fast_ns += std::chrono::duration<double, std::nano>(t1 - t0).count();
      b.strong_ns += std::chrono::duration<double, std::nano>(t2 - t1).count();
    }
  for (std::size_t i = 0; i < bands.size(); ++i) {
    const Band& b = bands[i];
    if (b.pages == 0) continue;
    const auto n = static_cast<double>(b.pages);
    std::printf(
        "{\"bench\":\"entropy_routing\",\"band\":[%.1f,%.1f],\"pages\":%zu,\"lz4_bytes_per_page\":%.0f,"
        "\"zstd3_bytes_per_page\":%.0f,\"zstd3_saves\":%.3f,\"lz4_ns\":%.0f,\"zstd3_ns\":%.0f}\n",
        static_cast<double>(i) / 2, static_cast<double>(i + 1) / 2, b.pages, b.fast_bytes / n, b.strong_bytes / n,
        1 - b.strong_bytes / b.fast_bytes, b.fast_ns / n, b.strong_ns / n);
  }
  std::fflush(stdout);
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      options.quick = true;
      options.rounds = 5;
      options.pages = 256;
    } else if (arg == "--only" && i + 1 < argc) {
      options.only = argv[++i];
    } else if ((arg == "--rounds" || arg == "--pages") && i + 1 < argc) {
      const long value = std::strtol(argv[++i], nullptr, 10);
      if (value < 1) {
        std::fprintf(stderr, "bench_codec: %s needs a positive number\n", arg.c_str());
        std::exit(2);
      }
      if (arg == "--rounds")
        options.rounds = static_cast<int>(value);
      else
        options.pages = static_cast<std::size_t>(value);
    } else {
      std::fprintf(stderr,
                   "bench_codec: unknown argument '%s' (usage: bench_codec [--rounds N] [--pages N] [--quick] [--only "
                   "NAME_PART])\n",
                   arg.c_str());
      std::exit(2);
    }
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  running_options = &options;
  const std::size_t small = std::max<std::size_t>(options.pages / 4, 16);
  const std::vector<Corpus> corpora = {
      binaries_corpus(options.pages), text_corpus(options.pages),
      compressed_files_corpus(small), zeros_corpus(small),
      random_corpus(small),           half_compressible_corpus(small),
  };
  for (const Corpus& corpus : corpora)
    std::printf("{\"bench\":\"corpus\",\"name\":\"%s\",\"pages\":%zu}\n", corpus.name.c_str(), corpus.pages.size());
  std::printf("{\"bench\":\"config\",\"same_fill_path\":\"%s\",\"rounds\":%d}\n", detail::same_fill_path(),
              options.rounds);
  std::fflush(stdout);

  const Corpus& binaries = corpora[0];
  const Corpus& text = corpora[1];
  for (const Corpus& corpus : corpora) {
    if (corpus.pages.empty()) continue;
    bench_lz4_compress(corpus, 1, options);
    bench_lz4_decompress(corpus, options);
  }
  for (const int acceleration : {2, 4, 8, 16, 64})
    for (const Corpus* corpus : {&binaries, &text}) bench_lz4_compress(*corpus, acceleration, options);

  const std::vector<int> zstd_levels = options.quick ? std::vector<int>{-5, 1, 3} : std::vector<int>{-5, -1, 1, 3, 9};
  for (const Corpus& corpus : corpora) {
    if (corpus.pages.empty()) continue;
    for (const int level : zstd_levels)
      if (level <= 3 || &corpus == &binaries || &corpus == &text) bench_zstd_compress(corpus, level, options);
    bench_zstd_decompress(corpus, 3, options);
  }

  const Corpus& zeros = corpora[3];
  for (const Corpus* corpus : {&zeros, &binaries}) {
    bench_same_fill(*corpus, "scalar", &detail::is_same_filled_scalar, options);
    if (detail::cpu_has_avx2()) bench_same_fill(*corpus, "avx2", &detail::is_same_filled_avx2, options);
    if (detail::cpu_has_avx512()) bench_same_fill(*corpus, "avx512", &detail::is_same_filled_avx512, options);
  }
  for (const Corpus* corpus : {&binaries, &text}) bench_entropy(*corpus, options);
  calibrate_entropy_threshold({&binaries, &text, &corpora[2], &corpora[4], &corpora[5]});
  calibrate_entropy_routing({&binaries, &text, &corpora[2], &corpora[4], &corpora[5]});
  return 0;
}
