#include <boost/test/unit_test.hpp>

#include <atomic>
#include <barrier>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "coblk/storage/page_store.h"
#include "test/require_ok.h"
#include "test/storage/page_gen.h"

BOOST_AUTO_TEST_SUITE(storage_page_store_model_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

// Several threads, each acting as one core, drive one PageStore at once.
// The first test checks every read exactly against a plain array (each
// thread owns a disjoint range, and the ranges rotate between phases so
// every core frees objects other cores allocated). The second lets all
// threads hammer the same few pages and checks that every read returns one
// whole page that some write stored (never a torn or mixed page).

using namespace storage;  // NOLINT(google-build-using-namespace): a program file, not a library
using storage_test::make_page;

namespace {

constexpr std::size_t ps = 4096;

// Boost.Test's assertions are not thread-safe, so worker threads count
// failed expectations here and the test thread checks the count after join.
std::atomic<int> worker_failures{0};

void expect(bool ok) {
  if (!ok) {
    // Relaxed: read after join(), which synchronizes.
    worker_failures.fetch_add(1, std::memory_order_relaxed);
  }
}
constexpr unsigned threads = 4;

#if defined(__SANITIZE_THREAD__)
constexpr int ops_per_phase = 1500;
#else
constexpr int ops_per_phase = 6000;
#endif

// One thread's random operations over [first, first + pages) pages, checked
// against `model` (the thread's view of those pages). Returns the number of
// mismatches.
int run_model_ops(PageStore& store, unsigned core, std::vector<std::byte>& model, std::uint64_t first_page,
                  std::uint64_t pages, std::mt19937_64& rng) {
  int mismatches = 0;
  const std::uint64_t base = first_page * ps;
  const std::uint64_t bytes = pages * ps;
  std::vector<std::byte> buf(4 * ps);
  for (int op = 0; op < ops_per_phase; ++op) {
    const unsigned kind = static_cast<unsigned>(rng() % 100);
    if (kind < 35) {  // whole aligned pages
      const std::uint64_t page = rng() % pages;
      const std::uint64_t n = std::min<std::uint64_t>(1 + rng() % 3, pages - page);
      for (std::uint64_t k = 0; k < n; ++k) {
        const std::uint64_t seed = rng();
        if (seed % 13 == 0) {
          std::memset(buf.data() + k * ps, static_cast<int>(seed >> 8), ps);  // same-filled
        } else {
          make_page(std::span<std::byte>(buf.data() + k * ps, ps), seed);
        }
      }
      const int rc = store.write(core, base + page * ps, std::span<const std::byte>(buf.data(), n * ps));
      expect(rc == 0);
      std::memcpy(model.data() + page * ps, buf.data(), n * ps);
    } else if (kind < 55) {  // unaligned, sub-page or straddling
      const std::uint64_t off = rng() % bytes;
      const std::size_t len = 1 + rng() % std::min<std::uint64_t>(2 * ps, bytes - off);
      make_page(std::span<std::byte>(buf.data(), len), rng());
      expect(store.write(core, base + off, std::span<const std::byte>(buf.data(), len)) == 0);
      std::memcpy(model.data() + off, buf.data(), len);
    } else if (kind < 85) {  // reads, any alignment
      const std::uint64_t off = rng() % bytes;
      const std::size_t len = 1 + rng() % std::min<std::uint64_t>(4 * ps, bytes - off);
      expect(store.read(core, base + off, std::span<std::byte>(buf.data(), len)) == 0);
      if (std::memcmp(buf.data(), model.data() + off, len) != 0) {
        ++mismatches;
      }
    } else if (kind < 92) {  // discard
      const std::uint64_t off = rng() % bytes;
      const std::uint64_t len = 1 + rng() % std::min<std::uint64_t>(3 * ps, bytes - off);
      expect(store.discard(core, base + off, len) == 0);
      std::memset(model.data() + off, 0, len);
    } else if (kind < 97) {  // write zeroes
      const std::uint64_t off = rng() % bytes;
      const std::uint64_t len = 1 + rng() % std::min<std::uint64_t>(3 * ps, bytes - off);
      expect(store.write_zeroes(core, base + off, len) == 0);
      std::memset(model.data() + off, 0, len);
    } else if (kind < 99) {
      store.drain_remote_frees(core);
    } else if (rng() % 2 == 0) {
      store.compact(core);
    } else {
      // A few steps of a compaction, left under way while I/O goes on.
      for (int steps = static_cast<int>(rng() % 8); steps > 0 && !store.compact_step(core).done; --steps) {}
    }
  }
  return mismatches;
}

bool all_zero(const std::vector<std::byte>& v) {
  return std::all_of(v.begin(), v.end(), [](std::byte b) { return b == std::byte{0}; });
}

// Drains every core until no free is in flight: each round moves at most a
// ring's worth from each overflow list into the rings.
void drain_everything(PageStore& store) {
  for (int round = 0; round < 10000 && store.allocator_stats().pending_remote_frees != 0; ++round) {
    for (unsigned c = 0; c < store.cores(); ++c) {
      store.drain_remote_frees(c);
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(concurrent_cores_on_disjoint_pages_match_a_plain_array_model) {
  constexpr std::uint64_t pages_per_thread = 64;
  PageStoreConfig config;
  config.size_bytes = threads * pages_per_thread * ps;
  config.cores = threads;
  config.remote_free_ring_capacity = 16;  // small: exercise the overflow lists
  config.steps = StepLimits{.entries = 16, .moves = 4, .spans = 8, .releases = 1};  // compactions span many ops
  const auto owned_store = test::require_ok(PageStore::create(config));
  PageStore& store = *owned_store;
  // models[r] is the content of range r; in phase p thread t works on range (t + p) % threads.
  std::vector<std::vector<std::byte>> models(threads, std::vector<std::byte>(pages_per_thread * ps));
  constexpr int phases = 3;
  std::barrier sync(threads);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(1000 + t);
      for (int phase = 0; phase < phases; ++phase) {
        const unsigned range = (t + static_cast<unsigned>(phase)) % threads;
        // Relaxed: the count is read after join(), which synchronizes.
        mismatches.fetch_add(run_model_ops(store, t, models[range], range * pages_per_thread, pages_per_thread, rng),
                             std::memory_order_relaxed);
        sync.arrive_and_wait();  // ranges change hands only between phases
      }
    });
  }
  for (auto& w : workers) {
    w.join();
  }
  BOOST_TEST(mismatches.load() == 0);
  BOOST_TEST(worker_failures.load() == 0);
  // Final full check, from a core that wrote none of range 1 last.
  for (unsigned r = 0; r < threads; ++r) {
    std::vector<std::byte> out(pages_per_thread * ps);
    BOOST_REQUIRE(store.read(r, r * pages_per_thread * ps, out) == 0);
    BOOST_TEST((out == models[r]));
  }
  // Stats agree with the model: every non-zero page is stored.
  std::uint64_t nonzero_pages = 0;
  for (const auto& m : models) {
    for (std::size_t p = 0; p < pages_per_thread; ++p) {
      nonzero_pages +=
          !std::all_of(m.begin() + p * ps, m.begin() + (p + 1) * ps, [](std::byte b) { return b == std::byte{0}; });
    }
  }
  BOOST_TEST(store.mm_stat().orig_data_size >= nonzero_pages * ps);
  // Nothing leaks: discard everything, drain, and every arena is empty.
  BOOST_REQUIRE(store.discard(0, 0, store.size_bytes()) == 0);
  drain_everything(store);
  const AllocatorStats a = store.allocator_stats();
  BOOST_TEST(a.live_objects == 0u);
  BOOST_TEST(a.pending_remote_frees == 0u);
  BOOST_TEST(a.span_pages == 0u);
  const MmStat m = store.mm_stat();
  BOOST_TEST(m.orig_data_size == 0u);
  BOOST_TEST(m.compr_data_size == 0u);
  BOOST_TEST(m.same_pages == 0u);
  BOOST_TEST(m.mem_used_total == a.cached_pages * ps);
  for (unsigned c = 0; c < threads; ++c) {
    store.compact(c);
  }
  BOOST_TEST(store.mm_stat().mem_used_total == 0u);
}

BOOST_AUTO_TEST_CASE(concurrent_cores_on_the_same_pages_never_read_a_torn_page) {
  constexpr std::uint64_t pages = 6;
  PageStoreConfig config;
  config.size_bytes = pages * ps;
  config.cores = threads;
  config.remote_free_ring_capacity = 4;
  config.steps = StepLimits{.entries = 2, .moves = 1, .spans = 2, .releases = 1};
  const auto owned_store = test::require_ok(PageStore::create(config));
  PageStore& store = *owned_store;
  std::atomic<int> bad{0};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(77 + t);
      std::vector<std::byte> page(ps), out(ps), wanted(ps);
      for (int op = 0; op < 2 * ops_per_phase; ++op) {
        const std::uint64_t index = rng() % pages;
        const unsigned kind = static_cast<unsigned>(rng() % 100);
        if (kind < 40) {
          // The page names itself: its first 8 bytes are the seed,
          // which encodes the page index.
          const std::uint64_t seed = (index << 48) | (std::uint64_t{t} << 40) | (rng() & 0xffffffffff);
          make_page(page, seed);
          expect(store.write(t, index * ps, page) == 0);
        } else if (kind < 85) {
          expect(store.read(t, index * ps, out) == 0);
          std::uint64_t seed;
          std::memcpy(&seed, out.data(), sizeof seed);
          bool ok;
          if (seed == 0) {
            ok = all_zero(out);
          } else {
            make_page(wanted, seed);
            ok = (seed >> 48) == index && out == wanted;
          }
          if (!ok) {
            // Relaxed: read after join().
            bad.fetch_add(1, std::memory_order_relaxed);
          }
        } else if (kind < 93) {
          expect(store.discard(t, index * ps, ps) == 0);
        } else if (kind < 97) {
          expect(store.write_zeroes(t, index * ps, ps) == 0);
        } else if (kind < 99) {
          store.drain_remote_frees(t);
        } else if (rng() % 2 == 0) {
          store.compact(t);
        } else {
          for (int steps = static_cast<int>(rng() % 8); steps > 0 && !store.compact_step(t).done; --steps) {}
        }
      }
    });
  }
  for (auto& w : workers) {
    w.join();
  }
  BOOST_TEST(bad.load() == 0);
  BOOST_TEST(worker_failures.load() == 0);
  // No leak: after freeing all pages and draining every core, nothing is held.
  BOOST_REQUIRE(store.discard(0, 0, store.size_bytes()) == 0);
  drain_everything(store);
  BOOST_TEST(store.allocator_stats().live_objects == 0u);
  for (unsigned c = 0; c < threads; ++c) {
    store.compact(c);
  }
  BOOST_TEST(store.mm_stat().mem_used_total == 0u);
  BOOST_TEST(store.mm_stat().orig_data_size == 0u);
}

BOOST_AUTO_TEST_SUITE_END()  // storage_page_store_model_test
