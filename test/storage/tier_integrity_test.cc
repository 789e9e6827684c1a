// PageStore's backing tier never serves bytes it did not write: every
// written-back object carries a checksum in its page entry, and a tier
// that gives back anything else (a flipped bit, another block, zeros)
// makes the read fail, through the asynchronous path the zram target uses
// and through the synchronous one alike.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "coblk/storage/backing_location.h"
#include "coblk/storage/page_store.h"
#include "test/require_ok.h"
#include "test/storage/page_gen.h"
#include "test/storage/tier_support.h"

BOOST_AUTO_TEST_SUITE(storage_tier_integrity_test)

using namespace coblk;         // NOLINT(google-build-using-namespace): a program file, not a library
using namespace storage;       // NOLINT(google-build-using-namespace): a program file, not a library
using namespace storage_test;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::size_t ps = 4096;
constexpr std::uint64_t pages = 64;

PageStoreConfig config(const BackingFile& file) {
  PageStoreConfig c;
  c.size_bytes = pages * ps;
  c.cores = 1;
  c.backing_blocks = pages;
  c.backing_fd = file.fd;
  return c;
}

// A store of `pages` pages, every one written back to `file`.
std::unique_ptr<PageStore> all_written_back(const BackingFile& file) {
  auto s = test::require_ok(PageStore::create(config(file)));
  for (std::uint64_t i = 0; i < pages; ++i) BOOST_REQUIRE_EQUAL(s->write(0, i * ps, page_of(i + 1)), 0);
  BOOST_REQUIRE_EQUAL(write_back_all(*s, file.fd), pages);
  return s;
}

// Where page `index`'s object lies on the tier (a read_resident miss,
// finished as failed so that its pin is released).
BackingLocation location_of(PageStore& s, std::uint64_t index) {
  std::vector<std::byte> page(ps);
  BackingRead miss[1];
  std::size_t missed = 0;
  BOOST_REQUIRE_EQUAL(s.read_resident(0, index * ps, page, miss, missed), 0);
  BOOST_REQUIRE_EQUAL(missed, 1u);
  const BackingLocation at = miss[0].where;
  BOOST_REQUIRE_EQUAL(s.finish_backing_read(0, miss[0], {}), -EIO);
  return at;
}

std::vector<std::byte> block_at(int fd, std::uint64_t block) {
  std::vector<std::byte> b(ps);
  BOOST_REQUIRE_EQUAL(::pread(fd, b.data(), ps, static_cast<off_t>(block * ps)), static_cast<ssize_t>(ps));
  return b;
}

void put_block(int fd, std::uint64_t block, const std::vector<std::byte>& b) {
  BOOST_REQUIRE_EQUAL(::pwrite(fd, b.data(), ps, static_cast<off_t>(block * ps)), static_cast<ssize_t>(ps));
}

// Page `index` fails every way it can be read, and each failure is
// counted as a checksum error; `got` is never filled with a page.
void fails_every_way(PageStore& s, int fd, std::uint64_t index) {
  const std::uint64_t before = s.tier_stat().checksum_errors;
  std::vector<std::byte> got(ps);
  BOOST_TEST(read_through_tier(s, fd, index * ps, got, true) == -EBADMSG);
  BOOST_TEST(read_through_tier(s, fd, index * ps, got, false) == -EBADMSG);
  BOOST_TEST(got != page_of(index + 1));
  BOOST_TEST(s.read(0, index * ps, got) == -EIO);  // the synchronous path (load_written_back)
  BOOST_TEST(s.tier_stat().checksum_errors == before + 3);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_location_keeps_its_block_sector_and_checksum_through_the_entry_encoding) {
  const BackingLocation far{max_backing_blocks - 1, 7, BackingLocation::checksum_mask};
  const BackingLocation back = BackingLocation::decode(far.encode());
  BOOST_TEST(back.block == far.block);
  BOOST_TEST(back.sector == far.sector);
  BOOST_TEST(back.checksum == far.checksum);
  const BackingLocation near{0, 0, 0};
  BOOST_TEST(near.encode() == 0u);
  // The checksum is of the bytes: one bit of difference changes it.
  std::vector<std::byte> page = page_of(5);
  const std::uint32_t sum = backing_checksum(page.data(), page.size());
  BOOST_TEST(sum <= BackingLocation::checksum_mask);
  page[100] ^= std::byte{1};
  BOOST_TEST(backing_checksum(page.data(), page.size()) != sum);
}

BOOST_AUTO_TEST_CASE(a_flipped_bit_in_a_written_back_block_is_an_io_error_not_other_data) {
  BackingFile file(pages);
  auto s = all_written_back(file);
  const BackingLocation at = location_of(*s, 3);
  std::vector<std::byte> block = block_at(file.fd, at.block);
  block[at.sector * 512 + 10] ^= std::byte{0x20};
  put_block(file.fd, at.block, block);
  fails_every_way(*s, file.fd, 3);
  BOOST_TEST(s->tier_stat().read_errors >= 3u);
  // Pages elsewhere on the tier still read back exactly.
  std::vector<std::byte> got(ps);
  for (std::uint64_t i = 0; i < pages; ++i) {
    if (location_of(*s, i).block == at.block) continue;
    BOOST_REQUIRE_EQUAL(read_through_tier(*s, file.fd, i * ps, got), 0);
    BOOST_REQUIRE_MESSAGE(got == page_of(i + 1), "page " << i << " differs");
  }
  // A new write replaces the lost copy: the page is whole again.
  BOOST_REQUIRE_EQUAL(s->write(0, 3 * ps, page_of(99)), 0);
  BOOST_TEST(s->read(0, 3 * ps, got) == 0);
  BOOST_TEST(got == page_of(99));
}

BOOST_AUTO_TEST_CASE(a_tier_that_returns_another_block_or_zeros_is_refused) {
  BackingFile file(pages);
  auto s = all_written_back(file);
  // Another page's block in this one's place (a misdirected read, a
  // rewritten file): well-formed objects, the wrong ones.
  const BackingLocation a = location_of(*s, 1);
  std::uint64_t other = 0;
  while (location_of(*s, other).block == a.block) ++other;
  put_block(file.fd, a.block, block_at(file.fd, location_of(*s, other).block));
  fails_every_way(*s, file.fd, 1);
  // Zeros (a trimmed or recreated file, a restarted memory server).
  const BackingLocation z = location_of(*s, other);
  put_block(file.fd, z.block, std::vector<std::byte>(ps));
  fails_every_way(*s, file.fd, other);
}

BOOST_AUTO_TEST_CASE(a_raw_page_read_into_its_place_is_checked_before_it_is_served) {
  BackingFile file(pages);
  auto s = test::require_ok(PageStore::create(config(file)));
  // Random bytes do not compress: stored raw, read back into the
  // caller's page without a decode step.
  std::vector<std::byte> raw(ps);
  std::mt19937_64 random(7);
  for (std::byte& b : raw) b = static_cast<std::byte>(random());
  BOOST_REQUIRE_EQUAL(s->write(0, 0, raw), 0);
  BOOST_REQUIRE(s->mm_stat().huge_pages == 1u);
  BOOST_REQUIRE_EQUAL(write_back_all(*s, file.fd, WritebackKind::huge), 1u);
  const BackingLocation at = location_of(*s, 0);
  std::vector<std::byte> block = block_at(file.fd, at.block);
  block[4095] ^= std::byte{0x80};
  put_block(file.fd, at.block, block);
  std::vector<std::byte> got(ps);
  BOOST_TEST(read_through_tier(*s, file.fd, 0, got, true) == -EBADMSG);
  BOOST_TEST(s->read(0, 0, got) == -EIO);
  // Put right again, it reads back: the check refuses bytes, not pages.
  block[4095] ^= std::byte{0x80};
  put_block(file.fd, at.block, block);
  BOOST_TEST(read_through_tier(*s, file.fd, 0, got, true) == 0);
  BOOST_TEST(got == raw);
}

BOOST_AUTO_TEST_CASE(a_recovered_store_keeps_the_checksums_and_still_refuses_a_changed_block) {
  BackingFile file(pages);
  PageStoreConfig c = config(file);
  c.memory = runtime::MemoryKind::shared;
  std::vector<int> fds;
  {
    auto s = test::require_ok(PageStore::create(c));
    for (std::uint64_t i = 0; i < pages; ++i) BOOST_REQUIRE_EQUAL(s->write(0, i * ps, page_of(i + 1)), 0);
    BOOST_REQUIRE_EQUAL(write_back_all(*s, file.fd), pages);
    for (const int fd : s->memory_fds()) fds.push_back(::dup(fd));
  }
  auto s = test::require_ok(PageStore::attach(c, fds));
  std::vector<std::byte> got(ps);
  BOOST_REQUIRE_EQUAL(read_through_tier(*s, file.fd, 0, got), 0);
  BOOST_TEST(got == page_of(1));
  const BackingLocation at = location_of(*s, 2);
  std::vector<std::byte> block = block_at(file.fd, at.block);
  block[at.sector * 512] ^= std::byte{4};
  put_block(file.fd, at.block, block);
  fails_every_way(*s, file.fd, 2);
  for (const int fd : fds) ::close(fd);
}

BOOST_AUTO_TEST_CASE(a_backing_tier_beyond_what_an_entry_can_name_is_refused_at_creation) {
  BackingFile file(1);
  PageStoreConfig c = config(file);
  c.backing_blocks = max_backing_blocks + 1;
  const auto made = PageStore::create(c);
  BOOST_REQUIRE(!made);
  BOOST_TEST(made.error().message().find("at most 2^33 blocks (32 TiB)") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
