// Builds the ublk::Target a validated `coblk add` asks for.
#pragma once

#include <memory>
#include <string>

#include "coblk/cmd/add_options.h"
#include "coblk/ublk/target.h"

namespace coblk::cmd {

/// The target for `o` serving device `dev_id`, or null with `error` set
/// (one line). This is the one place that knows every target type: a new
/// backend is added here.
std::unique_ptr<ublk::Target> make_target(const AddOptions& o, uint32_t dev_id, std::string& error);

}  // namespace coblk::cmd
