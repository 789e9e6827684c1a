// A zram server used as swap locks its memory (mlockall with MCL_ONFAULT).
// The store must still work and still give freed memory back then, although
// the kernel refuses MADV_DONTNEED on locked pages.
#include <boost/test/unit_test.hpp>

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "coblk/storage/page_store.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(storage_locked_memory_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

BOOST_AUTO_TEST_CASE(freed_memory_is_returned_even_when_the_process_memory_is_locked) {
  if (::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0) {
    BOOST_TEST_MESSAGE("skipped: cannot lock memory here: " << std::strerror(errno));
    return;
  }
  storage::PageStoreConfig c;
  c.size_bytes = 64ull << 20;
  c.cores = 1;
  c.cached_pages_kept = 0;
  c.skip_incompressible = false;
  const auto owned_store = test::require_ok(storage::PageStore::create(c));
  storage::PageStore& store = *owned_store;

  std::mt19937_64 rng(1);
  std::vector<std::byte> page(4096);
  for (std::uint64_t p = 0; p < 4096; ++p) {
    for (std::size_t i = 0; i < page.size(); i += 8) {
      const std::uint64_t v = i < 2048 ? rng() : 0x2020202020202020ull;
      std::memcpy(page.data() + i, &v, 8);
    }
    BOOST_REQUIRE(store.write(0, p * 4096, page) == 0);
  }
  const std::uint64_t used = store.mm_stat().mem_used_total;
  BOOST_TEST(used > (4u << 20));

  BOOST_REQUIRE(store.discard(0, 0, 16ull << 20) == 0);
  while (!store.drain_remote_frees(0)) {}
  BOOST_TEST(store.mm_stat().mem_used_total < used / 8);
  BOOST_TEST(store.mm_stat().orig_data_size == 0u);

  // The released range is usable (and locked on fault) again.
  BOOST_REQUIRE(store.write(0, 0, page) == 0);
  std::vector<std::byte> back(4096);
  BOOST_REQUIRE(store.read(0, 0, back) == 0);
  BOOST_TEST((back == page));
  ::munlockall();
}

BOOST_AUTO_TEST_SUITE_END()  // storage_locked_memory_test
