// ublk/features.h - names of the ublk feature flags, for `coblk features` and diagnostics.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace coblk::ublk {

/// One feature flag and its kernel name without the UBLK_F_ prefix.
struct FeatureName {
  uint64_t bit;           ///< the single F_* bit
  std::string_view name;  ///< e.g. "USER_COPY"
  std::string_view what;  ///< one-line explanation
};

/// Every feature flag coblk knows, lowest bit first.
std::span<const FeatureName> known_features();

/// The name of `bit` (one bit set), or "" if coblk does not know it.
std::string_view feature_name(uint64_t bit);

/// "USER_COPY|ZONED|bit40" style rendering of a feature mask; "none" for 0.
std::string describe_features(uint64_t mask);

/// The name of a device state (S_DEV_*), or "unknown".
std::string_view device_state_name(uint16_t state);

}  // namespace coblk::ublk
