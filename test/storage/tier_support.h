#pragma once
// The backing tier's test support, shared by the storage tests: a backing
// file, and writeback and tier reads done with pwrite/pread where the zram
// target uses io_uring.

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <span>
#include <vector>

#include "coblk/storage/page_store.h"
#include "test/storage/page_gen.h"

namespace coblk::storage_test {

/// The page size of these tests.
inline constexpr std::size_t tier_page = 4096;

/// A backing file of `blocks` pages in /tmp, unlinked at once and closed
/// at the end.
struct BackingFile {
  int fd = -1;  ///< the open file
  /// Makes the file; a failure stops the test.
  explicit BackingFile(std::uint64_t blocks) {
    char name[] = "/tmp/coblk-tier-test-XXXXXX";
    fd = ::mkstemp(name);
    BOOST_REQUIRE(fd >= 0);
    ::unlink(name);
    BOOST_REQUIRE_EQUAL(::ftruncate(fd, static_cast<off_t>(blocks * tier_page)), 0);
  }
  ~BackingFile() { ::close(fd); }
  BackingFile(const BackingFile&) = delete;
  BackingFile& operator=(const BackingFile&) = delete;
};

/// Page `seed` of make_page, as a vector.
inline std::vector<std::byte> page_of(std::uint64_t seed) {
  std::vector<std::byte> p(tier_page);
  make_page(p, seed);
  return p;
}

/// Writes the batch's blocks to the file, as the zram target does; false
/// if any write fell short.
inline bool write_batch(int fd, const storage::WritebackBatch& b) {
  for (std::uint32_t k = 0; k < b.block_count; ++k) {
    if (::pwrite(fd, b.data + k * tier_page, tier_page, static_cast<off_t>(b.blocks[k] * tier_page)) !=
        static_cast<ssize_t>(tier_page)) {
      return false;
    }
  }
  return true;
}

/// Writes back pages of `kind` (at least `min_age` old) from `core`'s
/// table until a prepare finds nothing; returns the pages written back.
inline std::uint64_t write_back_all(storage::PageStore& s, int fd,
                                    storage::WritebackKind kind = storage::WritebackKind::aged,
                                    std::uint32_t min_age = 0, unsigned core = 0) {
  std::uint64_t total = 0;
  for (int round = 0; round < 1000; ++round) {
    const storage::WritebackBatch b = s.writeback_prepare(core, kind, min_age, 1000);
    if (b.pages == 0) {
      if (b.wrapped || b.entries_visited == 0) break;
      continue;
    }
    total += s.writeback_commit(core, b, write_batch(fd, b));
  }
  return total;
}

/// Serves one miss from the file into its own page (as the zram target
/// does) and finishes it; a short read finishes it as failed.
inline int serve(storage::PageStore& s, int fd, const storage::BackingRead& miss, unsigned core = 0) {
  const bool ok = ::pread(fd, miss.out, tier_page, static_cast<off_t>(miss.where.block * tier_page)) ==
                  static_cast<ssize_t>(tier_page);
  return s.finish_backing_read(core, miss,
                               ok ? std::span<const std::byte>(miss.out, tier_page) : std::span<const std::byte>());
}

/// Reads a range through read_resident on `core`, serving the misses from
/// the file as the zram target does: each block read into the page it
/// decodes into (`in_place`), or into a buffer of its own.
inline int read_through_tier(storage::PageStore& s, int fd, std::uint64_t offset, std::span<std::byte> out,
                             bool in_place = true, unsigned core = 0) {
  std::vector<storage::BackingRead> misses(out.size() / tier_page + 2);
  std::size_t missed = 0;
  if (const int rc = s.read_resident(core, offset, out, misses, missed); rc != 0) return rc;
  int result = 0;
  std::vector<std::byte> buffer(tier_page);
  for (std::size_t k = 0; k < missed; ++k) {
    std::byte* block = in_place ? misses[k].out : buffer.data();
    const bool ok = ::pread(fd, block, tier_page, static_cast<off_t>(misses[k].where.block * tier_page)) ==
                    static_cast<ssize_t>(tier_page);
    const int rc = s.finish_backing_read(
        core, misses[k], ok ? std::span<const std::byte>(block, tier_page) : std::span<const std::byte>());
    if (rc != 0) result = rc;
  }
  return result;
}

}  // namespace coblk::storage_test
