// PageStore's backing tier: pages written back to a file read back exactly,
// a page changed during its writeback keeps its new contents, a failed
// write keeps every page in RAM, and a store recovered from shared memory
// still finds its written-back pages. The file I/O the zram target does
// with io_uring is done here with pwrite/pread.
#include <boost/test/unit_test.hpp>

#include <sys/mman.h>
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

BOOST_AUTO_TEST_SUITE(storage_tier_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace storage;       // NOLINT(google-build-using-namespace): a program file, not a library
using namespace storage_test;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::size_t ps = 4096;
constexpr std::uint64_t pages = 256;

PageStoreConfig config(const BackingFile& file, std::uint64_t blocks = pages, unsigned cores = 1) {
  PageStoreConfig c;
  c.size_bytes = pages * ps;
  c.cores = cores;
  c.backing_blocks = blocks;
  c.backing_fd = file.fd;
  return c;
}

void fill(PageStore& s) {
  for (std::uint64_t i = 0; i < pages; ++i) {
    BOOST_REQUIRE_EQUAL(s.write(0, i * ps, page_of(i + 1)), 0);
  }
}

void check_all(PageStore& s, int fd) {
  std::vector<std::byte> got(ps);
  for (std::uint64_t i = 0; i < pages; ++i) {
    BOOST_REQUIRE_EQUAL(read_through_tier(s, fd, i * ps, got), 0);
    BOOST_REQUIRE_MESSAGE(got == page_of(i + 1), "page " << i << " differs (through the tier, in place)");
    BOOST_REQUIRE_EQUAL(read_through_tier(s, fd, i * ps, got, false), 0);
    BOOST_REQUIRE_MESSAGE(got == page_of(i + 1), "page " << i << " differs (through the tier, own buffer)");
    BOOST_REQUIRE_EQUAL(s.read(0, i * ps, got), 0);
    BOOST_REQUIRE_MESSAGE(got == page_of(i + 1), "page " << i << " differs (synchronous read)");
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(pages_written_back_read_back_exactly_and_free_their_memory) {
  BackingFile file(pages);
  auto s = test::require_ok(PageStore::create(config(file)));
  fill(*s);
  const MmStat before = s->mm_stat();
  const std::uint64_t moved = write_back_all(*s, file.fd, WritebackKind::aged);
  BOOST_TEST(moved == pages);
  const BdStat bd = s->bd_stat();
  BOOST_TEST(bd.bd_writes == pages);
  BOOST_TEST(bd.bd_count > 0u);
  BOOST_TEST(bd.bd_count < pages);  // compressed objects are packed several to a block
  BOOST_TEST(s->tier_stat().written_back_pages == pages);
  const MmStat after = s->mm_stat();
  BOOST_TEST(after.orig_data_size == before.orig_data_size);  // still stored, as in kernel zram
  BOOST_TEST(after.compr_data_size == 0u);
  BOOST_TEST(s->allocator_stats().live_objects == 0u);
  check_all(*s, file.fd);
  BOOST_TEST(s->bd_stat().bd_reads == 3 * pages);
}

BOOST_AUTO_TEST_CASE(a_page_overwritten_during_its_writeback_keeps_the_new_contents) {
  BackingFile file(pages);
  auto s = test::require_ok(PageStore::create(config(file)));
  fill(*s);
  const WritebackBatch b = s->writeback_prepare(0, WritebackKind::aged, 0, 32);
  BOOST_REQUIRE_EQUAL(b.pages, 32u);
  // Overwrite one page of the batch and discard another, then let the
  // write complete: neither may become the stale copy.
  BOOST_REQUIRE_EQUAL(s->write(0, 3 * ps, page_of(9999)), 0);
  BOOST_REQUIRE_EQUAL(s->discard(0, 5 * ps, ps), 0);
  BOOST_TEST(s->writeback_commit(0, b, write_batch(file.fd, b)) == 30u);
  std::vector<std::byte> got(ps);
  BOOST_REQUIRE_EQUAL(read_through_tier(*s, file.fd, 3 * ps, got), 0);
  BOOST_TEST((got == page_of(9999)));
  BOOST_REQUIRE_EQUAL(read_through_tier(*s, file.fd, 5 * ps, got), 0);
  BOOST_TEST((got == std::vector<std::byte>(ps)));
  // Everything else written back reads back; discarding it all empties the tier.
  BOOST_REQUIRE_EQUAL(s->discard(0, 0, pages * ps), 0);
  BOOST_TEST(s->bd_stat().bd_count == 0u);
  BOOST_TEST(s->tier_stat().written_back_pages == 0u);
}

BOOST_AUTO_TEST_CASE(a_failed_backing_write_keeps_every_page_in_ram) {
  BackingFile file(pages);
  auto s = test::require_ok(PageStore::create(config(file)));
  fill(*s);
  const WritebackBatch b = s->writeback_prepare(0, WritebackKind::aged, 0, 32);
  BOOST_REQUIRE(b.pages > 0u);
  BOOST_TEST(s->writeback_commit(0, b, false) == 0u);
  BOOST_TEST(s->tier_stat().write_errors == 1u);
  BOOST_TEST(s->tier_stat().written_back_pages == 0u);
  BOOST_TEST(s->bd_stat().bd_count == 0u);
  check_all(*s, file.fd);
}

BOOST_AUTO_TEST_CASE(a_batch_fills_up_to_writeback_batch_blocks_with_more_pages_when_they_compress) {
  BackingFile file(pages);
  PageStoreConfig c = config(file);
  c.writeback_batch = 8;
  auto s = test::require_ok(PageStore::create(c));
  fill(*s);
  const WritebackBatch b = s->writeback_prepare(0, WritebackKind::aged, 0, writeback_max_pages);
  BOOST_TEST(b.block_count == 8u);
  BOOST_TEST(b.pages > 8u);  // compressed objects pack several to a block
  // max_pages still bounds the pages.
  const WritebackBatch few = s->writeback_prepare(0, WritebackKind::aged, 0, 3);
  BOOST_TEST(few.pages == 3u);
  BOOST_TEST(s->writeback_commit(0, b, write_batch(file.fd, b)) == b.pages);
  BOOST_TEST(s->writeback_commit(0, few, write_batch(file.fd, few)) == 3u);
  check_all(*s, file.fd);
}

BOOST_AUTO_TEST_CASE(two_batches_out_at_once_take_disjoint_pages_and_blocks_and_commit_in_either_order) {
  BackingFile file(pages);
  auto s = test::require_ok(PageStore::create(config(file)));
  fill(*s);
  const WritebackBatch a = s->writeback_prepare(0, WritebackKind::aged, 0, 32);
  const WritebackBatch b = s->writeback_prepare(0, WritebackKind::aged, 0, 32);
  BOOST_REQUIRE_EQUAL(a.pages, 32u);
  BOOST_REQUIRE_EQUAL(b.pages, 32u);
  BOOST_TEST(a.slot != b.slot);
  BOOST_TEST(a.data != b.data);
  for (std::uint32_t i = 0; i < a.block_count; ++i) {
    for (std::uint32_t k = 0; k < b.block_count; ++k) BOOST_REQUIRE(a.blocks[i] != b.blocks[k]);
  }
  // Both slots out: a third prepare gets nothing and changes nothing.
  const WritebackBatch none = s->writeback_prepare(0, WritebackKind::aged, 0, 32);
  BOOST_TEST(none.pages == 0u);
  BOOST_TEST(none.entries_visited == 0u);
  // A page of each batch changes while both are out.
  BOOST_REQUIRE_EQUAL(s->write(0, 3 * ps, page_of(9999)), 0);
  BOOST_REQUIRE_EQUAL(s->discard(0, 40 * ps, ps), 0);
  // The second batch's write completes first, and the first one fails.
  BOOST_TEST(s->writeback_commit(0, b, write_batch(file.fd, b)) == 31u);
  BOOST_TEST(s->writeback_commit(0, a, false) == 0u);
  // Committing a batch again does nothing.
  BOOST_TEST(s->writeback_commit(0, b, true) == 0u);
  BOOST_TEST(s->tier_stat().written_back_pages == 31u);
  BOOST_TEST(s->tier_stat().write_errors == 1u);
  std::vector<std::byte> got(ps);
  for (std::uint64_t i = 0; i < pages; ++i) {
    BOOST_REQUIRE_EQUAL(read_through_tier(*s, file.fd, i * ps, got), 0);
    const std::vector<std::byte> want = i == 3 ? page_of(9999) : i == 40 ? std::vector<std::byte>(ps) : page_of(i + 1);
    BOOST_REQUIRE_MESSAGE(got == want, "page " << i << " differs");
  }
  // The rest, the failed batch's pages among them, is written back again.
  BOOST_TEST(write_back_all(*s, file.fd, WritebackKind::aged) == pages - 32);
  BOOST_REQUIRE_EQUAL(s->discard(0, 0, pages * ps), 0);
  BOOST_TEST(s->bd_stat().bd_count == 0u);
}

// Incompressible page `seed` (stored raw, at the same size whatever its
// bytes), so that a rewrite can land in the very object a batch copied.
std::vector<std::byte> raw_page(std::uint64_t seed) {
  std::vector<std::byte> p(ps);
  std::mt19937_64 rng(seed);
  for (std::byte& b : p) b = static_cast<std::byte>(rng());
  return p;
}

BOOST_AUTO_TEST_CASE(
    a_page_rewritten_while_its_batch_is_out_is_left_out_of_the_other_batch_and_keeps_its_newest_contents) {
  // A once in batch 0; then B, then C, which the arena puts in the object
  // A had (it hands back the object freed last). Were the page taken into
  // batch 1 as well, it would carry the pending mark and A's object again
  // when batch 0 commits, and batch 0's copy of A would replace C.
  BackingFile file(pages);
  auto s = test::require_ok(PageStore::create(config(file)));
  const std::vector<std::byte> a = raw_page(1), b = raw_page(2), c = raw_page(3);
  BOOST_REQUIRE_EQUAL(s->write(0, 0, a), 0);
  const WritebackBatch first = s->writeback_prepare(0, WritebackKind::huge, 0, 32);
  BOOST_REQUIRE_EQUAL(first.pages, 1u);
  BOOST_REQUIRE_EQUAL(s->write(0, 0, b), 0);
  BOOST_REQUIRE_EQUAL(s->write(0, 0, c), 0);
  const WritebackBatch second = s->writeback_prepare(0, WritebackKind::huge, 0, 32);
  BOOST_TEST(second.pages == 0u);
  BOOST_TEST(s->writeback_commit(0, first, write_batch(file.fd, first)) == 0u);  // changed since: stays in RAM
  if (second.pages != 0) s->writeback_commit(0, second, write_batch(file.fd, second));
  std::vector<std::byte> got(ps);
  BOOST_REQUIRE_EQUAL(s->read(0, 0, got), 0);
  BOOST_TEST((got == c));
  // Now that batch 0 is in, the page is taken again, and its copy is C.
  BOOST_REQUIRE_EQUAL(write_back_all(*s, file.fd, WritebackKind::huge), 1u);
  BOOST_REQUIRE_EQUAL(read_through_tier(*s, file.fd, 0, got), 0);
  BOOST_TEST((got == c));
}

BOOST_AUTO_TEST_CASE(random_operations_with_two_batches_out_per_core_match_a_reference) {
  BackingFile file(pages / 2);
  auto s = test::require_ok(PageStore::create(config(file, pages / 2, 2)));
  std::map<std::uint64_t, std::uint64_t> reference;  // page -> seed (absent: zeros)
  std::mt19937_64 rng(11);
  // Per core, the batches out, completed in random order.
  std::vector<WritebackBatch> out[2];
  std::vector<std::byte> got(ps);
  for (int step = 0; step < 20000; ++step) {
    const unsigned core = static_cast<unsigned>(rng() % 2);
    const std::uint64_t page = rng() % pages;
    switch (rng() % 8) {
      case 0:
      case 1:
      case 2: {
        const std::uint64_t seed = rng() % 100000 + 1;
        BOOST_REQUIRE_EQUAL(s->write(core, page * ps, page_of(seed)), 0);
        reference[page] = seed;
        break;
      }
      case 3:
        BOOST_REQUIRE_EQUAL(s->discard(core, page * ps, ps), 0);
        reference.erase(page);
        break;
      case 4: {
        const WritebackBatch b = s->writeback_prepare(core, WritebackKind::aged, 0, 1 + rng() % 32);
        BOOST_REQUIRE(b.pages == 0 || out[core].size() < writeback_slots);
        if (b.pages != 0) out[core].push_back(b);
        break;
      }
      case 5:
        if (!out[core].empty()) {
          const std::size_t k = rng() % out[core].size();
          s->writeback_commit(core, out[core][k], rng() % 10 != 0 && write_batch(file.fd, out[core][k]));
          out[core].erase(out[core].begin() + static_cast<std::ptrdiff_t>(k));
        }
        break;
      default: {
        BOOST_REQUIRE_EQUAL(read_through_tier(*s, file.fd, page * ps, got), 0);
        const auto it = reference.find(page);
        const std::vector<std::byte> want = it == reference.end() ? std::vector<std::byte>(ps) : page_of(it->second);
        BOOST_REQUIRE_MESSAGE(got == want, "page " << page << " differs at step " << step);
      }
    }
    if (step % 1000 == 0) {
      s->drain_remote_frees(0);
      s->drain_remote_frees(1);
    }
  }
  for (unsigned core = 0; core < 2; ++core) {
    for (const WritebackBatch& b : out[core]) s->writeback_commit(core, b, write_batch(file.fd, b));
  }
  for (std::uint64_t page = 0; page < pages; ++page) {
    BOOST_REQUIRE_EQUAL(s->read(0, page * ps, got), 0);
    const auto it = reference.find(page);
    BOOST_REQUIRE((got == (it == reference.end() ? std::vector<std::byte>(ps) : page_of(it->second))));
  }
  BOOST_TEST(s->bd_stat().bd_writes > 0u);
  BOOST_REQUIRE_EQUAL(s->discard(0, 0, pages * ps), 0);
  BOOST_TEST(s->bd_stat().bd_count == 0u);
}

BOOST_AUTO_TEST_CASE(a_failed_backing_read_is_an_io_error_and_releases_the_block) {
  BackingFile file(pages);
  auto s = test::require_ok(PageStore::create(config(file)));
  fill(*s);
  write_back_all(*s, file.fd, WritebackKind::aged);
  std::vector<BackingRead> misses(4);
  std::size_t missed = 0;
  std::vector<std::byte> got(2 * ps);
  BOOST_REQUIRE_EQUAL(s->read_resident(0, 0, got, misses, missed), 0);
  BOOST_REQUIRE_EQUAL(missed, 2u);
  BOOST_TEST(s->finish_backing_read(0, misses[0], {}) == -EIO);
  BOOST_TEST(s->finish_backing_read(0, misses[1], {}) == -EIO);
  BOOST_TEST(s->tier_stat().read_errors == 2u);
  // Too small a miss list is an error too, with every pin released: the
  // tier can still be emptied and reused.
  BOOST_TEST(s->read_resident(0, 0, got, std::span<BackingRead>(misses.data(), 1), missed) == -EIO);
  BOOST_REQUIRE_EQUAL(s->discard(0, 0, pages * ps), 0);
  BOOST_TEST(s->bd_stat().bd_count == 0u);
  fill(*s);
  BOOST_TEST(write_back_all(*s, file.fd, WritebackKind::aged) == pages);
}

BOOST_AUTO_TEST_CASE(idle_writeback_takes_only_pages_marked_idle_and_not_read_since) {
  BackingFile file(pages);
  auto s = test::require_ok(PageStore::create(config(file)));
  s->set_clock(100);
  fill(*s);
  std::uint64_t next = 0;
  std::uint64_t marked = 0;
  while (next < pages) marked += s->mark_idle_step(0, 0, next);
  BOOST_TEST(marked == pages);
  std::vector<std::byte> got(ps);
  for (std::uint64_t i = 0; i < pages; i += 2) BOOST_REQUIRE_EQUAL(s->read(0, i * ps, got), 0);  // accessed
  BOOST_TEST(write_back_all(*s, file.fd, WritebackKind::idle) == pages / 2);
  // Aged: nothing is 50 s old at time 120; everything is at time 200.
  s->set_clock(120);
  BOOST_TEST(write_back_all(*s, file.fd, WritebackKind::aged, 50) == 0u);  // the rest were read at 100
  s->set_clock(200);
  BOOST_TEST(write_back_all(*s, file.fd, WritebackKind::aged, 50) == pages / 2);
  check_all(*s, file.fd);
}

BOOST_AUTO_TEST_CASE(huge_writeback_takes_only_pages_stored_raw) {
  BackingFile file(pages);
  auto s = test::require_ok(PageStore::create(config(file)));
  fill(*s);
  const std::uint64_t huge = s->mm_stat().huge_pages;
  BOOST_REQUIRE(huge > 0u);
  BOOST_TEST(write_back_all(*s, file.fd, WritebackKind::huge) == huge);
  BOOST_TEST(s->mm_stat().huge_pages == 0u);
  BOOST_TEST(s->bd_stat().bd_count == huge);  // a raw page fills its block
  check_all(*s, file.fd);
}

BOOST_AUTO_TEST_CASE(a_full_backing_tier_takes_what_fits_and_the_rest_stays_in_ram) {
  BackingFile file(8);
  auto s = test::require_ok(PageStore::create(config(file, 8)));
  fill(*s);
  const std::uint64_t moved = write_back_all(*s, file.fd, WritebackKind::aged);
  BOOST_TEST(moved > 0u);
  BOOST_TEST(moved < pages);
  BOOST_TEST(s->bd_stat().bd_count <= 8u);
  check_all(*s, file.fd);
}

BOOST_AUTO_TEST_CASE(a_recovered_store_reads_its_written_back_pages_and_refuses_another_tier_or_tier_size) {
  BackingFile file(pages);
  PageStoreConfig c = config(file);
  c.memory = runtime::MemoryKind::shared;
  std::vector<int> fds;
  {
    auto s = test::require_ok(PageStore::create(c));
    fill(*s);
    write_back_all(*s, file.fd, WritebackKind::aged);
    // One batch left in flight when the server dies: its pages stay in RAM.
    BOOST_REQUIRE_EQUAL(s->write(0, 0, page_of(1)), 0);
    BOOST_REQUIRE(s->writeback_prepare(0, WritebackKind::aged, 0, 32).pages == 1u);
    for (int fd : s->memory_fds()) fds.push_back(::dup(fd));
  }
  PageStoreConfig other = c;
  other.backing_blocks = pages * 2;
  const auto refused = PageStore::attach(other, fds);
  BOOST_REQUIRE(!refused);
  BOOST_TEST(refused.error().message().find("backing blocks") != std::string::npos);
  // Another file of the same size is not this store's tier: refused.
  BackingFile stranger(pages);
  PageStoreConfig wrong_file = c;
  wrong_file.backing_fd = stranger.fd;
  const auto not_ours = PageStore::attach(wrong_file, fds);
  BOOST_REQUIRE(!not_ours);
  BOOST_TEST(not_ours.error().message().find("not the one") != std::string::npos);
  auto s = test::require_ok(PageStore::attach(c, fds));
  BOOST_TEST(s->tier_stat().written_back_pages == pages - 1);
  check_all(*s, file.fd);
  // The in-flight page can be written back again, and everything freed.
  BOOST_TEST(write_back_all(*s, file.fd, WritebackKind::aged) == 1u);
  BOOST_REQUIRE_EQUAL(s->discard(0, 0, pages * ps), 0);
  BOOST_TEST(s->bd_stat().bd_count == 0u);
  for (int fd : fds) ::close(fd);
}

BOOST_AUTO_TEST_CASE(random_writes_discards_and_writebacks_from_two_cores_match_a_reference) {
  BackingFile file(pages / 2);
  PageStoreConfig c = config(file, pages / 2, 2);
  auto s = test::require_ok(PageStore::create(c));
  std::map<std::uint64_t, std::uint64_t> reference;  // page -> seed (absent: zeros)
  std::mt19937_64 rng(7);
  bool outstanding[2] = {false, false};
  WritebackBatch batches[2];
  std::vector<std::byte> got(ps);
  for (int step = 0; step < 20000; ++step) {
    const unsigned core = static_cast<unsigned>(rng() % 2);
    const std::uint64_t page = rng() % pages;
    switch (rng() % 8) {
      case 0:
      case 1:
      case 2: {
        const std::uint64_t seed = rng() % 100000 + 1;
        BOOST_REQUIRE_EQUAL(s->write(core, page * ps, page_of(seed)), 0);
        reference[page] = seed;
        break;
      }
      case 3:
        BOOST_REQUIRE_EQUAL(s->discard(core, page * ps, ps), 0);
        reference.erase(page);
        break;
      case 4:
        if (!outstanding[core]) {
          batches[core] = s->writeback_prepare(core, WritebackKind::aged, 0, 1 + rng() % 32);
          outstanding[core] = batches[core].pages != 0;
        }
        break;
      case 5:
        if (outstanding[core]) {
          s->writeback_commit(core, batches[core], rng() % 10 != 0 && write_batch(file.fd, batches[core]));
          outstanding[core] = false;
        }
        break;
      default: {
        BOOST_REQUIRE_EQUAL(read_through_tier(*s, file.fd, page * ps, got), 0);
        const auto it = reference.find(page);
        const std::vector<std::byte> want = it == reference.end() ? std::vector<std::byte>(ps) : page_of(it->second);
        BOOST_REQUIRE_MESSAGE(got == want, "page " << page << " differs at step " << step);
      }
    }
    if (step % 1000 == 0) {
      s->drain_remote_frees(0);
      s->drain_remote_frees(1);
    }
  }
  for (unsigned core = 0; core < 2; ++core) {
    if (outstanding[core]) s->writeback_commit(core, batches[core], write_batch(file.fd, batches[core]));
  }
  for (std::uint64_t page = 0; page < pages; ++page) {
    BOOST_REQUIRE_EQUAL(s->read(0, page * ps, got), 0);
    const auto it = reference.find(page);
    BOOST_REQUIRE((got == (it == reference.end() ? std::vector<std::byte>(ps) : page_of(it->second))));
  }
  BOOST_TEST(s->bd_stat().bd_writes > 0u);
  BOOST_REQUIRE_EQUAL(s->discard(0, 0, pages * ps), 0);
  BOOST_TEST(s->bd_stat().bd_count == 0u);
}

BOOST_AUTO_TEST_CASE(recompression_keeps_only_smaller_objects_and_every_page_reads_back) {
  BackingFile file(pages);
  PageStoreConfig c = config(file);
  c.memory = runtime::MemoryKind::shared;
  c.recompress = compress::CodecSpec{compress::Algorithm::zstd, 19};
  std::vector<int> fds;
  {
    auto s = test::require_ok(PageStore::create(c));
    fill(*s);
    const MmStat before = s->mm_stat();
    std::uint32_t recompressed = 0, tried = 0;
    for (bool wrapped = false; !wrapped;) {
      const RecompressStep step = s->recompress_step(0, WritebackKind::aged, 0, 8);
      recompressed += step.recompressed;
      tried += step.tried;
      wrapped = step.wrapped;
    }
    const MmStat after = s->mm_stat();
    BOOST_TEST(recompressed > 0u);
    BOOST_TEST(tried == s->allocator_stats().live_objects);
    BOOST_TEST(after.compr_data_size < before.compr_data_size);
    BOOST_TEST(s->tier_stat().recompressed_pages == recompressed);
    // Tried pages are passed by: a second walk recompresses nothing.
    BOOST_TEST(s->recompress_step(0, WritebackKind::aged, 0, 1000).tried == 0u);
    check_all(*s, file.fd);
    // Recompressed objects written back read back too.
    write_back_all(*s, file.fd, WritebackKind::aged);
    check_all(*s, file.fd);
    for (int fd : s->memory_fds()) fds.push_back(::dup(fd));
  }
  // The memory holds zstd objects: a store without the secondary codec
  // refuses it rather than misread them; with it, every page reads back.
  PageStoreConfig plain = c;
  plain.recompress.reset();
  const auto refused = PageStore::attach(plain, fds);
  BOOST_REQUIRE(!refused);
  BOOST_TEST(refused.error().message().find("another algorithm") != std::string::npos);
  auto s = test::require_ok(PageStore::attach(c, fds));
  check_all(*s, file.fd);
  for (int fd : fds) ::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()  // storage_tier_test
