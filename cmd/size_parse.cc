#include "coblk/cmd/size_parse.h"

#include "coblk/runtime/result.h"

#include <array>
#include <cctype>
#include <cstdio>

namespace coblk::cmd {
namespace {

constexpr std::array<char, 5> kSuffixes{'K', 'M', 'G', 'T', 'P'};

}  // namespace

ParsedSize parse_size(std::string_view text) {
  ParsedSize out;
  const auto not_a_size = [&] {
    out.error = coblk::quote_for_message(text) +
                " is not a size (expected a whole number of bytes with an optional K, M, G, T or P suffix, e.g. 8G)";
    return out;
  };
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (UINT64_MAX - digit) / 10) {
      out.error = coblk::quote_for_message(text) + " is too large";
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
    out.error = coblk::quote_for_message(text) + " is too large";
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

std::string format_bytes(uint64_t bytes) {
  static constexpr char kUnits[] = "BKMGTPE";
  auto v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return std::to_string(bytes) + "B";
  char text[32];
  if (v == static_cast<double>(static_cast<uint64_t>(v))) {
    std::snprintf(text, sizeof(text), "%.0f%c", v, kUnits[u]);  // whole: "4K", not "4.0K", as zramctl
  } else {
    std::snprintf(text, sizeof(text), "%.1f%c", v, kUnits[u]);
  }
  return text;
}

}  // namespace coblk::cmd
