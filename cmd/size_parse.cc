#include "coblk/cmd/size_parse.h"

#include <array>
#include <cctype>

namespace coblk::cmd {
namespace {

constexpr std::array<char, 5> kSuffixes{'K', 'M', 'G', 'T', 'P'};

// The text in quotes, control characters written as \xNN: the error is one
// line whatever was typed.
std::string quoted(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

}  // namespace

ParsedSize parse_size(std::string_view text) {
  ParsedSize out;
  const auto not_a_size = [&] {
    out.error = quoted(text) +
                " is not a size (expected a whole number of bytes with an optional K, M, G, T or P suffix, e.g. 8G)";
    return out;
  };
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (UINT64_MAX - digit) / 10) {
      out.error = quoted(text) + " is too large";
      return out;
    }
    value = value * 10 + digit;
    ++i;
  }
  if (i == 0) return not_a_size();

  unsigned shift = 0;
  std::string_view rest = text.substr(i);
  if (!rest.empty()) {
    const char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(rest[0])));
    for (size_t s = 0; s < kSuffixes.size(); ++s) {
      if (kSuffixes[s] == unit) {
        shift = static_cast<unsigned>(10 * (s + 1));
        rest.remove_prefix(1);
        break;
      }
    }
    // What may follow: nothing, "B" or (after a unit letter) "iB".
    if (rest == "B" || rest == "b" || (shift != 0 && (rest == "iB" || rest == "ib"))) rest = {};
    if (!rest.empty()) return not_a_size();
  }
  if (shift != 0 && value > (UINT64_MAX >> shift)) {
    out.error = quoted(text) + " is too large";
    return out;
  }
  out.bytes = value << shift;
  return out;
}

std::string format_size(uint64_t bytes) {
  if (bytes == 0) return "0";
  unsigned unit = 0;
  while (unit < kSuffixes.size() && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  std::string out = std::to_string(bytes);
  if (unit != 0) out += kSuffixes[unit - 1];
  return out;
}

}  // namespace coblk::cmd
