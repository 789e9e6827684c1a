// PageStore::attach: a store recovered from shared memory serves every page
// it held, with the same statistics; memory of another geometry or format,
// or with a corrupt entry, is refused with one clear line, never served.
#include <boost/test/unit_test.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "coblk/storage/page_store.h"
#include "coblk/storage/store_layout.h"
#include "test/require_ok.h"
#include "test/storage/page_gen.h"

BOOST_AUTO_TEST_SUITE(storage_recovery_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace storage;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::size_t ps = 4096;
constexpr std::uint64_t pages = 512;

PageStoreConfig config(unsigned cores = 2) {
  PageStoreConfig c;
  c.size_bytes = pages * ps;
  c.cores = cores;
  c.memory = runtime::MemoryKind::shared;
  return c;
}

std::vector<std::byte> page_of(std::uint64_t seed) {
  std::vector<std::byte> p(ps);
  if (seed % 5 == 0) {
    std::memset(p.data(), static_cast<int>(seed & 0xff), ps);  // same-filled
  } else {
    storage_test::make_page(p, seed);  // compressible to raw, by seed
  }
  return p;
}

// The memory of a store filled with page_of(i + 1) at page i (odd pages
// from core 1), with some pages overwritten and discarded. Returns dups of
// its fds; the store itself is gone, as after a crash.
std::vector<int> filled_memory(const PageStoreConfig& c, MmStat* stat = nullptr) {
  std::unique_ptr<PageStore> store = test::require_ok(PageStore::create(c));
  for (std::uint64_t i = 0; i < pages; ++i) {
    BOOST_REQUIRE_EQUAL(store->write(i % c.cores, i * ps, page_of(i + 1)), 0);
  }
  for (std::uint64_t i = 0; i < pages; i += 7) {
    BOOST_REQUIRE_EQUAL(store->write((i + 1) % c.cores, i * ps, page_of(i + 1)), 0);  // a remote free
  }
  BOOST_REQUIRE_EQUAL(store->discard(0, 100 * ps, 20 * ps), 0);
  if (stat != nullptr) *stat = store->mm_stat();
  std::vector<int> fds;
  for (const int fd : store->memory_fds()) fds.push_back(::dup(fd));
  return fds;
}

void close_all(const std::vector<int>& fds) {
  for (const int fd : fds) ::close(fd);
}

// The page table of `fds`, mapped for the test to damage.
struct TableView {
  explicit TableView(int fd) : bytes(layout::table_bytes(pages)) {
    data = static_cast<std::byte*>(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    BOOST_REQUIRE(data != MAP_FAILED);
  }
  ~TableView() { ::munmap(data, bytes); }
  std::uint64_t* entry(std::uint64_t i) const {
    return reinterpret_cast<std::uint64_t*>(data + layout::entries_offset + i * sizeof(PageEntry));
  }
  std::uint64_t& value(std::uint64_t i) const { return entry(i)[0]; }
  std::uint64_t& word(std::uint64_t i) const { return entry(i)[1]; }
  std::size_t bytes;
  std::byte* data;
};

// The first page that holds a compressed (not raw) object, after `from`.
std::uint64_t object_page(const TableView& t, std::uint64_t from = 0) {
  for (std::uint64_t i = from; i < pages; ++i) {
    if ((t.word(i) & entry_bits::object) && !(t.word(i) & entry_bits::huge)) return i;
  }
  BOOST_FAIL("no object page");
  return 0;
}

std::string refusal(const PageStoreConfig& c, const std::vector<int>& fds, int expected_errno) {
  Result<std::unique_ptr<PageStore>> r = PageStore::attach(c, fds);
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code() == expected_errno);
  BOOST_TEST(r.error().message().find('\n') == std::string::npos);
  return r.error().message();
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_recovered_store_reads_every_page_and_keeps_its_statistics) {
  MmStat before;
  const std::vector<int> fds = filled_memory(config(), &before);
  std::unique_ptr<PageStore> store = test::require_ok(PageStore::attach(config(), fds));
  std::vector<std::byte> got(ps);
  for (std::uint64_t i = 0; i < pages; ++i) {
    BOOST_REQUIRE_EQUAL(store->read(i % 2, i * ps, got), 0);
    const std::vector<std::byte> want = i >= 100 && i < 120 ? std::vector<std::byte>(ps) : page_of(i + 1);
    BOOST_REQUIRE_MESSAGE(got == want, "page " << i);
  }
  const MmStat after = store->mm_stat();
  BOOST_TEST(after.orig_data_size == before.orig_data_size);
  BOOST_TEST(after.compr_data_size == before.compr_data_size);
  BOOST_TEST(after.same_pages == before.same_pages);
  BOOST_TEST(after.huge_pages == before.huge_pages);
  // Exactly the spans in use are counted: no more than before (the dead
  // server's cached pages are returned).
  BOOST_TEST(after.mem_used_total <= before.mem_used_total);
  BOOST_TEST(after.mem_used_total > 0u);
  BOOST_TEST(store->allocator_stats().live_objects == after.orig_data_size / ps - after.same_pages);
  close_all(fds);
}

BOOST_AUTO_TEST_CASE(a_recovered_store_takes_new_writes_frees_and_compaction) {
  const std::vector<int> fds = filled_memory(config());
  {
    std::unique_ptr<PageStore> store = test::require_ok(PageStore::attach(config(), fds));
    for (std::uint64_t i = 0; i < pages; i += 2) BOOST_REQUIRE_EQUAL(store->discard(1, i * ps, ps), 0);
    for (std::uint64_t i = 1; i < pages; i += 4) BOOST_REQUIRE_EQUAL(store->write(0, i * ps, page_of(i + 9000)), 0);
    store->drain_remote_frees(0);
    store->drain_remote_frees(1);
    store->compact(0);
    store->compact(1);
  }
  // And recovers again from what that left.
  std::unique_ptr<PageStore> store = test::require_ok(PageStore::attach(config(), fds));
  std::vector<std::byte> got(ps);
  for (std::uint64_t i = 0; i < pages; ++i) {
    BOOST_REQUIRE_EQUAL(store->read(0, i * ps, got), 0);
    const std::vector<std::byte> want = i % 2 == 0            ? std::vector<std::byte>(ps)
                                        : (i - 1) % 4 == 0    ? page_of(i + 9000)
                                        : i >= 100 && i < 120 ? std::vector<std::byte>(ps)
                                                              : page_of(i + 1);
    BOOST_REQUIRE_MESSAGE(got == want, "page " << i);
  }
  close_all(fds);
}

BOOST_AUTO_TEST_CASE(a_lock_left_by_a_dead_core_is_cleared_at_recovery) {
  const std::vector<int> fds = filled_memory(config());
  {
    TableView t(fds[0]);
    t.word(3) |= entry_bits::lock | (std::uint64_t{1} << entry_bits::holder_shift);
  }
  std::unique_ptr<PageStore> store = test::require_ok(PageStore::attach(config(), fds));
  std::vector<std::byte> got(ps);
  BOOST_REQUIRE_EQUAL(store->read(0, 3 * ps, got), 0);  // would spin forever if the lock stayed
  BOOST_TEST((got == page_of(4)));
  close_all(fds);
}

BOOST_AUTO_TEST_CASE(memory_of_another_geometry_is_refused) {
  const std::vector<int> fds = filled_memory(config());
  PageStoreConfig other = config();
  other.codec.algorithm = compress::Algorithm::zstd;
  BOOST_TEST(refusal(other, fds, EINVAL).find("another geometry") != std::string::npos);
  other = config();
  other.size_bytes *= 2;
  refusal(other, fds, EINVAL);
  BOOST_TEST(refusal(config(1), std::vector<int>(fds.begin(), fds.begin() + 2), EINVAL).find("geometry") !=
             std::string::npos);
  BOOST_TEST(refusal(config(), std::vector<int>(fds.begin(), fds.begin() + 2), EINVAL).find("memory fds") !=
             std::string::npos);
  close_all(fds);
}

BOOST_AUTO_TEST_CASE(memory_without_a_page_table_header_is_refused) {
  const std::vector<int> fds = filled_memory(config());
  {
    TableView t(fds[0]);
    t.data[0] = std::byte{'X'};
  }
  BOOST_TEST(refusal(config(), fds, EINVAL).find("format") != std::string::npos);
  close_all(fds);
}

BOOST_AUTO_TEST_CASE(memory_of_an_older_format_is_refused_naming_both_versions) {
  const std::vector<int> fds = filled_memory(config());
  {
    TableView t(fds[0]);
    reinterpret_cast<layout::Header*>(t.data)->version = layout::version - 1;
  }
  BOOST_TEST(refusal(config(), fds, EINVAL) == "the saved page table is of format version " +
                                                   std::to_string(layout::version - 1) +
                                                   ", and this coblk reads version " + std::to_string(layout::version) +
                                                   ": recover the device with the coblk that made it");
  close_all(fds);
}

BOOST_AUTO_TEST_CASE(an_entry_whose_handle_is_out_of_bounds_is_refused) {
  const std::vector<int> fds = filled_memory(config());
  {
    TableView t(fds[0]);
    t.value(object_page(t)) = make_handle(0, std::uint64_t{1} << 39, 0);
  }
  BOOST_TEST(refusal(config(), fds, EIO).find("out of bounds") != std::string::npos);
  close_all(fds);
}

BOOST_AUTO_TEST_CASE(an_entry_naming_a_core_the_store_does_not_have_is_refused) {
  const std::vector<int> fds = filled_memory(config());
  {
    TableView t(fds[0]);
    t.value(object_page(t)) = make_handle(7, 1, 0);
  }
  BOOST_TEST(refusal(config(), fds, EIO).find("core 7") != std::string::npos);
  close_all(fds);
}

BOOST_AUTO_TEST_CASE(two_entries_owning_one_object_are_refused) {
  const std::vector<int> fds = filled_memory(config());
  {
    TableView t(fds[0]);
    const std::uint64_t a = object_page(t);
    const std::uint64_t b = object_page(t, a + 1);
    t.word(b) = t.word(a);  // same size and class, so only the sharing is wrong
    t.value(b) = t.value(a);
  }
  BOOST_TEST(refusal(config(), fds, EIO).find("two pages") != std::string::npos);
  close_all(fds);
}

BOOST_AUTO_TEST_CASE(an_entry_with_unknown_flags_or_an_impossible_size_is_refused) {
  const std::vector<int> fds = filled_memory(config());
  std::uint64_t page = 0;
  {
    TableView t(fds[0]);
    page = object_page(t);
    t.word(page) |= entry_bits::written_back;
  }
  BOOST_TEST(refusal(config(), fds, EIO).find("page " + std::to_string(page)) != std::string::npos);
  {
    TableView t(fds[0]);
    t.word(page) &= ~entry_bits::written_back;
    t.word(page) |= entry_bits::size_mask;  // 8191 bytes
  }
  BOOST_TEST(refusal(config(), fds, EIO).find("size") != std::string::npos);
  close_all(fds);
}

BOOST_AUTO_TEST_CASE(a_misaligned_handle_is_refused) {
  const std::vector<int> fds = filled_memory(config());
  {
    TableView t(fds[0]);
    t.value(object_page(t)) += 1;
  }
  BOOST_TEST(refusal(config(), fds, EIO).find("not an object") != std::string::npos);
  close_all(fds);
}

BOOST_AUTO_TEST_SUITE_END()  // storage_recovery_test
