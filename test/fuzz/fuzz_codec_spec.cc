// Fuzzes compress/codec.h's parse_codec_spec on any text.
//
// Checks, for every input:
//   - it never crashes; a rejection is Error EINVAL with one non-empty line;
//   - an accepted spec has a level its algorithm accepts, and its name()
//     parses back to the same spec (name() is canonical);
//   - the text is accepted exactly when it is "lz4", "zstd" or one of them,
//     ':' and a plain decimal integer in range (an independent reading of
//     the documented syntax).
#include <zstd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "coblk/compress/codec.h"
#include "test/fuzz/check.h"

using coblk::compress::Algorithm;
using coblk::compress::CodecSpec;
using coblk::compress::parse_codec_spec;

namespace {

// The level text as an integer, if it is one: an optional '-', then one or
// more decimal digits (leading zeros allowed), within int.
bool reference_int(std::string_view t, long long& out) {
  const bool negative = t.starts_with('-');
  size_t i = negative ? 1 : 0;
  if (i == t.size()) return false;
  long long v = 0;
  for (; i < t.size(); ++i) {
    if (t[i] < '0' || t[i] > '9') return false;
    v = v * 10 + (t[i] - '0');
    if (v > (1LL << 40)) v = 1LL << 40;  // saturate: far outside int either way
  }
  out = negative ? -v : v;
  return out >= INT32_MIN && out <= INT32_MAX;
}

bool reference_accepts(std::string_view t, CodecSpec& spec) {
  const size_t colon = t.find(':');
  const std::string_view name = t.substr(0, colon);
  long long level = 0;
  if (name == "lz4") {
    spec = {Algorithm::lz4, 1};
    if (colon == std::string_view::npos) return true;
    if (!reference_int(t.substr(colon + 1), level) || level < 1 || level > 65537) return false;
  } else if (name == "zstd") {
    spec = {Algorithm::zstd, 0};
    if (colon == std::string_view::npos) return true;
    if (!reference_int(t.substr(colon + 1), level) || level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
      return false;
  } else {
    return false;
  }
  spec.level = static_cast<int>(level);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = parse_codec_spec(text);
  CodecSpec expected;
  const bool accept = reference_accepts(text, expected);
  if (!parsed) {
    COBLK_FUZZ_CHECK(!accept, "rejected a valid spec: " + parsed.error().message());
    COBLK_FUZZ_CHECK(parsed.error().code() == EINVAL, "not EINVAL: " + std::to_string(parsed.error().code()));
    const std::string& message = parsed.error().message();
    COBLK_FUZZ_CHECK(!message.empty(), "an empty message");
    COBLK_FUZZ_CHECK(message.find('\n') == std::string::npos, "the message is not one line: " + message);
    return 0;
  }
  const CodecSpec spec = parsed.value();
  COBLK_FUZZ_CHECK(accept, "accepted an invalid spec as " + spec.name());
  COBLK_FUZZ_CHECK(spec == expected, "parsed as " + spec.name() + ", expected " + expected.name());
  const auto again = parse_codec_spec(spec.name());
  COBLK_FUZZ_CHECK(again && again.value() == spec, "name() '" + spec.name() + "' does not parse back");
  return 0;
}
