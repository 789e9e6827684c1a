// cmd/target_factory.h - builds the ublk::Target a validated `coblk add` asks for.
#pragma once

#include <cstdint>
#include <memory>

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
Result<std::unique_ptr<ublk::Target>> make_target(const AddOptions& o, uint32_t dev_id);

}  // namespace coblk::cmd
