#include "coblk/ublk/features.h"

#include <array>

#include "coblk/ublk/abi.h"

namespace coblk::ublk {
namespace {

constexpr std::array kFeatures{
    FeatureName{abi::F_SUPPORT_ZERO_COPY, "SUPPORT_ZERO_COPY",
                "request buffers can be registered as io_uring fixed buffers"},
    FeatureName{abi::F_URING_CMD_COMP_IN_TASK, "URING_CMD_COMP_IN_TASK", "complete io commands from task work"},
    FeatureName{abi::F_NEED_GET_DATA, "NEED_GET_DATA", "server fetches write data with a second command"},
    FeatureName{abi::F_USER_RECOVERY, "USER_RECOVERY", "device survives its server; in-flight I/O fails"},
    FeatureName{abi::F_USER_RECOVERY_REISSUE, "USER_RECOVERY_REISSUE",
                "device survives its server; in-flight I/O is reissued"},
    FeatureName{abi::F_UNPRIVILEGED_DEV, "UNPRIVILEGED_DEV", "non-root users may create devices"},
    FeatureName{abi::F_CMD_IOCTL_ENCODE, "CMD_IOCTL_ENCODE", "commands use ioctl-encoded opcodes"},
    FeatureName{abi::F_USER_COPY, "USER_COPY", "server copies data with pread/pwrite on /dev/ublkcN"},
    FeatureName{abi::F_ZONED, "ZONED", "zoned block devices"},
    FeatureName{abi::F_USER_RECOVERY_FAIL_IO, "USER_RECOVERY_FAIL_IO",
                "device survives its server; I/O fails meanwhile"},
    FeatureName{abi::F_UPDATE_SIZE, "UPDATE_SIZE", "device size can change while live"},
    FeatureName{abi::F_AUTO_BUF_REG, "AUTO_BUF_REG", "request buffers are registered automatically (zero copy)"},
    FeatureName{abi::F_QUIESCE, "QUIESCE", "device can be quiesced for a server upgrade"},
    FeatureName{abi::F_PER_IO_DAEMON, "PER_IO_DAEMON", "each tag may be served by its own thread"},
    FeatureName{abi::F_BUF_REG_OFF_DAEMON, "BUF_REG_OFF_DAEMON", "buffers can be registered from any thread"},
    FeatureName{abi::F_BATCH_IO, "BATCH_IO", "io commands are fetched and committed in batches"},
    FeatureName{abi::F_INTEGRITY, "INTEGRITY", "requests may carry integrity metadata"},
    FeatureName{abi::F_SAFE_STOP_DEV, "SAFE_STOP_DEV", "stop only when the device has no openers"},
    FeatureName{abi::F_NO_AUTO_PART_SCAN, "NO_AUTO_PART_SCAN", "no partition scan at start"},
    FeatureName{abi::F_SHMEM_ZC, "SHMEM_ZC", "zero copy through registered shared memory"},
};

}  // namespace

std::span<const FeatureName> known_features() { return kFeatures; }

std::string_view feature_name(uint64_t bit) {
  for (const auto& f : kFeatures) {
    if (f.bit == bit) return f.name;
  }
  return {};
}

std::string describe_features(uint64_t mask) {
  if (mask == 0) return "none";
  std::string out;
  for (unsigned i = 0; i < 64; ++i) {
    const uint64_t bit = 1ULL << i;
    if ((mask & bit) == 0) continue;
    if (!out.empty()) out += '|';
    const std::string_view name = feature_name(bit);
    if (name.empty()) {
      out += "bit" + std::to_string(i);
    } else {
      out += name;
    }
  }
  return out;
}

std::string_view device_state_name(uint16_t state) {
  switch (state) {
    case abi::S_DEV_DEAD:
      return "dead";
    case abi::S_DEV_LIVE:
      return "live";
    case abi::S_DEV_QUIESCED:
      return "quiesced";
    case abi::S_DEV_FAIL_IO:
      return "fail_io";
    default:
      return "unknown";
  }
}

}  // namespace coblk::ublk
