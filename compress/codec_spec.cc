// CodecSpec text form: parsing and naming.

#include <cerrno>
#include <charconv>
#include <string>
#include <system_error>

#include <zstd.h>

#include "coblk/compress/codec.h"
#include "coblk/compress/codec_limits.h"

namespace coblk::compress {
namespace {

Error bad_spec(const std::string& quoted_text, const std::string& why) {
  return Error(EINVAL, "bad codec " + quoted_text + ": " + why);
}

// Parses the whole of `text` as a decimal int (optional leading '-').
// std::from_chars rejects '+', spaces and hex, so "lz4: 8" is an error rather
// than silently meaning something else.
bool parse_int(std::string_view text, int& value) {
  const char* const end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc{} && ptr == end && !text.empty();
}

}  // namespace

std::string CodecSpec::name() const {
  switch (algorithm) {
    case Algorithm::lz4:
      return level == 1 ? std::string("lz4") : "lz4:" + std::to_string(level);
    case Algorithm::zstd:
      return level == 0 ? std::string("zstd") : "zstd:" + std::to_string(level);
  }
  return "unknown:" + std::to_string(static_cast<int>(algorithm));
}

Result<CodecSpec> parse_codec_spec(std::string_view text) {
  const std::size_t colon = text.find(':');
  const std::string_view algorithm_text = text.substr(0, colon);
  const bool has_level = colon != std::string_view::npos;
  const std::string_view level_text = has_level ? text.substr(colon + 1) : std::string_view{};
  const std::string quoted_text = coblk::quote_for_message(text);

  CodecSpec spec;
  if (algorithm_text == "lz4") {
    spec = CodecSpec{Algorithm::lz4, 1};
    if (!has_level) return spec;
    if (!parse_int(level_text, spec.level) || !detail::lz4_acceleration_valid(spec.level))
      return bad_spec(quoted_text, "LZ4 acceleration must be an integer in " +
                                       std::to_string(detail::lz4_min_acceleration) + ".." +
                                       std::to_string(detail::lz4_max_acceleration));
    return spec;
  }
  if (algorithm_text == "zstd") {
    spec = CodecSpec{Algorithm::zstd, 0};
    if (!has_level) return spec;
    if (!parse_int(level_text, spec.level) || !detail::zstd_level_valid(spec.level))
      return bad_spec(quoted_text, "ZSTD level must be an integer in " + std::to_string(ZSTD_minCLevel()) + ".." +
                                       std::to_string(ZSTD_maxCLevel()));
    return spec;
  }
  return bad_spec(quoted_text, "expected lz4, lz4:ACCELERATION, zstd or zstd:LEVEL");
}

}  // namespace coblk::compress
