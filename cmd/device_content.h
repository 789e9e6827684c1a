// cmd/device_content.h - what a block device (or image file) holds, before coblk up would mkswap or mkfs it.
#pragma once

// `coblk up` makes swap or a file system on a device only when that
// destroys nothing: the device must hold no signature libblkid knows (a
// file system, a swap area, a RAID or LVM member, a partition table) and
// start with zeros (data without any signature, such as plain dm-crypt,
// is no less somebody's). A btrfs keeps its first 64 KiB zero, so zeros
// alone do not tell.

#include <string>

#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// What probe_device_content found on a device.
struct DeviceContent {
  /// libblkid's TYPE of the signature found ("ext4", "swap", "btrfs", ...),
  /// or PTTYPE for a partition table ("dos", "gpt"); empty when none.
  std::string signature;
  /// The first 64 KiB (or the whole device, if smaller) are zeros.
  bool starts_with_zeros = false;

  /// No signature and zeros at the start: nothing to destroy.
  bool blank() const noexcept { return signature.empty() && starts_with_zeros; }
};

/// Probes `device` (a block device or a file) read-only with libblkid
/// (superblocks and partition tables, low-level, as `blkid -p` does) and
/// reads its first 64 KiB. Error (one line naming `device`) when it cannot
/// be opened or read, or when libblkid finds signatures of more than one
/// kind (ambiguous: not blank either).
Result<DeviceContent> probe_device_content(const std::string& device);

}  // namespace coblk::cmd
