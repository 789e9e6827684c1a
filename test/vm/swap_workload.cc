// swap_workload: a program whose memory looks like a real program's, for
// the demo (scripts/demo-guest.sh) that swaps it to coblk's zram device and
// to kernel zram. It fills MIB of anonymous memory with text: log lines
// (timestamps, levels, components, key=value fields), JSON records and prose
// from a word list, which compress about 2x with LZ4 and 3x with ZSTD
// page by page, as text-heavy heaps do; neither zeros nor random bytes. Then it reads every page back and
// checks it against a checksum kept in a separate, small array, so a page
// that came back from swap wrong is reported, never used.
//
// Usage: swap_workload MIB [--hold]
// Prints how long the fill and the read-back took. With --hold it then
// keeps its memory (so its swapped pages stay swapped while someone looks at
// the swap device) until SIGTERM or SIGINT.
// Exit status: 0 when every page came back right, 1 when one did not (or
// memory could not be mapped), 2 on bad arguments.
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t kPage = 4096;

// The largest workload: the guest of the demo has 2 GiB, and a typo (a size
// in KiB) should get a clear refusal rather than an OOM kill.
constexpr unsigned long kMaxMib = 65536;

// splitmix64: a small, fast generator; the text only has to vary.
struct Random {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

constexpr std::array<std::string_view, 64> kWords = {
    "the",      "a",      "of",      "and",   "to",     "in",    "is",    "that",       "for",     "it",     "with",
    "as",       "was",    "on",      "be",    "by",     "this",  "from",  "or",         "which",   "memory", "page",
    "device",   "kernel", "request", "queue", "server", "data",  "block", "swap",       "written", "read",   "stored",
    "returned", "time",   "process", "file",  "system", "user",  "value", "before",     "after",   "when",   "while",
    "every",    "each",   "other",   "first", "last",   "small", "large", "compressed", "free",    "used",   "more",
    "less",     "than",   "between", "under", "over",   "new",   "old",   "same",       "next"};
constexpr std::array<std::string_view, 6> kActions = {"login", "logout", "search", "view", "purchase", "update"};
constexpr std::array<std::string_view, 4> kLevels = {"INFO", "INFO", "DEBUG", "WARN"};
constexpr std::array<std::string_view, 8> kComponents = {"http", "db-pool", "cache", "scheduler",
                                                         "auth", "worker",  "queue", "storage"};
constexpr std::array<std::string_view, 8> kMessages = {"request served",  "connection reused", "entry evicted",
                                                       "job finished",    "token refreshed",   "batch flushed",
                                                       "retry scheduled", "checkpoint written"};

// Lines of text, a third each: log lines (timestamp, level, component,
// message, key=value fields), JSON records, and prose from the word list. Made once;
// pages are then filled by copying lines picked at random, which is as fast
// as memcpy (under TCG, formatting every line would take longer than the
// swapping the demo is about). The pool is far larger than the ~50 lines of
// a page, so a page rarely holds a line twice: what a page compresses to is
// the text's own redundancy, as zram sees one page at a time.
class LinePool {
 public:
  explicit LinePool(Random& rng) {
    std::uint64_t clock_ms = 0;
    char line[256];
    for (std::size_t i = 0; i < kLines; ++i) {
      int n = 0;
      const std::size_t kind = rng.below(3);
      if (kind == 2) {
        n = std::snprintf(line, sizeof(line),
                          "{\"user\": \"u%03u\", \"action\": \"%s\", \"ok\": %s, \"items\": %u, \"ms\": %u}\n",
                          static_cast<unsigned>(rng.below(200)), kActions[rng.below(kActions.size())].data(),
                          rng.below(10) != 0 ? "true" : "false", static_cast<unsigned>(rng.below(100)),
                          static_cast<unsigned>(rng.below(500)));
      } else if (kind == 1) {
        clock_ms += 1 + rng.below(40);
        const std::uint64_t s = clock_ms / 1000;
        n = std::snprintf(
            line, sizeof(line), "2026-11-30 %02u:%02u:%02u.%03u %s [%s] %s id=%u user=u%03u took=%u.%ums\n",
            static_cast<unsigned>(s / 3600 % 24), static_cast<unsigned>(s / 60 % 60), static_cast<unsigned>(s % 60),
            static_cast<unsigned>(clock_ms % 1000), kLevels[rng.below(kLevels.size())].data(),
            kComponents[rng.below(kComponents.size())].data(), kMessages[rng.below(kMessages.size())].data(),
            static_cast<unsigned>(rng.below(100000)), static_cast<unsigned>(rng.below(200)),
            static_cast<unsigned>(rng.below(50)), static_cast<unsigned>(rng.below(10)));
      } else {
        const std::size_t words = 6 + rng.below(10);
        for (std::size_t w = 0; w < words && n < 200; ++w) {
          const std::string_view word = kWords[rng.below(kWords.size())];
          std::memcpy(line + n, word.data(), word.size());
          n += static_cast<int>(word.size());
          line[n++] = w + 1 == words ? '.' : ' ';
        }
        line[n++] = '\n';
      }
      starts_[i] = text_.size();
      text_.append(line, static_cast<std::size_t>(n));
    }
    starts_[kLines] = text_.size();
  }

  // Fills [out, end) with lines picked by `rng`, the last one cut off at the
  // end (text spans pages either way).
  void fill(char* out, char* end, Random& rng) const {
    while (out < end) {
      const std::size_t i = rng.below(kLines);
      const std::size_t take = std::min(starts_[i + 1] - starts_[i], static_cast<std::size_t>(end - out));
      std::memcpy(out, text_.data() + starts_[i], take);
      out += take;
    }
  }

 private:
  static constexpr std::size_t kLines = 16384;
  std::string text_;
  std::array<std::size_t, kLines + 1> starts_{};
};

std::uint64_t checksum(const unsigned char* page) {
  // FNV-1a over 8-byte words: cheap, and any changed byte changes it.
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < kPage; i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, page + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
  }
  return h;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int usage_error(const char* message) {
  std::fprintf(stderr, "swap_workload: %s (usage: swap_workload MIB [--hold])\n", message);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error("expected a size in MiB");
  if (argc > 3) return usage_error("too many arguments");
  const bool hold = argc == 3 && std::string_view(argv[2]) == "--hold";
  if (argc == 3 && !hold) return usage_error("unknown option");
  char* end = nullptr;
  errno = 0;
  const unsigned long mib = std::strtoul(argv[1], &end, 10);
  if (end == argv[1] || *end != '\0' || argv[1][0] == '-' || errno != 0 || mib == 0 || mib > kMaxMib) {
    return usage_error("MIB must be a whole number from 1 to 65536");
  }
  const std::size_t pages = mib * 256;
  auto* memory = static_cast<unsigned char*>(
      mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (memory == MAP_FAILED) {
    std::fprintf(stderr, "swap_workload: cannot map %lu MiB: %s\n", mib, std::strerror(errno));
    return 1;
  }
  std::vector<std::uint64_t> sums(pages);
  Random rng{0x636f626c6b2d3031ull};
  const auto pool = std::make_unique<LinePool>(rng);

  const auto start = std::chrono::steady_clock::now();
  for (std::size_t p = 0; p < pages; ++p) {
    unsigned char* page = memory + p * kPage;
    pool->fill(reinterpret_cast<char*>(page), reinterpret_cast<char*>(page + kPage), rng);
    sums[p] = checksum(page);
  }
  const double fill_s = seconds_since(start);
  std::printf("swap_workload: wrote %lu MiB of text in %.1f s\n", mib, fill_s);
  std::fflush(stdout);

  // Read back in order, as a program scanning its data would: the pages
  // written first went to swap first and come back first.
  const auto read_start = std::chrono::steady_clock::now();
  std::size_t bad = 0;
  for (std::size_t p = 0; p < pages; ++p) {
    if (checksum(memory + p * kPage) != sums[p]) {
      if (bad < 10) std::fprintf(stderr, "swap_workload: page %zu came back wrong\n", p);
      ++bad;
    }
  }
  const double read_s = seconds_since(read_start);
  if (bad != 0) {
    std::printf("swap_workload: FAILED: %zu of %zu pages came back wrong\n", bad, pages);
    return 1;
  }
  std::printf("swap_workload: read all %zu pages back right in %.1f s; total %.1f s\n", pages, read_s, fill_s + read_s);
  std::fflush(stdout);
  if (hold) {
    std::printf("swap_workload: holding its memory until SIGTERM\n");
    std::fflush(stdout);
    // SIGTERM and SIGINT keep their default action: the process ends.
    for (;;) ::pause();
  }
  return 0;
}
