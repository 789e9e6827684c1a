// Same-fill detection on every path, and fill_page.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <vector>

#include "coblk/compress/same_fill.h"
#include "test/compress/page_samples.h"

BOOST_AUTO_TEST_SUITE(compress_same_fill_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using namespace compress;  // NOLINT(google-build-using-namespace): a program file, not a library
using compress::testing::Page;

namespace {

using SameFillPath = bool (*)(std::span<const std::byte, page_size>, std::uint64_t&) noexcept;

constexpr std::uint64_t untouched = 0x1111111111111111u;

// Runs every case against one path. Cases are written as "page, expected
// word or not same-filled" so all paths see exactly the same inputs.
void check_path(SameFillPath is_same_filled_on) {
  auto same = [&](const Page& page, std::uint64_t expected) {
    std::uint64_t fill = untouched;
    BOOST_TEST(is_same_filled_on(page, fill));
    BOOST_TEST(fill == expected);
  };
  auto different = [&](const Page& page) {
    std::uint64_t fill = untouched;
    BOOST_TEST(!is_same_filled_on(page, fill));
    BOOST_TEST(fill == untouched);  // left unchanged
  };

  BOOST_TEST_CONTEXT("a page of zeros") { same(testing::zero_page(), 0); }
  BOOST_TEST_CONTEXT("a page of 0xff") { same(testing::repeated_word_page(~0ull), ~0ull); }
  for (const std::uint64_t word : {0x0123456789abcdefull, 0x8000000000000000ull, 1ull, 0xdeadbeefdeadbeefull}) {
    BOOST_TEST_CONTEXT("any repeated word, here " << std::hex << word) {
      same(testing::repeated_word_page(word), word);
    }
  }
  BOOST_TEST_CONTEXT("a repeated 4-byte pattern is a repeated 8-byte word") {
    same(testing::repeated_text_page("abcd"), 0x6463626164636261ull);  // "abcdabcd" loaded little-endian
  }
  BOOST_TEST_CONTEXT("a repeated 16-byte pattern is not") {
    different(testing::repeated_text_page("0123456789abcdef"));
  }
  BOOST_TEST_CONTEXT("a repeated 3-byte pattern is not") { different(testing::repeated_text_page("abc")); }
  BOOST_TEST_CONTEXT("random data is not") { different(testing::random_page(3)); }
  for (const std::uint64_t word : {0ull, 0x0123456789abcdefull}) {
    const std::uint64_t other = word ^ 0x0000010000000000ull;
    BOOST_TEST_CONTEXT("only the last word differs, fill " << std::hex << word) {
      Page page = testing::repeated_word_page(word);
      std::memcpy(page.data() + page_size - 8, &other, 8);
      different(page);
    }
    BOOST_TEST_CONTEXT("only the first word differs, fill " << std::hex << word) {
      Page page = testing::repeated_word_page(word);
      std::memcpy(page.data(), &other, 8);
      different(page);
    }
    BOOST_TEST_CONTEXT("first and last words match but one in between differs, fill " << std::hex << word) {
      for (std::size_t offset = 8; offset + 8 < page_size; offset += 8) {
        Page page = testing::repeated_word_page(word);
        std::memcpy(page.data() + offset, &other, 8);
        std::uint64_t fill = untouched;
        BOOST_TEST_REQUIRE(!is_same_filled_on(page, fill), "differing word at " << std::dec << offset);
      }
    }
  }
  BOOST_TEST_CONTEXT("a single flipped bit anywhere makes the page differ") {
    for (std::size_t byte = 0; byte < page_size; ++byte) {
      for (const std::byte bit : {std::byte{0x01}, std::byte{0x80}}) {
        Page page = testing::repeated_word_page(0x0123456789abcdefull);
        page[byte] ^= bit;
        std::uint64_t fill = untouched;
        BOOST_TEST_REQUIRE(!is_same_filled_on(page, fill), "flipped bit in byte " << byte);
      }
    }
  }
  BOOST_TEST_CONTEXT("pages at unaligned addresses are read correctly") {
    std::vector<std::byte> buffer(page_size + 64);
    for (std::size_t shift = 1; shift < 64; shift += 7) {
      std::memset(buffer.data(), 0, buffer.size());
      std::span<const std::byte, page_size> page(buffer.data() + shift, page_size);
      std::uint64_t fill = untouched;
      BOOST_TEST_REQUIRE(is_same_filled_on(page, fill));
      BOOST_TEST_REQUIRE(fill == 0u);
      buffer[shift + page_size / 2] = std::byte{1};
      BOOST_TEST_REQUIRE(!is_same_filled_on(page, fill));
    }
  }
}

bool has_avx2() { return detail::cpu_has_avx2(); }
bool has_avx512() { return detail::cpu_has_avx512(); }

}  // namespace

BOOST_AUTO_TEST_CASE(the_scalar_path_finds_exactly_the_pages_of_one_repeated_word) {
  check_path(&detail::is_same_filled_scalar);
}

BOOST_AUTO_TEST_CASE(the_avx2_path_finds_exactly_the_pages_of_one_repeated_word,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
                       boost::test_tools::assertion_result result(has_avx2());
                       result.message() << "this CPU has no AVX2: skipped";
                       return result;
                     })) {
  check_path(&detail::is_same_filled_avx2);
}

BOOST_AUTO_TEST_CASE(the_avx512_path_finds_exactly_the_pages_of_one_repeated_word,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
                       boost::test_tools::assertion_result result(has_avx512());
                       result.message() << "this CPU has no AVX-512F: skipped";
                       return result;
                     })) {
  check_path(&detail::is_same_filled_avx512);
}

BOOST_AUTO_TEST_CASE(the_dispatching_call_uses_the_widest_path_this_cpu_has) {
  const std::string path = detail::same_fill_path();
  BOOST_TEST_MESSAGE("is_same_filled uses the " << path << " path");
  BOOST_TEST(path == (has_avx512() ? "avx512" : has_avx2() ? "avx2" : "scalar"));
  check_path(&is_same_filled);
}

BOOST_AUTO_TEST_CASE(a_filled_page_is_detected_as_same_filled_with_its_word) {
  for (const std::uint64_t word : {0ull, ~0ull, 0x0123456789abcdefull, 0x00000000000000ffull}) {
    BOOST_TEST_CONTEXT(std::hex << word) {
      Page page = testing::random_page(word);
      fill_page(page, word);
      BOOST_TEST((page == testing::repeated_word_page(word)));
      std::uint64_t fill = untouched;
      BOOST_TEST(is_same_filled(page, fill));
      BOOST_TEST(fill == word);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()  // compress_same_fill_test
