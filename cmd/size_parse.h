// cmd/size_parse.h - byte sizes as users type them ("8G", "512K", "4096") and as tables show them ("1.5M").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace coblk::cmd {

/// Outcome of parse_size: the size, or why the text is not one.
struct ParsedSize {
  uint64_t bytes = 0;
  std::string error;  ///< empty on success; otherwise one line, no trailing newline
  /// True when the text was a valid size.
  explicit operator bool() const { return error.empty(); }
};

/// Parses a decimal byte count with an optional binary suffix, as ublksrv
/// does: K, M, G, T, P (either case, powers of 1024), optionally followed by
/// "B" or "iB" ("8G", "8g", "8GiB" are all 8 << 30). Rejects an empty string,
/// signs, fractions, spaces, unknown suffixes and values above UINT64_MAX.
ParsedSize parse_size(std::string_view text);

/// Renders a size exactly, in the largest binary unit that divides it:
/// 8589934592 -> "8G", 1536 -> "1536" (never a rounded "1.5K"), 0 -> "0".
/// parse_size(format_size(n)).bytes == n for every n.
std::string format_size(uint64_t bytes);

/// Renders a size for people, rounded as zramctl shows it: the largest
/// binary unit under which it is at least 1, with one decimal unless it is
/// whole: 0 -> "0B", 4096 -> "4K", 1572864 -> "1.5M", 536870912 -> "512M".
/// For tables (`coblk stats`, `coblk top`); format_size when the text must
/// read back exactly.
std::string format_bytes(uint64_t bytes);

}  // namespace coblk::cmd
