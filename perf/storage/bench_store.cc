// bench_store: PageStore against the raw codec loop on the same pages, and
// its memory efficiency against the kernel's zram.
//
//   bench_store [--quick] [--pages N] [--rounds N] [--only NAME_PART]
//
// One JSON line per result, single core (core 0):
//  - store_write_<codec>/<corpus>: PageStore::write of every page (same-fill
//    check, compression, allocation, copy, entry swap, freeing the old
//    object) against a loop that only compresses every page; GB/s of pages.
//  - store_read_<codec>/<corpus>: PageStore::read of every page against a
//    loop that decompresses every compressed page (memcpy for raw ones).
//  - memory_efficiency_<codec>/<corpus>: orig_data_size / mem_used_total of a
//    fresh store holding the corpus, against the kernel's zram (lz4) holding
//    the same corpus (/dev/zram0, when usable; else a "skipped" line).
// "ratio" is ours/baseline (median of per-round ratios for speeds);
// "spread" is half the range of the per-round ratios (perf/ab_report.h).

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "coblk/compress/codec.h"
#include "coblk/storage/page_store.h"
#include "perf/compress/ab_measure.h"
#include "perf/storage/kernel_zram.h"
#include "perf/storage/store_corpus.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace storage;         // NOLINT(google-build-using-namespace): a program file, not a library
using namespace storage::bench;  // NOLINT(google-build-using-namespace): a program file, not a library
using compress::bench::AbResult;
using compress::bench::measure_ab;
using compress::bench::print_result;

namespace {

constexpr std::size_t ps = compress::page_size;

struct Options {
  std::size_t pages = 8192;
  int rounds = 9;
  std::string only;
};

std::string number(const char* key, double value) {
  char text[80];
  std::snprintf(text, sizeof text, ",\"%s\":%.4g", key, value);
  return text;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// The codec for a spec the benchmark knows to be valid; exits on failure.
std::unique_ptr<compress::Codec> codec_for(const compress::CodecSpec& spec) {
  auto codec = compress::make_codec(spec);
  if (!codec) {
    std::fprintf(stderr, "bench_store: %s\n", codec.error().message().c_str());
    std::exit(1);
  }
  return std::move(codec).value();
}

// A one-core store for the corpus; exits on failure.
std::unique_ptr<PageStore> store_for(const Corpus& corpus, const compress::CodecSpec& codec) {
  PageStoreConfig c;
  c.size_bytes = corpus.bytes();
  c.codec = codec;
  c.cores = 1;
  auto store = PageStore::create(c);
  if (!store) {
    std::fprintf(stderr, "bench_store: %s\n", store.error().message().c_str());
    std::exit(1);
  }
  return std::move(store).value();
}

void bench_write(const Corpus& corpus, const compress::CodecSpec& spec, const Options& options) {
  const std::string name = "store_write_" + spec.name() + "/" + corpus.name;
  if (name.find(options.only) == std::string::npos) return;
  const auto owned_store = store_for(corpus, spec);
  PageStore& store = *owned_store;
  auto codec = codec_for(spec);
  std::vector<std::byte> dst(ps);
  auto ours = [&] {
    std::uint64_t failures = 0;
    for (std::size_t i = 0; i < corpus.pages.size(); ++i) {
      failures += store.write(0, i * ps, corpus.pages[i]) != 0;
    }
    return failures;
  };
  auto baseline = [&] {
    std::uint64_t total = 0;
    for (const Page& page : corpus.pages) {
      total += codec->compress(page, dst);
    }
    return total;
  };
  const AbResult r = measure_ab(ours, baseline, options.rounds,
                                [&](double s) { return static_cast<double>(corpus.bytes()) / s / 1e9; });
  print_result(name, r, "GB/s", number("pages", static_cast<double>(corpus.pages.size())));
}

void bench_read(const Corpus& corpus, const compress::CodecSpec& spec, const Options& options) {
  const std::string name = "store_read_" + spec.name() + "/" + corpus.name;
  if (name.find(options.only) == std::string::npos) return;
  const auto owned_store = store_for(corpus, spec);
  PageStore& store = *owned_store;
  for (std::size_t i = 0; i < corpus.pages.size(); ++i) {
    if (store.write(0, i * ps, corpus.pages[i]) != 0) {
      std::fprintf(stderr, "bench_store: write failed\n");
      std::exit(1);
    }
  }
  auto codec = codec_for(spec);
  // The baseline's stored form: compressed if it fits below the store's
  // raw threshold, else raw, as the store decides.
  std::vector<std::vector<std::byte>> stored;
  for (const Page& page : corpus.pages) {
    std::vector<std::byte> dst(ps);
    const std::size_t n = codec->compress(page, std::span<std::byte>(dst.data(), 3631));
    if (n == 0) {
      std::memcpy(dst.data(), page.data(), ps);
    } else {
      dst.resize(n);
    }
    stored.push_back(std::move(dst));
  }
  Page out;
  auto ours = [&] {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < corpus.pages.size(); ++i) {
      sum += store.read(0, i * ps, out) == 0;
    }
    return sum;
  };
  auto baseline = [&] {
    std::uint64_t sum = 0;
    for (const auto& s : stored) {
      if (s.size() == ps) {
        std::memcpy(out.data(), s.data(), ps);
        ++sum;
      } else {
        sum += codec->decompress(s, out);
      }
    }
    return sum;
  };
  const AbResult r = measure_ab(ours, baseline, options.rounds,
                                [&](double s) { return static_cast<double>(corpus.bytes()) / s / 1e9; });
  print_result(name, r, "GB/s");
}

void bench_memory(const Corpus& corpus, const compress::CodecSpec& spec, const KernelZramResult& kernel,
                  const Options& options) {
  const std::string name = "memory_efficiency_" + spec.name() + "/" + corpus.name;
  if (name.find(options.only) == std::string::npos) return;
  const auto owned_store = store_for(corpus, spec);
  PageStore& store = *owned_store;
  for (std::size_t i = 0; i < corpus.pages.size(); ++i) {
    if (store.write(0, i * ps, corpus.pages[i]) != 0) {
      std::fprintf(stderr, "bench_store: write failed\n");
      std::exit(1);
    }
  }
  const MmStat m = store.mm_stat();
  const AllocatorStats a = store.allocator_stats();
  // orig/mem_used; a corpus of same-filled pages uses no memory at all, so
  // its efficiency is reported as orig bytes per used byte + 1 page.
  auto efficiency = [](double orig, double used) { return orig / std::max(used, double(ps)); };
  const double ours = efficiency(double(m.orig_data_size), double(m.mem_used_total));
  std::string line = "{\"bench\":\"" + name + "\",\"ours\":" + std::to_string(ours);
  if (kernel.measured) {
    const double base = efficiency(double(kernel.orig_data_size), double(kernel.mem_used_total));
    line += ",\"baseline\":" + std::to_string(base) + ",\"baseline_algorithm\":\"lz4\"" +
            ",\"unit\":\"orig_data_size/mem_used_total\",\"ratio\":" + std::to_string(ours / base) + ",\"spread\":0" +
            number("kernel_mem_used_total", double(kernel.mem_used_total)) +
            number("kernel_compr_data_size", double(kernel.compr_data_size)) +
            number("kernel_huge_pages", double(kernel.huge_pages)) +
            number("kernel_same_pages", double(kernel.same_pages));
  } else {
    line += ",\"unit\":\"orig_data_size/mem_used_total\",\"baseline_skipped\":\"" +
            json_escape(kernel.skipped_because) + "\"";
  }
  line += number("orig_data_size", double(m.orig_data_size)) + number("compr_data_size", double(m.compr_data_size)) +
          number("mem_used_total", double(m.mem_used_total)) + number("same_pages", double(m.same_pages)) +
          number("huge_pages", double(m.huge_pages)) + number("object_bytes", double(a.object_bytes)) +
          number("span_pages", double(a.span_pages));
  if (m.mem_used_total != 0) {
    // Fraction of held memory not holding compressed bytes, and the part
    // of it that is class rounding.
    line += number("fragmentation", 1.0 - double(m.compr_data_size) / double(m.mem_used_total)) +
            number("class_rounding", double(a.object_bytes - m.compr_data_size) / double(m.mem_used_total));
  }
  std::printf("%s}\n", line.c_str());
  std::fflush(stdout);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_store: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--quick") {
      // perf/run's smoke convention: about a second of work.
      o.pages = 512;
      o.rounds = 3;
    } else if (arg == "--pages") {
      o.pages = std::strtoull(value().c_str(), nullptr, 10);
    } else if (arg == "--rounds") {
      o.rounds = std::atoi(value().c_str());
    } else if (arg == "--only") {
      o.only = value();
    } else {
      std::fprintf(stderr, "bench_store: unknown argument %s (use --quick, --pages N, --rounds N, --only NAME)\n",
                   arg.c_str());
      std::exit(2);
    }
  }
  if (o.pages == 0 || o.rounds <= 0) {
    std::fprintf(stderr, "bench_store: --pages and --rounds must be positive\n");
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  std::vector<Corpus> corpora;
  corpora.push_back(process_memory_corpus(options.pages));
  corpora.push_back(binaries_corpus(options.pages));
  corpora.push_back(zeros_corpus(options.pages));
  corpora.push_back(random_corpus(options.pages));
  corpora.push_back(half_compressible_corpus(options.pages));
  const compress::CodecSpec codecs[] = {{compress::Algorithm::lz4, 1}, {compress::Algorithm::zstd, 0}};
  for (const Corpus& corpus : corpora) {
    if (corpus.pages.empty()) {
      std::printf("{\"bench\":\"corpus/%s\",\"skipped\":\"no pages could be read\"}\n", corpus.name.c_str());
      continue;
    }
    KernelZramResult kernel;
    if (("memory_efficiency/" + corpus.name).find(options.only) != std::string::npos ||
        options.only.find("memory_efficiency") != std::string::npos) {
      kernel = measure_kernel_zram(corpus, "lz4");
    }
    if (!kernel.measured && !kernel.skipped_because.empty()) {
      std::printf("{\"bench\":\"kernel_zram_baseline/%s\",\"skipped\":\"%s\"}\n", corpus.name.c_str(),
                  json_escape(kernel.skipped_because).c_str());
    }
    for (const auto& spec : codecs) {
      bench_memory(corpus, spec, kernel, options);
    }
    for (const auto& spec : codecs) {
      bench_write(corpus, spec, options);
      bench_read(corpus, spec, options);
    }
  }
  return 0;
}
