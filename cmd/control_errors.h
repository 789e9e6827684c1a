// cmd/control_errors.h - the control device's errno results as the one-line messages `coblk` prints.
#pragma once

#include <cstdint>
#include <string>

#include "coblk/ublk/control.h"

namespace coblk::cmd {

/// What to do when /dev/ublk-control is missing, as the end of one line.
/// When the modules of the running kernel (`modules_dir`, e.g.
/// /lib/modules/RELEASE) list ublk_drv in modules.dep, loading it with
/// modprobe is the answer; otherwise modprobe would fail too (a kernel
/// built without ublk, a container, the VM harness's guest, which has no
/// module database), and the answer is a kernel with ublk or the project's
/// VM harness.
std::string ublk_driver_advice(const std::string& modules_dir);

/// Opens /dev/ublk-control (or $COBLK_CONTROL_PATH, for tests). On failure
/// returns false and sets `error` to one line that says what to do: load the
/// module (ublk_driver_advice for the running kernel), run as root, ...
bool open_control(ublk::ControlDevice& control, std::string& error);

/// One line explaining why control command `what` failed on device `dev_id`
/// with `err` (negative errno). Knows the common cases: EPERM (not root,
/// mentioning --unprivileged when the kernel offers it), EEXIST (id taken),
/// ENODEV/ENOENT (no such device), EBUSY.
std::string command_error(const char* what, int err, const ublk::ControlDevice& control, int64_t dev_id);

/// GET_DEV_INFO of device `dev_id` into `info`; afterwards `control`
/// addresses that device the way the kernel requires: with its char node's
/// path in front of every command if it is an unprivileged device
/// (UBLK_F_UNPRIVILEGED_DEV, whoever asks, root included), without it
/// otherwise. Returns 0 or the negative errno of the lookup.
int look_up_device(ublk::ControlDevice& control, uint32_t dev_id, ublk::abi::ublksrv_ctrl_dev_info& info);

}  // namespace coblk::cmd
