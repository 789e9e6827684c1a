// test/ublk/zram_test_pages.h - requests and test pages shared by the zram target's in-process tests.
#pragma once

#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "coblk/ublk/target.h"

namespace coblk::test {

/// A request of queue `queue` for `buf` at byte `offset` (the buffer must
/// outlive the request's coroutine).
inline ublk::Request zram_request(std::uint16_t queue, std::uint64_t offset, std::span<std::byte> buf) {
  ublk::Request r;
  r.queue = queue;
  r.offset = offset;
  r.length = static_cast<std::uint32_t>(buf.size());
  r.data = buf.data();
  return r;
}

/// An incompressible page (stored raw: the first pages writeback takes),
/// different for every (index, round).
inline std::vector<std::byte> random_page(std::uint64_t index, std::uint64_t round = 0) {
  std::vector<std::byte> p(4096);
  std::mt19937_64 rng(index * 7919 + round * 104729 + 1);
  for (std::size_t i = 0; i < p.size(); i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(p.data() + i, &v, 8);
  }
  return p;
}

/// A page-aligned page, as a queue's request buffers are (they are
/// mmapped): the backing tier reads a written-back page straight into it,
/// with O_DIRECT where the file system allows, which needs the alignment.
struct AlignedPage {
  std::byte* data = static_cast<std::byte*>(std::aligned_alloc(4096, 4096));
  AlignedPage() { BOOST_REQUIRE(data != nullptr); }
  ~AlignedPage() { std::free(data); }
  AlignedPage(const AlignedPage&) = delete;
  AlignedPage& operator=(const AlignedPage&) = delete;
  /// The page as a span.
  std::span<std::byte> span() { return {data, 4096}; }
  /// True when it holds exactly `want`.
  bool holds(const std::vector<std::byte>& want) const { return std::memcmp(data, want.data(), 4096) == 0; }
};

}  // namespace coblk::test
