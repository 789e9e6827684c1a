// cmd/control_errors.h - the control device's errno results as the one-line messages `coblk` prints.
#pragma once

#include <cstdint>
#include <string>

#include "coblk/ublk/control.h"

namespace coblk::cmd {

/// Opens /dev/ublk-control (or $COBLK_CONTROL_PATH, for tests). On failure
/// returns false and sets `error` to one line that says what to do: load the
/// module, run as root, ...
bool open_control(ublk::ControlDevice& control, std::string& error);

/// One line explaining why control command `what` failed on device `dev_id`
/// with `err` (negative errno). Knows the common cases: EPERM (not root,
/// mentioning --unprivileged when the kernel offers it), EEXIST (id taken),
/// ENODEV/ENOENT (no such device), EBUSY.
std::string command_error(const char* what, int err, const ublk::ControlDevice& control, int64_t dev_id);

}  // namespace coblk::cmd
