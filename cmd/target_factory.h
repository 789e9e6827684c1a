// cmd/target_factory.h - builds the ublk::Target a validated `coblk add` asks for.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "coblk/cmd/add_options.h"
#include "coblk/runtime/result.h"
#include "coblk/ublk/target.h"

namespace coblk::cmd {

/// The target for `o` serving device `dev_id`. Returns the Error of the
/// target's create() (e.g. the errno of a backing file that cannot be
/// opened, EINVAL for a bad --algorithm), or Error EOPNOTSUPP for -t zram in
/// a build without the storage layer; the message is one line for the user.
/// This is the one place that knows every target type: a new backend is
/// added here.
///
/// A ram or zram device added with --recovery keeps its data in shared
/// memory (memfds, see Target::memory_fds()); `recover_from`, when not
/// empty, are the memfds a dead server left, which the new target maps and
/// recovers instead of starting empty.
Result<std::unique_ptr<ublk::Target>> make_target(const AddOptions& o, uint32_t dev_id,
                                                  std::span<const int> recover_from = {});

/// True when `o` describes a device whose data lives in the server's memory
/// and must outlive it: ram or zram with --recovery. Such a device has a
/// keeper process (cmd/keeper.h).
bool keeps_memory(const AddOptions& o);

}  // namespace coblk::cmd
