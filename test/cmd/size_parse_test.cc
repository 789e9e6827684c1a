#include <boost/test/unit_test.hpp>

#include "coblk/cmd/size_parse.h"

BOOST_AUTO_TEST_SUITE(cmd_size_parse_test)

using namespace coblk;  // NOLINT(google-build-using-namespace): a program file, not a library

using cmd::format_size;
using cmd::parse_size;

BOOST_AUTO_TEST_CASE(a_plain_number_is_a_byte_count) {
  BOOST_TEST(parse_size("4096").bytes == 4096U);
  BOOST_TEST(parse_size("0").bytes == 0U);
}

BOOST_AUTO_TEST_CASE(suffixes_are_powers_of_1024_in_either_case) {
  BOOST_TEST(parse_size("512K").bytes == 512ULL << 10);
  BOOST_TEST(parse_size("512k").bytes == 512ULL << 10);
  BOOST_TEST(parse_size("8M").bytes == 8ULL << 20);
  BOOST_TEST(parse_size("8G").bytes == 8ULL << 30);
  BOOST_TEST(parse_size("2T").bytes == 2ULL << 40);
  BOOST_TEST(parse_size("1P").bytes == 1ULL << 50);
}

BOOST_AUTO_TEST_CASE(a_trailing_b_or_ib_is_accepted) {
  BOOST_TEST(parse_size("8GiB").bytes == 8ULL << 30);
  BOOST_TEST(parse_size("8GB").bytes == 8ULL << 30);
  BOOST_TEST(parse_size("100B").bytes == 100U);
}

BOOST_AUTO_TEST_CASE(text_that_is_not_a_number_is_rejected_with_a_reason) {
  for (const char* bad : {"", "G", "abc", "-1", "+1", "1.5G", "8 G", "8X", "8GiBB", " 8", "0x10", "8iB"}) {
    const auto p = parse_size(bad);
    BOOST_TEST(!p, "accepted '" << bad << "'");
    BOOST_TEST(p.error.find("is not a size") != std::string::npos);
    BOOST_TEST(p.error.find('\n') == std::string::npos);
  }
}

// Found by test/fuzz (fuzz_size_parse): the text was quoted as typed, so a
// newline in it split the error in two.
BOOST_AUTO_TEST_CASE(an_error_stays_one_line_whatever_the_text_holds) {
  const auto bad = parse_size(std::string_view(",\0\nG\x7f", 5));
  BOOST_TEST(!bad);
  BOOST_TEST(bad.error.find('\n') == std::string::npos);
  BOOST_TEST(bad.error.starts_with("',\\x00\\x0aG\\x7f' is not a size"), bad.error);
  const auto large = parse_size("99999999999999999999\n");
  BOOST_TEST(large.error == "'99999999999999999999\\x0a' is too large");
}

BOOST_AUTO_TEST_CASE(sizes_beyond_64_bits_are_rejected_not_wrapped) {
  BOOST_TEST(!parse_size("18446744073709551616"));
  BOOST_TEST(parse_size("18446744073709551615").bytes == UINT64_MAX);
  BOOST_TEST(!parse_size("16384P"));
  BOOST_TEST(parse_size("16383P").bytes == 16383ULL << 50);
  BOOST_TEST(parse_size("99999999999999999999T").error.find("too large") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(formatting_uses_the_largest_exact_unit_and_parses_back) {
  BOOST_TEST(format_size(8ULL << 30) == "8G");
  BOOST_TEST(format_size(1536) == "1536");
  BOOST_TEST(format_size(3ULL << 20) == "3M");
  BOOST_TEST(format_size(0) == "0");
  for (uint64_t n : std::initializer_list<uint64_t>{1, 512, 1536, 1ULL << 40, (1ULL << 50) * 3, UINT64_MAX}) {
    BOOST_TEST(parse_size(format_size(n)).bytes == n);
  }
}

BOOST_AUTO_TEST_CASE(format_bytes_rounds_for_tables_as_zramctl_does) {
  BOOST_TEST(cmd::format_bytes(0) == "0B");
  BOOST_TEST(cmd::format_bytes(1023) == "1023B");
  BOOST_TEST(cmd::format_bytes(4096) == "4K");
  BOOST_TEST(cmd::format_bytes(1536 * 1024) == "1.5M");
  BOOST_TEST(cmd::format_bytes(512ULL << 20) == "512M");
  BOOST_TEST(cmd::format_bytes(UINT64_MAX) == "16E");
}

BOOST_AUTO_TEST_SUITE_END()  // cmd_size_parse_test
