// cmd/serve_device.h - runs the server of a new device for `coblk add`.
#pragma once

// In the foreground, or as a daemon that reports readiness to the waiting
// command.

#include "coblk/cmd/add_options.h"

namespace coblk::cmd {

/// Creates the device `o` describes and serves it until it is stopped (by a
/// signal or `coblk del`). Prints /dev/ublkbN on stdout once the device is
/// ready; without --foreground the serving continues in a detached child
/// and this returns as soon as the device is ready (or failed). Returns the
/// exit status; every failure is one line on stderr.
int serve_new_device(const AddOptions& o);

/// Like serve_new_device, but takes over the existing device `o.dev_id`
/// whose server died (user recovery) instead of adding one.
int serve_recovered_device(const AddOptions& o);

}  // namespace coblk::cmd
