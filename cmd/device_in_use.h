// cmd/device_in_use.h - whether anything holds a block device, before coblk deletes it.
#pragma once

#include <string>

#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// Ok when nothing holds `device` (a block device node), or when it does
/// not exist (ENOENT, ENXIO: a device never started or already gone).
/// Error EBUSY (one line naming `device`) when something does: a file
/// system mounted from it in any mount namespace, active swap on it, a
/// mounted partition, device mapper or md on it, or a program that opened
/// it exclusively. The kernel refuses an exclusive open (O_EXCL) of a
/// claimed block device, and that open is the test, so it sees what
/// /proc/self/mounts and /proc/swaps of this namespace do not. Another
/// error (one line) when the test cannot be made (EACCES): whether it is
/// held is then unknown, which callers treat as held. A plain open(2)
/// without O_EXCL claims nothing and is not seen.
Result<void> check_not_in_use(const std::string& device);

}  // namespace coblk::cmd
