// Fuzzes cmd/size_parse.h: parse_size on any text, format_size on any number.
//
// Checks, for every input:
//   - parse_size never crashes, and agrees with an independent reading of
//     the documented grammar (digits, then K/M/G/T/P in either case, then
//     optionally B or, after a unit, iB), computed with overflow checks;
//   - its error is one non-empty line; a size it accepts formats and parses
//     back to the same number;
//   - for the input's first 8 bytes read as a number n:
//     parse_size(format_size(n)).bytes == n, in the largest unit dividing n.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "coblk/cmd/size_parse.h"
#include "test/fuzz/check.h"

using coblk::cmd::format_size;
using coblk::cmd::parse_size;

namespace {

// nullopt: not a size at all; a value with `too_large`: syntactically a size
// but above UINT64_MAX.
struct Expected {
  uint64_t bytes = 0;
  bool too_large = false;
};

std::optional<Expected> reference_parse(std::string_view t) {
  size_t i = 0;
  uint64_t value = 0;
  bool overflow = false;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
    overflow |= __builtin_mul_overflow(value, 10, &value);
    overflow |= __builtin_add_overflow(value, static_cast<uint64_t>(t[i] - '0'), &value);
    ++i;
  }
  if (i == 0) return std::nullopt;
  // An overflow in the digits is reported before the suffix is looked at.
  if (overflow) return Expected{0, true};
  unsigned shift = 0;
  static constexpr std::string_view units = "KMGTP";
  if (i < t.size()) {
    const char u = t[i] >= 'a' && t[i] <= 'z' ? static_cast<char>(t[i] - 'a' + 'A') : t[i];
    if (const size_t k = units.find(u); k != std::string_view::npos) {
      shift = static_cast<unsigned>(10 * (k + 1));
      ++i;
    }
  }
  const std::string_view rest = t.substr(i);
  const bool rest_ok = rest.empty() || rest == "B" || rest == "b" || (shift != 0 && (rest == "iB" || rest == "ib"));
  if (!rest_ok) return std::nullopt;
  if (shift != 0 && (value >> (64 - shift)) != 0) return Expected{0, true};
  return Expected{value << shift, false};
}

void check_format(uint64_t n) {
  const std::string text = format_size(n);
  const auto back = parse_size(text);
  COBLK_FUZZ_CHECK(back, "format_size(n) does not parse: '" + text + "'");
  COBLK_FUZZ_CHECK(back.bytes == n,
                   "format_size(" + std::to_string(n) + ") = '" + text + "' parses to " + std::to_string(back.bytes));
  // The largest unit that divides n: what is left is not a multiple of 1024
  // (unless the unit is already P).
  if (n != 0 && !text.empty() && text.back() != 'P') {
    const std::string digits = text.back() >= '0' && text.back() <= '9' ? text : text.substr(0, text.size() - 1);
    COBLK_FUZZ_CHECK(std::strtoull(digits.c_str(), nullptr, 10) % 1024 != 0,
                     "format_size(" + std::to_string(n) + ") = '" + text + "' is not in the largest unit");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = parse_size(text);
  const auto expected = reference_parse(text);
  if (parsed) {
    COBLK_FUZZ_CHECK(expected && !expected->too_large, "accepted, but the grammar says no");
    COBLK_FUZZ_CHECK(parsed.bytes == expected->bytes,
                     "parsed to " + std::to_string(parsed.bytes) + ", expected " + std::to_string(expected->bytes));
    check_format(parsed.bytes);
  } else {
    COBLK_FUZZ_CHECK(!expected || expected->too_large,
                     "rejected a valid size (" + std::to_string(expected ? expected->bytes : 0) + "): " + parsed.error);
    COBLK_FUZZ_CHECK(!parsed.error.empty(), "an empty error");
    COBLK_FUZZ_CHECK(parsed.error.find('\n') == std::string::npos, "the error is not one line: " + parsed.error);
    const bool says_too_large = parsed.error.ends_with(" is too large");
    COBLK_FUZZ_CHECK(says_too_large == (expected && expected->too_large), "wrong reason: " + parsed.error);
  }

  uint64_t n = 0;
  std::memcpy(&n, data, size < sizeof n ? size : sizeof n);
  check_format(n);
  check_format(n >> (n & 63));  // small numbers too, and every unit
  return 0;
}
