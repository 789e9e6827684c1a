// compress/codec_limits.h - valid levels of each algorithm, shared by parse_codec_spec and make_codec.
#pragma once

// One definition, so the two can never disagree. Internal to compress/.

namespace coblk::compress::detail {

/// LZ4 clamps accelerations above 65537 and treats < 1 as 1; coblk rejects
/// both so a spec always means what it says.
inline constexpr int lz4_min_acceleration = 1;
inline constexpr int lz4_max_acceleration = 65537;

inline bool lz4_acceleration_valid(int acceleration) {
  return acceleration >= lz4_min_acceleration && acceleration <= lz4_max_acceleration;
}

/// True when ZSTD accepts `level` (ZSTD_minCLevel()..ZSTD_maxCLevel(); 0 is
/// ZSTD's default level).
bool zstd_level_valid(int level);

}  // namespace coblk::compress::detail
