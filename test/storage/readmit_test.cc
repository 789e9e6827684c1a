// PageStore's re-admission of written-back pages: a page read from the tier
// a second time soon after the first (or at the first read, or never, as
// configured) comes back to RAM with the same bytes, and the statistics
// move; a write or a discard racing a re-admission wins; re-admission stops
// at its memory mark and at the memory limit; and random operations with
// re-admission on match a reference array. The file I/O the zram target
// does with io_uring is done here with pread/pwrite.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "coblk/storage/page_store.h"
#include "test/require_ok.h"
#include "test/storage/page_gen.h"
#include "test/storage/tier_support.h"

BOOST_AUTO_TEST_SUITE(storage_readmit_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace storage;       // NOLINT(google-build-using-namespace): a program file, not a library
using namespace storage_test;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::size_t ps = 4096;
constexpr std::uint64_t pages = 128;

PageStoreConfig config(const BackingFile& file, std::uint32_t readmit_reads, unsigned cores = 1) {
  PageStoreConfig c;
  c.size_bytes = pages * ps;
  c.cores = cores;
  c.backing_blocks = pages;
  c.backing_fd = file.fd;
  c.readmit_reads = readmit_reads;
  return c;
}

// Reads page `page` through read_resident on `core`, as the zram target does.
int read_page_through_tier(PageStore& s, int fd, std::uint64_t page, std::vector<std::byte>& out, unsigned core = 0) {
  return read_through_tier(s, fd, page * ps, out, true, core);
}

void fill(PageStore& s) {
  for (std::uint64_t i = 0; i < pages; ++i) {
    BOOST_REQUIRE_EQUAL(s.write(0, i * ps, page_of(i + 1)), 0);
  }
}

// Objects live in the arenas = pages in RAM that are not same-filled:
// nothing leaked, nothing freed twice.
void check_no_leak(PageStore& s) {
  for (int round = 0; round < 3; ++round) {
    for (unsigned core = 0; core < s.cores(); ++core) s.drain_remote_frees(core);
  }
  const MmStat mm = s.mm_stat();
  BOOST_TEST(s.allocator_stats().live_objects ==
             mm.orig_data_size / ps - mm.same_pages - s.tier_stat().written_back_pages);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_page_read_twice_from_the_tier_comes_back_to_ram_and_reads_the_same_bytes) {
  BackingFile file(pages);
  auto s = test::require_ok(PageStore::create(config(file, 2)));
  fill(*s);
  const MmStat before = s->mm_stat();
  BOOST_REQUIRE_EQUAL(write_back_all(*s, file.fd), pages);
  std::vector<std::byte> got(ps);
  // The first read marks each page read from the tier; it stays there.
  for (std::uint64_t i = 0; i < pages; ++i) {
    BOOST_REQUIRE_EQUAL(read_page_through_tier(*s, file.fd, i, got), 0);
    BOOST_REQUIRE_MESSAGE(got == page_of(i + 1), "page " << i << " differs at its first read");
  }
  BOOST_TEST(s->tier_stat().readmitted_pages == 0u);
  BOOST_TEST(s->tier_stat().written_back_pages == pages);
  // The second, soon after: back to RAM, as the same object.
  for (std::uint64_t i = 0; i < pages; ++i) {
    BOOST_REQUIRE_EQUAL(read_page_through_tier(*s, file.fd, i, got), 0);
    BOOST_REQUIRE_MESSAGE(got == page_of(i + 1), "page " << i << " differs at its second read");
  }
  const TierStat tier = s->tier_stat();
  BOOST_TEST(tier.readmitted_pages == pages);
  BOOST_TEST(tier.written_back_pages == 0u);
  BOOST_TEST(s->bd_stat().bd_count == 0u);  // every sector on the tier freed
  BOOST_TEST(s->bd_stat().bd_reads == 2 * pages);
  const MmStat after = s->mm_stat();
  BOOST_TEST(after.orig_data_size == before.orig_data_size);
  BOOST_TEST(after.compr_data_size == before.compr_data_size);  // installed as it was: no recompression
  BOOST_TEST(after.huge_pages == before.huge_pages);
  // From RAM now: reads no longer touch the tier, and give the same bytes.
  for (std::uint64_t i = 0; i < pages; ++i) {
    BOOST_REQUIRE_EQUAL(read_page_through_tier(*s, file.fd, i, got), 0);
    BOOST_REQUIRE(got == page_of(i + 1));
    BOOST_REQUIRE_EQUAL(s->read(0, i * ps, got), 0);
    BOOST_REQUIRE(got == page_of(i + 1));
  }
  BOOST_TEST(s->bd_stat().bd_reads == 2 * pages);
  check_no_leak(*s);
  // And they can be written back again.
  BOOST_TEST(write_back_all(*s, file.fd) == pages);
  for (std::uint64_t i = 0; i < pages; ++i) {
    BOOST_REQUIRE_EQUAL(s->read(0, i * ps, got), 0);
    BOOST_REQUIRE(got == page_of(i + 1));
  }
}

BOOST_AUTO_TEST_CASE(with_1_the_first_read_readmits_also_a_synchronous_one_and_with_0_no_read_does) {
  BackingFile file(pages);
  auto once = test::require_ok(PageStore::create(config(file, 1)));
  fill(*once);
  BOOST_REQUIRE_EQUAL(write_back_all(*once, file.fd), pages);
  std::vector<std::byte> got(ps);
  for (std::uint64_t i = 0; i < pages; ++i) {
    // Odd pages through the asynchronous path, even ones through read().
    BOOST_REQUIRE_EQUAL(i % 2 ? read_page_through_tier(*once, file.fd, i, got) : once->read(0, i * ps, got), 0);
    BOOST_REQUIRE_MESSAGE(got == page_of(i + 1), "page " << i << " differs");
  }
  BOOST_TEST(once->tier_stat().readmitted_pages == pages);
  BOOST_TEST(once->tier_stat().written_back_pages == 0u);
  BOOST_TEST(once->bd_stat().bd_count == 0u);
  check_no_leak(*once);
  once.reset();

  BackingFile other(pages);
  auto never = test::require_ok(PageStore::create(config(other, 0)));
  fill(*never);
  BOOST_REQUIRE_EQUAL(write_back_all(*never, other.fd), pages);
  for (int round = 0; round < 3; ++round) {
    for (std::uint64_t i = 0; i < pages; ++i) {
      BOOST_REQUIRE_EQUAL(i % 2 ? read_page_through_tier(*never, other.fd, i, got) : never->read(0, i * ps, got), 0);
      BOOST_REQUIRE(got == page_of(i + 1));
    }
  }
  BOOST_TEST(never->tier_stat().readmitted_pages == 0u);
  BOOST_TEST(never->tier_stat().written_back_pages == pages);
}

BOOST_AUTO_TEST_CASE(a_second_read_after_the_window_does_not_readmit_but_a_third_soon_after_does) {
  BackingFile file(pages);
  PageStoreConfig c = config(file, 2);
  c.readmit_window_s = 10;
  auto s = test::require_ok(PageStore::create(c));
  s->set_clock(100);
  fill(*s);
  BOOST_REQUIRE_EQUAL(write_back_all(*s, file.fd), pages);
  std::vector<std::byte> got(ps);
  BOOST_REQUIRE_EQUAL(read_page_through_tier(*s, file.fd, 5, got), 0);
  s->set_clock(110);  // 10 s later: not within the window
  BOOST_REQUIRE_EQUAL(read_page_through_tier(*s, file.fd, 5, got), 0);
  BOOST_TEST(s->tier_stat().readmitted_pages == 0u);
  s->set_clock(119);  // 9 s after the last read
  BOOST_REQUIRE_EQUAL(read_page_through_tier(*s, file.fd, 5, got), 0);
  BOOST_TEST(got == page_of(6));
  BOOST_TEST(s->tier_stat().readmitted_pages == 1u);
  BOOST_TEST(s->tier_stat().written_back_pages == pages - 1);
}

BOOST_AUTO_TEST_CASE(a_write_during_the_tier_read_wins_over_the_readmission) {
  BackingFile file(pages);
  auto s = test::require_ok(PageStore::create(config(file, 1)));
  fill(*s);
  BOOST_REQUIRE_EQUAL(write_back_all(*s, file.fd), pages);
  std::vector<std::byte> got(ps);
  for (const bool written_back_again : {false, true}) {
    const std::uint64_t page = written_back_again ? 9 : 3;
    BackingRead miss[1];
    std::size_t missed = 0;
    BOOST_REQUIRE_EQUAL(s->read_resident(0, page * ps, got, miss, missed), 0);
    BOOST_REQUIRE_EQUAL(missed, 1u);
    BOOST_REQUIRE(miss[0].readmit);
    // While the block is being read: a new version, and (second round)
    // that version written back too, to another place on the tier.
    BOOST_REQUIRE_EQUAL(s->write(0, page * ps, page_of(1000 + page)), 0);
    if (written_back_again) {
      BOOST_REQUIRE_GE(write_back_all(*s, file.fd), 1u);
    }
    BOOST_REQUIRE_EQUAL(serve(*s, file.fd, miss[0]), 0);
    BOOST_TEST(got == page_of(page + 1));  // the read began before the write: old data is right for it
    BOOST_TEST(s->tier_stat().readmitted_pages == 0u);
    std::vector<std::byte> now(ps);
    BOOST_REQUIRE_EQUAL(s->read(0, page * ps, now), 0);
    BOOST_TEST(now == page_of(1000 + page));  // the write won
  }
  check_no_leak(*s);
}

BOOST_AUTO_TEST_CASE(a_discard_during_the_tier_read_wins_over_the_readmission) {
  BackingFile file(pages);
  auto s = test::require_ok(PageStore::create(config(file, 1)));
  fill(*s);
  BOOST_REQUIRE_EQUAL(write_back_all(*s, file.fd), pages);
  std::vector<std::byte> got(ps);
  BackingRead miss[1];
  std::size_t missed = 0;
  BOOST_REQUIRE_EQUAL(s->read_resident(0, 7 * ps, got, miss, missed), 0);
  BOOST_REQUIRE_EQUAL(missed, 1u);
  BOOST_REQUIRE_EQUAL(s->discard(0, 7 * ps, ps), 0);
  BOOST_REQUIRE_EQUAL(serve(*s, file.fd, miss[0]), 0);
  BOOST_TEST(s->tier_stat().readmitted_pages == 0u);
  BOOST_REQUIRE_EQUAL(s->read(0, 7 * ps, got), 0);
  BOOST_TEST(got == std::vector<std::byte>(ps));
  BOOST_TEST(s->tier_stat().written_back_pages == pages - 1);
  check_no_leak(*s);
  BOOST_REQUIRE_EQUAL(s->discard(0, 0, pages * ps), 0);
  BOOST_TEST(s->bd_stat().bd_count == 0u);
}

BOOST_AUTO_TEST_CASE(readmission_stops_at_its_memory_mark_and_at_the_memory_limit_and_the_rest_stays_readable) {
  for (const bool at_limit : {false, true}) {
    BOOST_TEST_CONTEXT((at_limit ? "at the memory limit" : "at the readmission mark")) {
      BackingFile file(pages);
      PageStoreConfig c = config(file, 1);
      // 48 pages of memory: room for some two thirds of the data.
      (at_limit ? c.mem_limit_bytes : c.readmit_below_bytes) = 48 * ps;
      auto s = test::require_ok(PageStore::create(c));
      std::vector<std::byte> got(ps);
      // Written and written back a few at a time (4 objects take at most
      // 4 spans of 8 pages), so the limit is never hit.
      for (std::uint64_t i = 0; i < pages; ++i) {
        BOOST_REQUIRE_EQUAL(s->write(0, i * ps, page_of(i + 1)), 0);
        if (i % 4 == 3) {
          BOOST_REQUIRE_EQUAL(write_back_all(*s, file.fd), 4u);
          s->compact(0);
        }
      }
      BOOST_REQUIRE_EQUAL(s->tier_stat().written_back_pages, pages);
      for (int round = 0; round < 2; ++round) {
        for (std::uint64_t i = 0; i < pages; ++i) {
          BOOST_REQUIRE_EQUAL(read_page_through_tier(*s, file.fd, i, got), 0);
          BOOST_REQUIRE_MESSAGE(got == page_of(i + 1), "page " << i << " differs");
        }
      }
      const TierStat tier = s->tier_stat();
      BOOST_TEST(tier.readmitted_pages > 0u);
      BOOST_TEST(tier.written_back_pages > 0u);  // the rest stayed on the tier
      BOOST_TEST(tier.readmitted_pages + tier.written_back_pages == pages);
      // A re-admission starts only below the mark; one may take a new
      // span (at most 8 pages) from just below it.
      BOOST_TEST(s->mm_stat().mem_used_total <= 48 * ps + (at_limit ? 0 : 8 * ps));
      BOOST_TEST(s->io_stat().failed_reads == 0u);
      check_no_leak(*s);
    }
  }
}

BOOST_AUTO_TEST_CASE(random_writes_discards_writebacks_and_readmissions_from_two_cores_match_a_reference) {
  BackingFile file(pages / 2);
  PageStoreConfig c = config(file, 2, 2);
  c.backing_blocks = pages / 2;
  auto s = test::require_ok(PageStore::create(c));
  std::map<std::uint64_t, std::uint64_t> reference;  // page -> seed (absent: zeros)
  std::mt19937_64 rng(11);
  bool outstanding[2] = {false, false};
  WritebackBatch batches[2];
  // A tier read in flight per core (read_resident done, block not yet
  // read), finished at a later step: writes, discards and writebacks of
  // the same page run in between.
  struct InFlight {
    bool active = false;
    std::uint64_t page = 0;
    std::uint64_t seed = 0;  // what the page held when the read began
    BackingRead miss;
    std::vector<std::byte> out = std::vector<std::byte>(ps);
  } inflight[2];
  std::vector<std::byte> got(ps);
  auto want_of = [&](std::uint64_t seed) { return seed == 0 ? std::vector<std::byte>(ps) : page_of(seed); };
  for (int step = 0; step < 30000; ++step) {
    const unsigned core = static_cast<unsigned>(rng() % 2);
    const std::uint64_t page = rng() % pages;
    s->set_clock(static_cast<std::uint32_t>(step / 100));
    switch (rng() % 10) {
      case 0:
      case 1: {
        const std::uint64_t seed = rng() % 100000 + 1;
        BOOST_REQUIRE_EQUAL(s->write(core, page * ps, page_of(seed)), 0);
        reference[page] = seed;
        break;
      }
      case 2:
        BOOST_REQUIRE_EQUAL(s->discard(core, page * ps, ps), 0);
        reference.erase(page);
        break;
      case 3:
        if (!outstanding[core]) {
          batches[core] = s->writeback_prepare(core, WritebackKind::aged, 0, 1 + rng() % 32);
          outstanding[core] = batches[core].pages != 0;
        }
        break;
      case 4:
        if (outstanding[core]) {
          s->writeback_commit(core, batches[core], rng() % 10 != 0 && write_batch(file.fd, batches[core]));
          outstanding[core] = false;
        }
        break;
      case 5: {
        InFlight& f = inflight[core];
        if (!f.active) {
          std::size_t missed = 0;
          BackingRead miss[1];
          BOOST_REQUIRE_EQUAL(s->read_resident(core, page * ps, f.out, miss, missed), 0);
          const auto it = reference.find(page);
          f.seed = it == reference.end() ? 0 : it->second;
          if (missed == 1) {
            f.active = true;
            f.page = page;
            f.miss = miss[0];
          } else {
            BOOST_REQUIRE_MESSAGE(f.out == want_of(f.seed), "page " << page << " differs at step " << step);
          }
        } else {
          BOOST_REQUIRE_EQUAL(serve(*s, file.fd, f.miss, core), 0);
          BOOST_REQUIRE_MESSAGE(f.out == want_of(f.seed), "page " << f.page << " differs (late) at step " << step);
          f.active = false;
        }
        break;
      }
      default: {
        BOOST_REQUIRE_EQUAL(read_page_through_tier(*s, file.fd, page, got, core), 0);
        const auto it = reference.find(page);
        BOOST_REQUIRE_MESSAGE(got == want_of(it == reference.end() ? 0 : it->second),
                              "page " << page << " differs at step " << step);
      }
    }
    if (step % 1000 == 0) {
      s->drain_remote_frees(0);
      s->drain_remote_frees(1);
    }
  }
  for (unsigned core = 0; core < 2; ++core) {
    if (outstanding[core]) s->writeback_commit(core, batches[core], write_batch(file.fd, batches[core]));
    if (inflight[core].active) BOOST_REQUIRE_EQUAL(serve(*s, file.fd, inflight[core].miss, core), 0);
  }
  for (std::uint64_t page = 0; page < pages; ++page) {
    BOOST_REQUIRE_EQUAL(s->read(0, page * ps, got), 0);
    const auto it = reference.find(page);
    BOOST_REQUIRE_MESSAGE(got == want_of(it == reference.end() ? 0 : it->second), "page " << page << " at the end");
  }
  BOOST_TEST(s->bd_stat().bd_writes > 0u);
  BOOST_TEST(s->tier_stat().readmitted_pages > 0u);
  check_no_leak(*s);
  BOOST_REQUIRE_EQUAL(s->discard(0, 0, pages * ps), 0);
  BOOST_TEST(s->bd_stat().bd_count == 0u);
  check_no_leak(*s);  // drains the frees core 0 sent to core 1
  BOOST_TEST(s->allocator_stats().live_objects == 0u);
}

BOOST_AUTO_TEST_CASE(with_entropy_routing_raw_pages_stay_on_the_tier_and_compressed_ones_come_back) {
  BackingFile file(pages);
  PageStoreConfig c = config(file, 1);
  c.codec = compress::CodecSpec{compress::Algorithm::lz4, 1};
  c.recompress = compress::CodecSpec{compress::Algorithm::zstd, 3};
  c.entropy_routing = PageStoreConfig::EntropyRouting{};
  auto s = test::require_ok(PageStore::create(c));
  fill(*s);
  const std::uint64_t raw = s->mm_stat().huge_pages;
  BOOST_REQUIRE_GT(raw, 0u);  // page_of(seed) is all random for seed % 17 == 16
  BOOST_REQUIRE_EQUAL(write_back_all(*s, file.fd), pages);
  std::vector<std::byte> got(ps);
  for (std::uint64_t i = 0; i < pages; ++i) {
    BOOST_REQUIRE_EQUAL(read_page_through_tier(*s, file.fd, i, got), 0);
    BOOST_REQUIRE(got == page_of(i + 1));
  }
  BOOST_TEST(s->tier_stat().readmitted_pages == pages - raw);
  BOOST_TEST(s->tier_stat().written_back_pages == raw);
  BOOST_TEST(s->mm_stat().huge_pages == 0u);
  check_no_leak(*s);
}

BOOST_AUTO_TEST_CASE(bad_readmission_settings_are_refused_in_one_line) {
  BackingFile file(pages);
  PageStoreConfig c = config(file, 3);
  Result<std::unique_ptr<PageStore>> r = PageStore::create(c);
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().message().find("readmit reads must be 0 (never), 1 or 2, got 3") != std::string::npos);
  c.readmit_reads = 2;
  c.readmit_window_s = 0;
  r = PageStore::create(c);
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().message().find("readmit window") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()  // storage_readmit_test
