// Entropy routing (PageStoreConfig::entropy_routing): low-entropy pages go
// to the fast codec, mid-entropy pages to the strong one, high-entropy
// pages are stored raw without trying; every page reads back exactly.
#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "coblk/compress/entropy.h"
#include "coblk/storage/page_store.h"
#include "test/require_ok.h"

BOOST_AUTO_TEST_SUITE(storage_entropy_routing_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace storage;  // NOLINT(google-build-using-namespace): a program file, not a library

namespace {

constexpr std::size_t ps = 4096;

PageStoreConfig config(bool routing) {
  PageStoreConfig c;
  c.size_bytes = 64 * ps;
  c.codec = compress::CodecSpec{compress::Algorithm::lz4, 1};
  c.recompress = compress::CodecSpec{compress::Algorithm::zstd, 3};
  if (routing) c.entropy_routing = PageStoreConfig::EntropyRouting{};
  return c;
}

// Bytes drawn from `symbols` distinct values: entropy about log2(symbols).
std::vector<std::byte> page_with_symbols(unsigned symbols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> p(ps);
  for (auto& b : p) b = static_cast<std::byte>(rng() % symbols);
  return p;
}

double entropy_of(const std::vector<std::byte>& p) {
  return compress::estimate_entropy(std::span<const std::byte, ps>(p.data(), ps));
}

std::vector<std::byte> read_back(PageStore& s, std::uint64_t index) {
  std::vector<std::byte> out(ps);
  BOOST_REQUIRE_EQUAL(s.read(0, index * ps, out), 0);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_mid_entropy_page_is_compressed_by_the_strong_codec_and_not_recompressed_later) {
  const auto page = page_with_symbols(16, 1);  // about 4 bits per byte
  BOOST_REQUIRE(entropy_of(page) > 1.0);
  BOOST_REQUIRE(entropy_of(page) < 7.0);
  auto routed = test::require_ok(PageStore::create(config(true)));
  auto plain = test::require_ok(PageStore::create(config(false)));
  BOOST_REQUIRE_EQUAL(routed->write(0, 0, page), 0);
  BOOST_REQUIRE_EQUAL(plain->write(0, 0, page), 0);
  BOOST_TEST_MESSAGE("lz4 " << plain->mm_stat().compr_data_size << " B, routed " << routed->mm_stat().compr_data_size
                            << " B");
  BOOST_TEST(routed->mm_stat().compr_data_size < plain->mm_stat().compr_data_size);
  BOOST_TEST(read_back(*routed, 0) == page);
  // Marked as done by the strong codec: recompression passes it by.
  BOOST_TEST(routed->recompress_step(0, WritebackKind::aged, 0, 64).tried == 0u);
  BOOST_TEST(plain->recompress_step(0, WritebackKind::aged, 0, 64).tried == 1u);
}

BOOST_AUTO_TEST_CASE(a_low_entropy_page_is_compressed_by_the_fast_codec) {
  std::vector<std::byte> page(ps, std::byte{'a'});
  page[100] = std::byte{'b'};  // not same-filled
  BOOST_REQUIRE(entropy_of(page) < 1.0);
  auto routed = test::require_ok(PageStore::create(config(true)));
  auto plain = test::require_ok(PageStore::create(config(false)));
  BOOST_REQUIRE_EQUAL(routed->write(0, ps, page), 0);
  BOOST_REQUIRE_EQUAL(plain->write(0, ps, page), 0);
  BOOST_TEST(routed->mm_stat().compr_data_size == plain->mm_stat().compr_data_size);
  BOOST_TEST(read_back(*routed, 1) == page);
  // Not marked: recompression may still try it.
  BOOST_TEST(routed->recompress_step(0, WritebackKind::aged, 0, 64).tried == 1u);
}

BOOST_AUTO_TEST_CASE(a_high_entropy_page_is_stored_raw_without_trying_a_codec) {
  const auto page = page_with_symbols(256, 2);
  BOOST_REQUIRE(entropy_of(page) >= 7.0);
  auto routed = test::require_ok(PageStore::create(config(true)));
  BOOST_REQUIRE_EQUAL(routed->write(0, 2 * ps, page), 0);
  BOOST_TEST(routed->mm_stat().huge_pages == 1u);
  BOOST_TEST(routed->mm_stat().compr_data_size == ps);
  BOOST_TEST(read_back(*routed, 2) == page);
}

BOOST_AUTO_TEST_CASE(routing_without_a_strong_codec_or_with_crossed_thresholds_is_refused) {
  PageStoreConfig no_strong = config(true);
  no_strong.recompress.reset();
  BOOST_TEST(test::require_error(PageStore::create(no_strong), EINVAL).find("strong codec") != std::string::npos);
  PageStoreConfig crossed = config(true);
  crossed.entropy_routing = PageStoreConfig::EntropyRouting{6.0, 5.0};
  BOOST_TEST(test::require_error(PageStore::create(crossed), EINVAL).find("low < high") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()  // storage_entropy_routing_test
