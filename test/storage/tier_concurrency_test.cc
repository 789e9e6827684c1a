// PageStore's backing tier under concurrency: threads acting as cores
// write, discard, read and write back at once, on the same pages; every
// read returns a whole version of that page that some write stored (or
// zeros after a discard), never another page's or a torn one, and at the
// end every page holds exactly its last write; and the same with pages
// re-admitted to RAM by their reads. Each thread keeps up to two writeback
// batches out at once (as the zram target does), committed in random
// order, while its pages are rewritten. Label concurrency (TSan).
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "coblk/storage/page_store.h"
#include "test/require_ok.h"
#include "test/storage/page_gen.h"

BOOST_AUTO_TEST_SUITE(storage_tier_concurrency_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace storage;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::size_t ps = 4096;
constexpr std::uint64_t pages = 128;
constexpr unsigned threads = 2;
#if defined(__SANITIZE_THREAD__)
constexpr int ops = 3000;
#else
constexpr int ops = 20000;
#endif

// Boost.Test's assertions are not thread-safe: workers count failures.
std::atomic<int> failures{0};
void expect(bool ok) {
  if (!ok) failures.fetch_add(1, std::memory_order_relaxed);  // read after join()
}

// Version v of page p: a header naming both, then content from the seed.
std::vector<std::byte> version(std::uint64_t p, std::uint64_t v) {
  std::vector<std::byte> page(ps);
  storage_test::make_page(page, p * 100003 + v);
  std::memcpy(page.data(), &p, 8);
  std::memcpy(page.data() + 8, &v, 8);
  return page;
}

// True if `got` is zeros or exactly some version of page p.
bool valid(std::uint64_t p, const std::vector<std::byte>& got) {
  std::uint64_t head_p = 0, head_v = 0;
  std::memcpy(&head_p, got.data(), 8);
  std::memcpy(&head_v, got.data() + 8, 8);
  if (head_p == 0 && head_v == 0) {
    return got == std::vector<std::byte>(ps);
  }
  return head_p == p && got == version(p, head_v);
}

// The whole test, with re-admission of written-back pages set to
// `readmit_reads` (PageStoreConfig).
void run(std::uint32_t readmit_reads) {
  failures.store(0);
  char name[] = "/tmp/coblk-tier-conc-XXXXXX";
  const int fd = ::mkstemp(name);
  BOOST_REQUIRE(fd >= 0);
  ::unlink(name);
  BOOST_REQUIRE_EQUAL(::ftruncate(fd, static_cast<off_t>(pages * ps)), 0);
  PageStoreConfig c;
  c.size_bytes = pages * ps;
  c.cores = threads;
  c.backing_blocks = pages;
  c.backing_fd = fd;
  c.writeback_batch = 8;
  c.readmit_reads = readmit_reads;
  auto store = test::require_ok(PageStore::create(c));
  // Page p is written (and discarded) only by thread p % threads, which
  // keeps its last version in `last`; any thread reads any page.
  std::vector<std::uint64_t> last(pages, 0);  // 0: zeros
  std::vector<std::thread> workers;
  for (unsigned core = 0; core < threads; ++core) {
    workers.emplace_back([&, core] {
      std::mt19937_64 rng(core + 1);
      std::uint64_t next_version = 1;
      std::vector<std::byte> got(ps);
      std::vector<std::byte> block(ps);
      std::vector<WritebackBatch> out;  // this core's batches out, at most writeback_slots
      // Writes a batch's blocks and commits it.
      auto commit = [&](const WritebackBatch& b) {
        bool written = true;
        for (std::uint32_t k = 0; k < b.block_count; ++k) {
          written = written &&
                    ::pwrite(fd, b.data + k * ps, ps, static_cast<off_t>(b.blocks[k] * ps)) == static_cast<ssize_t>(ps);
        }
        store->writeback_commit(core, b, written);
      };
      for (int op = 0; op < ops; ++op) {
        const std::uint64_t p = rng() % pages;
        const unsigned what = static_cast<unsigned>(rng() % 10);
        const bool mine = p % threads == core;
        if (what < 3 && mine) {
          const std::uint64_t v = next_version++;
          expect(store->write(core, p * ps, version(p, v)) == 0);
          last[p] = v;
        } else if (what == 3 && mine) {
          expect(store->discard(core, p * ps, ps) == 0);
          last[p] = 0;
        } else if (what == 4) {
          const WritebackBatch b = store->writeback_prepare(core, WritebackKind::aged, 0, 8);
          if (b.pages != 0) out.push_back(b);
        } else if (what == 5 && !out.empty()) {
          const std::size_t k = rng() % out.size();
          commit(out[k]);
          out.erase(out.begin() + static_cast<std::ptrdiff_t>(k));
        } else {
          BackingRead miss[1];
          std::size_t missed = 0;
          expect(store->read_resident(core, p * ps, got, miss, missed) == 0);
          if (missed == 1) {
            expect(::pread(fd, block.data(), ps, static_cast<off_t>(miss[0].where.block * ps)) ==
                   static_cast<ssize_t>(ps));
            expect(store->finish_backing_read(core, miss[0], block) == 0);
          }
          expect(valid(p, got));
          if (mine) expect(got == (last[p] == 0 ? std::vector<std::byte>(ps) : version(p, last[p])));
        }
        if (op % 256 == 0) store->drain_remote_frees(core);
      }
      for (const WritebackBatch& b : out) commit(b);
    });
  }
  for (auto& w : workers) w.join();
  BOOST_TEST(failures.load() == 0);
  std::vector<std::byte> got(ps);
  for (std::uint64_t p = 0; p < pages; ++p) {
    BOOST_REQUIRE_EQUAL(store->read(0, p * ps, got), 0);
    BOOST_REQUIRE((got == (last[p] == 0 ? std::vector<std::byte>(ps) : version(p, last[p]))));
  }
  BOOST_TEST(store->bd_stat().bd_writes > 0u);
  if (readmit_reads != 0) BOOST_TEST(store->tier_stat().readmitted_pages > 0u);
  for (int round = 0; round < 3; ++round) {
    for (unsigned core = 0; core < threads; ++core) store->drain_remote_frees(core);
  }
  // No object leaked or freed twice.
  const MmStat mm = store->mm_stat();
  BOOST_TEST(store->allocator_stats().live_objects ==
             mm.orig_data_size / ps - mm.same_pages - store->tier_stat().written_back_pages);
  BOOST_REQUIRE_EQUAL(store->discard(0, 0, pages * ps), 0);
  BOOST_TEST(store->bd_stat().bd_count == 0u);
  ::close(fd);
}

}  // namespace

BOOST_AUTO_TEST_CASE(reads_during_concurrent_writes_discards_and_writebacks_return_only_whole_versions_of_their_page) {
  run(0);
}

BOOST_AUTO_TEST_CASE(the_same_with_readmission_at_the_first_read_returns_only_whole_versions_and_leaks_nothing) {
  run(1);
}

BOOST_AUTO_TEST_SUITE_END()  // storage_tier_concurrency_test
