// bench_recovery: a PageStore in shared memory (memfds) against one in
// private anonymous memory, and how long PageStore::attach takes to recover
// a store that a dead server left in its memfds.
//
//   bench_recovery [--quick] [--rounds N] [--pages N] [--gib LIST] [--only NAME_PART]
//
// One JSON line per result (perf/ab_report.h: "ratio" > 1 means ours is
// better, "spread" is half the range of the per-round ratios), after a
// header line with the load averages, the date and the corpus. Every line
// also carries loadavg_1m at the time it was printed. Pages come from
// store_corpus's process memory corpus (what zram holds as swap), --pages
// of them (default 8192, 32 MiB).
//  - shared_vs_anonymous_write_<codec>: ours = a store with
//    memory=shared, baseline = the same config with memory=anonymous; one
//    core (0), lz4 or zstd. Each round makes a fresh store of each kind
//    (rotating which goes first; creation is not timed) and times writing
//    every corpus page once, so the page faults of a fresh store are in
//    the figure. GB/s of pages. Goal: ratio >= 0.97.
//  - shared_vs_anonymous_read_<codec>: the same round then reads every page
//    of the two filled stores, alternately (3 passes each), GB/s.
//  - recovery_time_<GiB>: a shared store (lz4, 2 cores, page p written by
//    core p % 2) of N GiB (default 0.25, 0.5 and 1; --quick: 16 and
//    32 MiB) is filled with corpus pages (repeated over the device); its
//    memory_fds are dup'ed and the store destroyed, which leaves the memfds
//    as a crash would (the destructor only unmaps). Each round then runs,
//    in rotating order:
//      ours: PageStore::attach(config, fds), timed (ms): map, validate
//      every entry, undo journals, rebuild the arenas; afterwards (not
//      timed) a sample of up to 4096 pages must read back as written and
//      the page statistics must equal the dead store's, or the program
//      fails;
//      baseline "full scan": attach again (not timed) and time reading
//      every page of the device once: the least any verification of the
//      recovered data would cost.
//    ratio = scan/attach (> 1: attach is cheaper than one scan);
//    attach_over_scan is its inverse, the median of per-round
//    attach_ms/scan_ms, with its own spread. attach_s_per_gib is the
//    median attach time per GiB of device (goal: under 1 s per GiB).
//  - recovery_time_growth: how attach time grows with the device: the
//    exponent of a least-squares fit attach_ms ~ GiB^k (1 = linear) and
//    ms per GiB at the smallest and largest size. Derived, no baseline.

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coblk/compress/codec.h"
#include "coblk/storage/page_store.h"
#include "perf/ab_report.h"
#include "perf/storage/store_corpus.h"

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace storage;         // NOLINT(google-build-using-namespace): a program file, not a library
using namespace storage::bench;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::size_t ps = compress::page_size;
constexpr std::uint64_t pages_per_gib = (1ull << 30) / ps;
constexpr int read_passes = 3;

struct Options {
  std::size_t pages = 8192;
  int rounds = 11;
  std::vector<double> gib = {0.25, 0.5, 1};
  std::string only;
};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bench_recovery: %s\n", what.c_str());
  std::exit(1);
}

double loadavg_1m() {
  double load[3] = {};
  return getloadavg(load, 3) >= 1 ? load[0] : -1;
}

std::string gib_name(double gib) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", gib);
  return text;
}

// `,"key":N` for a count, exact (json_number rounds to 4 digits).
std::string json_count(const char* key, std::uint64_t value) {
  return std::string(",\"") + key + "\":" + std::to_string(value);
}

// `,"key":true|false`.
std::string json_bool(const char* key, bool value) {
  return std::string(",\"") + key + "\":" + (value ? "true" : "false");
}

std::unique_ptr<PageStore> create_or_exit(const PageStoreConfig& config) {
  auto store = PageStore::create(config);
  if (!store) fail(store.error().message());
  return std::move(store).value();
}

// --- shared against anonymous ------------------------------------------

PageStoreConfig one_core_config(const Corpus& corpus, const compress::CodecSpec& codec, runtime::MemoryKind kind) {
  PageStoreConfig c;
  c.size_bytes = corpus.bytes();
  c.codec = codec;
  c.cores = 1;
  c.memory = kind;
  return c;
}

// Seconds to write every corpus page once into `store`.
double time_writes(PageStore& store, const Corpus& corpus) {
  const double start = perf::now_seconds();
  std::uint64_t failures = 0;
  for (std::size_t i = 0; i < corpus.pages.size(); ++i) {
    failures += store.write(0, i * ps, corpus.pages[i]) != 0;
  }
  const double seconds = perf::now_seconds() - start;
  if (failures != 0) fail("a write failed");
  return seconds;
}

// Seconds per pass of reading every page of `store`, read_passes passes.
double time_reads(PageStore& store, const Corpus& corpus) {
  Page out;
  std::uint64_t ok = 0;
  const double start = perf::now_seconds();
  for (int pass = 0; pass < read_passes; ++pass) {
    for (std::size_t i = 0; i < corpus.pages.size(); ++i) {
      ok += store.read(0, i * ps, out) == 0;
    }
  }
  const double seconds = perf::now_seconds() - start;
  if (ok != read_passes * corpus.pages.size()) fail("a read failed");
  perf::sink = perf::sink + ok;
  return seconds / read_passes;
}

bool same_contents(const MmStat& a, const MmStat& b) {
  return a.orig_data_size == b.orig_data_size && a.compr_data_size == b.compr_data_size &&
         a.same_pages == b.same_pages && a.huge_pages == b.huge_pages;
}

void bench_shared_vs_anonymous(const Corpus& corpus, const compress::CodecSpec& spec, const Options& o) {
  const std::string write_name = "shared_vs_anonymous_write_" + spec.name();
  const std::string read_name = "shared_vs_anonymous_read_" + spec.name();
  const bool want_write = write_name.find(o.only) != std::string::npos;
  const bool want_read = read_name.find(o.only) != std::string::npos;
  if (!want_write && !want_read) return;
  perf::AbSeries writes(write_name, "GB/s", perf::Better::higher);
  perf::AbSeries reads(read_name, "GB/s", perf::Better::higher);
  const auto gbps = [&](double seconds) { return static_cast<double>(corpus.bytes()) / seconds / 1e9; };
  const runtime::MemoryKind kinds[2] = {runtime::MemoryKind::shared, runtime::MemoryKind::anonymous};
  std::uint64_t shared_mem = 0, anonymous_mem = 0;
  for (int round = 0; round < o.rounds; ++round) {
    std::unique_ptr<PageStore> stores[2];  // [0] shared (ours), [1] anonymous (baseline)
    double write_s[2] = {}, read_s[2] = {};
    for (int k = 0; k < 2; ++k) {
      const int side = (k + round) % 2;  // rotate which side goes first
      stores[side] = create_or_exit(one_core_config(corpus, spec, kinds[side]));
      if (stores[side]->memory_kind() != kinds[side]) fail("a store has the wrong kind of memory");
      write_s[side] = time_writes(*stores[side], corpus);
    }
    for (int k = 0; k < 2; ++k) {
      const int side = (k + round) % 2;
      read_s[side] = time_reads(*stores[side], corpus);
    }
    // Both sides must have stored the same thing.
    const MmStat shared = stores[0]->mm_stat(), anonymous = stores[1]->mm_stat();
    if (!same_contents(shared, anonymous)) fail(write_name + ": the shared and anonymous stores hold different data");
    shared_mem = shared.mem_used_total;
    anonymous_mem = anonymous.mem_used_total;
    writes.add(gbps(write_s[0]), gbps(write_s[1]));
    reads.add(gbps(read_s[0]), gbps(read_s[1]));
  }
  // The last round's stores are gone; one more check that the data read
  // back from a shared store is the data written.
  auto check = create_or_exit(one_core_config(corpus, spec, runtime::MemoryKind::shared));
  (void)time_writes(*check, corpus);
  Page out;
  for (std::size_t i = 0; i < corpus.pages.size(); ++i) {
    if (check->read(0, i * ps, out) != 0 || out != corpus.pages[i]) {
      fail(write_name + ": page " + std::to_string(i) + " of a shared store read back wrong");
    }
  }
  const std::string extra =
      json_count("pages", corpus.pages.size()) +
      perf::json_number("mem_used_mib_shared", static_cast<double>(shared_mem) / double(1 << 20)) +
      perf::json_number("mem_used_mib_anonymous", static_cast<double>(anonymous_mem) / double(1 << 20)) +
      perf::json_text("ours_is", "memory=shared (memfd)") + perf::json_text("baseline_is", "memory=anonymous") +
      perf::json_number("goal_ratio", 0.97) + perf::json_number("loadavg_1m", loadavg_1m());
  if (want_write) writes.print(extra + perf::json_text("measures", "write every page of a fresh store, core 0"));
  if (want_read) {
    reads.print(extra + perf::json_text("measures", "read every page of the filled store, core 0") +
                json_count("passes", read_passes));
  }
}

// --- recovery time ------------------------------------------------------

PageStoreConfig recovery_config(std::uint64_t pages) {
  PageStoreConfig c;
  c.size_bytes = pages * ps;
  c.codec = {compress::Algorithm::lz4, 1};
  c.cores = 2;
  c.memory = runtime::MemoryKind::shared;
  return c;
}

// The memfds of a dead store: corpus pages over the whole device, page p
// written by core p % 2. Returns dups of its fds (the caller closes them).
struct DeadStore {
  std::vector<int> fds;
  MmStat stat;
  double fill_seconds = 0;
};

DeadStore fill_and_drop(const PageStoreConfig& config, const Corpus& corpus) {
  std::unique_ptr<PageStore> store = create_or_exit(config);
  const std::uint64_t pages = config.size_bytes / ps;
  const double start = perf::now_seconds();
  for (std::uint64_t p = 0; p < pages; ++p) {
    if (store->write(static_cast<unsigned>(p % 2), p * ps, corpus.pages[p % corpus.pages.size()]) != 0) {
      fail("filling the store: write of page " + std::to_string(p) + " failed");
    }
  }
  DeadStore dead;
  dead.fill_seconds = perf::now_seconds() - start;
  dead.stat = store->mm_stat();
  for (const int fd : store->memory_fds()) {
    const int copy = ::dup(fd);
    if (copy < 0) fail("dup of a memory fd failed");
    dead.fds.push_back(copy);
  }
  store.reset();  // what a crash leaves: the destructor writes nothing, only unmaps
  return dead;
}

std::unique_ptr<PageStore> attach_or_exit(const PageStoreConfig& config, const std::vector<int>& fds) {
  auto store = PageStore::attach(config, fds);
  if (!store) fail("attach failed: " + store.error().message());
  return std::move(store).value();
}

// Fails loudly unless a recovered store holds what the dead one did.
std::uint64_t verify(PageStore& store, const DeadStore& dead, const Corpus& corpus, std::uint64_t pages) {
  if (!same_contents(store.mm_stat(), dead.stat)) {
    fail("the recovered store's page statistics differ from the dead store's");
  }
  const std::uint64_t stride = std::max<std::uint64_t>(1, pages / 4096);
  Page out;
  std::uint64_t checked = 0;
  for (std::uint64_t p = 0; p < pages; p += stride, ++checked) {
    if (store.read(static_cast<unsigned>(p % 2), p * ps, out) != 0 || out != corpus.pages[p % corpus.pages.size()]) {
      fail("page " + std::to_string(p) + " read back wrong after attach");
    }
  }
  return checked;
}

// Milliseconds to read every page of `store` once.
double scan_ms(PageStore& store, std::uint64_t pages) {
  Page out;
  std::uint64_t ok = 0;
  const double start = perf::now_seconds();
  for (std::uint64_t p = 0; p < pages; ++p) {
    ok += store.read(static_cast<unsigned>(p % 2), p * ps, out) == 0;
  }
  const double ms = (perf::now_seconds() - start) * 1e3;
  if (ok != pages) fail("a read of the scan failed");
  perf::sink = perf::sink + ok;
  return ms;
}

struct SizeResult {
  double gib = 0;
  double attach_ms = 0;
};

std::optional<SizeResult> bench_recovery_time(double gib, const Corpus& corpus, const Options& o) {
  const std::string name = "recovery_time_" + gib_name(gib);
  if (name.find(o.only) == std::string::npos) return std::nullopt;
  const std::uint64_t pages = std::max<std::uint64_t>(1, std::llround(gib * double(pages_per_gib)));
  const PageStoreConfig config = recovery_config(pages);
  const DeadStore dead = fill_and_drop(config, corpus);
  perf::AbSeries series(name, "ms", perf::Better::lower);
  std::vector<double> attach, over_scan;
  std::uint64_t verified = 0;
  for (int round = 0; round < o.rounds; ++round) {
    double attach_time = 0, scan_time = 0;
    for (int k = 0; k < 2; ++k) {
      if ((k + round) % 2 == 0) {
        const double start = perf::now_seconds();
        std::unique_ptr<PageStore> store = attach_or_exit(config, dead.fds);
        attach_time = (perf::now_seconds() - start) * 1e3;
        verified = verify(*store, dead, corpus, pages);
      } else {
        std::unique_ptr<PageStore> store = attach_or_exit(config, dead.fds);
        scan_time = scan_ms(*store, pages);
      }
    }
    series.add(attach_time, scan_time);
    attach.push_back(attach_time);
    over_scan.push_back(attach_time / scan_time);
  }
  for (const int fd : dead.fds) ::close(fd);
  const double device_gib = static_cast<double>(pages) / double(pages_per_gib);
  const double attach_s_per_gib = series.ours() / 1e3 / device_gib;
  const auto [lo, hi] = std::minmax_element(over_scan.begin(), over_scan.end());
  const std::string extra =
      perf::json_number("device_gib", device_gib) + json_count("pages", pages) +
      perf::json_number("attach_s_per_gib", attach_s_per_gib) +
      perf::json_number("scan_s_per_gib", series.baseline() / 1e3 / device_gib) +
      perf::json_number("attach_over_scan", perf::median(over_scan)) +
      perf::json_number("attach_over_scan_spread", (*hi - *lo) / 2) +
      perf::json_number("attach_ms_min", *std::min_element(attach.begin(), attach.end())) +
      perf::json_number("attach_ms_max", *std::max_element(attach.begin(), attach.end())) +
      json_bool("under_1s_per_gib", attach_s_per_gib < 1.0) +
      perf::json_number("mem_used_mib", static_cast<double>(dead.stat.mem_used_total) / double(1 << 20)) +
      json_count("same_pages", dead.stat.same_pages) + json_count("huge_pages", dead.stat.huge_pages) +
      perf::json_number("fill_s", dead.fill_seconds) + json_count("pages_verified_per_round", verified) +
      perf::json_text("ours_is", "PageStore::attach, lz4, 2 cores") +
      perf::json_text("baseline_is", "full scan: read every page once") + perf::json_number("loadavg_1m", loadavg_1m());
  series.print(extra);
  return SizeResult{device_gib, series.ours()};
}

// Least-squares exponent k of attach_ms ~ gib^k.
void print_growth(const std::vector<SizeResult>& sizes) {
  if (sizes.size() < 2) return;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const SizeResult& s : sizes) {
    const double x = std::log(s.gib), y = std::log(s.attach_ms);
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const double n = static_cast<double>(sizes.size());
  const double exponent = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  const SizeResult& first = sizes.front();
  const SizeResult& last = sizes.back();
  std::string per_gib;
  for (const SizeResult& s : sizes) {
    per_gib += (per_gib.empty() ? "" : ",") + gib_name(s.gib) + ":" + gib_name(std::round(s.attach_ms / s.gib));
  }
  std::printf("{\"bench\":\"recovery_time_growth\",\"unit\":\"exponent\",\"exponent\":%.3f%s%s%s%s%s}\n", exponent,
              perf::json_number("ms_per_gib_smallest", first.attach_ms / first.gib).c_str(),
              perf::json_number("ms_per_gib_largest", last.attach_ms / last.gib).c_str(),
              perf::json_text("ms_per_gib_by_gib", per_gib).c_str(),
              perf::json_text("fit", "attach_ms ~ GiB^exponent, 1 = linear").c_str(),
              perf::json_number("loadavg_1m", loadavg_1m()).c_str());
  std::fflush(stdout);
}

void print_header(const Corpus& corpus, const Options& o) {
  double load[3] = {-1, -1, -1};
  (void)getloadavg(load, 3);
  char date[32] = "";
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  if (gmtime_r(&now, &utc) != nullptr) std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &utc);
  std::printf("{\"bench\":\"bench_recovery_header\"%s%s%s%s%s%s%s%s}\n",
              perf::json_number("loadavg_1m", load[0]).c_str(), perf::json_number("loadavg_5m", load[1]).c_str(),
              perf::json_number("loadavg_15m", load[2]).c_str(),
              perf::json_number("cpus_online", static_cast<double>(::sysconf(_SC_NPROCESSORS_ONLN))).c_str(),
              perf::json_text("date", date).c_str(), perf::json_text("corpus", corpus.name).c_str(),
              json_count("corpus_pages", corpus.pages.size()).c_str(),
              json_count("rounds", static_cast<std::uint64_t>(o.rounds)).c_str());
  std::fflush(stdout);
}

[[noreturn]] void usage(const char* bad) {
  std::fprintf(stderr,
               "bench_recovery: bad argument '%s'\nusage: bench_recovery [--quick] [--rounds N] [--pages N] "
               "[--gib LIST (comma-separated, e.g. 0.25,0.5,1)] [--only NAME_PART]\n",
               bad);
  std::exit(2);
}

std::vector<double> parse_gib(const char* text) {
  std::vector<double> out;
  std::string s = text;
  for (std::size_t start = 0; start <= s.size();) {
    const std::size_t comma = std::min(s.find(',', start), s.size());
    const std::string item = s.substr(start, comma - start);
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !(v > 0) || v > 64) usage(text);
    out.push_back(v);
    start = comma + 1;
  }
  std::sort(out.begin(), out.end());
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  bool rounds_given = false, pages_given = false, gib_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(argv[i]);
      return argv[++i];
    };
    if (arg == "--quick") {
      o.rounds = rounds_given ? o.rounds : 3;
      o.pages = pages_given ? o.pages : 512;
      if (!gib_given) o.gib = {16.0 / 1024, 32.0 / 1024};  // 16 and 32 MiB
    } else if (arg == "--rounds") {
      o.rounds = std::atoi(value());
      rounds_given = true;
    } else if (arg == "--pages") {
      o.pages = std::strtoull(value(), nullptr, 10);
      pages_given = true;
    } else if (arg == "--gib") {
      o.gib = parse_gib(value());
      gib_given = true;
    } else if (arg == "--only") {
      o.only = value();
    } else {
      usage(argv[i]);
    }
  }
  if (o.pages == 0 || o.rounds < 1 || o.rounds > 1000) usage("--pages and --rounds must be positive");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const Corpus corpus = process_memory_corpus(o.pages);
  if (corpus.pages.empty()) fail("no corpus pages could be read");
  print_header(corpus, o);
  const compress::CodecSpec codecs[] = {{compress::Algorithm::lz4, 1}, {compress::Algorithm::zstd, 0}};
  for (const auto& spec : codecs) bench_shared_vs_anonymous(corpus, spec, o);
  std::vector<SizeResult> sizes;
  for (const double gib : o.gib) {
    if (auto r = bench_recovery_time(gib, corpus, o)) sizes.push_back(*r);
  }
  print_growth(sizes);
  return 0;
}
