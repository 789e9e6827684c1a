// cmd/device_ops.h - creating, finding and deleting devices: the steps `coblk add`/`del` and `coblk up`/`down` share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "coblk/cmd/add_options.h"
#include "coblk/cmd/device_record.h"
#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// What must hold before the server of `o` is started, checked with the
/// control device and nothing created: the kernel's features for the data
/// path, recovery and unprivileged mode; `-n ID` free; `--name` not taken
/// by another device; for nbd the export, whose facts fill the returned
/// copy of `o`; the run directory trusted (and made). Error (one line) for
/// the first that fails.
Result<AddOptions> prepare_new_device(const AddOptions& o);

/// The record of the device named `name` (`coblk add --name`, or a config
/// section of `coblk up`) in the run directory, or nullopt when no record
/// has that name.
std::optional<DeviceRecord> find_named_device(const std::string& name);

/// Starts the server of `o` (prepared by prepare_new_device) as a daemon,
/// exactly as `coblk add` without --foreground does, and returns the block
/// device once it is live, or the server's one-line error.
Result<std::string> start_device(const AddOptions& o);

/// Stops and deletes device `id` as `coblk del -n ID` does (its record,
/// keeper and published files go too). Error (one line) when it cannot.
Result<void> delete_device(uint32_t id);

/// A warning, one line, when device `id` is active swap (/proc/swaps) whose
/// server counted writes but not one discard (its I/O metrics): the kernel
/// tells a ublk device of freed swap slots only by discards, so their data
/// stays in its memory. "" when it is not swap, did receive discards, or
/// publishes no metrics (--no-metrics).
std::string swap_without_discards(uint32_t id);

}  // namespace coblk::cmd
