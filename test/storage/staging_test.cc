// PageStore's staging area (asynchronous compression): a staged page reads
// back from its slot, install_staged compresses it in place, and a page
// changed while staged keeps its new contents. Also: staged pages count
// against the memory limit, and in shared memory pages still staged when
// their server died are installed by recovery (damaged staged entries are
// refused).
#include <boost/test/unit_test.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "coblk/storage/page_store.h"
#include "coblk/storage/store_layout.h"
#include "test/require_ok.h"
#include "test/storage/page_gen.h"

BOOST_AUTO_TEST_SUITE(storage_staging_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace storage;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::size_t ps = 4096;
constexpr std::uint64_t pages = 256;

PageStoreConfig config(std::uint32_t staging = 8, unsigned cores = 1, std::uint64_t mem_limit = 0) {
  PageStoreConfig c;
  c.size_bytes = pages * ps;
  c.cores = cores;
  c.staging_pages = staging;
  c.mem_limit_bytes = mem_limit;
  return c;
}

std::vector<std::byte> page_of(std::uint64_t seed) {
  std::vector<std::byte> p(ps);
  storage_test::make_page(p, seed);
  return p;
}

std::vector<std::byte> read_page(PageStore& s, std::uint64_t index, unsigned core = 0) {
  std::vector<std::byte> out(ps);
  BOOST_REQUIRE_EQUAL(s.read(core, index * ps, out), 0);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_staged_page_reads_back_before_and_after_it_is_installed) {
  auto store = test::require_ok(PageStore::create(config()));
  const auto page = page_of(7);
  BOOST_REQUIRE_EQUAL(store->stage(0, 3, 5 * ps, page), 0);
  BOOST_TEST(store->mm_stat().staged_pages == 1u);
  BOOST_TEST(store->mm_stat().orig_data_size == ps);
  BOOST_TEST(read_page(*store, 5) == page);
  BOOST_REQUIRE_EQUAL(store->install_staged(0, StagedRef{0, 3}), 0);
  BOOST_TEST(store->mm_stat().staged_pages == 0u);
  BOOST_TEST(store->mm_stat().orig_data_size == ps);
  BOOST_TEST(store->mm_stat().compr_data_size > 0u);
  BOOST_TEST(read_page(*store, 5) == page);
}

BOOST_AUTO_TEST_CASE(a_page_overwritten_while_staged_keeps_the_newer_data_after_the_install) {
  auto store = test::require_ok(PageStore::create(config()));
  const auto old_page = page_of(1);
  const auto new_page = page_of(2);
  BOOST_REQUIRE_EQUAL(store->stage(0, 0, 0, old_page), 0);
  BOOST_REQUIRE_EQUAL(store->write(0, 0, new_page), 0);  // inline overwrite
  BOOST_REQUIRE_EQUAL(store->install_staged(0, StagedRef{0, 0}), 0);
  BOOST_TEST(read_page(*store, 0) == new_page);
  BOOST_TEST(store->mm_stat().staged_pages == 0u);
  BOOST_TEST(store->mm_stat().orig_data_size == ps);
}

BOOST_AUTO_TEST_CASE(a_page_restaged_in_another_slot_is_installed_from_the_newer_slot_only) {
  auto store = test::require_ok(PageStore::create(config()));
  const auto first = page_of(3);
  const auto second = page_of(4);
  BOOST_REQUIRE_EQUAL(store->stage(0, 0, 9 * ps, first), 0);
  BOOST_REQUIRE_EQUAL(store->stage(0, 1, 9 * ps, second), 0);
  BOOST_TEST(store->mm_stat().staged_pages == 1u);
  BOOST_TEST(read_page(*store, 9) == second);
  // The newer slot installs first; the older one then finds the page no
  // longer names it and drops its work.
  BOOST_REQUIRE_EQUAL(store->install_staged(0, StagedRef{0, 1}), 0);
  BOOST_REQUIRE_EQUAL(store->install_staged(0, StagedRef{0, 0}), 0);
  BOOST_TEST(read_page(*store, 9) == second);
  BOOST_TEST(store->mm_stat().staged_pages == 0u);
  // No memory is left behind: the same as the page written inline.
  auto reference = test::require_ok(PageStore::create(config()));
  BOOST_REQUIRE_EQUAL(reference->write(0, 9 * ps, second), 0);
  BOOST_TEST(store->mm_stat().mem_used_total == reference->mm_stat().mem_used_total);
}

BOOST_AUTO_TEST_CASE(a_page_discarded_while_staged_reads_as_zeros_after_the_install) {
  auto store = test::require_ok(PageStore::create(config()));
  BOOST_REQUIRE_EQUAL(store->stage(0, 2, 4 * ps, page_of(5)), 0);
  BOOST_REQUIRE_EQUAL(store->discard(0, 4 * ps, ps), 0);
  BOOST_TEST(store->mm_stat().staged_pages == 0u);
  BOOST_REQUIRE_EQUAL(store->install_staged(0, StagedRef{0, 2}), 0);
  BOOST_TEST(read_page(*store, 4) == std::vector<std::byte>(ps));
  BOOST_TEST(store->mm_stat().orig_data_size == 0u);
  BOOST_TEST(store->mm_stat().mem_used_total == 0u);
}

BOOST_AUTO_TEST_CASE(a_partial_write_to_a_staged_page_merges_with_the_staged_bytes) {
  auto store = test::require_ok(PageStore::create(config()));
  auto page = page_of(6);
  BOOST_REQUIRE_EQUAL(store->stage(0, 0, 0, page), 0);
  const std::vector<std::byte> patch(512, std::byte{0x5a});
  BOOST_REQUIRE_EQUAL(store->write(0, 1024, patch), 0);
  std::memcpy(page.data() + 1024, patch.data(), patch.size());
  BOOST_REQUIRE_EQUAL(store->install_staged(0, StagedRef{0, 0}), 0);
  BOOST_TEST(read_page(*store, 0) == page);
}

BOOST_AUTO_TEST_CASE(a_same_filled_page_is_stored_at_once_and_uses_no_slot) {
  auto store = test::require_ok(PageStore::create(config()));
  const std::vector<std::byte> zeros(ps);
  std::vector<std::byte> ones(ps, std::byte{1});
  BOOST_TEST(store->stage(0, 0, 0, zeros) == 1);
  BOOST_TEST(store->stage(0, 0, ps, ones) == 1);
  BOOST_TEST(store->mm_stat().staged_pages == 0u);
  BOOST_TEST(store->mm_stat().same_pages == 2u);
  BOOST_TEST(read_page(*store, 1) == ones);
}

BOOST_AUTO_TEST_CASE(staged_pages_count_against_the_memory_limit_and_still_install_when_they_fill_it) {
  // Sixteen pages of room: sixteen staged pages fill it, another is refused
  // (the caller then writes it inline, with the limit's own handling).
  auto store = test::require_ok(PageStore::create(config(17, 1, 16 * ps)));
  // Pages 0..3 alike (one size class, so one span holds their objects).
  auto seed_of = [](std::uint32_t i) { return i < 4 ? 20u : 20u + i; };
  for (std::uint32_t i = 0; i < 16; ++i) {
    BOOST_REQUIRE_EQUAL(store->stage(0, i, i * ps, page_of(seed_of(i))), 0);
  }
  BOOST_TEST(store->mm_stat().mem_used_total == 16 * ps);
  BOOST_TEST(store->stage(0, 16, 16 * ps, page_of(99)) == -ENOSPC);
  // No room is left for a new span, and staged pages give theirs back only
  // once installed: each install must then use its own slot's room (the
  // page is stored as it is), or none would ever finish and every later
  // write would fail.
  for (std::uint32_t i = 0; i < 16; ++i) {
    BOOST_REQUIRE_EQUAL(store->install_staged(0, StagedRef{0, i}), 0);
    BOOST_TEST(store->mm_stat().mem_used_total <= 16 * ps);
  }
  BOOST_TEST(store->mm_stat().staged_pages == 0u);
  for (std::uint32_t i = 0; i < 16; ++i) {
    BOOST_TEST(read_page(*store, i) == page_of(seed_of(i)));
  }
  // Discarded pages give their room back (what the arena keeps cached,
  // once reclaimed, as the write path does at the limit); slots stage again.
  for (std::uint32_t i = 4; i < 16; ++i) {
    BOOST_REQUIRE_EQUAL(store->discard(0, i * ps, ps), 0);
  }
  store->reclaim(0);
  BOOST_REQUIRE_EQUAL(store->stage(0, 16, 16 * ps, page_of(99)), 0);
  BOOST_REQUIRE_EQUAL(store->install_staged(0, StagedRef{0, 16}), 0);
  BOOST_TEST(read_page(*store, 16) == page_of(99));
  BOOST_TEST(store->mm_stat().mem_used_total <= 16 * ps);
}

BOOST_AUTO_TEST_CASE(bad_slots_offsets_and_a_store_without_staging_are_refused) {
  auto store = test::require_ok(PageStore::create(config(4)));
  const auto page = page_of(1);
  BOOST_TEST(store->stage(0, 4, 0, page) == -EIO);                                          // slot past the area
  BOOST_TEST(store->stage(0, 0, 100, page) == -EIO);                                        // unaligned
  BOOST_TEST(store->stage(0, 0, pages * ps, page) == -EIO);                                 // past the end
  BOOST_TEST(store->stage(1, 0, 0, page) == -EIO);                                          // no such core
  BOOST_TEST(store->stage(0, 0, 0, std::span<const std::byte>(page.data(), 512)) == -EIO);  // not a page
  auto plain = test::require_ok(PageStore::create(config(0)));
  BOOST_TEST(plain->stage(0, 0, 0, page) == -EIO);
}

BOOST_AUTO_TEST_CASE(pages_still_staged_when_their_server_died_are_installed_by_recovery_and_read_back) {
  PageStoreConfig c = config(4, 2);
  c.memory = runtime::MemoryKind::shared;
  std::vector<int> fds;
  MmStat before;
  {
    auto store = test::require_ok(PageStore::create(c));
    BOOST_REQUIRE_EQUAL(store->stage(0, 0, 1 * ps, page_of(1)), 0);
    BOOST_REQUIRE_EQUAL(store->stage(0, 1, 2 * ps, page_of(2)), 0);
    BOOST_REQUIRE_EQUAL(store->install_staged(1, StagedRef{0, 1}), 0);  // page 2 compressed
    BOOST_REQUIRE_EQUAL(store->stage(1, 3, 3 * ps, page_of(3)), 0);
    BOOST_REQUIRE_EQUAL(store->stage(1, 0, 4 * ps, page_of(4)), 0);
    BOOST_REQUIRE_EQUAL(store->write(1, 4 * ps, page_of(40)), 0);  // overwritten while staged
    BOOST_REQUIRE_EQUAL(store->stage(0, 2, 5 * ps, page_of(5)), 0);
    BOOST_REQUIRE_EQUAL(store->discard(0, 5 * ps, ps), 0);  // discarded while staged
    before = store->mm_stat();
    BOOST_TEST(before.staged_pages == 2u);  // pages 1 and 3
    for (const int fd : store->memory_fds()) fds.push_back(::dup(fd));
  }  // the "server" is gone; its slots still hold pages 1 and 3
  auto store = test::require_ok(PageStore::attach(c, fds));
  const MmStat after = store->mm_stat();
  BOOST_TEST(after.staged_pages == 0u);
  BOOST_TEST(after.orig_data_size == before.orig_data_size);
  BOOST_TEST(read_page(*store, 1) == page_of(1));
  BOOST_TEST(read_page(*store, 2, 1) == page_of(2));
  BOOST_TEST(read_page(*store, 3) == page_of(3));
  BOOST_TEST(read_page(*store, 4) == page_of(40));
  BOOST_TEST(read_page(*store, 5) == std::vector<std::byte>(ps));
  BOOST_TEST(store->allocator_stats().live_objects == 4u);  // pages 1 to 4, each an object
  // Every slot is free again: staging into any of them works.
  for (std::uint32_t slot = 0; slot < 4; ++slot) {
    BOOST_REQUIRE_EQUAL(store->stage(0, slot, (10 + slot) * ps, page_of(10 + slot)), 0);
    BOOST_REQUIRE_EQUAL(store->install_staged(0, StagedRef{0, slot}), 0);
    BOOST_TEST(read_page(*store, 10 + slot) == page_of(10 + slot));
  }
  for (const int fd : fds) ::close(fd);
}

BOOST_AUTO_TEST_CASE(pages_staged_at_the_memory_limit_are_installed_by_recovery_past_the_limit) {
  // A server at its limit: two incompressible pages staged (each waits
  // for a span of its own), then writes until the limit refuses them.
  PageStoreConfig c = config(16, 1, 256 * ps);
  c.size_bytes = 4 * pages * ps;  // more pages than the limit holds
  c.memory = runtime::MemoryKind::shared;
  std::mt19937_64 rng(7);
  auto noise = [&] {
    std::vector<std::byte> p(ps);
    for (std::byte& b : p) b = static_cast<std::byte>(rng());
    return p;
  };
  const std::vector<std::byte> first = noise(), second = noise();
  std::vector<int> fds;
  MmStat before;
  {
    auto store = test::require_ok(PageStore::create(c));
    BOOST_REQUIRE_EQUAL(store->stage(0, 0, 0, first), 0);
    BOOST_REQUIRE_EQUAL(store->stage(0, 1, 1 * ps, second), 0);
    std::uint64_t written = 0;
    for (std::uint64_t i = 2; i < 4 * pages && store->write(0, i * ps, noise()) == 0; ++i) ++written;
    BOOST_REQUIRE(written > 0u);
    before = store->mm_stat();
    BOOST_REQUIRE_EQUAL(before.staged_pages, 2u);
    BOOST_REQUIRE(before.mem_used_total >= before.mem_limit - ps);  // at the limit
    for (const int fd : store->memory_fds()) fds.push_back(::dup(fd));
  }  // killed with both pages still staged
  auto store = test::require_ok(PageStore::attach(c, fds));
  const MmStat after = store->mm_stat();
  BOOST_TEST(after.staged_pages == 0u);
  BOOST_TEST(after.orig_data_size == before.orig_data_size);
  BOOST_TEST(read_page(*store, 0) == first);
  BOOST_TEST(read_page(*store, 1) == second);
  // At or past the limit now: a new page is refused, never stored over
  // another.
  BOOST_TEST(after.mem_used_total >= after.mem_limit);
  BOOST_TEST(store->write(0, (4 * pages - 1) * ps, noise()) == -ENOSPC);
  // Frees bring it back under the limit, and writes work again.
  BOOST_REQUIRE_EQUAL(store->discard(0, 2 * ps, 32 * ps), 0);
  BOOST_TEST(store->mm_stat().mem_used_total <= after.mem_limit);
  BOOST_TEST(store->write(0, (4 * pages - 1) * ps, noise()) == 0);
  for (const int fd : fds) ::close(fd);
}

BOOST_AUTO_TEST_CASE(saved_memory_whose_staged_entries_are_damaged_or_made_for_another_staging_area_is_refused) {
  PageStoreConfig c = config(4, 1);
  c.memory = runtime::MemoryKind::shared;
  std::vector<int> fds;
  {
    auto store = test::require_ok(PageStore::create(c));
    BOOST_REQUIRE_EQUAL(store->stage(0, 0, 1 * ps, page_of(1)), 0);
    BOOST_REQUIRE_EQUAL(store->stage(0, 1, 2 * ps, page_of(2)), 0);
    for (const int fd : store->memory_fds()) fds.push_back(::dup(fd));
  }
  auto refusal = [&](const PageStoreConfig& with, int code) {
    const auto r = PageStore::attach(with, fds);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().code() == code);
    BOOST_TEST(r.error().message().find('\n') == std::string::npos);
    return r ? std::string() : r.error().message();
  };
  PageStoreConfig other = c;
  other.staging_pages = 8;
  BOOST_TEST(refusal(other, EINVAL).find("geometry") != std::string::npos);
  // The page table, mapped to damage page 2's entry: first a slot past the
  // area, then the slot page 1's entry names.
  const std::size_t bytes = layout::region_bytes(pages, 1, 4);
  auto* table = static_cast<std::byte*>(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0));
  BOOST_REQUIRE(table != MAP_FAILED);
  auto* value = reinterpret_cast<std::uint64_t*>(table + layout::entries_offset + 2 * sizeof(PageEntry));
  const std::uint64_t saved = *value;
  *value = StagedRef{0, 4}.encode();
  BOOST_TEST(refusal(c, EIO).find("beyond the staging area") != std::string::npos);
  *value = StagedRef{1, 0}.encode();
  BOOST_TEST(refusal(c, EIO).find("beyond the staging area") != std::string::npos);
  *value = StagedRef{0, 0}.encode();
  BOOST_TEST(refusal(c, EIO).find("another page names too") != std::string::npos);
  *value = saved;
  ::munmap(table, bytes);
  auto store = test::require_ok(PageStore::attach(c, fds));
  BOOST_TEST(read_page(*store, 1) == page_of(1));
  BOOST_TEST(read_page(*store, 2) == page_of(2));
  for (const int fd : fds) ::close(fd);
}

BOOST_AUTO_TEST_CASE(pages_staged_on_one_core_and_installed_on_another_race_with_reads_and_overwrites) {
  // Core 0 stages pages and overwrites some inline; core 1 installs every
  // staged slot as soon as it is handed over; core 0 reads each page back
  // after each change. Every read must return the page's latest data.
  constexpr std::uint32_t slots = 16;
  auto store = test::require_ok(PageStore::create(config(slots, 2)));
  std::atomic<std::uint32_t> handed[slots];
  for (auto& h : handed) h.store(0, std::memory_order_relaxed);
  std::atomic<bool> done{false};
  std::thread installer([&] {
    while (!done.load(std::memory_order_acquire)) {
      for (std::uint32_t s = 0; s < slots; ++s) {
        if (handed[s].load(std::memory_order_acquire) == 1) {
          while (store->install_staged(1, StagedRef{0, s}) != 0) {}
          handed[s].store(0, std::memory_order_release);
        }
      }
    }
  });
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> seed_of(pages, 0);
  bool all_match = true;
  for (int op = 0; op < 3000 && all_match; ++op) {
    const std::uint64_t index = rng() % 32;
    const std::uint64_t seed = 1000 + static_cast<std::uint64_t>(op);
    const auto page = page_of(seed);
    if (rng() % 4 == 0) {
      BOOST_REQUIRE_EQUAL(store->write(0, index * ps, page), 0);
    } else {
      std::uint32_t slot = slots;
      while (slot == slots) {
        for (std::uint32_t s = 0; s < slots; ++s) {
          if (handed[s].load(std::memory_order_acquire) == 0) {
            slot = s;
            break;
          }
        }
      }
      BOOST_REQUIRE_EQUAL(store->stage(0, slot, index * ps, page), 0);
      handed[slot].store(1, std::memory_order_release);
    }
    seed_of[index] = seed;
    all_match = read_page(*store, index) == page;
  }
  done.store(true, std::memory_order_release);
  installer.join();
  BOOST_TEST(all_match);
  for (std::uint32_t s = 0; s < slots; ++s) {
    if (handed[s].load(std::memory_order_acquire) == 1) {
      BOOST_REQUIRE_EQUAL(store->install_staged(1, StagedRef{0, s}), 0);
    }
  }
  BOOST_TEST(store->mm_stat().staged_pages == 0u);
  for (std::uint64_t i = 0; i < 32; ++i) {
    if (seed_of[i] != 0) {
      BOOST_TEST(read_page(*store, i) == page_of(seed_of[i]));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()  // storage_staging_test
